#!/usr/bin/env bash
# Toll in one command (for now: the rating engine): builds the `toll` binary, checks the bundled
# Chinese-operator tariff, explains one call, answers a prepaid authorisation and rates a small
# CDR file, good rows and bad ones.
set -euo pipefail
cd "$(dirname "$0")/.."

# TOLL_BIN: a toll binary built already (CI passes its optimised build instead of a second one).
if [[ -n "${TOLL_BIN:-}" ]]; then
  toll="$TOLL_BIN"
else
  cargo build --release --locked -q -p toll-cli
  toll="${CARGO_TARGET_DIR:-target}/release/toll"
fi
tariff=examples/cn-demo
out="${CARGO_TARGET_DIR:-target}/demo"
mkdir -p "$out"

echo "== toll tariff check $tariff"
"$toll" tariff check "$tariff"

echo
echo "== one call, explained: a China Unicom mobile at 07:59 on a Monday, 150 s"
"$toll" cost --tariff "$tariff" --tenant acme --category call --subject alice \
  --destination "+86 186 0000 1111" --start 2026-11-23T07:59:00+08:00 --usage 150s

echo
echo "== the same call routed through a China Mobile trunk"
"$toll" cost --tariff "$tariff" --tenant acme --category call --subject alice \
  --destination "+86 186 0000 1111" --start 2026-11-23T07:59:00+08:00 --usage 150s --carrier 中国移动

echo
echo "== prepaid: how long may alice call Hong Kong with 5.00 CNY left?"
"$toll" max-usage --tariff "$tariff" --tenant acme --category call --subject alice \
  --destination 0085212345678 --start 2026-11-23T10:00:00+08:00 --usage 1h --balance 5.00

echo
echo "== toll rate $tariff/cdrs.csv  (rated: $out/rated.csv, rejects: $out/rejects.csv)"
"$toll" rate --tariff "$tariff" --cdrs "$tariff/cdrs.csv" --out "$out/rated.csv" --rejects "$out/rejects.csv"
echo
show() { # a CSV file as an aligned table, when python3 is there to read the quoting
  if command -v python3 >/dev/null; then
    python3 - "$@" <<'PY'
import csv, sys
rows = [[r[i] for i in map(int, sys.argv[2].split(","))] for r in csv.reader(open(sys.argv[1], encoding="utf-8", errors="replace"))]
widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
for r in rows:
    print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
PY
  else
    cat "$1"
  fi
}
show "$out/rated.csv" 0,3,4,5,6,9,10,11,12,13,14
echo
echo "rejected rows:"
show "$out/rejects.csv" 0,1
