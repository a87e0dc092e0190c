#!/usr/bin/env bash
# Overload (not CI): does a provider stay useful at twice the load it can
# serve? The goal (issue 13, MISSION.md): offered load 2× saturation, open
# loop, for DURATION → goodput ≥ 90% of saturation, p99 of successful calls
# ≤ 5× the p99 at 50% load, RSS flat; the same run with the limiter off,
# side by side.
#
#   scripts/overload.sh               build (release), run, write results/OVERLOAD.md
#
# The server: echo-provider --handler-sleep-us SLEEP_US, a blocking Echo on
# WORKERS pool threads (a handler waiting on a disk or a downstream
# service), so its capacity is about WORKERS / SLEEP_US and does not move
# with the CPU the other programs on this machine take. The client: loadgen's
# engine (--client raw), open loop, CONNECTIONS connections, at most
# IN_FLIGHT calls outstanding; latency counted from each call's intended
# send time (coordinated omission corrected), refusals (`Overloaded`)
# counted apart from the successful calls.
#
# Steps:
#   saturation  limiter off, closed loop (--qps max): successful calls/s = S
#   for each of concurrency_limiter=auto and =off, a fresh provider:
#     half      open loop at S/2 for HALF_DURATION: the reference p99
#     over      open loop at 2·S for DURATION, the provider's RSS sampled
#               every RSS_EVERY seconds
# Raw data (loadgen's JSON and text reports, rss.csv, configs, env.json)
# goes to results/overload/.
#
# Knobs (environment): DURATION (60), HALF_DURATION (20), SAT_DURATION (10),
# WORKERS (8), SLEEP_US (1000), CONNECTIONS (16), IN_FLIGHT (1024),
# RSS_EVERY (5), SKIP_BUILD=1. About 3.5 minutes with the defaults; every
# step is bounded and everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

DURATION=${DURATION:-60}
HALF_DURATION=${HALF_DURATION:-20}
SAT_DURATION=${SAT_DURATION:-10}
WORKERS=${WORKERS:-8}
SLEEP_US=${SLEEP_US:-1000}
CONNECTIONS=${CONNECTIONS:-16}
IN_FLIGHT=${IN_FLIGHT:-1024}
RSS_EVERY=${RSS_EVERY:-5}
OUT=results/overload
BIN=$RELEASE_DIR

for tool in python3; do command -v "$tool" >/dev/null || die "$tool not found"; done
T0=$(date +%s)
git_state
build_release loadgen:loadgen mprpc-examples:echo-provider
scratch overload
rm -rf "$OUT"
mkdir -p "$OUT/raw"
uptime >"$OUT/uptime-before.txt"

# Starts a provider with concurrency_limiter=$1; sets PORT and PROVIDER_PID.
start_provider() {
    PORT=$(free_port)
    cat >"$OUT/provider-$1.conf" <<EOF
registry=none
rpcserverip=127.0.0.1
rpcserverport=$PORT
reactor_threads=1
worker_threads=$WORKERS
concurrency_limiter=$1
log_dir=$WORK/logs-$1
log_level=warn
EOF
    "$BIN/echo-provider" -i "$OUT/provider-$1.conf" --handler-sleep-us "$SLEEP_US" \
        >"$WORK/provider-$1.out" 2>&1 &
    PROVIDER_PID=$!
    PIDS+=("$PROVIDER_PID")
    wait_port "$PORT" 10 || { cat "$WORK/provider-$1.out" >&2; die "echo-provider ($1) did not start"; }
}

stop_provider() {
    kill "$PROVIDER_PID" 2>/dev/null || true
    wait "$PROVIDER_PID" 2>/dev/null || true
}

# Runs loadgen against PORT: label, rate (N or max), seconds, in-flight cap.
load() {
    local cmd=("$BIN/loadgen" --target mprpc --client raw --addr "127.0.0.1:$PORT"
        --service EchoService --method Echo --connections "$CONNECTIONS" --in-flight "$4"
        --qps "$2" --duration "${3}s" --warmup 2s --label "$1" --out-dir "$WORK/raw")
    printf '%s\n' "${cmd[*]#"$BIN/"}" >>"$OUT/commands.txt"
    log "$1: loadgen --qps $2 for ${3}s"
    "${cmd[@]}" >"$OUT/raw/$1.txt" 2>&1 || { tail -20 "$OUT/raw/$1.txt" >&2; die "loadgen ($1) failed"; }
    cp "$WORK"/raw/*-"$1".json "$OUT/raw/$1.json"
}

json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# The provider's RSS every RSS_EVERY seconds, labelled $1, until killed.
sample_rss() {
    while kill -0 "$PROVIDER_PID" 2>/dev/null; do
        printf '%s,%s,%s\n' "$1" "$(($(date +%s) - T0))" \
            "$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$PROVIDER_PID/status" 2>/dev/null || echo 0)"
        sleep "$RSS_EVERY"
    done >>"$OUT/rss.csv"
}

python3 - "$OUT/env.json" <<'PY'
import json, os, platform, sys, time
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
json.dump({
    "date_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    "nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
    "git_commit": os.environ["GIT_COMMIT"], "git_dirty": os.environ["GIT_DIRTY"] == "true",
}, open(sys.argv[1], "w"), indent=2)
PY
cat >"$OUT/params.json" <<EOF
{"duration_s": $DURATION, "half_duration_s": $HALF_DURATION, "sat_duration_s": $SAT_DURATION,
 "workers": $WORKERS, "sleep_us": $SLEEP_US, "connections": $CONNECTIONS, "in_flight": $IN_FLIGHT,
 "rss_every_s": $RSS_EVERY}
EOF
echo "mode,t_s,rss_kib" >"$OUT/rss.csv"
: >"$OUT/commands.txt"

# ------------------------------------------------------------- saturation
start_provider off
load saturation max "$SAT_DURATION" $((WORKERS * 4))
stop_provider
SAT=$(json_field "$OUT/raw/saturation.json" ok_qps)
HALF=$(python3 -c "print(round($SAT / 2))")
OVER=$(python3 -c "print(round($SAT * 2))")
log "saturation $SAT ok calls/s: half load $HALF/s, overload $OVER/s"

# ------------------------------------------------------------- per mode
for mode in auto off; do
    start_provider "$mode"
    load "$mode-half" "$HALF" "$HALF_DURATION" "$IN_FLIGHT"
    sample_rss "$mode" &
    SAMPLER=$!
    PIDS+=("$SAMPLER")
    load "$mode-over" "$OVER" "$DURATION" "$IN_FLIGHT"
    kill "$SAMPLER" 2>/dev/null || true
    wait "$SAMPLER" 2>/dev/null || true
    kill -0 "$PROVIDER_PID" 2>/dev/null || die "the provider ($mode) died"
    cp "$WORK/provider-$mode.out" "$OUT/provider-$mode.out"
    cat "$WORK/logs-$mode"/* 2>/dev/null | head -50 >"$OUT/provider-$mode-log-head.txt" || true
    stop_provider
done
uptime >"$OUT/uptime-after.txt"
echo "$(($(date +%s) - T0))" >"$OUT/total_seconds.txt"

# ------------------------------------------------------------- report
python3 - "$OUT" results/OVERLOAD.md <<'PY'
import csv, json, sys
out, md = sys.argv[1], sys.argv[2]
env = json.load(open(f"{out}/env.json"))
p = json.load(open(f"{out}/params.json"))
run = lambda label: json.load(open(f"{out}/raw/{label}.json"))
sat = run("saturation")
S = sat["ok_qps"]
rss = {}
for r in csv.DictReader(open(f"{out}/rss.csv")):
    rss.setdefault(r["mode"], []).append(int(r["rss_kib"]))
ms = lambda us: f"{us / 1000:.2f} ms"
L = []
w = L.append
w("# Overload: twice the load a provider can serve\n")
dirty = " (uncommitted changes in the tree)" if env["git_dirty"] else " (clean tree)"
w(f"Generated by `scripts/overload.sh` on {env['date_utc']} at commit `{env['git_commit']}`{dirty}; "
  f"{env['nproc']} cores ({env['cpu_model']}), kernel {env['kernel']}; provider and load generator on the same "
  f"machine over 127.0.0.1. Whole run: {open(f'{out}/total_seconds.txt').read().strip()} s.\n")
w(f"Machine load (other engineers build on this box): before `{open(f'{out}/uptime-before.txt').read().strip()}`; "
  f"after `{open(f'{out}/uptime-after.txt').read().strip()}`. One run of each, not interleaved rounds: "
  "figures move by some percent between runs on this shared machine.\n")
w(f"Server: `echo-provider --handler-sleep-us {p['sleep_us']}`: a blocking Echo on {p['workers']} worker threads, each "
  f"call waiting {p['sleep_us']} µs (a handler waiting on a disk or a downstream service), one reactor. Client: "
  f"loadgen's engine, open loop, {p['connections']} connections, at most {p['in_flight']} calls outstanding, "
  "latency from each call's intended send time (coordinated omission corrected). "
  f"Saturation: closed loop for {p['sat_duration_s']} s with {p['workers'] * 4} calls outstanding, limiter off: "
  f"**{S:,.0f} successful calls/s**. Then, for each limiter setting, a fresh provider: "
  f"{p['half_duration_s']} s at 50% of that ({S / 2:,.0f}/s), then {p['duration_s']} s at 200% ({2 * S:,.0f}/s).\n")
w("## Result\n")
w("| | limiter `auto` | limiter `off` | goal |")
w("|---|---:|---:|---|")
rows = {}
for mode in ("auto", "off"):
    h, o = run(f"{mode}-half"), run(f"{mode}-over")
    samples = rss.get(mode, [0])
    rows[mode] = {
        "half_p99": h["ok_latency_us"]["p99"], "half_ok": h["ok_qps"], "half_err": h["errors"],
        "sent": o["achieved_qps"], "good": o["ok_qps"], "p50": o["ok_latency_us"]["p50"],
        "p99": o["ok_latency_us"]["p99"], "p999": o["ok_latency_us"]["p999"],
        "all_p99": o["latency_us"]["p99"], "errors": o["errors_by_code"], "unsent": o["unsent"],
        "unanswered": o["unanswered"], "rss0": samples[0], "rss1": samples[-1], "rssmax": max(samples),
        "n_rss": len(samples),
    }
A, O = rows["auto"], rows["off"]
def both(f):
    return f(A), f(O)
def line(name, f, goal=""):
    a, o = both(f)
    w(f"| {name} | {a} | {o} | {goal} |")
line("50% load: successful calls/s (errors)", lambda r: f"{r['half_ok']:,.0f} ({r['half_err']})")
line("50% load: p99 of successful calls", lambda r: ms(r["half_p99"]))
line("200% load: calls sent/s", lambda r: f"{r['sent']:,.0f}")
line("200% load: **goodput** (successful calls/s)", lambda r: f"{r['good']:,.0f} ({r['good'] / S:.0%} of saturation)",
     "≥ 90% of saturation")
line("200% load: refused `Overloaded`", lambda r: f"{r['errors'].get('overloaded', 0):,}")
line("200% load: other errors", lambda r: ", ".join(f"{k} {v:,}" for k, v in r["errors"].items() if k != "overloaded") or "0")
line("200% load: calls never sent / never answered (entered as lower bounds)", lambda r: f"{r['unsent']:,} / {r['unanswered']:,}")
line("200% load: p50 / p99 / p99.9 of successful calls", lambda r: f"{ms(r['p50'])} / {ms(r['p99'])} / {ms(r['p999'])}")
line("200% load: **p99 of successful calls ÷ p99 at 50% load**", lambda r: f"{r['p99'] / max(r['half_p99'], 1):.1f}×", "≤ 5×")
line("200% load: p99 of all calls, refusals included", lambda r: ms(r["all_p99"]))
line(f"200% load: provider RSS first / last / max of {A['n_rss']} samples",
     lambda r: f"{r['rss0'] / 1024:.1f} / {r['rss1'] / 1024:.1f} / {r['rssmax'] / 1024:.1f} MiB", "flat")
w("")
def met(r):
    good = r["good"] >= 0.9 * S
    tail = r["p99"] <= 5 * r["half_p99"]
    flat = r["rssmax"] <= 1.25 * r["rss0"] + 2048
    return good, tail, flat
for mode in ("auto", "off"):
    good, tail, flat = met(rows[mode])
    verdict = "met" if good and tail and flat else "**not met**"
    w(f"- limiter `{mode}`: goal {verdict} (goodput {'yes' if good else 'no'}, p99 {'yes' if tail else 'no'}, "
      f"RSS flat {'yes' if flat else 'no'}: max ≤ first × 1.25 + 2 MiB).")
w("")
w("Goodput counts successful replies to calls intended inside the measured window, per second of it. "
  "With the limiter on, the provider answers the surplus `Overloaded` at once, so the calls it admits wait behind "
  "a handful of others; with it off, every call queues for the workers until the client's in-flight cap is full, "
  "after which calls wait in the client for a free slot, and their latency from the intended send time grows "
  "with the backlog for the whole run. That is why goodput with the limiter off is below what its workers "
  "complete per second: the replies that arrive during the window answer calls intended long before it, and the "
  "calls intended inside it are answered late, after it, or never sent (`calls sent/s` shows how fast the client "
  "could send at all).\n")
w("Raw data: `results/overload/` (loadgen's JSON and text report per step, rss.csv, the provider configs, "
  "commands.txt, env.json, params.json).")
open(md, "w").write("\n".join(L) + "\n")
print(f"wrote {md}")
PY
log "done: results/OVERLOAD.md"
