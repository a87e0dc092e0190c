#!/usr/bin/env bash
# Runs the criterion microbenchmarks and the allocation counter, then writes
# results/BENCHES.md from criterion's own estimates (target/criterion/**/new/
# estimates.json) and results/allocations.md (written by the allocations
# bench). Every figure comes from this run.
#
#   scripts/bench.sh              all benches (about 5 minutes plus the build)
#   scripts/bench.sh codec        only the named bench targets
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh
BENCHES=("$@")
[[ ${#BENCHES[@]} -gt 0 ]] || BENCHES=(codec dispatch roundtrip allocations)
ARGS=()
for b in "${BENCHES[@]}"; do ARGS+=(--bench "$b"); done
mkdir -p results
CMD="cargo bench ${ARGS[*]} -- --noplot"
echo "== $CMD"
cargo bench "${ARGS[@]}" -- --noplot 2>&1 | tee results/criterion-output.txt
python3 - "$CMD" "$(machine_line)" <<'PY'
import glob, json, os, sys, time
rows = []
for est in sorted(glob.glob("target/criterion/**/new/estimates.json", recursive=True)):
    d = os.path.dirname(est)
    meta = json.load(open(os.path.join(d, "benchmark.json")))
    e = json.load(open(est))
    mean = e["mean"]["point_estimate"]
    lo, hi = e["mean"]["confidence_interval"]["lower_bound"], e["mean"]["confidence_interval"]["upper_bound"]
    elems = (meta.get("throughput") or {}).get("Elements") or 1
    rows.append((meta["full_id"], mean / elems, lo / elems, hi / elems, elems, os.path.getmtime(est)))
def ns(v):
    return f"{v/1e3:.2f} µs" if v >= 1e3 else f"{v:.1f} ns"
out = ["# Criterion microbenchmarks", "",
       f"Written by `scripts/bench.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
       f"{sys.argv[2]}; "
       f"command: `{sys.argv[1]}`. Times are criterion's mean estimate per element "
       "(per frame or per call) with its 95% confidence interval; the machine is shared with other jobs.", "",
       "| benchmark | per element | 95% CI | elements per iteration | per second |", "|---|---|---|---|---|"]
for name, mean, lo, hi, elems, _ in rows:
    out.append(f"| `{name}` | {ns(mean)} | {ns(lo)} – {ns(hi)} | {elems} | {1e9/mean:,.0f} |")
out += ["", "Allocation counts: [allocations.md](allocations.md).", ""]
open("results/BENCHES.md", "w").write("\n".join(out))
print("wrote results/BENCHES.md")
PY
