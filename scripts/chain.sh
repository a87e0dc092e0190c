#!/usr/bin/env bash
# A call chain under load (not CI): what does a middle tier cost, in CPU per
# page and in latency, and what do handlers that answer later buy over a
# blocking worker pool? (issues 11 and 23.)
#
#   scripts/chain.sh          build (release), run, write results/CHAIN.md
#
# Processes, all on this machine over 127.0.0.1, started once; the servers
# (ZooKeeper, the backend, both gateways) pinned to core SERVER_CPU (0), the
# client (loadgen) to core CLIENT_CPU (1):
#   provider  the backend: UserServiceRpc (Login, on its reactor) and
#             FriendServiceRpc (GetFriendsList, on its worker pool), as in
#             the examples; registered in ZooKeeper; stdout to /dev/null
#             (it prints each call, as the seed's callee does)
#   gateway   GatewayServiceRpc.GetUserPage, handler answering later: Login
#             and GetFriendsList at once on the provider (found in
#             ZooKeeper), answers merged
#   gateway --blocking   the same handler on GATEWAY_WORKERS (64) pool
#             threads, each blocked while its call waits for the backend: a
#             pool sized as a user would size it
# Three ways of doing the same page, each driven by loadgen's `Channel`
# client, CONNECTIONS connections, at most IN_FLIGHT calls outstanding:
#   async    GetUserPage through the gateway
#   pool     GetUserPage through the blocking gateway
#   direct   the client makes the gateway's two calls itself: Login to the
#            provider and, sent with it (`--also-call`), GetFriendsList; the
#            pair counts once, when both answered
# Steps: each variant closed loop for SAT_DURATION s (its saturation); then
# ROUNDS rounds, each running the three one after another (interleaved)
# open loop at RATE_PCT (50) % of the slowest one's saturation, WARMUP +
# DURATION s each. Every run records the CPU time of the backend, the
# gateway and loadgen over its window (`loadgen --cpu-pid`); the report
# gives the CPU µs the middle tier adds per page and the latency it adds
# (p50/p99, from runs that held their rate), per round, median (min–max).
#
# Knobs (environment): ROUNDS (3), DURATION (5), WARMUP (1), SAT_DURATION
# (3), RATE_PCT (50), CONNECTIONS (50), IN_FLIGHT (1000), GATEWAY_WORKERS
# (64), SERVER_CPU (0), CLIENT_CPU (1), SKIP_BUILD=1. About 1.5 minutes
# plus the build; everything started is stopped on exit. Raw data:
# results/chain/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
SAT_DURATION=${SAT_DURATION:-3}
RATE_PCT=${RATE_PCT:-50}
CONNECTIONS=${CONNECTIONS:-50}
IN_FLIGHT=${IN_FLIGHT:-1000}
GATEWAY_WORKERS=${GATEWAY_WORKERS:-64}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT=results/chain
BIN=$RELEASE_DIR

for tool in python3 taskset; do command -v "$tool" >/dev/null || die "$tool not found"; done
T0=$(date +%s)
git_state
build_release loadgen:loadgen mprpc-examples:provider mprpc-examples:gateway
scratch chain
rm -rf "$OUT"
mkdir -p "$OUT/raw"
uptime >"$OUT/uptime-before.txt"

log "ZooKeeper (core $SERVER_CPU)"
export MPRPC_ZK_STATE=$WORK/zk
zk=$(taskset -c "$SERVER_CPU" scripts/zk.sh start | tail -n 1)
ZK_PORT=${zk##*:}
stop_zk() { scripts/zk.sh stop >/dev/null 2>&1 || true; stop_scratch; }
trap stop_zk EXIT

# Every server's config (lib.sh's write_conf) also sets this session
# timeout.
SESSION=zk_session_timeout_ms=4000

# Starts BIN/PROGRAM -i $WORK/NAME.conf ARGS... on the server core, stdout to
# FILE, and waits for its port; sets STARTED_PID.
start_server() { # name port stdout program [args...]
    taskset -c "$SERVER_CPU" "$BIN/$4" -i "$WORK/$1.conf" "${@:5}" >"$3" 2>"$WORK/$1.err" &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    wait_port "$2" 20 || { cat "$WORK/$1.err" >&2; die "$1 did not start"; }
}

log "backend provider"
PROVIDER_PORT=$(write_conf provider "$SESSION")
start_server provider "$PROVIDER_PORT" /dev/null provider
PROVIDER_PID=$STARTED_PID
log "gateways (async, and --blocking on $GATEWAY_WORKERS worker threads)"
ASYNC_PORT=$(write_conf gateway-async "$SESSION")
start_server gateway-async "$ASYNC_PORT" "$OUT/gateway-async.out" gateway
ASYNC_PID=$STARTED_PID
POOL_PORT=$(write_conf gateway-pool "$SESSION" "worker_threads=$GATEWAY_WORKERS")
start_server gateway-pool "$POOL_PORT" "$OUT/gateway-pool.out" gateway --blocking
POOL_PID=$STARTED_PID

# The requests, encoded (prost's layout: field 1 name, 2 pwd, 3 userid).
hex() { python3 -c "import sys; print(eval(sys.argv[1]).hex())" "$1"; }
LOGIN_HEX=$(hex "b'\\x0a\\x09zhang san\\x12\\x06123456'")
FRIENDS_HEX=$(hex "b'\\x08\\xe8\\x07'")
PAGE_HEX=$(hex "b'\\x0a\\x09zhang san\\x12\\x06123456\\x18\\xe8\\x07'")

# variant -> loadgen's target arguments, and the processes whose CPU counts.
declare -A TARGET=(
    [async]="--addr 127.0.0.1:$ASYNC_PORT --service GatewayServiceRpc --method GetUserPage --request-hex $PAGE_HEX"
    [pool]="--addr 127.0.0.1:$POOL_PORT --service GatewayServiceRpc --method GetUserPage --request-hex $PAGE_HEX"
    [direct]="--addr 127.0.0.1:$PROVIDER_PORT --service UserServiceRpc --method Login --request-hex $LOGIN_HEX --also-call FriendServiceRpc/GetFriendsList=$FRIENDS_HEX"
)
declare -A CPU_PIDS=(
    [async]="--cpu-pid $PROVIDER_PID --cpu-pid $ASYNC_PID"
    [pool]="--cpu-pid $PROVIDER_PID --cpu-pid $POOL_PID"
    [direct]="--cpu-pid $PROVIDER_PID"
)
VARIANTS=(async pool direct)

# A run's progress line from its JSON report.
summary() {
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat, c = r["ok_latency_us"], r.get("cpu") or {}
held = "held" if r["target_held"] else f"NOT HELD ({'; '.join(r.get('not_held_because', []))})"
print(f"{r['ok_qps']:,.0f} pages/s, p50 {lat['p50']} µs, p99 {lat['p99']} µs, errors {r['errors']}, {held}, "
      f"servers {c.get('server_us_per_call') or 0:.1f} µs/page, client {c.get('client_us_per_call') or 0:.1f} µs/page")
PY
}

# One loadgen run on the client core: variant label rate seconds.
load() {
    local cmd
    # shellcheck disable=SC2206
    cmd=(taskset -c "$CLIENT_CPU" "$BIN/loadgen" --target mprpc --client channel --qps "$3"
        --connections "$CONNECTIONS" --in-flight "$IN_FLIGHT" --duration "${4}s" --warmup "${WARMUP}s"
        --label "$2" --out-dir "$WORK/raw" ${TARGET[$1]} ${CPU_PIDS[$1]})
    printf '%s\n' "${cmd[*]#"$BIN/"}" >>"$OUT/commands.txt"
    printf '%s %s\n' "$2" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/loadavg.txt"
    "${cmd[@]}" >"$OUT/raw/$2.txt" 2>&1 || { tail -20 "$OUT/raw/$2.txt" >&2; die "loadgen ($2) failed"; }
    cp "$WORK"/raw/*-"$2".json "$OUT/raw/$2.json"
    log "$2: $(summary "$OUT/raw/$2.json")"
}

machine_json "$OUT/env.json" "pinning={\"server_cpu\": $SERVER_CPU, \"client_cpu\": $CLIENT_CPU}"
: >"$OUT/commands.txt"
: >"$OUT/loadavg.txt"

log "saturation: each variant closed loop for ${SAT_DURATION}s"
for v in "${VARIANTS[@]}"; do
    load "$v" "sat-$v" max "$SAT_DURATION"
done
RATE=$(python3 - "$OUT/raw" "$RATE_PCT" "${VARIANTS[@]}" <<'PY'
import json, sys
raw, pct = sys.argv[1], float(sys.argv[2])
print(max(1, round(min(json.load(open(f"{raw}/sat-{v}.json"))["ok_qps"] for v in sys.argv[3:]) * pct / 100)))
PY
)
log "open loop at $RATE pages/s ($RATE_PCT% of the slowest variant's saturation)"
cat >"$OUT/params.json" <<EOF
{"rounds": $ROUNDS, "duration_s": $DURATION, "warmup_s": $WARMUP, "sat_duration_s": $SAT_DURATION,
 "rate_pct": $RATE_PCT, "rate": $RATE, "connections": $CONNECTIONS, "in_flight": $IN_FLIGHT,
 "gateway_workers": $GATEWAY_WORKERS}
EOF

for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    for v in "${VARIANTS[@]}"; do
        load "$v" "$v-$round" "$RATE" "$DURATION"
    done
done
for pid in "$ASYNC_PID" "$POOL_PID" "$PROVIDER_PID"; do
    kill -0 "$pid" 2>/dev/null || die "a server died during the run"
done
uptime >"$OUT/uptime-after.txt"
echo "$(($(date +%s) - T0))" >"$OUT/total_seconds.txt"

log "report"
python3 scripts/chain_report.py "$OUT" results/CHAIN.md
log "done: results/CHAIN.md"
