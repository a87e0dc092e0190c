#!/usr/bin/env bash
# Soak (not CI): a mixed load at PCT (70) % of its measured saturation for
# DURATION (30 minutes), with every server's RSS sampled every second and
# each stream's p99 every WINDOW (10) seconds, pinned as the comparison is
# (servers on core SERVER_CPU, the clients on core CLIENT_CPU).
#
#   scripts/soak.sh               30 minutes (plus about 10% for restarts)
#   scripts/soak.sh 2m            a short try-out (any loadgen-style time: 90s, 2m, 30m)
#   DURATION=2m scripts/soak.sh   the same
#
# Servers (on SERVER_CPU), all registered in one local ZooKeeper:
#   echo-provider  EchoService, `tls=optional` (plain and TLS clients share
#                  its port), one reactor
#   provider       the examples' backend (UserServiceRpc, FriendServiceRpc)
#   gateway        GatewayServiceRpc.GetUserPage, a handler that answers
#                  later (async): Login and GetFriendsList on the backend at
#                  once, answers merged
# The mix: three loadgen processes (on CLIENT_CPU) run side by side, each
# its own stream, each found through ZooKeeper (`--zk`), CONNS connections:
#   plain  EchoService.Echo, PAYLOAD bytes, plain TCP, no metadata
#   tls    EchoService.Echo over TLS (test CA from `loadgen certs`), every
#          call with two metadata entries (`--metadata`)
#   chain  GatewayServiceRpc.GetUserPage through the async gateway (one
#          client call, two backend calls), with metadata
# Saturation: the three closed loop at once (CONNS calls in flight each) for
# SAT_DURATION; each stream's soak rate is PCT % of the rate it reached in
# that mix, so the whole is PCT % of the mix's saturation.
#
# How the per-window p99 is measured: loadgen's per-second progress line
# shows percentiles of the whole run so far, which cannot be split into
# windows. So each stream is a chain of back-to-back loadgen runs, each
# `--warmup 1s --duration WINDOWs` open loop at its fixed rate: every
# window's p99 comes from its own coordinated-omission-corrected HDR
# histogram. Each run opens its own ZooKeeper session and connections (TLS
# handshakes included, in the warm-up); the short gap between runs is
# measured and reported. The servers' RSS is sampled every second; a
# window's row shows the last sample before its runs ended.
#
# Writes results/SOAK.md, results/soak/soak.svg and the raw data
# (windows.csv, rss.csv, the saturation runs' JSON, env.json, commands).
# Knobs (environment): DURATION (30m; or the first argument), CONNS (16 per
# stream), PAYLOAD (64), PCT (70), WINDOW (10 s), SAT_DURATION (10s),
# SERVER_CPU (0), CLIENT_CPU (1), SKIP_BUILD=1, NOTE (a sentence for the
# report: why this run's settings), SOAK_OUT (results/soak) and SOAK_MD
# (results/SOAK.md): where a try-out writes instead.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

DURATION=${1:-${DURATION:-30m}}
CONNS=${CONNS:-16}
PAYLOAD=${PAYLOAD:-64}
PCT=${PCT:-70}
WINDOW=${WINDOW:-10}
SAT_DURATION=${SAT_DURATION:-10s}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=${SOAK_OUT:-results/soak}
MD=${SOAK_MD:-results/SOAK.md}
BIN=$RELEASE_DIR
STREAMS=(plain tls chain)

seconds_of() {
    case $1 in
        *ms) die "duration too short: $1" ;;
        *s) echo "${1%s}" ;;
        *m) echo $((${1%m} * 60)) ;;
        *h) echo $((${1%h} * 3600)) ;;
        *[0-9]) echo "$1" ;;
        *) die "bad duration '$1' (use e.g. 90s, 2m, 30m)" ;;
    esac
}
TOTAL_S=$(seconds_of "$DURATION")
[[ $TOTAL_S =~ ^[0-9]+$ ]] && ((TOTAL_S >= WINDOW)) || die "duration $DURATION is shorter than one $WINDOW s window"
WINDOWS=$((TOTAL_S / WINDOW))

for tool in python3 java taskset; do command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs it)"; done

T0=$(date +%s)
git_state
build_release loadgen:loadgen mprpc-examples:echo-provider mprpc-examples:provider mprpc-examples:gateway

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mprpc-soak.XXXXXX")
SERVER_PIDS=()
SAMPLER_PID=
LOADGEN_PIDS=()
cleanup() {
    for pid in "${LOADGEN_PIDS[@]}" $SAMPLER_PID "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${LOADGEN_PIDS[@]}" $SAMPLER_PID "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    MPRPC_ZK_STATE=$WORK/zk scripts/zk.sh stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$OUT"
mkdir -p "$OUT"
: >"$OUT/commands.txt"
note_cmd() { printf '%s\n' "$*" | sed "s#$BIN/##g; s#$WORK/##g" >>"$OUT/commands.txt"; }

uptime >"$OUT/uptime-before.txt"
machine_json "$OUT/env.json"

# ------------------------------------------------------------ servers
log "ZooKeeper (core $SERVER_CPU)"
ZK=$(MPRPC_ZK_STATE=$WORK/zk taskset -c "$SERVER_CPU" scripts/zk.sh start | tail -n 1)
ZK_PORT=${ZK##*:}
"$BIN/loadgen" certs "$WORK/certs" >/dev/null

# Starts BIN/PROGRAM -i NAME.conf on the server core, waits for its port;
# sets STARTED_PID.
start_server() { # name port program [args...]
    note_cmd "taskset -c $SERVER_CPU $3 -i $1.conf ${*:4}"
    taskset -c "$SERVER_CPU" "$BIN/$3" -i "$WORK/$1.conf" "${@:4}" >/dev/null 2>"$WORK/$1.err" &
    STARTED_PID=$!
    SERVER_PIDS+=("$STARTED_PID")
    wait_port "$2" 20 || { cat "$WORK/$1.err" >&2; die "$1 did not start"; }
}
log "servers: echo-provider (plain and TLS), backend provider, async gateway"
ECHO_PORT=$(write_conf echo "tls=optional" "tls_cert=$WORK/certs/provider.crt" "tls_key=$WORK/certs/provider.key")
start_server echo "$ECHO_PORT" echo-provider
ECHO_PID=$STARTED_PID
BACKEND_PORT=$(write_conf backend)
start_server backend "$BACKEND_PORT" provider
BACKEND_PID=$STARTED_PID
GATEWAY_PORT=$(write_conf gateway)
start_server gateway "$GATEWAY_PORT" gateway
GATEWAY_PID=$STARTED_PID
sleep 1 # let the registrations land

# ------------------------------------------------------------ RSS sampler
# One line per server a second: epoch seconds, server, VmRSS KiB, open fds,
# threads, 1-min load.
(
    echo "epoch_s,server,rss_kib,fds,threads,loadavg1"
    while kill -0 "$ECHO_PID" 2>/dev/null; do
        now=$(date +%s.%N | cut -c1-14)
        load=$(cut -d' ' -f1 /proc/loadavg)
        for entry in "echo-provider:$ECHO_PID" "gateway:$GATEWAY_PID" "backend:$BACKEND_PID"; do
            pid=${entry##*:}
            printf '%s,%s,%s,%s,%s,%s\n' "$now" "${entry%%:*}" \
                "$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null)" \
                "$(find "/proc/$pid/fd" -mindepth 1 2>/dev/null | wc -l)" \
                "$(awk '$1 == "Threads:" { print $2 }' "/proc/$pid/status" 2>/dev/null)" "$load"
        done
        sleep 1
    done
) >"$OUT/rss.csv" &
SAMPLER_PID=$!

# ------------------------------------------------------------ the streams
# The requests, encoded (prost's layout: field 1 name, 2 pwd, 3 userid).
PAGE_HEX=$(python3 -c "print(b'\\x0a\\x09zhang san\\x12\\x06123456\\x18\\xe8\\x07'.hex())")
META=(--metadata tenant=soak --metadata request-origin=scripts/soak.sh)
declare -A TARGET=(
    [plain]="--service EchoService --method Echo --payload $PAYLOAD"
    [tls]="--service EchoService --method Echo --payload $PAYLOAD --tls-ca $WORK/certs/ca.crt ${META[*]}"
    [chain]="--service GatewayServiceRpc --method GetUserPage --request-hex $PAGE_HEX ${META[*]}"
)
# Starts every stream's loadgen with ARGS (+ per-stream label and out dir)
# on the client core, waits for all; dies if one failed.
run_streams() { # tag note(0/1) args...
    local tag=$1 note=$2 s pid failed=0
    shift 2
    LOADGEN_PIDS=()
    for s in "${STREAMS[@]}"; do
        # shellcheck disable=SC2206 # TARGET entries are word lists
        local cmd=("$BIN/loadgen" --zk "$ZK" ${TARGET[$s]} --connections "$CONNS" "$@"
            "${RATE_ARGS[@]/@RATE@/${RATE[$s]:-}}" --label "$s-$tag" --out-dir "$WORK/$tag")
        ((note)) && note_cmd "taskset -c $CLIENT_CPU ${cmd[*]}"
        taskset -c "$CLIENT_CPU" "${cmd[@]}" >"$WORK/$s-$tag.out" 2>&1 &
        LOADGEN_PIDS+=($!)
    done
    for pid in "${LOADGEN_PIDS[@]}"; do wait "$pid" || failed=1; done
    LOADGEN_PIDS=()
    if ((failed)); then
        for s in "${STREAMS[@]}"; do tail -n 5 "$WORK/$s-$tag.out" >&2; done
        die "a loadgen failed ($tag)"
    fi
}
json_of() { ls "$WORK/$2"/*-"$1-$2".json; }

# ------------------------------------------------------------ saturation
log "saturation: the three streams closed loop at once, $CONNS calls in flight each, $SAT_DURATION"
declare -A RATE=()
RATE_ARGS=(--qps max --in-flight "$CONNS")
run_streams sat 1 --duration "$SAT_DURATION" --warmup 2s
SAT_TOTAL=0
for s in "${STREAMS[@]}"; do
    cp "$(json_of "$s" sat)" "$OUT/saturation-$s.json"
    sat=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["achieved_qps"])' "$OUT/saturation-$s.json")
    RATE[$s]=$(python3 -c "print(max(1, round($sat * $PCT / 100)))")
    SAT_TOTAL=$(python3 -c "print(round($SAT_TOTAL + $sat))")
    log "  $s: $sat calls/s in the mix; soak at ${RATE[$s]} calls/s"
done
cat >"$OUT/params.json" <<EOF
{"duration": "$DURATION", "windows": $WINDOWS, "window_s": $WINDOW, "connections": $CONNS, "payload": $PAYLOAD,
 "pct": $PCT, "saturation_qps": $SAT_TOTAL, "rates": {"plain": ${RATE[plain]}, "tls": ${RATE[tls]}, "chain": ${RATE[chain]}},
 "server_cpu": $SERVER_CPU, "client_cpu": $CLIENT_CPU, "zk": "$ZK", "note": "${NOTE:-}"}
EOF

# ------------------------------------------------------------ the soak
log "soak: $WINDOWS windows of $WINDOW s"
echo "window,stream,start_epoch_s,end_epoch_s,target_qps,achieved_qps,ok_qps,completed,errors,delayed,unsent,unanswered,p50_us,p90_us,p99_us,p999_us,max_us" >"$OUT/windows.csv"
RATE_ARGS=(--qps @RATE@ --in-flight 100000)
for w in $(seq 1 "$WINDOWS"); do
    start=$(date +%s.%N)
    run_streams "w$w" $((w == 1)) --warmup 1s --duration "${WINDOW}s"
    end=$(date +%s.%N)
    for s in "${STREAMS[@]}"; do
        ((w == 1)) && cp "$WORK/$s-w$w.out" "$OUT/window-1-$s-loadgen-output.txt"
        python3 - "$(json_of "$s" "w$w")" "$w" "$s" "$start" "$end" "${RATE[$s]}" >>"$OUT/windows.csv" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
l = r["latency_us"]
print(",".join(str(x) for x in [sys.argv[2], sys.argv[3], sys.argv[4][:14], sys.argv[5][:14], sys.argv[6],
      r["achieved_qps"], r["ok_qps"], r["completed"], r["errors"], r["delayed"], r["unsent"], r["unanswered"],
      l["p50"], l["p90"], l["p99"], l["p999"], l["max"]]))
PY
    done
    tail -n 3 "$OUT/windows.csv" | cut -d, -f1,2,6,9,15 | tr '\n' ' ' >&2
    echo >&2
    rm -rf "$WORK/w$w"
done
sleep 2 # one more RSS sample after the load stopped
for pid in "$ECHO_PID" "$BACKEND_PID" "$GATEWAY_PID"; do
    kill -0 "$pid" 2>/dev/null || die "a server (pid $pid) died during the soak"
done
uptime >"$OUT/uptime-after.txt"
cat "$WORK"/logs-*/* 2>/dev/null | head -200 >"$OUT/server-log-head.txt" || true
echo "$(($(date +%s) - T0))" >"$OUT/total_seconds.txt"

log "report"
python3 scripts/soak_report.py "$OUT" "$MD"
