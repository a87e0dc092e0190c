#!/usr/bin/env bash
# Side-by-side loopback comparison: our echo provider (found through
# ZooKeeper), a tonic (gRPC) echo server and redis-server answering PING,
# each driven with the same load shapes, on this machine, in one run.
#
#   scripts/compare.sh            build (release), run everything, write the report
#
# Writes results/COMPARISON.md, results/comparison/*.svg and the raw data
# (loadgen JSON/.hgrm/.md, redis-benchmark CSV, the exact commands, machine
# facts) into results/comparison/raw/. Every figure in the report is read
# from those files; nothing is typed in by hand.
#
# Knobs (environment): DURATION (s per measured run, 10), WARMUP (s, 2),
# CONNS (connections, 50), DEPTH (pipelining depth, 16), PAYLOAD (bytes, 64),
# REACTORS (our provider's reactor threads, 1),
# SKIP_BUILD=1 (use the binaries already in target/release), OURS_DIRECT=1
# (call our provider at its address instead of discovering it: debugging only),
# SEED_CONSUMER (path of the seed's C++ bench client, if built: run it too).
# With the defaults the runs take about 4-5 minutes, plus the release build
# (about 3 minutes from clean on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-50}
DEPTH=${DEPTH:-16}
PAYLOAD=${PAYLOAD:-64}
# Our provider's event loops. The load generator runs on the same 2 cores:
# one reactor leaves the other core to the client (as single-threaded redis
# does); measured here, 1 beat 2 in every shape (fewer context switches).
REACTORS=${REACTORS:-1}
OUT=results/comparison
RAW=$OUT/raw
BIN=target/release

# Runs a command and records it verbatim in the report's command list.
run() { printf '%s\n' "$*" >>"$RAW/commands.txt"; "$@"; }
loadavg() { printf '%s %s\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/loadavg.txt"; }


wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mprpc-compare.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    MPRPC_ZK_STATE=$WORK/zk scripts/zk.sh stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in python3 java redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs it)"
done

T0=$(date +%s)
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "release build"
    cargo build --release -p loadgen --features tonic
    cargo build --release -p mprpc-examples --bin echo-provider
fi
for b in loadgen tonic-echo-server echo-provider; do
    [[ -x $BIN/$b ]] || die "$BIN/$b missing"
done
T_BUILD=$(($(date +%s) - T0))

rm -rf "$RAW"
mkdir -p "$RAW"
: >"$RAW/commands.txt"

# Machine and versions, for the report.
python3 - "$RAW/env.json" "$T_BUILD" <<'PY'
import json, os, platform, re, subprocess, sys, time
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception as e:
        return f"unknown ({e})"
model = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        model = line.split(":", 1)[1].strip(); break
lock = open("Cargo.lock").read()
def locked(name):
    m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(name), lock)
    return m.group(1) if m else "unknown"
json.dump({
    "date_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    "nproc": os.cpu_count(),
    "cpu_model": model,
    "kernel": platform.release(),
    "rustc": out("rustc", "-V"),
    "tonic": locked("tonic"),
    "redis_server": out("redis-server", "--version"),
    "redis_benchmark": out("redis-benchmark", "--version"),
    "zookeeper_jar": os.path.realpath("/usr/share/java/zookeeper.jar"),
    "git_commit": out("git", "rev-parse", "--short", "HEAD"),
    "build_seconds": int(sys.argv[2]),
    "mem_total": next((l.split(":")[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?"),
}, open(sys.argv[1], "w"), indent=2)
PY
cat >"$RAW/params.json" <<EOF
{"duration_s": $DURATION, "warmup_s": $WARMUP, "connections": $CONNS, "depth": $DEPTH, "payload": $PAYLOAD, "reactors": $REACTORS}
EOF

COMMON=(--duration "${DURATION}s" --warmup "${WARMUP}s" --payload "$PAYLOAD" --out-dir "$RAW")

# ---------------------------------------------------------------- ours
log "ZooKeeper"
ZK=$(MPRPC_ZK_STATE=$WORK/zk scripts/zk.sh start)
echo "ZooKeeper at $ZK"
ZK_PORT=${ZK##*:}

log "echo-provider (registers in ZooKeeper)"
RPC_PORT=$(free_port)
cat >"$WORK/echo.conf" <<EOF
rpcserverip=127.0.0.1
rpcserverport=$RPC_PORT
zookeeperip=127.0.0.1
zookeeperport=$ZK_PORT
log_dir=$WORK/logs
reactor_threads=$REACTORS
EOF
cp "$WORK/echo.conf" "$RAW/echo-provider.conf"
printf '%s\n' "$BIN/echo-provider -i echo-provider.conf" >>"$RAW/commands.txt"
"$BIN/echo-provider" -i "$WORK/echo.conf" >"$WORK/echo.log" 2>&1 &
PIDS+=($!)
wait_port "$RPC_PORT" || { cat "$WORK/echo.log"; die "echo-provider did not start"; }
sleep 1 # let the registration land

if [[ ${OURS_DIRECT:-0} == 1 ]]; then
    # Debugging aid only: skips discovery (the report shows the endpoint used).
    OURS=(--addr "127.0.0.1:$RPC_PORT" --service EchoService --method Echo)
else
    OURS=(--zk "$ZK" --service EchoService --method Echo)
fi
loadavg before-ours
log "ours: saturation, $CONNS connections, 1 call each"
run "$BIN/loadgen" "${OURS[@]}" --qps max --connections "$CONNS" --in-flight "$CONNS" "${COMMON[@]}" --label ours-sat
log "ours: saturation, $CONNS connections, pipelined $DEPTH deep"
run "$BIN/loadgen" "${OURS[@]}" --qps max --connections "$CONNS" --in-flight $((CONNS * DEPTH)) "${COMMON[@]}" --label ours-sat-pipelined
# The same two shapes with loadgen's minimal pipelining client, which
# loads our server the way redis-benchmark loads redis (server vs server).
log "ours, raw client: saturation, $CONNS connections, 1 call each"
run "$BIN/loadgen" "${OURS[@]}" --client raw --qps max --connections "$CONNS" --in-flight "$CONNS" "${COMMON[@]}" --label ours-raw-sat
log "ours, raw client: saturation, $CONNS connections, pipelined $DEPTH deep"
run "$BIN/loadgen" "${OURS[@]}" --client raw --qps max --connections "$CONNS" --in-flight $((CONNS * DEPTH)) "${COMMON[@]}" --label ours-raw-sat-pipelined
SAT=$(json_field "$(ls "$RAW"/*-ours-sat.json)" achieved_qps)
echo "our saturation (the base of the fixed rates): $SAT calls/s"
RATES=()
for pct in 25 50 75; do
    RATES+=("$(python3 -c "print(max(1, round($SAT * $pct / 100)))")")
done
for i in 0 1 2; do
    pct=$((25 * (i + 1)))
    log "ours: open loop at ${RATES[$i]}/s ($pct% of our saturation)"
    run "$BIN/loadgen" "${OURS[@]}" --qps "${RATES[$i]}" --connections "$CONNS" --in-flight 100000 "${COMMON[@]}" --label "ours-open-$pct"
done
loadavg after-ours

# --------------------------------------------------------------- tonic
log "tonic-echo-server"
"$BIN/tonic-echo-server" --addr 127.0.0.1:0 >"$WORK/tonic.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q '^listening on' "$WORK/tonic.log" && break; sleep 0.1; done
TONIC=$(sed -n 's/^listening on //p' "$WORK/tonic.log")
[[ -n $TONIC ]] || { cat "$WORK/tonic.log"; die "tonic-echo-server did not start"; }
printf '%s\n' "$BIN/tonic-echo-server --addr 127.0.0.1:0" >>"$RAW/commands.txt"
TON=(--target tonic --addr "$TONIC")
loadavg before-tonic
log "tonic: saturation, $CONNS connections, 1 call each"
run "$BIN/loadgen" "${TON[@]}" --qps max --connections "$CONNS" --in-flight "$CONNS" "${COMMON[@]}" --label tonic-sat
log "tonic: saturation, $CONNS connections, 1 call each, 2 client runtime threads"
run "$BIN/loadgen" "${TON[@]}" --qps max --connections "$CONNS" --in-flight "$CONNS" --threads 2 "${COMMON[@]}" --label tonic-sat-2threads
log "tonic: saturation, $CONNS connections, $DEPTH streams each"
run "$BIN/loadgen" "${TON[@]}" --qps max --connections "$CONNS" --in-flight $((CONNS * DEPTH)) "${COMMON[@]}" --label tonic-sat-pipelined
for i in 0 1 2; do
    pct=$((25 * (i + 1)))
    log "tonic: open loop at ${RATES[$i]}/s ($pct% of OUR saturation)"
    run "$BIN/loadgen" "${TON[@]}" --qps "${RATES[$i]}" --connections "$CONNS" --in-flight 100000 "${COMMON[@]}" --label "tonic-open-$pct"
done
# The same at 25/50/75% of TONIC's saturation, for both: latency curves of
# two systems that are both below capacity.
TSAT=$(json_field "$(ls "$RAW"/*-tonic-sat.json)" achieved_qps)
echo "tonic saturation: $TSAT calls/s"
for pct in 25 50 75; do
    r=$(python3 -c "print(max(1, round($TSAT * $pct / 100)))")
    log "tonic: open loop at $r/s ($pct% of tonic's saturation)"
    run "$BIN/loadgen" "${TON[@]}" --qps "$r" --connections "$CONNS" --in-flight 100000 "${COMMON[@]}" --label "tonic-open-t$pct"
    log "ours: open loop at $r/s ($pct% of tonic's saturation)"
    run "$BIN/loadgen" "${OURS[@]}" --qps "$r" --connections "$CONNS" --in-flight 100000 "${COMMON[@]}" --label "ours-open-t$pct"
done
loadavg after-tonic

# --------------------------------------------------------------- redis
log "redis-server"
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize no --logfile "$WORK/redis.log" &
PIDS+=($!)
printf '%s\n' "redis-server --port PORT --bind 127.0.0.1 --save '' --appendonly no --daemonize no" >>"$RAW/commands.txt"
for _ in $(seq 1 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
loadavg before-redis
# About DURATION seconds per test at the rates this machine gives.
N1=$((120000 * DURATION))
N16=$((1500000 * DURATION))
log "redis-benchmark PING, $CONNS connections"
run redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CONNS" -n "$N1" -t ping --csv | tee "$RAW/redis-c$CONNS.csv"
log "redis-benchmark PING, $CONNS connections, pipelined $DEPTH"
run redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CONNS" -n "$N16" -P "$DEPTH" -t ping --csv | tee "$RAW/redis-c$CONNS-P$DEPTH.csv"
loadavg after-redis

# ---------------------------------------------------------------- seed
if [[ -n ${SEED_CONSUMER:-} && -x ${SEED_CONSUMER:-} ]]; then
    log "seed C++ client: $SEED_CONSUMER"
    run "$SEED_CONSUMER" >"$RAW/seed.txt" 2>&1 || true
else
    echo "The seed's C++ implementation is not built on this machine: skipped." >"$RAW/seed.txt"
fi

T_TOTAL=$(($(date +%s) - T0))
python3 - "$RAW/env.json" "$T_TOTAL" <<'PY'
import json, sys
env = json.load(open(sys.argv[1])); env["total_seconds"] = int(sys.argv[2])
json.dump(env, open(sys.argv[1], "w"), indent=2)
PY

log "report"
python3 scripts/compare_report.py "$OUT" results/COMPARISON.md
echo "done in ${T_TOTAL}s: results/COMPARISON.md"
