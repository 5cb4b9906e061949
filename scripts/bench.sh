#!/usr/bin/env bash
# Toll benchmarks: see docs/BENCHMARKS.md.
#
#   scripts/bench.sh            everything (release build, data, `toll rate` runs, criterion)
#   SKIP_CRITERION=1 scripts/bench.sh    only the end-to-end `toll rate` figures
#   SKIP_10M=1 scripts/bench.sh          no 10,000,000-event file / RSS run
#
# Data goes to $BENCH_OUT (default bench-out/, gitignored) and is reused when its parameters
# match. Needs hyperfine (else falls back to /usr/bin/time) and GNU time for the peak RSS.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${BENCH_OUT:-$ROOT/bench-out}
PREFIXES=${PREFIXES:-50000}
SEED=${SEED:-28689}
SMALL=${SMALL:-1000000}
LARGE=${LARGE:-10000000}
RUNS=${RUNS:-5}
TOLL=$ROOT/target/release/toll

log() { printf '\n== %s  [load %s]\n' "$*" "$(cut -d' ' -f1 /proc/loadavg)" >&2; }

mkdir -p "$OUT"
log "machine"
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
{
    echo "date:   $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "cpu:    $CPU"
    echo "nproc:  $(nproc)"
    echo "memory: $MEM"
    echo "rustc:  $(rustc --version)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' + uncommitted changes')"
    echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; other jobs on the machine skew every figure)"
} | tee "$OUT/machine.txt" >&2

log "release build"
cargo build --release -p toll-cli

# Generated data is reused when the same command line produced it.
gen() { # gen STAMP-FILE COMMAND...
    local stamp=$1
    shift
    if [[ -f $stamp && $(cat "$stamp") == "$*" ]]; then
        echo "reusing $stamp" >&2
        return
    fi
    /usr/bin/time -f "  %e s, %M KiB max RSS" "$@"
    echo "$*" >"$stamp"
}

log "generate: tariff ($PREFIXES prefixes) and events"
gen "$OUT/.tariff" "$TOLL" gen tariff --prefixes "$PREFIXES" --seed "$SEED" --out "$OUT/tariff"
"$TOLL" tariff check "$OUT/tariff"
gen "$OUT/.cdrs-small" "$TOLL" gen cdrs --prefixes "$PREFIXES" --seed "$SEED" --count "$SMALL" --out "$OUT/cdrs-$SMALL.csv"
if [[ -z ${SKIP_10M:-} ]]; then
    gen "$OUT/.cdrs-large" "$TOLL" gen cdrs --prefixes "$PREFIXES" --seed "$SEED" --count "$LARGE" --out "$OUT/cdrs-$LARGE.csv"
fi
ls -l "$OUT"/*.csv >&2

RATE_SMALL=("$TOLL" rate --quiet --tariff "$OUT/tariff" --cdrs "$OUT/cdrs-$SMALL.csv" --out "$OUT/rated-$SMALL.csv")
log "toll rate, $SMALL events, end to end (load tariff + read + rate + write)"
"${RATE_SMALL[@]}" 2>&1 | tee "$OUT/rate-small.txt" >&2
if command -v hyperfine >/dev/null; then
    hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/hyperfine.json" "${RATE_SMALL[*]}" >&2
    MEAN=$(grep -m1 '"mean"' "$OUT/hyperfine.json" | tr -dc '0-9.')
    STDDEV=$(grep -m1 '"stddev"' "$OUT/hyperfine.json" | tr -dc '0-9.')
else
    /usr/bin/time -f "%e" -o "$OUT/time-small.txt" "${RATE_SMALL[@]}"
    MEAN=$(cat "$OUT/time-small.txt")
    STDDEV=n/a
fi
E2E_RATE=$(awk -v n="$SMALL" -v s="$MEAN" 'BEGIN { printf "%.0f", n / s }')

RSS_KIB=n/a
LARGE_S=n/a
if [[ -z ${SKIP_10M:-} ]]; then
    log "toll rate, $LARGE events: peak RSS"
    /usr/bin/time -v "$TOLL" rate --quiet --tariff "$OUT/tariff" --cdrs "$OUT/cdrs-$LARGE.csv" \
        --out "$OUT/rated-$LARGE.csv" 2>"$OUT/time-large.txt"
    grep -E 'rated|Maximum resident|Elapsed' "$OUT/time-large.txt" >&2
    RSS_KIB=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$OUT/time-large.txt")
    LARGE_S=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$OUT/time-large.txt")
    rm -f "$OUT/rated-$LARGE.csv" "$OUT/rated-$LARGE.csv.rejects.csv"
fi

if [[ -z ${SKIP_CRITERION:-} ]]; then
    log "criterion: cargo bench -p toll-rating -p toll-cli"
    cargo bench -p toll-rating -p toll-cli --bench rating --bench cli 2>&1 | tee "$OUT/criterion.txt" >&2
fi

# The middle estimate of a criterion result: `thrpt:` or `time:` line after the bench's name.
crit() { # crit NAME time|thrpt
    [[ -f $OUT/criterion.txt ]] || { echo n/a; return; }
    awk -v name="$1" -v what="$2:" '
        $1 == name { found = 1 }
        found && $0 ~ what { sub(/.*\[/, ""); split($0, a, " "); print a[3], a[4]; exit }
    ' "$OUT/criterion.txt"
}

log "summary"
{
    echo "machine:      $CPU, $(nproc) cores, $MEM, $(rustc --version | cut -d' ' -f2)"
    echo "(a) rate() one core, 200k events, 50k prefixes:  $(crit rate/one_core thrpt)   (target >= 5 Melem/s)"
    echo "    rate() one core, 2k-event sample:              $(crit rate/same_sample thrpt)"
    echo "(b) rate_stream CSV->CSV in memory, all cores:     $(crit rate_stream/all_cores thrpt)   (target >= 1 Melem/s)"
    echo "    rate_stream, one rating worker:                $(crit rate_stream/one_worker thrpt)"
    echo "    toll rate $SMALL events end to end (files):  mean ${MEAN} s +- ${STDDEV} s = ${E2E_RATE} events/s"
    echo "(c) parse + compile 200k prefixes:                 $(crit load_compile/200k_prefixes time)   (target < 1 s)"
    echo "(d) seed linear scan, same 2k sample:              $(crit linear_scan/seed_find_rate thrpt)"
    echo "    toll rate $LARGE events: peak RSS ${RSS_KIB} KiB, wall ${LARGE_S}"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/summary.txt"
