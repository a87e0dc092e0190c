#!/usr/bin/env bash
# Soak (not CI): our echo provider, found through ZooKeeper, driven by
# loadgen at 70% of its measured saturation for DURATION, with the
# provider's RSS and the p99 latency sampled every 10 seconds.
#
#   scripts/soak.sh               10 minutes (plus about 10% for restarts)
#   scripts/soak.sh 1m            a short try-out (any loadgen-style time: 90s, 1m, 10m)
#
# How the per-window p99 is measured: loadgen's per-second progress line
# shows percentiles of the whole run so far, which cannot be split into
# windows. So the soak is a chain of back-to-back loadgen runs, each
# `--warmup 1s --duration 10s` open loop at the fixed rate: every window's
# p99 comes from its own coordinated-omission-corrected HDR histogram. Each
# run opens its own ZooKeeper session and 50 connections; the short gap
# between runs (start-up and discovery) is measured and reported. The
# provider's RSS is sampled every second by a background sampler; a window's
# row shows the last sample before its run ended and the largest in it.
#
# Writes results/SOAK.md, results/soak/soak.svg and the raw data
# (windows.csv, rss.csv, the saturation run's JSON, env.json, commands).
# Knobs (environment): CONNS (50), PAYLOAD (64), PCT (70), WINDOW (10 s),
# SAT_DURATION (10s), SKIP_BUILD=1, NOTE (a sentence for the report: why
# this run's settings, e.g. a lower PCT on a shared machine).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

DURATION=${1:-${DURATION:-10m}}
CONNS=${CONNS:-50}
PAYLOAD=${PAYLOAD:-64}
PCT=${PCT:-70}
WINDOW=${WINDOW:-10}
SAT_DURATION=${SAT_DURATION:-10s}
OUT=results/soak
BIN=$RELEASE_DIR


seconds_of() {
    case $1 in
        *ms) die "duration too short: $1" ;;
        *s) echo "${1%s}" ;;
        *m) echo $((${1%m} * 60)) ;;
        *h) echo $((${1%h} * 3600)) ;;
        *[0-9]) echo "$1" ;;
        *) die "bad duration '$1' (use e.g. 90s, 1m, 10m)" ;;
    esac
}
TOTAL_S=$(seconds_of "$DURATION")
[[ $TOTAL_S =~ ^[0-9]+$ ]] && ((TOTAL_S >= WINDOW)) || die "duration $DURATION is shorter than one $WINDOW s window"
WINDOWS=$((TOTAL_S / WINDOW))

for tool in python3 java; do command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs it)"; done

T0=$(date +%s)
git_state
build_release loadgen:loadgen mprpc-examples:echo-provider

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mprpc-soak.XXXXXX")
PROVIDER_PID=
SAMPLER_PID=
LOADGEN_PID=
cleanup() {
    for pid in $LOADGEN_PID $SAMPLER_PID $PROVIDER_PID; do kill "$pid" 2>/dev/null || true; done
    for pid in $LOADGEN_PID $SAMPLER_PID $PROVIDER_PID; do wait "$pid" 2>/dev/null || true; done
    MPRPC_ZK_STATE=$WORK/zk scripts/zk.sh stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$OUT"
mkdir -p "$OUT"
: >"$OUT/commands.txt"
run() { printf '%s\n' "$*" | sed "s#$BIN/##; s#$WORK/##g" >>"$OUT/commands.txt"; "$@"; }


uptime >"$OUT/uptime-before.txt"
machine_json "$OUT/env.json"

# ------------------------------------------------------------ ZooKeeper + provider
log "ZooKeeper"
ZK=$(MPRPC_ZK_STATE=$WORK/zk scripts/zk.sh start)
ZK_PORT=${ZK##*:}
RPC_PORT=$(free_port)
cat >"$WORK/echo.conf" <<EOF
rpcserverip=127.0.0.1
rpcserverport=$RPC_PORT
zookeeperip=127.0.0.1
zookeeperport=$ZK_PORT
log_dir=$WORK/logs
log_level=warn
EOF
cp "$WORK/echo.conf" "$OUT/echo-provider.conf"
log "echo-provider (registers in ZooKeeper $ZK)"
printf '%s\n' "echo-provider -i echo-provider.conf" >>"$OUT/commands.txt"
"$BIN/echo-provider" -i "$WORK/echo.conf" >"$WORK/provider.out" 2>&1 &
PROVIDER_PID=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$RPC_PORT") 2>/dev/null && break
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$RPC_PORT") 2>/dev/null || { cat "$WORK/provider.out"; die "echo-provider did not start"; }
sleep 1 # let the registration land

# ------------------------------------------------------------ RSS sampler
# One line a second: epoch seconds, VmRSS KiB, open fds, threads, 1-min load.
(
    echo "epoch_s,rss_kib,fds,threads,loadavg1"
    while kill -0 "$PROVIDER_PID" 2>/dev/null; do
        printf '%s,%s,%s,%s,%s\n' "$(date +%s.%N | cut -c1-14)" \
            "$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$PROVIDER_PID/status" 2>/dev/null)" \
            "$(find "/proc/$PROVIDER_PID/fd" -mindepth 1 2>/dev/null | wc -l)" \
            "$(awk '$1 == "Threads:" { print $2 }' "/proc/$PROVIDER_PID/status" 2>/dev/null)" \
            "$(cut -d' ' -f1 /proc/loadavg)"
        sleep 1
    done
) >"$OUT/rss.csv" &
SAMPLER_PID=$!

LG=("$BIN/loadgen" --zk "$ZK" --service EchoService --method Echo --connections "$CONNS" --payload "$PAYLOAD")

# ------------------------------------------------------------ saturation
log "saturation: closed loop, $CONNS connections, 1 call in flight each, $SAT_DURATION"
run "${LG[@]}" --qps max --in-flight "$CONNS" --duration "$SAT_DURATION" --warmup 2s \
    --label soak-saturation --out-dir "$WORK/sat" >"$WORK/sat.out"
tail -n 25 "$WORK/sat.out"
SAT_JSON=$(ls "$WORK"/sat/*-soak-saturation.json)
cp "$SAT_JSON" "$OUT/saturation.json"
SAT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["achieved_qps"])' "$SAT_JSON")
RATE=$(python3 -c "print(max(1, round($SAT * $PCT / 100)))")
log "saturation $SAT calls/s; soak at $RATE calls/s ($PCT%) for $WINDOWS windows of $WINDOW s"
cat >"$OUT/params.json" <<EOF
{"duration": "$DURATION", "windows": $WINDOWS, "window_s": $WINDOW, "connections": $CONNS, "payload": $PAYLOAD,
 "pct": $PCT, "saturation_qps": $SAT, "rate": $RATE, "zk": "$ZK", "note": "${NOTE:-}"}
EOF

# ------------------------------------------------------------ the soak
echo "window,start_epoch_s,end_epoch_s,achieved_qps,ok_qps,completed,errors,delayed,unsent,unanswered,p50_us,p90_us,p99_us,p999_us,max_us" >"$OUT/windows.csv"
SOAK_T0=$(date +%s.%N)
for w in $(seq 1 "$WINDOWS"); do
    start=$(date +%s.%N)
    args=(--qps "$RATE" --in-flight 100000 --warmup 1s --duration "${WINDOW}s" --label "w$w" --out-dir "$WORK/w")
    ((w == 1)) && printf '%s  (the same for every window, --label wN)\n' "$(echo "${LG[*]} ${args[*]}" | sed "s#$BIN/##; s#$WORK/##g")" >>"$OUT/commands.txt"
    "${LG[@]}" "${args[@]}" >"$WORK/w.out" 2>&1 &
    LOADGEN_PID=$!
    wait "$LOADGEN_PID" || { cat "$WORK/w.out" >&2; LOADGEN_PID=; die "loadgen failed in window $w"; }
    LOADGEN_PID=
    end=$(date +%s.%N)
    ((w == 1)) && cp "$WORK/w.out" "$OUT/window-1-loadgen-output.txt"
    json=$(ls "$WORK"/w/*-"w$w".json)
    python3 - "$json" "$w" "$start" "$end" >>"$OUT/windows.csv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_us"]
print(",".join(str(x) for x in [sys.argv[2], sys.argv[3][:14], sys.argv[4][:14], r["achieved_qps"], r["ok_qps"],
      r["completed"], r["errors"], r["delayed"], r["unsent"], r["unanswered"],
      l["p50"], l["p90"], l["p99"], l["p999"], l["max"]]))
PY
    tail -n 1 "$OUT/windows.csv" >&2
    rm -f "$WORK"/w/*
done
SOAK_S=$(python3 -c "import time; print(round(time.time() - $SOAK_T0))")
sleep 2 # one more RSS sample after the load stopped
kill -0 "$PROVIDER_PID" 2>/dev/null || die "the provider died during the soak"
uptime >"$OUT/uptime-after.txt"
cat "$WORK"/logs/* 2>/dev/null | head -200 >"$OUT/provider-log-head.txt" || true
echo "$SOAK_S" >"$OUT/soak_seconds.txt"
echo "$(($(date +%s) - T0))" >"$OUT/total_seconds.txt"

log "report"
python3 scripts/soak_report.py "$OUT" results/SOAK.md
