#!/usr/bin/env bash
# The whole test suite, N times in a row (issue 29: "10 runs, 0 failures"),
# with each run's wall time, CPU time (user + system of every test process)
# and load average, and the names of any failed tests. Builds once first
# (not timed). Writes results/SUITE.md and results/suite/ (per-run JSON; the
# full log of a failed run), with the commit and dirty flag.
#
#   scripts/suite_repeat.sh                 10 runs of `cargo test --workspace`
#   RUNS=3 scripts/suite_repeat.sh          fewer runs
#   OUT=/tmp/suite scripts/suite_repeat.sh  somewhere else than results/
#   EXTRA="--lib" ...                       extra cargo test arguments (a smoke run)
#
# Wall time depends on what else the machine runs (the load average is
# recorded beside it); CPU time much less so.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

RUNS=${RUNS:-10}
OUT=${OUT:-results}
# shellcheck disable=SC2206 # EXTRA is split into arguments on purpose
CMD=(cargo test --workspace --no-fail-fast ${EXTRA:-})
mkdir -p "$OUT/suite"
rm -f "$OUT"/suite/run-*.json "$OUT"/suite/run-*.log
git_state
machine_json "$OUT/suite/env.json" runs="$RUNS" command="${CMD[*]}"

echo "building the test binaries (not timed)..."
"${CMD[@]}" --no-run -q

for i in $(seq 1 "$RUNS"); do
    log=$(mktemp)
    echo "run $i/$RUNS: ${CMD[*]}"
    python3 scripts/suite_run.py "$i" "$OUT/suite/run-$i.json" "$log" "${CMD[@]}" || true
    if [[ $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ok"])' "$OUT/suite/run-$i.json") != True ]]; then
        cp "$log" "$OUT/suite/run-$i.log"
    fi
    rm -f "$log"
done
python3 scripts/suite_report.py "$OUT/suite" > "$OUT/SUITE.md"
echo "wrote $OUT/SUITE.md"
