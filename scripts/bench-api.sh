#!/usr/bin/env bash
# Load test of `POST /api/v1/rate` with wrk over loopback (issue 5): a demo database (small:
# the rating path does not depend on its size), `toll demo` serving it, an API key with the
# `rate` scope, then wrk for DURATION (default 30s) with THREADS/CONNECTIONS.
# Prints wrk's report with its latency distribution; docs/BENCHMARKS.md records the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-30s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
ADDR=${ADDR:-127.0.0.1:18090}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked -q -p toll-cli
toll="${CARGO_TARGET_DIR:-target}/release/toll"
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
"$toll" demo --file "$work/demo.db" --subscribers 100 --cdrs 1000 --no-serve >/dev/null
"$toll" demo --file "$work/demo.db" --listen "$ADDR" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -sf "http://$ADDR/healthz" >/dev/null && break; sleep 0.2; done
curl -sf -c "$work/jar" -H 'content-type: application/json' \
  -d '{"login":"admin","password":"demo-admin"}' "http://$ADDR/api/v1/session" >/dev/null
key=$(curl -sf -b "$work/jar" -H 'content-type: application/json' \
  -d '{"name":"wrk","role":"operator","scopes":["rate"]}' "http://$ADDR/api/v1/api-keys" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
cat >"$work/rate.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
wrk.body = '{"category":"call","subject":"13800138000","destination":"+86 186 0000 1111","start":"2026-11-23T07:59:00+08:00","usage":"150s"}'
LUA
# One request first: the answer must be a price, not an error.
curl -sf -H "Authorization: Bearer $key" -H 'content-type: application/json' \
  -d '{"category":"call","subject":"13800138000","destination":"+86 186 0000 1111","start":"2026-11-23T07:59:00+08:00","usage":"150s"}' \
  "http://$ADDR/api/v1/rate" | python3 -c 'import json,sys; print("cost", json.load(sys.stdin)["cost"])'
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$work/rate.lua" "http://$ADDR/api/v1/rate"
# Baseline in the same run: the HTTP stack alone (no auth, no JSON, no rating).
echo
echo "baseline: GET /healthz, same threads and connections"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://$ADDR/healthz"
