#!/usr/bin/env bash
# Bounded fuzzing of the framing and of live connections (not CI: CI runs
# the same tests with their default, small case counts).
#
#   scripts/fuzz.sh [SECONDS]     default 120; stops by itself
#
# cargo-fuzz needs a nightly toolchain, which this project's machines do not
# have, so the fuzzers are property tests: proptest feeds arbitrary bytes and
# arbitrary splits of valid frames to both decoders (ours and the seed's
# format), and a live server gets random bytes on fresh connections while a
# real client checks it still answers. Each round uses a new seed; a failure
# prints the seed (and proptest stores its minimal case under
# tests/proptest-regressions/) so it can be replayed.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-120}
echo "fuzz: building the tests (release)"
cargo test --release --no-run --test codec_props --test hostile >/dev/null 2>&1
end=$((SECONDS + budget))
log=$(mktemp)
trap 'rm -f "$log"' EXIT
round=0
while ((SECONDS < end)); do
    round=$((round + 1))
    seed=$RANDOM$RANDOM
    echo "== round $round (seed $seed, $((end - SECONDS)) s left)"
    if ! PROPTEST_CASES=20000 cargo test --release -q --test codec_props >"$log" 2>&1; then
        cat "$log"; echo "fuzz: the property tests failed (round $round)"; exit 1
    fi
    if ! FUZZ_ROUNDS=3000 FUZZ_SEED=$seed cargo test --release -q --test hostile random_bytes >"$log" 2>&1; then
        cat "$log"; echo "fuzz: the live server failed with FUZZ_SEED=$seed"; exit 1
    fi
done
echo "fuzz: $round rounds in $budget s, no failure"
