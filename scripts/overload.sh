#!/usr/bin/env bash
# Overload (not CI): does a provider stay useful at twice the load it can
# serve? The goal (issue 13, MISSION.md): offered load 2× saturation, open
# loop → goodput ≥ 90% of saturation, p99 of successful calls ≤ 5× the p99
# at 50% load, RSS flat; the same with the limiter off, side by side.
#
#   scripts/overload.sh               build (release), run, write results/OVERLOAD.md
#
# The server: echo-provider --handler-sleep-us SLEEP_US, a blocking Echo on
# WORKERS pool threads (a handler waiting on a disk or a downstream
# service), so its capacity is about WORKERS / SLEEP_US and does not move
# with the CPU the other programs on this machine take; pinned to core
# SERVER_CPU (0). The client: loadgen's engine (--client raw) on core
# CLIENT_CPU (1), open loop, CONNECTIONS connections, at most IN_FLIGHT calls
# outstanding; latency from each call's intended send time (coordinated
# omission corrected), refusals (`Overloaded`) counted apart from the
# successful calls.
#
# Steps:
#   saturation  limiter off, closed loop (--qps max): successful calls/s = S
#   ROUNDS times, for each of concurrency_limiter=auto and =off, a fresh
#   provider:
#     half      open loop at S/2 for HALF_DURATION: the reference p99 (and
#               any refusal there counts against the limiter)
#     over      open loop at 2·S for DURATION, the provider's RSS sampled
#               every RSS_EVERY seconds
# The report (scripts/overload_report.py) gives medians (min–max) over the
# rounds, latency only from runs that held their rate, and the backlog's
# growth as a slope (calls/s) instead of a ratio that grows with run length.
# Raw data (loadgen's JSON and text reports, rss.csv, configs, env.json)
# goes to results/overload/.
#
# Knobs (environment): ROUNDS (3), DURATION (20), HALF_DURATION (10),
# SAT_DURATION (5), WORKERS (8), SLEEP_US (1000), CONNECTIONS (16),
# IN_FLIGHT (1024), RSS_EVERY (2), SERVER_CPU (0), CLIENT_CPU (1),
# SKIP_BUILD=1. About 3.5 minutes with the defaults; every step is bounded
# and everything started is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}
HALF_DURATION=${HALF_DURATION:-10}
SAT_DURATION=${SAT_DURATION:-5}
WORKERS=${WORKERS:-8}
SLEEP_US=${SLEEP_US:-1000}
CONNECTIONS=${CONNECTIONS:-16}
IN_FLIGHT=${IN_FLIGHT:-1024}
RSS_EVERY=${RSS_EVERY:-2}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=results/overload
BIN=$RELEASE_DIR

for tool in python3 taskset; do command -v "$tool" >/dev/null || die "$tool not found"; done
T0=$(date +%s)
git_state
build_release loadgen:loadgen mprpc-examples:echo-provider
scratch overload
rm -rf "$OUT"
mkdir -p "$OUT/raw"
uptime >"$OUT/uptime-before.txt"

# Starts a provider with concurrency_limiter=$1 on the server core; sets
# PORT and PROVIDER_PID.
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
    taskset -c "$SERVER_CPU" "$BIN/echo-provider" -i "$OUT/provider-$1.conf" --handler-sleep-us "$SLEEP_US" \
        >"$WORK/provider-$1.out" 2>&1 &
    PROVIDER_PID=$!
    PIDS+=("$PROVIDER_PID")
    wait_port "$PORT" 10 || { cat "$WORK/provider-$1.out" >&2; die "echo-provider ($1) did not start"; }
}

stop_provider() {
    kill "$PROVIDER_PID" 2>/dev/null || true
    wait "$PROVIDER_PID" 2>/dev/null || true
}

# Runs loadgen against PORT on the client core: label, rate (N or max),
# seconds, in-flight cap.
load() {
    local cmd=(taskset -c "$CLIENT_CPU" "$BIN/loadgen" --target mprpc --client raw --addr "127.0.0.1:$PORT"
        --service EchoService --method Echo --connections "$CONNECTIONS" --in-flight "$4"
        --qps "$2" --duration "${3}s" --warmup 2s --label "$1" --out-dir "$WORK/raw" --cpu-pid "$PROVIDER_PID")
    printf '%s\n' "${cmd[*]#"$BIN/"}" >>"$OUT/commands.txt"
    printf '%s %s\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/loadavg.txt"
    log "$1: loadgen --qps $2 for ${3}s"
    "${cmd[@]}" >"$OUT/raw/$1.txt" 2>&1 || { tail -20 "$OUT/raw/$1.txt" >&2; die "loadgen ($1) failed"; }
    cp "$WORK"/raw/*-"$1".json "$OUT/raw/$1.json"
    grep -E 'TARGET|target held' "$OUT/raw/$1.txt" | sed 's/^/    /' >&2 || true
}

json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# The provider's RSS every RSS_EVERY seconds, labelled $1 (mode-round)
# with the seconds since $2 (the run's start), until killed.
sample_rss() {
    while kill -0 "$PROVIDER_PID" 2>/dev/null; do
        printf '%s,%s,%s\n' "$1" "$(($(date +%s) - $2))" \
            "$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$PROVIDER_PID/status" 2>/dev/null || echo 0)"
        sleep "$RSS_EVERY"
    done >>"$OUT/rss.csv"
}

machine_json "$OUT/env.json" "pinning={\"server_cpu\": $SERVER_CPU, \"client_cpu\": $CLIENT_CPU}"
echo "run,t_s,rss_kib" >"$OUT/rss.csv"
: >"$OUT/commands.txt"
: >"$OUT/loadavg.txt"

# ------------------------------------------------------------- saturation
start_provider off
load saturation max "$SAT_DURATION" $((WORKERS * 4))
stop_provider
SAT=$(json_field "$OUT/raw/saturation.json" ok_qps)
HALF=$(python3 -c "print(round($SAT / 2))")
OVER=$(python3 -c "print(round($SAT * 2))")
log "saturation $SAT ok calls/s: half load $HALF/s, overload $OVER/s"
cat >"$OUT/params.json" <<EOF
{"rounds": $ROUNDS, "duration_s": $DURATION, "half_duration_s": $HALF_DURATION, "sat_duration_s": $SAT_DURATION,
 "workers": $WORKERS, "sleep_us": $SLEEP_US, "connections": $CONNECTIONS, "in_flight": $IN_FLIGHT,
 "rss_every_s": $RSS_EVERY, "half_qps": $HALF, "over_qps": $OVER}
EOF

# ------------------------------------------------------------- rounds
for round in $(seq 1 "$ROUNDS"); do
    for mode in auto off; do
        log "round $round of $ROUNDS, limiter $mode"
        start_provider "$mode"
        load "$mode-half-$round" "$HALF" "$HALF_DURATION" "$IN_FLIGHT"
        sample_rss "$mode-$round" "$(date +%s)" &
        SAMPLER=$!
        PIDS+=("$SAMPLER")
        load "$mode-over-$round" "$OVER" "$DURATION" "$IN_FLIGHT"
        kill "$SAMPLER" 2>/dev/null || true
        wait "$SAMPLER" 2>/dev/null || true
        kill -0 "$PROVIDER_PID" 2>/dev/null || die "the provider ($mode, round $round) died"
        cp "$WORK/provider-$mode.out" "$OUT/provider-$mode-$round.out"
        stop_provider
    done
done
uptime >"$OUT/uptime-after.txt"
echo "$(($(date +%s) - T0))" >"$OUT/total_seconds.txt"

python3 scripts/overload_report.py "$OUT" results/OVERLOAD.md
log "done: results/OVERLOAD.md"
