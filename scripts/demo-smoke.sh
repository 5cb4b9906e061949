#!/usr/bin/env bash
# The README's first command as a newcomer meets it: `toll demo` (full size) seeds a fresh file
# and serves; the sign-in form takes a printed login; the dashboard has today's figures and
# the traffic chart; the CDR search and the API find the seeded data.
set -euo pipefail
cd "$(dirname "$0")/.."
ADDR=${ADDR:-127.0.0.1:18093}
# TOLL_BIN: a toll binary built already (CI passes its optimised build instead of a second one).
if [[ -n "${TOLL_BIN:-}" ]]; then
  toll="$TOLL_BIN"
else
  cargo build --release --locked -q -p toll-cli
  toll="${CARGO_TARGET_DIR:-target}/release/toll"
fi
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
start=$(date +%s)
"$toll" demo --file "$work/toll-demo.db" --listen "$ADDR" >"$work/out.log" 2>"$work/err.log" &
pid=$!
for _ in $(seq 300); do curl -sf "http://$ADDR/healthz" >/dev/null && break; sleep 0.2; done
echo "toll demo serving after $(( $(date +%s) - start )) s"
grep -E "cdrs|Toll demo is running" "$work/out.log"
curl -sf -c "$work/jar" -o /dev/null -H 'sec-fetch-site: same-origin' \
  --data-urlencode username=operator --data-urlencode password=demo-operator \
  "http://$ADDR/ui/login"
page=$(curl -sf -b "$work/jar" "http://$ADDR/ui/")
grep -q 'application/json' <<<"$page" || { echo "dashboard without chart data" >&2; exit 1; }
calls=$(curl -sf -b "$work/jar" "http://$ADDR/api/v1/cdrs?limit=5" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
[[ "$calls" == 5 ]] || { echo "CDR search found $calls" >&2; exit 1; }
echo "dashboard rendered; CDR search finds the seeded calls"
