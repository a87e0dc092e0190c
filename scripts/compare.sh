#!/usr/bin/env bash
# Side-by-side loopback comparison of our echo provider with Volo (Thrift),
# tonic (gRPC), redis-server (PING) and the seed's wire format, every server
# loaded by the same client: loadgen's engine (the same connections, the
# same window per connection, the same latency stamps). Our framework's own
# `Channel` client is measured too; redis-benchmark and h2load (an
# independent HTTP/2 client, for tonic) as cross-checks.
#
# Pinned cores, the same for every system: every server under test runs on
# core SERVER_CPU (0), every client (loadgen, redis-benchmark, h2load,
# sockperf's client) on CLIENT_CPU (1). Every loadgen run records the CPU
# time (utime + stime from /proc) of the server and of itself over the
# measured window: the report leads with server CPU µs per call. Server
# syscalls per call (perf's raw_syscalls tracepoint, counting only) on
# short extra runs at 50 × 1 and 50 × 16; the loopback floor (sockperf TCP
# ping-pong, sleeping and busy-polling); Volo at its users' shape (800
# connections × 1) and its non-default multiplexed server pipelined.
# The cost of TLS: a second echo-provider with tls=required and a second
# tonic-echo-server with --tls-cert (a certificate `loadgen certs` makes).
# Client I/O threads (full runs only): our `Channel` with io_threads = 2
# beside 1, and a third provider with 2 reactors.
#
#   scripts/compare.sh            full run: results/COMPARISON.md, results/comparison/,
#                                 docs/benchmarks.md's benchmark block and
#                                 README.md's headline (each report states how
#                                 long it took)
#   QUICK=1 scripts/compare.sh    one round of the headline rows, 1 s each
#                                 (< 2 min after the build), under a trial
#                                 directory; never touches results/
#   ONLY=client scripts/compare.sh
#                                 the client's goals only (issue 24): the engine,
#                                 the `Channel` and the `Channel` with 2 I/O
#                                 threads against our provider (pinned on its own
#                                 core), at CONNS × 1 and CONNS × DEPTH, ROUNDS
#                                 rounds interleaved (3 by default, a few minutes
#                                 in all), with client and server CPU per call;
#                                 writes results/CLIENT.md (a trial directory's
#                                 COMPARISON.md when shortened or TRIAL_DIR given)
#   TRIAL_DIR=/tmp/cmp ...        writes everything under /tmp/cmp (copies of
#                                 README.md and docs/benchmarks.md included). Any run that is not the
#                                 full one (QUICK, or fewer ROUNDS/SECS) writes
#                                 to a fresh trial directory unless TRIAL_DIR is
#                                 given, so a smoke test never replaces results/.
#
# Every configuration runs ROUNDS times, interleaved across systems (ours,
# Volo, tonic, redis, seed, ours, ...). Closed loop first (saturation, with 1
# call per connection and pipelined DEPTH deep); then open loop at 25/50/75%
# of each system's own saturation (does it hold its target?), and all RPC
# systems at one common rate: 50% of the slowest one's saturation.
#
# The report (scripts/compare_report.py, plots by scripts/svgplot.py) is
# computed from the raw data in <out>/comparison/raw/ (loadgen JSON/.hgrm,
# redis-benchmark CSV, h2load and sockperf output, perf counts, commands,
# machine facts, load averages). Nothing is typed in by hand.
#
# Knobs (environment): QUICK (0), ROUNDS (3), SECS (measured seconds per
# run, 3), WARMUP (s, 0.5), CONNS (50), WIDE_CONNS (800: Volo's shape),
# DEPTH (pipelining depth, 16), PAYLOAD (64), REACTORS (our reactors = tonic
# and Volo worker threads, 1), SERVER_CPU (0), CLIENT_CPU (1), SYSCALL_SECS
# (2), SKIP_BUILD=1, TRIAL_DIR (see above); binaries come from
# $CARGO_TARGET_DIR (or target).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

QUICK=${QUICK:-0}
ONLY=${ONLY:-all}
[[ $ONLY == all || $ONLY == client ]] || die "ONLY must be 'client' (or unset)"
FULL_ROUNDS=3 FULL_SECS=3 FULL_WARMUP=0.5
if [[ $QUICK == 1 ]]; then
    ROUNDS=${ROUNDS:-1} SECS=${SECS:-1} WARMUP=${WARMUP:-0.3} SYSCALL_SECS=${SYSCALL_SECS:-1}
fi
ROUNDS=${ROUNDS:-$FULL_ROUNDS}
SECS=${SECS:-$FULL_SECS}
WARMUP=${WARMUP:-$FULL_WARMUP}
SYSCALL_SECS=${SYSCALL_SECS:-2}
CONNS=${CONNS:-50}
WIDE_CONNS=${WIDE_CONNS:-800}
DEPTH=${DEPTH:-16}
PAYLOAD=${PAYLOAD:-64}
# One server thread each: the load generator has the other core.
REACTORS=${REACTORS:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
# The client I/O threads block's provider has this many reactors.
REACTORS_IO=2
# FULL: the whole comparison at full length (writes results/COMPARISON.md);
# TO_RESULTS: full length, whatever the scope (ONLY=client writes results/CLIENT.md).
FULL=0 TO_RESULTS=0
if [[ $QUICK != 1 ]] && ((ROUNDS >= FULL_ROUNDS)) &&
    python3 -c "import sys; sys.exit(not ($SECS >= $FULL_SECS and $WARMUP >= $FULL_WARMUP))"; then
    TO_RESULTS=1
    [[ $ONLY == all ]] && FULL=1
fi
if [[ -z ${TRIAL_DIR:-} && $TO_RESULTS != 1 ]]; then
    TRIAL_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mprpc-compare-trial.XXXXXX")
    log "not the full run: writing under $TRIAL_DIR (results/ untouched)"
fi
if [[ -n ${TRIAL_DIR:-} ]]; then
    mkdir -p "$TRIAL_DIR"
    cp README.md "$TRIAL_DIR/README.md"
    cp docs/benchmarks.md "$TRIAL_DIR/benchmarks.md"
    OUT=$TRIAL_DIR/comparison REPORT=$TRIAL_DIR/COMPARISON.md
    BENCHMARKS=$TRIAL_DIR/benchmarks.md README=$TRIAL_DIR/README.md
elif [[ $ONLY == client ]]; then
    # The client's own report; the comparison, docs and README stay as they are.
    OUT=results/client REPORT=results/CLIENT.md BENCHMARKS=/dev/null README=/dev/null
else
    OUT=results/comparison REPORT=results/COMPARISON.md BENCHMARKS=docs/benchmarks.md README=README.md
fi
RAW=$OUT/raw
BIN=${CARGO_TARGET_DIR:-target}/release
T0=$(date +%s)

scratch compare

TOOLS=(python3 redis-server redis-benchmark taskset perf h2load sockperf ss)
if [[ $ONLY == client ]]; then TOOLS=(python3 taskset); fi
for tool in "${TOOLS[@]}"; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs it)"
done

# What the binaries are built from, before this script writes anything.
git_state
BINARIES=(loadgen tonic-echo-server volo-echo-server echo-provider)
if [[ $ONLY == client ]]; then BINARIES=(loadgen echo-provider); fi
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "release build (loadgen with the tonic and volo servers, echo-provider)"
    if [[ $ONLY == client ]]; then
        cargo build --release -p loadgen --bin loadgen
    else
        cargo build --release -p loadgen --features tonic,volo
    fi
    cargo build --release -p mprpc-examples --bin echo-provider
fi
for b in "${BINARIES[@]}"; do
    [[ -x $BIN/$b ]] || die "$BIN/$b missing"
done
T_BUILD=$(($(date +%s) - T0))

rm -rf "$RAW"
mkdir -p "$RAW"
rm -f "$OUT"/*.svg "$OUT"/*.png
: >"$RAW/commands.txt"
: >"$RAW/loadavg.txt"

# Runs a command and records it verbatim.
run() { printf '%s\n' "$*" >>"$RAW/commands.txt"; "$@"; }
on_client_core() { run taskset -c "$CLIENT_CPU" "$@"; }
# Starts a server pinned to the server core in the background (its pid in
# PIDS, so the scratch cleanup stops it; taskset execs the server, so the pid
# is the server's), records the command and sets STARTED_PID.
start_server() {
    printf '%s\n' "taskset -c $SERVER_CPU $*" >>"$RAW/commands.txt"
    taskset -c "$SERVER_CPU" "$@" &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
}
loadavg() { printf '%s %s\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/loadavg.txt"; }
median_qps() { # config system -> median achieved_qps of the matching runs
    python3 - "$RAW" "$1" "$2" <<'PY'
import glob, json, statistics, sys
runs = [json.load(open(p)) for p in glob.glob(f"{sys.argv[1]}/*-{sys.argv[2]}-{sys.argv[3]}-r*.json")]
print(statistics.median(r["achieved_qps"] for r in runs) if runs else 0)
PY
}
pct_of() { python3 -c "print(max(1, round($1 * $2 / 100)))"; }
millis() { python3 -c "print(round($1 * 1000))"; }
per_secs() { python3 -c "print(max(1, round($1 * $SECS)))"; } # N per second of a run -> N over SECS
# CPU time (utime + stime, clock ticks) a process has used so far.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# ------------------------------------------------------------- servers
log "servers on core $SERVER_CPU, clients on core $CLIENT_CPU: echo-provider ($REACTORS reactor(s)), tonic and Volo ($REACTORS worker(s)), redis"
declare -A SERVER_PID
# An echo-provider config: name port reactors [extra key=value lines].
provider_conf() {
    {
        echo "rpcserverip=127.0.0.1"
        echo "rpcserverport=$2"
        echo "registry=none"
        echo "log_dir=$WORK/logs-$1"
        echo "reactor_threads=$3"
        printf '%s\n' "${@:4}"
    } >"$WORK/$1.conf"
    cp "$WORK/$1.conf" "$RAW/$1.conf"
}
# Starts a server and waits for its port: key port command...
serve() {
    start_server "${@:3}" >"$WORK/$1.log" 2>&1
    SERVER_PID[$1]=$STARTED_PID
    wait_port "$2" 20 || { cat "$WORK/$1.log"; die "$1 did not start"; }
}
run "$BIN/loadgen" certs "$WORK/tls" >/dev/null

OURS_PORT=$(free_port)
provider_conf echo-provider "$OURS_PORT" "$REACTORS"
serve ours "$OURS_PORT" "$BIN/echo-provider" -i "$WORK/echo-provider.conf"
# ONLY=client starts none of the others (their ports stay 0, unused).
TLS_PORT=0 TONIC_PORT=0 TONIC_TLS_PORT=0 VOLO_PORT=0 VOLO_MUX_PORT=0 REDIS_PORT=0
if [[ $ONLY == all ]]; then
    TLS_PORT=$(free_port)
    provider_conf echo-provider-tls "$TLS_PORT" "$REACTORS" tls=required "tls_cert=$WORK/tls/provider.crt" \
        "tls_key=$WORK/tls/provider.key"
    serve ours-tls "$TLS_PORT" "$BIN/echo-provider" -i "$WORK/echo-provider-tls.conf"
    TONIC_PORT=$(free_port)
    serve tonic "$TONIC_PORT" "$BIN/tonic-echo-server" --addr "127.0.0.1:$TONIC_PORT" --workers "$REACTORS"
    TONIC_TLS_PORT=$(free_port)
    serve tonic-tls "$TONIC_TLS_PORT" "$BIN/tonic-echo-server" --addr "127.0.0.1:$TONIC_TLS_PORT" \
        --workers "$REACTORS" --tls-cert "$WORK/tls/provider.crt" --tls-key "$WORK/tls/provider.key"
    VOLO_PORT=$(free_port)
    serve volo "$VOLO_PORT" "$BIN/volo-echo-server" --addr "127.0.0.1:$VOLO_PORT" --workers "$REACTORS"
    VOLO_MUX_PORT=$(free_port)
    serve volo-mux "$VOLO_MUX_PORT" "$BIN/volo-echo-server" --addr "127.0.0.1:$VOLO_MUX_PORT" \
        --workers "$REACTORS" --multiplex
    REDIS_PORT=$(free_port)
    serve redis "$REDIS_PORT" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --io-threads 1 --daemonize no --logfile "$WORK/redis.log"
fi
R2_PORT=0
if [[ $FULL == 1 ]]; then
    # The client I/O threads block's provider: the plain one with more reactors.
    R2_PORT=$(free_port)
    provider_conf echo-provider-r2 "$R2_PORT" "$REACTORS_IO"
    serve ours-r2 "$R2_PORT" "$BIN/echo-provider" -i "$WORK/echo-provider-r2.conf"
fi

sleep 0.5 # let the runtimes start their worker threads before counting them
# Machine, versions, commit, pinning and thread counts, for the report.
SERVER_LIST=()
for k in "${!SERVER_PID[@]}"; do SERVER_LIST+=("$k=${SERVER_PID[$k]}"); done
first_line() { "$@" 2>/dev/null | head -1 || true; }
machine_json "$RAW/env.json" build_seconds="$T_BUILD" quick="$([[ $QUICK == 1 ]] && echo true || echo false)" \
    clk_tck="$(getconf CLK_TCK)" "pinning={\"server_cpu\": $SERVER_CPU, \"client_cpu\": $CLIENT_CPU}" \
    redis_server="$(first_line redis-server --version)" redis_benchmark="$(first_line redis-benchmark --version)" \
    h2load="$(first_line h2load --version)" sockperf="$(first_line sockperf --version)"
python3 - "$RAW/env.json" "$REACTORS" "$REACTORS_IO" "${SERVER_LIST[@]}" <<'PY'
import json, os, re, sys
def threads(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None
lock = open("Cargo.lock").read()
def locked(name):
    m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(name), lock)
    return m.group(1) if m else "unknown"
env = json.load(open(sys.argv[1]))
servers = dict(kv.split("=") for kv in sys.argv[4:])
env.update({
    "tonic": locked("tonic"),
    "volo_thrift": locked("volo-thrift"),
    "threads": {
        "ours_reactors": int(sys.argv[2]),
        "ours_io_block_reactors": int(sys.argv[3]),
        "tonic_workers": int(sys.argv[2]),
        "volo_workers": int(sys.argv[2]),
        "redis": "1 (io-threads 1)",
        "loadgen_engine_threads": 1,
        "os_threads_at_start": {name: threads(pid) for name, pid in sorted(servers.items())},
    },
})
json.dump(env, open(sys.argv[1], "w"), indent=2)
PY
printf '{"rounds": %s, "secs": %s, "warmup_s": %s, "connections": %s, "wide_connections": %s, "depth": %s, "payload": %s, "reactors": %s, "reactors_io": %s, "syscall_secs": %s, "quick": %s, "full": %s, "only": "%s"}\n' \
    "$ROUNDS" "$SECS" "$WARMUP" "$CONNS" "$WIDE_CONNS" "$DEPTH" "$PAYLOAD" "$REACTORS" "$REACTORS_IO" \
    "$SYSCALL_SECS" "$([[ $QUICK == 1 ]] && echo true || echo false)" "$([[ $FULL == 1 ]] && echo true || echo false)" "$ONLY" \
    >"$RAW/params.json"

COMMON=(--duration "${SECS}s" --warmup "${WARMUP}s" --payload "$PAYLOAD" --out-dir "$RAW")
# system name -> the server it loads, and loadgen's arguments. Every system
# is driven by the engine, except *-channel and ours-blocking (the
# framework's own client). The *-tls systems are their plain twins over
# TLS; volo-mux is Volo's multiplexed server (non-default); -io2: the
# Channel with 2 I/O threads; ours-r2*: against the provider with
# $REACTORS_IO reactors (the engine on as many threads).
declare -A SERVER=(
    [ours]=ours [ours-channel]=ours [ours-channel-io2]=ours [ours-blocking]=ours [seed]=ours
    [ours-r2]=ours-r2 [ours-r2-channel]=ours-r2 [ours-r2-channel-io2]=ours-r2
    [ours-tls]=ours-tls [ours-tls-channel]=ours-tls [tonic-tls]=tonic-tls
    [volo]=volo [volo-mux]=volo-mux [tonic]=tonic [redis]=redis
)
declare -A TARGET=(
    [ours]="--target mprpc --client raw --addr 127.0.0.1:$OURS_PORT"
    [ours-channel]="--target mprpc --client channel --addr 127.0.0.1:$OURS_PORT"
    [ours-channel-io2]="--target mprpc --client channel --io-threads 2 --addr 127.0.0.1:$OURS_PORT"
    [ours-r2]="--target mprpc --client raw --threads $REACTORS_IO --addr 127.0.0.1:$R2_PORT"
    [ours-r2-channel]="--target mprpc --client channel --addr 127.0.0.1:$R2_PORT"
    [ours-r2-channel-io2]="--target mprpc --client channel --io-threads 2 --addr 127.0.0.1:$R2_PORT"
    [ours-blocking]="--target mprpc --client blocking --addr 127.0.0.1:$OURS_PORT"
    [ours-tls]="--target mprpc --client raw --addr 127.0.0.1:$TLS_PORT --tls-ca $WORK/tls/ca.crt"
    [ours-tls-channel]="--target mprpc --client channel --addr 127.0.0.1:$TLS_PORT --tls-ca $WORK/tls/ca.crt"
    [tonic-tls]="--target tonic --addr 127.0.0.1:$TONIC_TLS_PORT --tls-ca $WORK/tls/ca.crt"
    [volo]="--target volo --addr 127.0.0.1:$VOLO_PORT"
    [volo-mux]="--target volo --addr 127.0.0.1:$VOLO_MUX_PORT"
    [tonic]="--target tonic --addr 127.0.0.1:$TONIC_PORT"
    [redis]="--target redis --addr 127.0.0.1:$REDIS_PORT"
    [seed]="--target seed --addr 127.0.0.1:$OURS_PORT"
)
if [[ $ONLY == client ]]; then
    # The engine and the Channel (1 and 2 I/O threads) against one provider.
    SYSTEMS=(ours ours-channel ours-channel-io2)
    PIPELINED=("${SYSTEMS[@]}")
    OPEN=()
    AT_COMMON=()
elif [[ $QUICK == 1 ]]; then
    # The headline rows only.
    SYSTEMS=(ours volo tonic redis ours-channel)
    PIPELINED=(ours volo-mux tonic redis ours-channel)
    OPEN=(ours volo tonic redis)
    AT_COMMON=(ours volo tonic)
else
    SYSTEMS=(ours volo tonic redis seed ours-channel ours-tls tonic-tls ours-tls-channel)
    # seed: one call per connection, no pipelining. Volo's default server
    # answers a connection's calls one at a time, so pipelined its
    # multiplexed server (non-default) stands in.
    PIPELINED=(ours volo-mux tonic redis ours-channel ours-tls tonic-tls ours-tls-channel)
    OPEN=("${SYSTEMS[@]}")
    AT_COMMON=(ours volo tonic ours-channel ours-tls tonic-tls)
fi
# Volo's users' shape (one call per connection, many connections), ours beside it.
WIDE=(ours volo)
if [[ $ONLY == client ]]; then WIDE=(); fi
# Client I/O threads: closed loop only, in both shapes (full runs).
IO_SCALING=()
if [[ $FULL == 1 ]]; then IO_SCALING=(ours-channel-io2 ours-r2 ours-r2-channel ours-r2-channel-io2); fi
# The common rate is set by the slowest of these.
RPC=(ours volo tonic)
# One connection, one call at a time: the engine (sleeps in epoll), the
# Channel's blocking call (on the I/O thread's core, as pinned here, it parks
# and the I/O thread polls for its reply; see Cells::wait), redis through the
# engine (redis-benchmark -c 1 as cross-check).
SINGLE=(ours ours-blocking redis)
# Syscalls per call: these servers at CONNS × 1 and × DEPTH (Volo's
# multiplexed server pipelined).
SYSCALLS=(ours redis volo tonic)
# Per round: h2load 2, redis-benchmark 3, sockperf 3.
CROSS_CHECKS=8
if [[ $ONLY == client ]]; then SINGLE=() SYSCALLS=() CROSS_CHECKS=0; fi
N=0
TOTAL=$((ROUNDS * (${#SYSTEMS[@]} + ${#PIPELINED[@]} + ${#WIDE[@]} + 2 * ${#IO_SCALING[@]} + ${#SINGLE[@]} +
    CROSS_CHECKS + 3 * ${#OPEN[@]} + ${#AT_COMMON[@]}) + 2 * ${#SYSCALLS[@]}))
step() { N=$((N + 1)); log "[$N/$TOTAL, $(($(date +%s) - T0))s] $*"; }

# One loadgen run on the client core, with the server's CPU time sampled.
lg() { # system label connections args...
    local sys=$1 label=$2 conns=$3
    shift 3
    step "$label"
    # shellcheck disable=SC2086
    on_client_core "$BIN/loadgen" ${TARGET[$sys]} "${COMMON[@]}" --connections "$conns" --label "$label" \
        --cpu-pid "${SERVER_PID[${SERVER[$sys]}]}" "$@" >"$WORK/last.txt" 2>&1 ||
        { cat "$WORK/last.txt"; die "loadgen failed: $label"; }
    grep -E '^- rate|TARGET|target held|^- CPU' "$WORK/last.txt" | sed 's/^/    /' >&2 || true
}

# A cross-check client's run, with the server's CPU ticks around it:
# label server command... (output into RAW/label.txt, ticks into RAW/cpu-label.txt).
cross_check() {
    local label=$1 pid=${SERVER_PID[$2]} before
    shift 2
    step "$label"
    before=$(ticks "$pid")
    on_client_core "$@" >"$RAW/$label.txt" 2>&1 || { cat "$RAW/$label.txt"; die "$label failed"; }
    echo "$(($(ticks "$pid") - before))" >"$RAW/cpu-$label.txt"
}

# tonic through h2load: the gRPC request (5-byte prefix: not compressed,
# length; then the EchoRequest) as a fixed body, the same connections and
# streams as the engine's rows.
python3 - "$RAW/grpc-echo-body.bin" "$PAYLOAD" <<'PY'
import struct, sys
payload = bytes(ord("a") + i % 26 for i in range(int(sys.argv[2])))
def varint(n):
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])
message = b"\x0a" + varint(len(payload)) + payload
open(sys.argv[1], "wb").write(b"\x00" + struct.pack(">I", len(message)) + message)
PY
h2load_run() { # label streams
    cross_check "$1" tonic h2load -t 1 -c "$CONNS" -m "$2" -D "$(millis "$SECS")ms" \
        --warm-up-time "$(millis "$WARMUP")ms" \
        -H 'content-type: application/grpc' -H 'te: trailers' -d "$RAW/grpc-echo-body.bin" \
        "http://127.0.0.1:$TONIC_PORT/mprpc.bench.EchoService/Echo"
}

# The loopback floor: sockperf TCP ping-pong, one PAYLOAD-byte message at a
# time, full round trip; its server on the server core, its client on the
# client core. sleep: both block in the kernel (sockperf's defaults);
# client-spins: the client busy-polls a non-blocking socket and the server
# sleeps (as our blocking call against our provider); busy: both busy-poll.
SOCKPERF_PORT=$(free_port)
echo "T:127.0.0.1:$SOCKPERF_PORT" >"$WORK/sockperf.feed"
floor() { # round
    local mode sp
    local -a server_args client_args
    for mode in sleep client-spins busy; do
        server_args=(--tcp -i 127.0.0.1 -p "$SOCKPERF_PORT")
        client_args=()
        if [[ $mode == busy ]]; then server_args=(-f "$WORK/sockperf.feed" -F r --nonblocked); fi
        if [[ $mode != sleep ]]; then client_args=(--nonblocked); fi
        start_server sockperf server "${server_args[@]}" >"$WORK/sockperf-server.log" 2>&1
        sp=$STARTED_PID
        # Not wait_port: a busy-polling sockperf server serves the first
        # connection it accepts only, so look for its listener instead.
        for _ in $(seq 1 100); do
            ss -Hltn "( sport = :$SOCKPERF_PORT )" | grep -q . && break
            sleep 0.05
        done
        ss -Hltn "( sport = :$SOCKPERF_PORT )" | grep -q . ||
            { cat "$WORK/sockperf-server.log"; die "sockperf server did not start"; }
        step "floor-$mode-r$1"
        on_client_core sockperf ping-pong --tcp -i 127.0.0.1 -p "$SOCKPERF_PORT" -t "$(per_secs 1)" -m "$PAYLOAD" \
            --full-rtt "${client_args[@]}" >"$RAW/floor-$mode-r$1.txt" 2>&1 ||
            { cat "$RAW/floor-$mode-r$1.txt"; die "sockperf ping-pong ($mode) failed"; }
        kill "$sp" 2>/dev/null || true
        wait "$sp" 2>/dev/null || true
    done
}

# Server syscalls per call: perf counts the server's syscalls (the
# raw_syscalls tracepoint: all of them; and the usual ones by name) while a
# short loadgen run loads it; the report divides by every call that run sent.
SYSCALL_EVENTS=raw_syscalls:sys_enter
for name in epoll_wait epoll_pwait read write readv writev recvfrom sendto recvmsg sendmsg futex; do
    SYSCALL_EVENTS+=,syscalls:sys_enter_$name
done
count_syscalls() { # system config connections in-flight
    local sys=$1 perf_pid
    printf '%s\n' "taskset -c $CLIENT_CPU perf stat -x, -e $SYSCALL_EVENTS -p <${SERVER[$sys]} pid>" >>"$RAW/commands.txt"
    taskset -c "$CLIENT_CPU" perf stat -x, -e "$SYSCALL_EVENTS" -p "${SERVER_PID[${SERVER[$sys]}]}" \
        -o "$RAW/syscalls-$2-$sys.csv" &
    perf_pid=$!
    sleep 0.3 # perf attaches
    local -a saved=("${COMMON[@]}")
    COMMON=(--duration "${SYSCALL_SECS}s" --warmup 0.2s --payload "$PAYLOAD" --out-dir "$RAW")
    lg "$sys" "sys$2-$sys-r1" "$3" --qps max --in-flight "$4"
    COMMON=("${saved[@]}")
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
}

# ------------------------------------------------- closed loop (saturation)
for r in $(seq 1 "$ROUNDS"); do
    loadavg "round $r closed-loop start"
    for s in "${SYSTEMS[@]}" "${IO_SCALING[@]}"; do
        lg "$s" "c1-$s-r$r" "$CONNS" --qps max --in-flight "$CONNS"
    done
    for s in "${PIPELINED[@]}" "${IO_SCALING[@]}"; do
        lg "$s" "p$DEPTH-$s-r$r" "$CONNS" --qps max --in-flight $((CONNS * DEPTH))
    done
    for s in "${WIDE[@]}"; do
        lg "$s" "c$WIDE_CONNS-$s-r$r" "$WIDE_CONNS" --qps max --in-flight "$WIDE_CONNS"
    done
    if ((CROSS_CHECKS == 0)); then
        loadavg "round $r closed-loop end"
        continue
    fi
    h2load_run "h2load-c1-r$r" 1
    h2load_run "h2load-p$DEPTH-r$r" "$DEPTH"
    cross_check "redis-benchmark-c1-r$r" redis redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CONNS" \
        -n "$(per_secs 40000)" -t ping --csv
    cross_check "redis-benchmark-p$DEPTH-r$r" redis redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CONNS" \
        -n "$(per_secs 400000)" -P "$DEPTH" -t ping --csv
    for s in "${SINGLE[@]}"; do
        lg "$s" "single-$s-r$r" 1 --qps max --in-flight 1
    done
    cross_check "redis-benchmark-single-r$r" redis redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c 1 \
        -n "$(per_secs 8000)" -t ping --csv
    floor "$r"
    loadavg "round $r closed-loop end"
done

loadavg "syscalls start"
for s in "${SYSCALLS[@]}"; do
    count_syscalls "$s" c1 "$CONNS" "$CONNS"
    pipelined=$s
    if [[ $s == volo ]]; then pipelined=volo-mux; fi
    count_syscalls "$pipelined" "p$DEPTH" "$CONNS" $((CONNS * DEPTH))
done
loadavg "syscalls end"

# ------------------------------------- open loop at each one's own saturation
declare -A SAT
SAT[none]=0
for s in "${OPEN[@]}"; do
    SAT[$s]=$(median_qps c1 "$s")
    echo "saturation (median, $CONNS connections, 1 call each): $s ${SAT[$s]}/s" >&2
done
# The common rate: 50% of the slowest RPC system's saturation.
SLOWEST=$(for s in "${RPC[@]}"; do echo "${SAT[$s]:-0}"; done | sort -g | head -1)
COMMON_RATE=$(pct_of "$SLOWEST" 50)
echo "{\"common_rate\": $COMMON_RATE}" >"$RAW/common_rate.json"
for r in $(seq 1 "$((${#OPEN[@]} ? ROUNDS : 0))"); do
    loadavg "round $r open-loop start"
    for pct in 25 50 75; do
        for s in "${OPEN[@]}"; do
            lg "$s" "open$pct-$s-r$r" "$CONNS" --qps "$(pct_of "${SAT[$s]}" "$pct")" --in-flight $((CONNS * DEPTH))
        done
    done
    for s in "${AT_COMMON[@]}"; do
        lg "$s" "common-$s-r$r" "$CONNS" --qps "$COMMON_RATE" --in-flight $((CONNS * DEPTH))
    done
    loadavg "round $r open-loop end"
done

T_TOTAL=$(($(date +%s) - T0))
python3 - "$RAW/env.json" "$T_TOTAL" <<'PY'
import json, sys
env = json.load(open(sys.argv[1]))
env["total_seconds"] = int(sys.argv[2])
json.dump(env, open(sys.argv[1], "w"), indent=2)
PY

log "report"
python3 scripts/compare_report.py "$OUT" "$REPORT" "$BENCHMARKS" "$README"
# The plots as PNG, to look at (the report links the SVGs).
if command -v rsvg-convert >/dev/null; then
    for svg in "$OUT"/*.svg; do
        [[ -e $svg ]] || continue # ONLY=client draws none
        rsvg-convert "$svg" -o "${svg%.svg}.png"
    done
fi
echo "done in ${T_TOTAL}s: $REPORT, $BENCHMARKS's benchmark block and $README's headline"
