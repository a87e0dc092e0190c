#!/usr/bin/env bash
# Where the instructions go, from the current code: writes results/PROFILE.md.
#
#   scripts/profile.sh            build (release), profile, write the report
#
# Profiles of the 64-byte echo over 50 connections:
#   1. the server: our echo provider (REACTORS reactors) under the profiler,
#      loaded by loadgen's engine, pipelined DEPTH deep;
#   2. the clients: loadgen under the profiler, driving a native provider
#      through the framework's `Channel` and through loadgen's own engine,
#      each at 1 call per connection and DEPTH deep. With callgrind, the
#      instructions per call of each client step (scripts/profile_steps.py)
#      go into results/profile/client-steps.json and the report compares
#      them with results/profile/client-steps-baseline.json (a run made with
#      AS_BASELINE=1, which writes that file instead), so it shows the
#      client per step before and after a change.
# With hardware counters (`perf stat -e instructions true` counts them),
# perf records cycles; otherwise (as in most VMs) valgrind's callgrind counts
# instructions exactly, at about 50× slowdown, so the rates in this report
# are not throughput figures: the instruction shares and instructions per
# call are what it is for.
#
# Knobs: SECS (load per profile, 10), REACTORS (1), DEPTH (16), SKIP_BUILD=1,
# ONLY=client (skip the server's profile: the report keeps the client part
# only), AS_BASELINE=1 (see above).
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
total_ir() { # total instructions counted by callgrind
    [[ $TOOL == callgrind ]] || { echo ""; return; }
    callgrind_annotate "$WORK/$1.callgrind" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}' || true
}
ONLY=${ONLY:-all}
[[ $ONLY == all || $ONLY == client ]] || die "ONLY must be 'client' (or unset)"
STEPS_DIR=results/profile
STEPS=$STEPS_DIR/client-steps.json
BASELINE=$STEPS_DIR/client-steps-baseline.json
if [[ ${AS_BASELINE:-0} == 1 ]]; then STEPS=$BASELINE; fi
mkdir -p "$STEPS_DIR"
# loadgen, closed loop, 50 connections, N calls in flight.
loadgen_args() { # in-flight label
    echo --qps max --connections "$CONNS" --in-flight "$1" --duration "${SECS}s" --warmup 1s --out-dir "$WORK/$2" --label "$2"
}
report_of() { ls "$WORK/$1"/*-"$1".json; } # label -> loadgen's JSON report
completed() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["completed"])' "$(report_of "$1")"; }
sent_total() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["sent_total"])' "$(report_of "$1")"; }
# Instructions in the reactor thread's loop (Reactor::run, inclusive): the
# per-call work without the process's start-up (option tables, admin pages).
reactor_ir() {
    [[ $TOOL == callgrind ]] || { echo ""; return; }
    callgrind_annotate --inclusive=yes "$WORK/$1.callgrind" 2>/dev/null |
        awk '/Reactor::run \[/ {gsub(",", "", $1); print $1; exit}' || true
}

# --------------------------------------------------------- 1. the server
SERVER_CALLS=
SERVER_SENT=
if [[ $ONLY == all ]]; then
    PORT=$(free_port)
    log "server: echo-provider under $TOOL, loaded by the engine for ${SECS}s"
    profiled server "$BIN/echo-provider" -i "$(provider_conf "$PORT")" >"$WORK/server.log" 2>&1 &
    SERVER=$!
    PIDS+=($SERVER)
    wait_port "$PORT" 60 || { cat "$WORK/server.log"; die "echo-provider did not start"; }
    # shellcheck disable=SC2046
    "$BIN/loadgen" --addr "127.0.0.1:$PORT" --client raw $(loadgen_args $((CONNS * DEPTH)) server) >"$WORK/server-load.txt"
    kill -INT "$SERVER"
    wait "$SERVER" || true
    SERVER_CALLS=$(completed server)
    SERVER_SENT=$(sent_total server)
fi

# --------------------------------------------------------- 2. the clients
PORT=$(free_port)
"$BIN/echo-provider" -i "$(provider_conf "$PORT")" >"$WORK/plain.log" 2>&1 &
PIDS+=($!)
wait_port "$PORT" || die "echo-provider did not start"
# label client(channel|raw) in-flight
CLIENTS=("channel-p$DEPTH channel $((CONNS * DEPTH))" "channel-c1 channel $CONNS"
    "engine-p$DEPTH raw $((CONNS * DEPTH))" "engine-c1 raw $CONNS")
SPECS=()
for c in "${CLIENTS[@]}"; do
    read -r label client inflight <<<"$c"
    log "client: loadgen --client $client, $CONNS × $((inflight / CONNS)), under $TOOL for ${SECS}s"
    # shellcheck disable=SC2046
    (profiled "$label" "$BIN/loadgen" --addr "127.0.0.1:$PORT" --client "$client" $(loadgen_args "$inflight" "$label") >"$WORK/$label.txt")
    kind=$([[ $client == channel ]] && echo channel || echo engine)
    SPECS+=("$kind $CONNS×$((inflight / CONNS))=$kind:$WORK/$label.callgrind:$(report_of "$label")")
done
if [[ $TOOL == callgrind ]]; then
    python3 scripts/profile_steps.py steps "$STEPS" "${SPECS[@]}"
fi

# --------------------------------------------------------- report
COMMIT=$GIT_COMMIT
DIRTY=$([[ $GIT_DIRTY == true ]] && echo " (with uncommitted changes)" || true)
per_call() { python3 -c "import sys; a,b=sys.argv[1:]; print(f'{int(a)/max(1,int(b)):,.0f}' if a and b else 'n/a')" "$1" "$2"; }
{
    echo "# Profile: where the instructions go (64-byte echo)"
    echo
    echo "Written by \`scripts/profile.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC') at commit \`$COMMIT\`$DIRTY;"
    echo "$(machine_line). Profiler: $TOOL"
    echo "($([[ $TOOL == callgrind ]] && echo 'no hardware counters here, so instructions are counted by valgrind: rates under it are ~50× lower than real and are not throughput figures' || echo 'perf, hardware cycles'))."
    echo "Our provider ran $REACTORS reactor thread(s); $CONNS connections, closed loop, ${SECS} s per profile."
    echo
    if [[ $ONLY == all ]]; then
        echo "## 1. The server (echo-provider, loaded by loadgen's engine, $DEPTH calls in flight per connection)"
        echo
        echo "Calls answered in the measured window: $SERVER_CALLS; instructions per call (whole process, warm-up and start-up included, so an upper bound): $(per_call "$(total_ir server)" "$SERVER_CALLS")."
        echo "The reactor thread alone (its loop, \`Reactor::run\` inclusive; no start-up), per call sent in all (warm-up included, $SERVER_SENT): $(per_call "$(reactor_ir server)" "$SERVER_SENT") instructions."
        echo
        echo '```'
        top server
        echo '```'
        echo
    fi
    echo "## 2. The client: the framework's \`Channel\` and loadgen's engine"
    echo
    echo "loadgen under the profiler, against an unprofiled provider. Instructions per call sent"
    echo "(warm-up and start-up included), by step of the call path: inclusive counts of the functions"
    echo "that make up each step (see scripts/profile_steps.py); \"before\" is"
    echo "\`$BASELINE\`, an earlier run of this script (AS_BASELINE=1)."
    echo
    if [[ $TOOL == callgrind ]]; then
        # A baseline run is shown alone.
        python3 scripts/profile_steps.py table "$([[ $STEPS == "$BASELINE" ]] && echo none || echo "$BASELINE")" "$STEPS"
    else
        echo "(per-step counts need callgrind)"
    fi
    echo "### The Channel at $CONNS × $DEPTH, top functions (exclusive)"
    echo
    echo '```'
    top "channel-p$DEPTH"
    echo '```'
    echo
    echo "### The engine at $CONNS × 1, top functions (exclusive)"
    echo
    echo '```'
    top engine-c1
    echo '```'
    echo
    echo "Took $(($(date +%s) - T0)) s."
} >"$OUT"
echo "wrote $OUT and $STEPS"
