#!/usr/bin/env bash
# Faults between machines (not a benchmark): ZooKeeper, two or three echo
# providers and a consumer (loadgen) each in its own network namespace on a
# private bridge (scripts/netns.sh), while links are cut (both ways or one
# way), lose packets or are relayed with added delay (delay-relay), and
# healed; providers restart gracefully in between.
#
#   scripts/faults.sh                  every scenario, writes results/FAULTS.md
#   scripts/faults.sh NAME...          only these scenarios (see --list)
#   scripts/faults.sh --short [NAME...]  shorter timings, into a scratch dir
#                                      (default scenario: provider-zk-partition)
#   scripts/faults.sh --list           the scenarios and what they expect
#
# Every call is accounted for: loadgen --ledger numbers each call and records
# its one outcome; each provider (echo-provider --handler-ledger) records the
# numbers its handler ran. scripts/faults_report.py joins them after each
# scenario and checks: every call has exactly one outcome, none arrived later
# than its deadline (DEADLINE_MS) plus MARGIN_MS, no handler ran twice for one
# call (the client retries only requests it could not send, so none may), no
# call was answered ok without a handler run, and the scenario's own
# expectations. It exits 1 if any check failed (the report says which).
#
# Needs root, `ip netns` and nftables; otherwise it says why and exits 0
# (skipped). Everything it creates (namespaces, links, rules, processes) is
# removed on exit, also on failure or Ctrl-C.
#
# Knobs (environment): RATE (calls/s, 200), DEADLINE_MS (1000), MARGIN_MS
# (200), SESSION_MS (ZooKeeper session timeout of providers and consumer,
# 3000), FAULTS_OUT (where scenario data and FAULTS.md go), BIN_DIR (use
# these binaries, no build), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh
# shellcheck source=netns.sh
source scripts/netns.sh

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/{/^set -euo/d; s/^# \{0,1\}//; p}' "$0"
    exit 0
fi
SHORT=0
if [[ ${1:-} == --short ]]; then
    SHORT=1
    shift
fi
RATE=${RATE:-200}
DEADLINE_MS=${DEADLINE_MS:-1000}
MARGIN_MS=${MARGIN_MS:-200}
SESSION_MS=${SESSION_MS:-3000}
if ((SHORT)); then
    SESSION_MS=${SESSION_MS_SHORT:-2000}
    RATE=${RATE_SHORT:-100}
fi
# Timeline unit (seconds): the short mode halves the waits.
U=$((SHORT ? 1 : 2))
RPC_PORT=7100
CLASSPATH=${MPRPC_ZK_CLASSPATH:-/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar}

# ------------------------------------------------------------------ scenarios
# Each: a line of what it does, the expected behaviour (written into the
# report and checked there), and a function run_<name> driving it.
declare -A TITLE EXPECT
SCENARIOS=(provider-zk-partition consumer-zk-partition provider-link-cut provider-link-oneway
    loss-1 loss-10 delay-20ms ensemble-leader-isolated)

TITLE[provider-zk-partition]="provider p1 cut off from ZooKeeper (both ways) past its session timeout, still reachable by the consumer; healed; then p2 restarts gracefully"
EXPECT[provider-zk-partition]="No call fails: p1 keeps serving the calls sent to it, and once its session expires (within the session timeout plus 2 s of the cut) ZooKeeper drops its node and the consumer sends everything to p2. After the heal p1 opens a new session and registers again (within 5 s plus a session timeout) and serves calls again; p2's graceful restart (deregister, drain, stop, start) fails nothing."
TITLE[consumer-zk-partition]="consumer cut off from ZooKeeper (both ways) past its session timeout while p2 restarts gracefully, a new provider p3 starts and p1 stops for good; healed"
EXPECT[consumer-zk-partition]="The consumer keeps calling from its cached list (p1, p2): a call that finds p2 restarting or p1 gone fails to connect and is retried on the other (the client retries a request it could not send), so at most the calls in flight on a provider's connections as it closes may fail (5 allowed). It cannot see p3 until the heal; after it, it sees the registry again and p3 serves calls within 5 s plus a session timeout; p1, stopped, is not registered at the end."
TITLE[provider-link-cut]="consumer and p1 cut off from each other (both ways), both still in ZooKeeper; healed; then p1 restarts gracefully"
EXPECT[provider-link-cut]="Failover: calls to p1 time out (DeadlineExceeded, each within its deadline plus the margin) until the client ejects p1: once 3 calls in a row on one of its connections pass their deadline with nothing read (eject_after_timeouts), about one deadline after the cut; then every call goes to p2. Wanted: failures stop within 2 deadlines of the cut. While ejected p1 gets no calls; after a back-off (100 ms doubling to 2 s) the client probes it on a fresh connection (connect and a probe request, within connect_timeout, 2 s). After the heal the next probe is answered and p1 serves calls again within 5 s. A call's outcome may be a timeout while its handler still ran later (the request was queued in TCP): counted as 'ran, failed', not a violation."
TITLE[provider-link-oneway]="p1's packets to the consumer dropped (one way: requests arrive, replies do not); healed"
EXPECT[provider-link-oneway]="As a both-ways cut seen from the consumer: calls to p1 time out until the client ejects p1 (3 timeouts in a row on a connection with nothing read; wanted: failures stop within 2 deadlines); their handlers did run ('ran, failed'). Probes (fresh connections) fail while replies are lost (p1's SYN-ACK is); after the heal the next probe is answered and p1 serves again within 5 s."
TITLE[loss-1]="1% of packets dropped both ways between the consumer and both providers (from 1 s into the load) at a steady rate; p2 restarts gracefully meanwhile"
EXPECT[loss-1]="Deadlines honoured (no outcome later than deadline plus margin); TCP retransmits the lost packets (200 ms or more each), so p99 grows; at least 99% of calls ok; the restart fails nothing beyond that."
TITLE[loss-10]="10% of packets dropped both ways between the consumer and both providers (from 1 s into the load) at a steady rate"
EXPECT[loss-10]="Deadlines honoured; retransmissions (and their exponential back-off) stretch p99 towards the deadline and some calls time out; at least 90% of calls ok; the throughput and p99 are reported. How calls fail here: when one segment of a connection is lost again and again, TCP's retransmission timeout doubles each time (200, 400, 800 ms...) and every reply behind it waits (head of line); the requests still arrive and run ('ran, failed'). The client learns of it only when the first call on that connection passes its deadline, and ejects the provider at the third: so a stall of a second or more fails about one deadline's worth of the calls sent on that connection (rate / 4 connections: about 50) and no more. Seen at bbba76d: 53 deadline_exceeded, all on one connection to p1, all ran within 0.2 ms of being sent, sent over 1.04 s up to the ejection."
TITLE[delay-20ms]="20 ms added each way between the consumer and both providers (delay-relay), at a steady rate; p2 restarts gracefully meanwhile"
EXPECT[delay-20ms]="Every call ok, p50 at least 40 ms (two relayed legs) and below the deadline; the rate is held (in-flight calls grow to rate × 40 ms); the restart fails nothing."
TITLE[ensemble-leader-isolated]="3-server ZooKeeper ensemble: its leader cut off from the other two (both ways); p2 restarts gracefully while it is; healed"
EXPECT[ensemble-leader-isolated]="The majority elects a new leader; sessions on the old leader move to it before they expire, so p1 (not restarted) never leaves the registry; p2's restart deregisters and registers it through the majority; calls never depend on ZooKeeper, so none fails. After the heal the registry holds exactly one node per live provider, each with that process's pid: no duplicate, no orphan of a stopped process or an expired session."

# ------------------------------------------------------------------ helpers
OUT_SCEN=
event() { # name: logged with the time, for the report's timeline
    printf '%s,%s\n' "$(date +%s%3N)" "$1" >>"$OUT_SCEN/events.csv"
    log "  $(date -u +%T) $1"
}
T0=0
at() { # seconds since the scenario's load started: sleeps until then
    # (sleep(1), not a Python sleep: Ctrl-C must end it, and so the script)
    sleep "$(awk -v t0="$T0" -v at="$1" -v now="$(date +%s.%N)" \
        'BEGIN { d = t0 + at - now; if (d < 0) d = 0; printf "%.3f", d }')"
}

# zk_config NODE ID SERVERS: zoo.cfg for a server at NODE's address; SERVERS
# lists "id=ip" for an ensemble (empty: standalone).
zk_start() { # node [myid ensemble-ips...]
    local node=$1 id=${2:-} dir="$WORK/$1"
    shift 2 || shift $#
    mkdir -p "$dir/data"
    cat >"$dir/zoo.cfg" <<CFG
tickTime=500
initLimit=10
syncLimit=4
dataDir=$dir/data
clientPort=2181
clientPortAddress=$(net_ip "$node")
admin.enableServer=false
4lw.commands.whitelist=srvr,ruok
forceSync=no
maxClientCnxns=0
CFG
    if [[ -n $id ]]; then
        echo "$id" >"$dir/data/myid"
        local i=1 ip
        for ip in "$@"; do
            echo "server.$i=$ip:2888:3888" >>"$dir/zoo.cfg"
            i=$((i + 1))
        done
    fi
    net_spawn "$node" java -Xmx96m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dzookeeper.root.logger=INFO,CONSOLE "-Dzookeeper.log.dir=$dir" -cp "$CLASSPATH" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >"$dir/zk.log" 2>&1 </dev/null
    PIDS+=("$NET_SPAWNED")
}
zk_mode() { # node: leader, follower, standalone, or nothing
    net_exec hub timeout 2 bash -c "exec 3<>/dev/tcp/$(net_ip "$1")/2181 && printf srvr >&3 && cat <&3" \
        2>/dev/null | sed -n 's/^Mode: //p' || true
}
zk_wait() { # node...: until each serves
    local node
    for node in "$@"; do
        for _ in $(seq 1 300); do
            [[ -n $(zk_mode "$node") ]] && continue 2
            sleep 0.1
        done
        tail -20 "$WORK/$node/zk.log" >&2
        die "ZooKeeper on $node not serving after 30 s"
    done
}

declare -A PROVIDER_PID
provider_start() { # node
    local node=$1 conf="$WORK/$1.conf"
    cat >"$conf" <<EOF
rpcserverip=$(net_ip "$node")
rpcserverport=$RPC_PORT
zookeeper=$ZK
zk_session_timeout_ms=$SESSION_MS
reactor_threads=1
drain_ms=500
log_dir=$WORK/$node-logs
log_level=info
EOF
    net_spawn "$node" "$BIN/echo-provider" -i "$conf" --handler-ledger "$OUT_SCEN/handler-$node.csv" \
        >>"$WORK/$node.out" 2>&1
    PROVIDER_PID[$node]=$NET_SPAWNED
    PIDS+=("$NET_SPAWNED")
    for _ in $(seq 1 100); do
        net_exec hub bash -c "exec 3<>/dev/tcp/$(net_ip "$node")/$RPC_PORT" 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$WORK/$node.out" >&2
    die "provider $node did not start"
}
# Graceful stop: SIGTERM (deregister, drain, close), then its ledger is written.
provider_stop() { # node
    local pid=${PROVIDER_PID[$1]}
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid"
        log "  $1 did not stop in 10 s: killed"
    fi
    wait "$pid" 2>/dev/null || true
}
provider_restart() { # node
    event "restart $1 (graceful)"
    provider_stop "$1"
    provider_start "$1"
    event "$1 back (pid ${PROVIDER_PID[$1]})"
}

# The registry seen from the hub every 0.5 s: epoch ms, then addr=pid per
# provider node of EchoService (or "error").
poll_registry() {
    (
        while :; do
            local now line
            now=$(date +%s%3N)
            if line=$(net_exec hub "$BIN/mprpc" --zk "$ZK" --timeout-ms 1500 ls EchoService 2>/dev/null); then
                printf '%s,%s\n' "$now" "$(sed -nE 's/^  provider ([^ ]+) .*pid=([0-9]+).*/\1=\2/p' <<<"$line" | tr '\n' ' ')"
            else
                printf '%s,error\n' "$now"
            fi
            sleep 0.5
        done
    ) >>"$OUT_SCEN/registry.csv" 2>/dev/null &
    PIDS+=($!)
    POLLER_PID=$!
}

# Starts the consumer: open loop at RATE for SECONDS, every call in the ledger.
consumer_start() { # seconds
    # loadgen ends on its own (duration, then at most a deadline of drain);
    # the watchdog bounds the scenario even if it did not.
    net_spawn c timeout --signal=KILL $(($1 + 60)) "$BIN/loadgen" --zk "$ZK" --zk-session-timeout "${SESSION_MS}ms" \
        --service EchoService --method Echo --qps "$RATE" --warmup 0s --duration "$1s" \
        --timeout "${DEADLINE_MS}ms" --connections 2 --payload 64 \
        --ledger "$OUT_SCEN/ledger.csv" --label "$SCENARIO" --no-write \
        >"$OUT_SCEN/loadgen.out" 2>&1
    CONSUMER_PID=$NET_SPAWNED
    PIDS+=("$NET_SPAWNED")
    # How long the consumer's threads wait for a CPU (see faults_report.py).
    python3 scripts/schedstat.py "$CONSUMER_PID" loadgen "$OUT_SCEN/consumer-sched.csv" &
    PIDS+=($!)
    T0=$(date +%s.%N)
    event "load starts: $RATE calls/s for $1 s"
}
# A failed consumer fails the scenario's checks, not the whole run.
consumer_wait() {
    if wait "$CONSUMER_PID"; then
        event "load ends"
    else
        tail -5 "$OUT_SCEN/loadgen.out" | tee "$OUT_SCEN/loadgen-failed.txt" >&2
        event "loadgen failed"
    fi
}

# A fresh network: hub, ZooKeeper (one server, or three with `ensemble`),
# providers p1 p2 (p3 is started by the scenario that needs it), consumer c.
network_up() { # [ensemble]
    net_up
    if [[ ${1:-} == ensemble ]]; then
        net_node zk1 2
        net_node zk2 3
        net_node zk3 4
        ZK_NODES=(zk1 zk2 zk3)
        local ips=(10.77.0.2 10.77.0.3 10.77.0.4)
        zk_start zk1 1 "${ips[@]}"
        zk_start zk2 2 "${ips[@]}"
        zk_start zk3 3 "${ips[@]}"
        ZK=10.77.0.2:2181,10.77.0.3:2181,10.77.0.4:2181
    else
        net_node zk 2
        ZK_NODES=(zk)
        zk_start zk
        ZK=10.77.0.2:2181
    fi
    net_node p1 11
    net_node p2 12
    net_node p3 13
    net_node c 21
    zk_wait "${ZK_NODES[@]}"
    provider_start p1
    provider_start p2
    poll_registry
    sleep 1 # both registrations land
}

# Stops the load's processes in order (providers gracefully, so their
# ledgers are written), records who is registered, then removes the network.
network_down() {
    local node
    sleep 1 # a last registry poll
    kill "$POLLER_PID" 2>/dev/null || true
    wait "$POLLER_PID" 2>/dev/null || true
    : >"$OUT_SCEN/providers-final.csv"
    for node in "${!PROVIDER_PID[@]}"; do
        if kill -0 "${PROVIDER_PID[$node]}" 2>/dev/null; then
            echo "$node,$(net_ip "$node"):$RPC_PORT,${PROVIDER_PID[$node]}" >>"$OUT_SCEN/providers-final.csv"
        fi
    done
    for node in "${!PROVIDER_PID[@]}"; do provider_stop "$node"; done
    PROVIDER_PID=()
    # The providers' logs, for a failed check's post-mortem.
    for node in p1 p2 p3; do
        [[ -d $WORK/$node-logs ]] || continue
        cat "$WORK/$node-logs"/* >"$OUT_SCEN/log-$node.txt" 2>/dev/null || true
        rm -rf "$WORK/$node-logs" "$WORK/$node.out"
    done
    net_down
}

# ------------------------------------------------------------------ the runs
run_provider-zk-partition() {
    network_up
    consumer_start $((12 * U))
    at $((2 * U)); event "cut p1 from zk"; net_cut p1 zk
    at $((6 * U)); event "heal p1-zk"; net_heal p1
    at $((9 * U)); provider_restart p2
    consumer_wait
}

run_consumer-zk-partition() {
    network_up
    consumer_start $((12 * U))
    at $((2 * U)); event "cut c from zk"; net_cut c zk
    at $((3 * U)); provider_restart p2
    at $((4 * U)); event "start p3"; provider_start p3; event "p3 up"
    at $((5 * U)); event "stop p1 for good (graceful)"; provider_stop p1
    at $((6 * U)); event "heal c-zk"; net_heal c
    consumer_wait
}

run_provider-link-cut() {
    network_up
    consumer_start $((12 * U))
    at $((2 * U)); event "cut c from p1"; net_cut c p1
    at $((6 * U)); event "heal c-p1"; net_heal c
    at $((9 * U)); provider_restart p1
    consumer_wait
}

run_provider-link-oneway() {
    network_up
    consumer_start $((10 * U))
    at $((2 * U)); event "cut p1 to c (one way)"; net_cut p1 c oneway
    at $((6 * U)); event "heal p1-c"; net_heal p1
    consumer_wait
}

run_loss() { # pct restart?
    network_up
    consumer_start $((10 * U))
    # Once the consumer is connected: its one probe call must not be the
    # one a lost SYN delays past the deadline.
    at 1
    event "loss $1% between c and p1, p2"
    net_loss c p1 "$1"
    net_loss c p2 "$1"
    if [[ $2 == restart ]]; then
        at $((5 * U))
        provider_restart p2
    fi
    consumer_wait
}
run_loss-1() { run_loss 1 restart; }
run_loss-10() { run_loss 10 none; }

run_delay-20ms() {
    network_up
    local node
    for node in p1 p2; do
        net_spawn "$node" "$BIN/delay-relay" --listen "0.0.0.0:$((RPC_PORT + 1))" \
            --to "$(net_ip "$node"):$RPC_PORT" --delay-ms 20 >>"$WORK/relay-$node.out" 2>&1
        PIDS+=("$NET_SPAWNED")
        net_redirect "$node" c "$RPC_PORT" $((RPC_PORT + 1))
    done
    event "20 ms each way between c and p1, p2 (delay-relay)"
    consumer_start $((10 * U))
    at $((5 * U)); provider_restart p2
    consumer_wait
}

run_ensemble-leader-isolated() {
    network_up ensemble
    local leader="" node
    for node in zk1 zk2 zk3; do
        if [[ $(zk_mode "$node") == leader ]]; then leader=$node; fi
    done
    [[ -n $leader ]] || die "no ZooKeeper leader found"
    consumer_start $((14 * U))
    at $((2 * U)); event "isolate leader $leader from the other two"
    for node in zk1 zk2 zk3; do [[ $node == "$leader" ]] || net_cut "$leader" "$node"; done
    at $((4 * U)); provider_restart p2
    at $((7 * U)); event "heal $leader"; net_heal "$leader"
    for _ in $(seq 1 100); do
        local modes=""
        for node in zk1 zk2 zk3; do modes+="$(zk_mode "$node") "; done
        [[ $(wc -w <<<"$modes") == 3 && $modes == *leader* ]] && break
        sleep 0.2
    done
    event "ensemble after the heal: $(for node in zk1 zk2 zk3; do printf '%s=%s ' "$node" "$(zk_mode "$node")"; done)"
    consumer_wait
}

# ------------------------------------------------------------------ main
if [[ ${1:-} == --list ]]; then
    for s in "${SCENARIOS[@]}"; do printf '%s\n  %s\n  expected: %s\n' "$s" "${TITLE[$s]}" "${EXPECT[$s]}"; done
    exit 0
fi
if (($#)); then
    CHOSEN=("$@")
elif ((SHORT)); then
    CHOSEN=(provider-zk-partition)
else
    CHOSEN=("${SCENARIOS[@]}")
fi
for s in "${CHOSEN[@]}"; do [[ -n ${TITLE[$s]:-} ]] || die "unknown scenario '$s' (see --list)"; done

why=$(net_unavailable)
if [[ -n $why ]]; then
    echo "$SCRIPT_NAME: skipped: $why" >&2
    exit 0
fi
for tool in python3 java; do command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs it)"; done

git_state
if [[ -n ${BIN_DIR:-} ]]; then
    BIN=$BIN_DIR
else
    build_release loadgen:loadgen loadgen:delay-relay mprpc-examples:echo-provider mprpc-cli:mprpc
    BIN=$RELEASE_DIR
fi
for b in loadgen delay-relay echo-provider mprpc; do [[ -x $BIN/$b ]] || die "$BIN/$b missing"; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mprpc-faults.XXXXXX")
PIDS=()
cleanup() {
    net_down
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n ${FAULTS_OUT:-} ]]; then
    OUT=$FAULTS_OUT
elif ((SHORT)); then
    OUT=$WORK/out
else
    OUT=results/faults
fi
REPORT=${FAULTS_REPORT:-$([[ $OUT == results/faults ]] && echo results/FAULTS.md || echo "$OUT/FAULTS.md")}
rm -rf "$OUT"
mkdir -p "$OUT"
machine_json "$OUT/run.json" \
    "command=scripts/faults.sh$( ((SHORT)) && printf ' --short')$( (($#)) && printf ' %s' "$@")" \
    "short=$( ((SHORT)) && echo true || echo false)" "rate=$RATE" "deadline_ms=$DEADLINE_MS" \
    "margin_ms=$MARGIN_MS" "session_ms=$SESSION_MS" "unit_s=$U" "load=$(cut -d' ' -f1-3 /proc/loadavg)"

for SCENARIO in "${CHOSEN[@]}"; do
    OUT_SCEN=$OUT/$SCENARIO
    mkdir -p "$OUT_SCEN"
    log "$SCENARIO: ${TITLE[$SCENARIO]}"
    printf '%s\n' "${TITLE[$SCENARIO]}" >"$OUT_SCEN/title.txt"
    printf '%s\n' "${EXPECT[$SCENARIO]}" >"$OUT_SCEN/expected.txt"
    : >"$OUT_SCEN/events.csv"
    started=$(date +%s)
    "run_$SCENARIO"
    network_down
    echo $(($(date +%s) - started)) >"$OUT_SCEN/seconds.txt"
    python3 scripts/faults_report.py check "$OUT" "$SCENARIO" >&2 || true
done

log "report"
python3 scripts/faults_report.py report "$OUT" "$REPORT"
