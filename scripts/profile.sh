#!/usr/bin/env bash
# Where the instructions go, from the current code: writes results/PROFILE.md.
#
#   scripts/profile.sh            build (release), profile, write the report
#
# Two profiles of the 64-byte echo, 50 connections pipelined DEPTH deep:
#   1. the server: our echo provider (REACTORS reactors) under the profiler,
#      loaded by loadgen's engine;
#   2. the client: loadgen driving a native provider through the framework's
#      `Channel`, under the profiler.
# With hardware counters (`perf stat -e instructions true` counts them),
# perf records cycles; otherwise (as in most VMs) valgrind's callgrind counts
# instructions exactly, at about 50× slowdown, so the rates in this report
# are not throughput figures: the instruction shares and instructions per
# call are what it is for.
#
# Knobs: SECS (load per profile, 10), REACTORS (1), DEPTH (16), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

SECS=${SECS:-10}
REACTORS=${REACTORS:-1}
DEPTH=${DEPTH:-16}
CONNS=50
BIN=$RELEASE_DIR
OUT=results/PROFILE.md
T0=$(date +%s)

git_state
build_release loadgen:loadgen mprpc-examples:echo-provider

scratch profile

if perf stat -x, -e instructions true 2>&1 | grep -q '^[0-9]'; then
    TOOL=perf
else
    TOOL=callgrind
    command -v valgrind >/dev/null || die "no hardware counters for perf and no valgrind (apt-get install valgrind)"
fi
log "profiler: $TOOL"

provider_conf() { # port -> config file
    cat >"$WORK/echo-$1.conf" <<EOF
rpcserverip=127.0.0.1
rpcserverport=$1
registry=none
log_dir=$WORK/logs
reactor_threads=$REACTORS
EOF
    echo "$WORK/echo-$1.conf"
}
# Replaces the (sub)shell with "$@" under the profiler, writing its data
# to $WORK/$name.*; call it in a subshell or in the background.
profiled() {
    local name=$1
    shift
    if [[ $TOOL == perf ]]; then
        exec perf record -g -e cycles -o "$WORK/$name.perf" -- "$@"
    else
        exec valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.callgrind" "$@"
    fi
}
# The top functions of a profile, as text.
top() {
    if [[ $TOOL == perf ]]; then
        perf report -i "$WORK/$1.perf" --no-children --sort symbol --stdio -g none 2>/dev/null |
            grep -v '^#' | grep -v '^$' | head -25 || true
    else
        callgrind_annotate --inclusive=no "$WORK/$1.callgrind" 2>/dev/null | sed -n '/^Ir/,$p' | head -32 || true
    fi
}
# Inclusive instructions per call of the client's main steps (callgrind
# only): each step's inclusive count divided by the number of request
# frames encoded (one per call, warm-up included).
client_steps() {
    [[ $TOOL == callgrind ]] || { echo "(per-step counts need callgrind)"; return; }
    python3 - "$WORK/client.callgrind" <<'PY'
import re, subprocess, sys
f = sys.argv[1]
def annotate(*args):
    return subprocess.run(["callgrind_annotate", *args, f], capture_output=True, text=True).stdout
rows = {}
for line in annotate("--inclusive=yes").splitlines():
    m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.+?)(?: \[[^]]*\])?$", line)
    if m:
        name = m.group(2).split(":", 1)[-1]
        rows[name] = max(rows.get(name, 0), int(m.group(1).replace(",", "")))
m = re.search(r">\s+\S*protocol::mprpc::frame::encode_request\w* \(([\d,]+)x\)", annotate("--tree=calling", "--inclusive=yes"))
calls = int(m.group(1).replace(",", "")) if m else 0
total = rows.get("PROGRAM", 0) or max(rows.values(), default=0)
steps = [
    ("whole loadgen process (start-up and loadgen's own bookkeeping included)", None),
    ("`Channel::start` on the calling thread: checks, encode, queue", r"^mprpc::client::Channel::start$"),
    ("request frame encoding (part of the above)", r"^mprpc::protocol::mprpc::frame::encode_request\w*$"),
    ("driver: drain the queue and route each call onto a connection", r"drain_queue$"),
    ("driver: decode replies", r"^mprpc::protocol::mprpc::decoder::Decoder::decode$"),
    ("driver: deliver the outcome (cell + the user's callback, which starts the next call)", r"^mprpc::client::cells::Cells::(deliver|finish)$"),
    ("loadgen's recording of each outcome", r"^loadgen::recorder::Recorder::on_done$"),
]
print(f"Request frames encoded (calls, warm-up included): {calls:,}.")
print()
print("| step | instructions per call (inclusive) |")
print("|---|---|")
for label, pat in steps:
    found = [total] if pat is None else [v for k, v in rows.items() if re.search(pat, k)]
    print(f"| {label} | {max(found) / calls:,.0f} |" if found and calls else f"| {label} | n/a |")
PY
}
total_ir() { # total instructions counted by callgrind
    [[ $TOOL == callgrind ]] || { echo ""; return; }
    callgrind_annotate "$WORK/$1.callgrind" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' || true
}
LOADGEN_ARGS=(--qps max --connections "$CONNS" --in-flight $((CONNS * DEPTH)) --duration "${SECS}s" --warmup 1s --out-dir "$WORK")

# --------------------------------------------------------- 1. the server
PORT=$(free_port)
log "1/2: echo-provider under $TOOL, loaded by the engine for ${SECS}s"
profiled server "$BIN/echo-provider" -i "$(provider_conf "$PORT")" >"$WORK/server.log" 2>&1 &
SERVER=$!
PIDS+=($SERVER)
wait_port "$PORT" 60 || { cat "$WORK/server.log"; die "echo-provider did not start"; }
"$BIN/loadgen" --addr "127.0.0.1:$PORT" --client raw --label server "${LOADGEN_ARGS[@]}" >"$WORK/server-load.txt"
kill -INT "$SERVER"
wait "$SERVER" || true
SERVER_CALLS=$(python3 -c 'import glob,json,sys; r=json.load(open(glob.glob(sys.argv[1]+"/*-server.json")[0])); print(r["completed"])' "$WORK")

# --------------------------------------------------------- 2. the client
PORT=$(free_port)
"$BIN/echo-provider" -i "$(provider_conf "$PORT")" >"$WORK/plain.log" 2>&1 &
PIDS+=($!)
wait_port "$PORT" || die "echo-provider did not start"
log "2/2: loadgen --client channel under $TOOL for ${SECS}s"
(profiled client "$BIN/loadgen" --addr "127.0.0.1:$PORT" --client channel --label client "${LOADGEN_ARGS[@]}" >"$WORK/client-load.txt")
CLIENT_CALLS=$(python3 -c 'import glob,json,sys; r=json.load(open(glob.glob(sys.argv[1]+"/*-client.json")[0])); print(r["completed"])' "$WORK")

# --------------------------------------------------------- report
COMMIT=$GIT_COMMIT
DIRTY=$([[ $GIT_DIRTY == true ]] && echo " (with uncommitted changes)" || true)
per_call() { python3 -c "import sys; a,b=sys.argv[1:]; print(f'{int(a)/max(1,int(b)):,.0f}' if a and b else 'n/a')" "$1" "$2"; }
{
    echo "# Profile: where the instructions go (64-byte echo, pipelined)"
    echo
    echo "Written by \`scripts/profile.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$COMMIT\`$DIRTY;"
    echo "$(machine_line). Profiler: $TOOL"
    echo "($([[ $TOOL == callgrind ]] && echo 'no hardware counters here, so instructions are counted by valgrind: rates under it are ~50× lower than real and are not throughput figures' || echo 'perf, hardware cycles'))."
    echo "Our provider ran $REACTORS reactor thread(s); $CONNS connections, $DEPTH calls outstanding on each, ${SECS} s per profile."
    echo
    echo "## 1. The server (echo-provider, loaded by loadgen's engine)"
    echo
    echo "Calls answered in the measured window: $SERVER_CALLS; instructions per call (whole process, warm-up and start-up included, so an upper bound): $(per_call "$(total_ir server)" "$SERVER_CALLS")."
    echo
    echo '```'
    top server
    echo '```'
    echo
    echo "## 2. The client (loadgen through the framework's \`Channel\`)"
    echo
    echo "Calls completed in the measured window: $CLIENT_CALLS; instructions per call (whole loadgen process, sender thread and the Channel's I/O thread, start-up included): $(per_call "$(total_ir client)" "$CLIENT_CALLS")."
    echo
    echo '```'
    top client
    echo '```'
    echo
    echo "### The client per call, by step"
    echo
    client_steps
    echo
    echo "Took $(($(date +%s) - T0)) s."
} >"$OUT"
echo "wrote $OUT"
