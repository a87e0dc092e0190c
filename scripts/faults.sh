#!/usr/bin/env bash
# Faults between machines (not a benchmark): ZooKeeper, two or three echo
# providers and a consumer (loadgen) each in its own network namespace on a
# private bridge (scripts/netns.sh), while links are cut (both ways or one
# way), lose packets or are relayed with added delay (delay-relay), and
# healed; providers restart gracefully in between. The keepalive-*
# scenarios give the consumer short keepalive settings (pings, TCP keepalive,
# TCP_USER_TIMEOUT; loadgen --channel-option) and a long deadline, and check
# that a connection to a cut provider is declared dead within the bound
# those settings give (the consumer's connections counted with ss).
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
    loss-1 loss-10 delay-20ms ensemble-leader-isolated keepalive-ping keepalive-tcp keepalive-idle)

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
EXPECT[delay-20ms]="Every call ok, p50 at least 40 ms (two relayed legs) and below the deadline; the rate is held (in-flight calls grow to rate × 40 ms); the restart fails nothing. Calls slower than the two legs (over 50 ms) have two causes. Connection setup, for the first few calls only: the consumer opens its connections on demand, and a new connection is relayed only once the relay has accepted it, started a thread for it, connected upstream and started a reader and a writer thread per direction (the 20 ms count from its first read); on a busy machine each of those waits for a CPU. Seen in one short run: the first 5 calls took 52-76 ms (request legs 29-52 ms), from the 6th on (46 ms into the load) 40-45 ms; without the relay the first calls of other scenarios take 4-10 ms more than the rest. And CPU starvation, in bursts anywhere in the run when the machine's two cores are saturated: the relay hands each chunk from a reader to a writer thread per direction (four thread wake-ups per call, sixteen threads for four connections), so a busy machine delays a relayed call more than a direct one. Evidence (one run on 2026-12-04 with these scripts, main at 453e839 plus the sampling, beside a release build of the workspace, right after loss-10 as in a full run): 228 calls over 50 ms, 71 of them sent in the first 2 s; the calls of the first 300 ms took 41-45 ms (the first 41.7 ms: no setup cost this time); the slow ones came in bursts (1.4-1.7 s, 2.3-2.8 s) while the consumer's sender and I/O threads and the relay's threads each waited 40-220 ms per 100 ms for a CPU (schedstat) and all processes together used both cores; 98% of the slow calls spanned a wait of 5 ms or more for a CPU by a consumer or relay thread, against 22% of the others. So a run with many slow calls in its first 2 s (141 in one earlier run on a loaded machine, its data not kept) most likely had a burst of starvation there: setups account for a handful. The report repeats these figures for each run (the first 10 calls' latencies, calls over 50 ms, first 2 s and after, how many spanned a CPU wait; CPU taken by the machine, consumer, relays, ZooKeeper). Not checked: a figure of the machine."
TITLE[ensemble-leader-isolated]="3-server ZooKeeper ensemble: its leader cut off from the other two (both ways); p2 restarts gracefully while it is; healed"
EXPECT[ensemble-leader-isolated]="The majority elects a new leader; sessions on the old leader move to it before they expire, so p1 (not restarted) never leaves the registry; p2's restart deregisters and registers it through the majority; calls never depend on ZooKeeper, so none fails. After the heal the registry holds exactly one node per live provider, each with that process's pid: no duplicate, no orphan of a stopped process or an expired session."

# The keepalive scenarios: the consumer's calls have a long deadline
# (KA_DEADLINE_MS), so a connection found dead by a ping or by the kernel
# (within the bound each states, far below it) is told apart from calls
# that just waited theirs out; ejection is off (eject_after_timeouts=0: it
# needs deadlines to pass) and connects time out in 500 ms.
KA_DEADLINE_MS=5000
KA_COMMON="a cut link to p1 (both providers in ZooKeeper), at a steady rate, the consumer's calls with a ${KA_DEADLINE_MS} ms deadline, ejection off (eject_after_timeouts=0), connect_timeout_ms=500"
TITLE[keepalive-ping]="keepalive pings: p1's packets to the consumer dropped (one way: requests arrive and run, replies and ACKs do not) with calls in flight; ping_interval_ms=500, ping_timeout_ms=500; $KA_COMMON; healed"
EXPECT[keepalive-ping]="Each of the consumer's connections to p1 reads nothing after the cut while calls are in flight on it: it is pinged 500 ms after it last read and declared dead 500 ms later (interval + timeout: 1.0 s of the cut), closed, its calls in flight failing Unavailable (they ran: 'ran, failed') and none waiting out its 5 s deadline: no DeadlineExceeded, the last failure's outcome and the end of the consumer's established connections to p1 (ss, every 0.1 s) within 1.0 s plus the margin of the cut. Then every call goes to p2: p1 is backed off, and a reconnect to it (its SYN-ACK is lost) times out in 500 ms and its calls are retried on p2, ok. After the heal p1 serves again within 5 s (back-off at most 2 s)."
TITLE[keepalive-tcp]="TCP_USER_TIMEOUT: the consumer and p1 cut off from each other (both ways) with calls in flight; pings off (ping_interval_ms=0), tcp_user_timeout_ms=1000; $KA_COMMON; healed"
EXPECT[keepalive-tcp]="The requests sent on p1's connections after the cut are never acknowledged; the consumer's kernel drops each connection once TCP_USER_TIMEOUT (1 s) has passed since its first retransmission, which comes one retransmission timeout (RTO: 200 ms at least, a little more with the measured RTT; a tail loss probe may go first) after the first unacknowledged request: so about 1.2-1.3 s after the cut (seen at the first run: the failed call sent first after the cut answered after 1,225 ms). The client sees the error and fails the calls in flight on it Unavailable, none waiting out its 5 s deadline: no DeadlineExceeded, the last failure's outcome and the end of the established connections to p1 (ss every 0.1 s) within 1.5 s (1 s plus 0.5 s for the first RTO) plus the margin of the cut. Then every call goes to p2 (reconnects to p1 time out in 500 ms, their calls retried on p2); after the heal p1 serves again within 5 s."
TITLE[keepalive-idle]="TCP keepalive on idle connections: a call every 2 s (one to p1 every 4 s, each of its two connections idle 8 s between calls; the cut falls 2 s before p1's next call), the consumer and p1 cut off from each other (both ways); pings off, tcp_keepalive_ms=300, tcp_user_timeout_ms=1000; $KA_COMMON; healed"
EXPECT[keepalive-idle]="An idle connection to p1 sends keepalive probes (after 300 ms idle, then every 100 ms) that go unanswered; the consumer's kernel drops it once nothing was acknowledged for 1 s with a probe out: about 1.0-1.1 s after the cut (its last probe acknowledged just before). (At this rate no call should fall in that second; if one does,) a connection that is sent a call meanwhile has data out instead, and is dropped 1 s after that data's first retransmission (as in keepalive-tcp: about 1.2 s after the call, so up to 2.4 s after the cut). So the established connections to p1 end within 2.5 s plus the margin of the cut, and no call waits out its 5 s deadline: a call sent on a connection not yet dropped fails Unavailable, a later one finds no connection to p1, its connect times out in 500 ms and it is retried on p2 (ok); no DeadlineExceeded and at most 2 calls fail (one per connection). After the heal p1 serves again within 9 s (5 s, plus the 4 s between calls to it)."

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

declare -A ZK_PID
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
    ZK_PID[$node]=$NET_SPAWNED
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

# The consumer's established TCP connections to NODE's RPC port, counted
# every 50 ms from inside its namespace (/proc/net/tcp there: no process
# started per sample, so the figure lags a close by 50 ms, not by the time
# `ip netns exec ss` takes on a loaded machine): epoch ms, count.
poll_conns() { # node
    local hex
    hex=$(printf '%02X' $(tr . ' ' <<<"$(net_ip "$1")") | sed -E 's/(..)(..)(..)(..)/\4\3\2\1/'):$(printf '%04X' "$RPC_PORT")
    net_spawn c python3 -u -c '
import sys, time
peer, out = sys.argv[1], open(sys.argv[2], "a", buffering=1)
while True:
    with open("/proc/net/tcp") as f:
        n = sum(1 for line in f.readlines()[1:] if line.split()[2] == peer and line.split()[3] == "01")
    out.write(f"{time.time() * 1000:.0f},{n}\n")
    time.sleep(0.05)
' "$hex" "$OUT_SCEN/conns-$1.csv" 2>/dev/null
    PIDS+=("$NET_SPAWNED")
    CONN_POLLER_PID=$NET_SPAWNED
}

# Per scenario: the consumer's rate, deadline and channel options
# (loadgen --channel-option KEY=VALUE), reset before each scenario; a
# scenario that changes them records them in params.json for the report.
scenario_params() {
    SC_RATE=$RATE
    SC_DEADLINE_MS=$DEADLINE_MS
    SC_CHANNEL_OPTS=()
}

# Starts the consumer: open loop at SC_RATE for SECONDS, every call in the ledger.
consumer_start() { # seconds
    local opt opts=()
    for opt in "${SC_CHANNEL_OPTS[@]}"; do opts+=(--channel-option "$opt"); done
    # loadgen ends on its own (duration, then at most a deadline of drain);
    # the watchdog bounds the scenario even if it did not.
    net_spawn c timeout --signal=KILL $(($1 + 60)) "$BIN/loadgen" --zk "$ZK" --zk-session-timeout "${SESSION_MS}ms" \
        --service EchoService --method Echo --qps "$SC_RATE" --warmup 0s --duration "$1s" \
        --timeout "${SC_DEADLINE_MS}ms" --connections 2 --payload 64 "${opts[@]}" \
        --ledger "$OUT_SCEN/ledger.csv" --label "$SCENARIO" --no-write \
        >"$OUT_SCEN/loadgen.out" 2>&1
    CONSUMER_PID=$NET_SPAWNED
    PIDS+=("$NET_SPAWNED")
    # How long the consumer's threads wait for a CPU (see faults_report.py).
    python3 scripts/schedstat.py "$CONSUMER_PID" loadgen "$OUT_SCEN/consumer-sched.csv" &
    PIDS+=($!)
    T0=$(date +%s.%N)
    event "load starts: $SC_RATE calls/s for $1 s"
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
    local node pid
    sleep 1 # a last registry poll
    for pid in "$POLLER_PID" ${CONN_POLLER_PID:-}; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    CONN_POLLER_PID=
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
        # How long the relay's threads wait for a CPU: a call slower than
        # its two 20 ms legs was held up here or in the consumer.
        python3 scripts/schedstat.py "$NET_SPAWNED" delay-relay "$OUT_SCEN/relay-$node-sched.csv" 50 &
        PIDS+=($!)
        net_redirect "$node" c "$RPC_PORT" $((RPC_PORT + 1))
    done
    # And the CPU ZooKeeper's JVM takes meanwhile (it started seconds ago),
    # and the whole machine's (busy time of all cores from /proc/stat, in
    # the same columns: epoch_ms,thread,cpu_ns,wait_ns).
    python3 scripts/schedstat.py "${ZK_PID[zk]}" java "$OUT_SCEN/zk-sched.csv" 100 &
    PIDS+=($!)
    python3 -c '
import os, sys, time
tick = 1e9 / os.sysconf("SC_CLK_TCK")
with open(sys.argv[1], "w", buffering=1) as out:
    out.write("epoch_ms,thread,cpu_ns,wait_ns\n")
    for _ in range(int(sys.argv[2]) * 10):
        f = open("/proc/stat").readline().split()[1:]
        busy = sum(int(x) for i, x in enumerate(f) if i not in (3, 4))
        out.write(f"{time.time() * 1000:.0f},all,{busy * tick:.0f},0\n")
        time.sleep(0.1)
' "$OUT_SCEN/machine-sched.csv" $((10 * U + 15)) &
    PIDS+=($!)
    event "20 ms each way between c and p1, p2 (delay-relay)"
    consumer_start $((10 * U))
    at $((5 * U)); provider_restart p2
    consumer_wait
}

# run_keepalive RATE CUT OPTION...: consumer c with these channel options
# (and a KA_DEADLINE_MS deadline) at RATE; at 2U p1's link to c is cut
# (CUT: both or oneway), at 6U healed.
run_keepalive() {
    SC_RATE=$1
    local cut=$2
    shift 2
    SC_DEADLINE_MS=$KA_DEADLINE_MS
    SC_CHANNEL_OPTS=(eject_after_timeouts=0 connect_timeout_ms=500 "$@")
    printf '{"deadline_ms": %s, "rate": %s, "channel_options": "%s"}\n' \
        "$SC_DEADLINE_MS" "$SC_RATE" "${SC_CHANNEL_OPTS[*]}" >"$OUT_SCEN/params.json"
    network_up
    poll_conns p1
    consumer_start $((10 * U))
    # The cut's event once its rules are in: the bounds count from it.
    at $((2 * U))
    if [[ $cut == oneway ]]; then
        net_cut p1 c oneway
        event "cut p1 to c (one way)"
    else
        net_cut c p1
        event "cut c from p1"
    fi
    at $((6 * U)); event "heal p1-c"; net_heal p1; net_heal c
    consumer_wait
}
run_keepalive-ping() { run_keepalive "$RATE" oneway ping_interval_ms=500 ping_timeout_ms=500; }
run_keepalive-tcp() { run_keepalive "$RATE" both ping_interval_ms=0 tcp_user_timeout_ms=1000; }
run_keepalive-idle() {
    run_keepalive 0.5 both ping_interval_ms=0 tcp_keepalive_ms=300 tcp_user_timeout_ms=1000
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
    scenario_params
    started=$(date +%s)
    "run_$SCENARIO"
    network_down
    echo $(($(date +%s) - started)) >"$OUT_SCEN/seconds.txt"
    python3 scripts/faults_report.py check "$OUT" "$SCENARIO" >&2 || true
done

log "report"
python3 scripts/faults_report.py report "$OUT" "$REPORT"
