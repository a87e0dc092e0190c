#!/usr/bin/env bash
# Side-by-side loopback comparison of our echo provider with Volo (Thrift),
# tonic (gRPC), redis-server (PING) and the seed's wire format, every server
# loaded by the same client: loadgen's engine (the same connections, the
# same window per connection, the same latency stamps). Our framework's own
# `Channel` client is measured too, and redis-benchmark as a cross-check.
# The cost of TLS: a second echo-provider with tls=required and a second
# tonic-echo-server with --tls-cert (a certificate `loadgen certs` makes),
# both loaded by the same engine over TLS (`--tls-ca`), in the same shapes as
# their plain twins; our `Channel` over TLS too.
# Client I/O threads: our `Channel` with io_threads = 2 beside 1 against the
# same provider, and against a third provider with 2 reactors the engine on
# 2 threads and the `Channel` with 1 and 2 I/O threads (closed loop only).
#
#   scripts/compare.sh                  full run (the report states how long it took)
#   ROUNDS=1 SECS=1 WARMUP=0.5 scripts/compare.sh   smoke test (~3 min)
#   TRIAL_DIR=/tmp/cmp ROUNDS=1 ...     writes everything under /tmp/cmp instead
#                                       (a copy of README.md included)
#
# Every configuration runs ROUNDS times, interleaved across systems (ours,
# Volo, tonic, redis, seed, ours, ...). Closed loop first (saturation, with 1
# call per connection and pipelined DEPTH deep); then open loop at 25/50/75%
# of each system's own saturation (does it hold its target?), and all RPC
# systems at one common rate: 50% of the slowest one's saturation.
#
# Writes results/COMPARISON.md and the README's benchmark block (between
# <!-- bench:begin --> and <!-- bench:end -->) with scripts/compare_report.py,
# from the raw data in results/comparison/raw/ (loadgen JSON/.hgrm/.md,
# redis-benchmark CSV, commands, machine facts, load averages). Nothing is
# typed in by hand.
#
# Knobs (environment): ROUNDS (3), SECS (measured seconds per run, 5),
# WARMUP (s, 1), CONNS (50), DEPTH (pipelining depth, 16), PAYLOAD (64),
# REACTORS (our reactors = tonic and Volo worker threads, 1), SKIP_BUILD=1,
# TRIAL_DIR (see above); binaries come from $CARGO_TARGET_DIR (or target).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

ROUNDS=${ROUNDS:-3}
SECS=${SECS:-5}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-50}
DEPTH=${DEPTH:-16}
PAYLOAD=${PAYLOAD:-64}
# One server thread each: the load generator needs the other core.
REACTORS=${REACTORS:-1}
# The client I/O threads block: a provider with this many reactors.
REACTORS_IO=2
if [[ -n ${TRIAL_DIR:-} ]]; then
    mkdir -p "$TRIAL_DIR"
    cp README.md "$TRIAL_DIR/README.md"
    OUT=$TRIAL_DIR/comparison REPORT=$TRIAL_DIR/COMPARISON.md README=$TRIAL_DIR/README.md
else
    OUT=results/comparison REPORT=results/COMPARISON.md README=README.md
fi
RAW=$OUT/raw
BIN=${CARGO_TARGET_DIR:-target}/release
T0=$(date +%s)

scratch compare

for tool in python3 redis-server redis-benchmark redis-cli; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs it)"
done

# What the binaries are built from, before this script writes anything.
git_state
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "release build (loadgen with the tonic and volo servers, echo-provider)"
    cargo build --release -p loadgen --features tonic,volo
    cargo build --release -p mprpc-examples --bin echo-provider
fi
for b in loadgen tonic-echo-server volo-echo-server echo-provider; do
    [[ -x $BIN/$b ]] || die "$BIN/$b missing"
done
T_BUILD=$(($(date +%s) - T0))

rm -rf "$RAW"
mkdir -p "$RAW"
rm -f "$OUT"/*.svg
: >"$RAW/commands.txt"
: >"$RAW/loadavg.txt"

# Runs a command and records it verbatim.
run() { printf '%s\n' "$*" >>"$RAW/commands.txt"; "$@"; }
# Starts a server in the background (its own pid in PIDS, so the scratch cleanup stops
# it) and records the command.
start_bg() {
    printf '%s\n' "$*" >>"$RAW/commands.txt"
    "$@" &
    PIDS+=($!)
}
loadavg() { printf '%s %s\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/loadavg.txt"; }
json_field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
median_qps() { # label pattern -> median achieved_qps of the matching runs
    python3 - "$RAW" "$1" <<'PY'
import glob, json, statistics, sys
runs = [json.load(open(p)) for p in glob.glob(f"{sys.argv[1]}/*-{sys.argv[2]}-r*.json")]
print(statistics.median(r["achieved_qps"] for r in runs) if runs else 0)
PY
}
pct_of() { python3 -c "print(max(1, round($1 * $2 / 100)))"; }

# ------------------------------------------------------------- servers
log "servers: echo-provider ($REACTORS reactor(s)), tonic and Volo ($REACTORS worker(s)), redis"
OURS_PORT=$(free_port)
cat >"$WORK/echo.conf" <<EOF
rpcserverip=127.0.0.1
rpcserverport=$OURS_PORT
registry=none
log_dir=$WORK/logs
reactor_threads=$REACTORS
EOF
cp "$WORK/echo.conf" "$RAW/echo-provider.conf"
printf '%s\n' "$BIN/echo-provider -i echo-provider.conf" >>"$RAW/commands.txt"
"$BIN/echo-provider" -i "$WORK/echo.conf" >"$WORK/echo.log" 2>&1 &
PIDS+=($!)
wait_port "$OURS_PORT" || { cat "$WORK/echo.log"; die "echo-provider did not start"; }

TLS_PORT=$(free_port)
run "$BIN/loadgen" certs "$WORK/tls" >/dev/null
cat >"$WORK/echo-tls.conf" <<EOF
rpcserverip=127.0.0.1
rpcserverport=$TLS_PORT
registry=none
log_dir=$WORK/logs-tls
reactor_threads=$REACTORS
tls=required
tls_cert=$WORK/tls/provider.crt
tls_key=$WORK/tls/provider.key
EOF
cp "$WORK/echo-tls.conf" "$RAW/echo-provider-tls.conf"
start_bg "$BIN/echo-provider" -i "$WORK/echo-tls.conf" >"$WORK/echo-tls.log" 2>&1
wait_port "$TLS_PORT" || { cat "$WORK/echo-tls.log"; die "echo-provider (TLS) did not start"; }

TONIC_PORT=$(free_port)
start_bg "$BIN/tonic-echo-server" --addr "127.0.0.1:$TONIC_PORT" --workers "$REACTORS" >"$WORK/tonic.log" 2>&1
wait_port "$TONIC_PORT" || { cat "$WORK/tonic.log"; die "tonic-echo-server did not start"; }

TONIC_TLS_PORT=$(free_port)
start_bg "$BIN/tonic-echo-server" --addr "127.0.0.1:$TONIC_TLS_PORT" --workers "$REACTORS" \
    --tls-cert "$WORK/tls/provider.crt" --tls-key "$WORK/tls/provider.key" >"$WORK/tonic-tls.log" 2>&1
wait_port "$TONIC_TLS_PORT" || { cat "$WORK/tonic-tls.log"; die "tonic-echo-server (TLS) did not start"; }

VOLO_PORT=$(free_port)
start_bg "$BIN/volo-echo-server" --addr "127.0.0.1:$VOLO_PORT" --workers "$REACTORS" >"$WORK/volo.log" 2>&1
wait_port "$VOLO_PORT" || { cat "$WORK/volo.log"; die "volo-echo-server did not start"; }

REDIS_PORT=$(free_port)
start_bg redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --io-threads 1 \
    --daemonize no --logfile "$WORK/redis.log"
wait_port "$REDIS_PORT" || die "redis-server did not start"

# The client I/O threads block's provider: the plain one with more reactors.
R2_PORT=$(free_port)
sed -e "s/^rpcserverport=.*/rpcserverport=$R2_PORT/" -e "s/^reactor_threads=.*/reactor_threads=$REACTORS_IO/" \
    -e "s|^log_dir=.*|log_dir=$WORK/logs-r2|" "$WORK/echo.conf" >"$WORK/echo-r2.conf"
cp "$WORK/echo-r2.conf" "$RAW/echo-provider-r2.conf"
start_bg "$BIN/echo-provider" -i "$WORK/echo-r2.conf" >"$WORK/echo-r2.log" 2>&1
wait_port "$R2_PORT" || { cat "$WORK/echo-r2.log"; die "echo-provider ($REACTORS_IO reactors) did not start"; }

sleep 0.5 # let the runtimes start their worker threads before counting them
# Machine, versions, commit and thread counts, for the report.
python3 - "$RAW/env.json" "$T_BUILD" "$REACTORS" "$REACTORS_IO" "${PIDS[@]}" <<'PY'
import json, os, platform, re, subprocess, sys, time
def out(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception as e:
        return f"unknown ({e})"
def threads(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
lock = open("Cargo.lock").read()
def locked(name):
    m = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(name), lock)
    return m.group(1) if m else "unknown"
pids = sys.argv[5:]
json.dump({
    "date_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    "nproc": os.cpu_count(),
    "cpu_model": model,
    "kernel": platform.release(),
    "rustc": out("rustc", "-V"),
    "tonic": locked("tonic"),
    "volo_thrift": locked("volo-thrift"),
    "redis_server": out("redis-server", "--version"),
    "redis_benchmark": out("redis-benchmark", "--version"),
    "git_commit": os.environ["GIT_COMMIT"],
    "git_dirty": os.environ["GIT_DIRTY"] == "true",
    "build_seconds": int(sys.argv[2]),
    "mem_total": next((l.split(":")[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")), "?"),
    "threads": {
        "ours_reactors": int(sys.argv[3]),
        "ours_io_block_reactors": int(sys.argv[4]),
        "tonic_workers": int(sys.argv[3]),
        "volo_workers": int(sys.argv[3]),
        "redis": "1 (io-threads 1)",
        "loadgen_engine_threads": 1,
        "os_threads_at_start": {name: threads(pid) for name, pid in zip(["echo-provider", "echo-provider-tls", "tonic-echo-server", "tonic-echo-server-tls", "volo-echo-server", "redis-server", "echo-provider-r2"], pids)},
    },
}, open(sys.argv[1], "w"), indent=2)
PY
cat >"$RAW/params.json" <<EOF
{"rounds": $ROUNDS, "secs": $SECS, "warmup_s": $WARMUP, "connections": $CONNS, "depth": $DEPTH, "payload": $PAYLOAD, "reactors": $REACTORS, "reactors_io": $REACTORS_IO}
EOF

COMMON=(--duration "${SECS}s" --warmup "${WARMUP}s" --payload "$PAYLOAD" --out-dir "$RAW")
# Connections per run (the single-call block sets LG_CONNS=1).
LG_CONNS=$CONNS
# system name -> loadgen arguments. Every system is driven by the engine,
# except ours-channel, ours-blocking and ours-tls-channel (the framework's
# own client). The *-tls systems are their plain twins over TLS; -io2: the
# Channel with 2 I/O threads; ours-r2*: against the provider with
# $REACTORS_IO reactors (the engine on as many threads).
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
    [tonic]="--target tonic --addr 127.0.0.1:$TONIC_PORT"
    [redis]="--target redis --addr 127.0.0.1:$REDIS_PORT"
    [seed]="--target seed --addr 127.0.0.1:$OURS_PORT"
)
SYSTEMS=(ours volo tonic redis seed ours-channel ours-tls tonic-tls ours-tls-channel)
# Client I/O threads: closed loop only, in both shapes (each right after
# the systems above in every round).
IO_SCALING=(ours-channel-io2 ours-r2 ours-r2-channel ours-r2-channel-io2)
# seed: one call per connection, no pipelining
PIPELINED=(ours volo tonic redis ours-channel ours-tls tonic-tls ours-tls-channel)
# The common rate is set by these (the slowest's saturation) ...
RPC=(ours volo tonic ours-channel)
# ... and run by these too (TLS vs plain at one rate).
AT_COMMON=("${RPC[@]}" ours-tls tonic-tls)
N=0
# One connection, one call at a time: the engine, the Channel's blocking
# call, and redis through the engine (redis-benchmark -c 1 as cross-check).
SINGLE=(ours ours-blocking redis)
TOTAL=$((ROUNDS * (${#SYSTEMS[@]} + ${#PIPELINED[@]} + 2 * ${#IO_SCALING[@]} + ${#SINGLE[@]} + 3 * ${#SYSTEMS[@]} + ${#AT_COMMON[@]} + 3)))
lg() { # system label args...
    local sys=$1 label=$2
    shift 2
    N=$((N + 1))
    log "[$N/$TOTAL, $(($(date +%s) - T0))s] $label"
    # shellcheck disable=SC2086
    run "$BIN/loadgen" ${TARGET[$sys]} "${COMMON[@]}" --connections "$LG_CONNS" --label "$label" "$@" >"$WORK/last.txt" 2>&1 ||
        { cat "$WORK/last.txt"; die "loadgen failed: $label"; }
    grep -E '^- rate|TARGET|target held' "$WORK/last.txt" | sed 's/^/    /' >&2 || true
}

# ------------------------------------------------- closed loop (saturation)
for r in $(seq 1 "$ROUNDS"); do
    loadavg "round $r closed-loop start"
    for s in "${SYSTEMS[@]}" "${IO_SCALING[@]}"; do
        lg "$s" "c1-$s-r$r" --qps max --in-flight "$CONNS"
    done
    for s in "${PIPELINED[@]}" "${IO_SCALING[@]}"; do
        lg "$s" "p$DEPTH-$s-r$r" --qps max --in-flight $((CONNS * DEPTH))
    done
    N=$((N + 2))
    log "[$N/$TOTAL] redis-benchmark cross-check (its own client)"
    run redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CONNS" -n $((60000 * SECS)) -t ping --csv \
        >"$RAW/redis-benchmark-c1-r$r.csv"
    run redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c "$CONNS" -n $((600000 * SECS)) -P "$DEPTH" -t ping --csv \
        >"$RAW/redis-benchmark-p$DEPTH-r$r.csv"
    for s in "${SINGLE[@]}"; do
        LG_CONNS=1 lg "$s" "single-$s-r$r" --qps max --in-flight 1
    done
    N=$((N + 1))
    log "[$N/$TOTAL] redis-benchmark -c 1 cross-check"
    run redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" -c 1 -n $((15000 * SECS)) -t ping --csv \
        >"$RAW/redis-benchmark-single-r$r.csv"
    loadavg "round $r closed-loop end"
done

# ------------------------------------- open loop at each one's own saturation
declare -A SAT
for s in "${SYSTEMS[@]}"; do
    SAT[$s]=$(median_qps "c1-$s")
    echo "saturation (median, $CONNS connections, 1 call each): $s ${SAT[$s]}/s" >&2
done
# The common rate: 50% of the slowest RPC system's saturation.
SLOWEST=$(for s in "${RPC[@]}"; do echo "${SAT[$s]}"; done | sort -g | head -1)
COMMON_RATE=$(pct_of "$SLOWEST" 50)
echo "{\"common_rate\": $COMMON_RATE}" >"$RAW/common_rate.json"
for r in $(seq 1 "$ROUNDS"); do
    loadavg "round $r open-loop start"
    for pct in 25 50 75; do
        for s in "${SYSTEMS[@]}"; do
            lg "$s" "open$pct-$s-r$r" --qps "$(pct_of "${SAT[$s]}" "$pct")" --in-flight $((CONNS * DEPTH))
        done
    done
    for s in "${AT_COMMON[@]}"; do
        lg "$s" "common-$s-r$r" --qps "$COMMON_RATE" --in-flight $((CONNS * DEPTH))
    done
    loadavg "round $r open-loop end"
done

T_TOTAL=$(($(date +%s) - T0))
python3 - "$RAW/env.json" "$T_TOTAL" <<'PY'
import json, sys
env = json.load(open(sys.argv[1])); env["total_seconds"] = int(sys.argv[2])
json.dump(env, open(sys.argv[1], "w"), indent=2)
PY

log "report"
python3 scripts/compare_report.py "$OUT" "$REPORT" "$README"
echo "done in ${T_TOTAL}s: $REPORT and $README's benchmark block"
