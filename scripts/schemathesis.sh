#!/usr/bin/env bash
# Property-based API testing of `/api/openapi.json` with schemathesis (PyPI), bounded: every
# operation gets MAX_EXAMPLES generated requests (default 30) as an admin API key with every
# scope; the run fails on any 5xx or any response that does not match the document.
# Excluded: revoking keys (it would revoke the key the run uses). Installs schemathesis into a
# venv under the target directory on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_EXAMPLES=${MAX_EXAMPLES:-30}
ADDR=${ADDR:-127.0.0.1:18091}
target="${CARGO_TARGET_DIR:-target}"
venv="$target/venv-schemathesis"
if [[ ! -x "$venv/bin/st" ]]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==4.32.5"
fi
# TOLL_BIN: a toll binary built already (CI passes its optimised build instead of a second one).
if [[ -n "${TOLL_BIN:-}" ]]; then
  toll="$TOLL_BIN"
else
  cargo build --release --locked -q -p toll-cli
  toll="${CARGO_TARGET_DIR:-target}/release/toll"
fi
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
"$toll" demo --file "$work/demo.db" --subscribers 50 --cdrs 500 --no-serve >/dev/null
"$toll" demo --file "$work/demo.db" --listen "$ADDR" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -sf "http://$ADDR/healthz" >/dev/null && break; sleep 0.2; done
curl -sf -c "$work/jar" -H 'content-type: application/json' \
  -d '{"login":"admin","password":"demo-admin"}' "http://$ADDR/api/v1/session" >/dev/null
key=$(curl -sf -b "$work/jar" -H 'content-type: application/json' \
  -d '{"name":"schemathesis","role":"admin","scopes":["read","write","rate"]}' \
  "http://$ADDR/api/v1/api-keys" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
"$venv/bin/st" run "http://$ADDR/api/openapi.json" \
  --header "Authorization: Bearer $key" \
  --checks not_a_server_error,response_schema_conformance,content_type_conformance \
  --max-examples "$MAX_EXAMPLES" \
  --exclude-path-regex '^/api/v1/api-keys/\{id\}$' \
  --seed 20261205 \
  --report junit --report-dir "$target/schemathesis"
