#!/usr/bin/env bash
# Runs a standalone Apache ZooKeeper (Debian's `zookeeper` package) for demos.
#
#   scripts/zk.sh start [PORT]   start on 127.0.0.1 (a free port if none given),
#                                wait until it serves, print the connect string
#   scripts/zk.sh stop           stop it and remove its data dir
#   scripts/zk.sh status         print the connect string and mode, or "stopped"
#
# State lives in $MPRPC_ZK_STATE (default: ${TMPDIR:-/tmp}/mprpc-zk-$USER):
# zoo.cfg, data/, zk.log, zk.pid and zk.port. tickTime=500 keeps session
# timeouts short (1 s minimum) so a killed provider disappears quickly.
set -euo pipefail

STATE=${MPRPC_ZK_STATE:-${TMPDIR:-/tmp}/mprpc-zk-${USER:-$(id -un)}}
CLASSPATH=${MPRPC_ZK_CLASSPATH:-/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar}

die() { echo "zk.sh: $*" >&2; exit 1; }

# Sends a four-letter word to 127.0.0.1:$1 and prints the answer.
four_letter() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && printf '$2' >&3 && cat <&3" 2>/dev/null || true
}

free_port() {
    # Bind port 0, read the port the kernel chose, close.
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null \
        || shuf -i 20000-60000 -n 1
}

running() {
    [[ -f $STATE/zk.pid ]] && kill -0 "$(cat "$STATE/zk.pid")" 2>/dev/null
}

start() {
    running && die "already running on 127.0.0.1:$(cat "$STATE/zk.port") (pid $(cat "$STATE/zk.pid"))"
    command -v java >/dev/null || die "java not found; install the zookeeper package (apt-get install -y zookeeper)"
    [[ -f /usr/share/java/zookeeper.jar || -n ${MPRPC_ZK_CLASSPATH:-} ]] \
        || die "/usr/share/java/zookeeper.jar missing; install the zookeeper package (apt-get install -y zookeeper)"
    local port=${1:-$(free_port)}
    [[ $port =~ ^[0-9]+$ ]] || die "bad port '$port'"
    rm -rf "$STATE"
    mkdir -p "$STATE/data"
    cat >"$STATE/zoo.cfg" <<CFG
tickTime=500
dataDir=$STATE/data
clientPort=$port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=srvr,ruok
forceSync=no
maxClientCnxns=0
CFG
    nohup java -Xmx128m -XX:+UseSerialGC -Dzookeeper.root.logger=INFO,CONSOLE \
        "-Dzookeeper.log.dir=$STATE" -cp "$CLASSPATH" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$STATE/zoo.cfg" \
        >"$STATE/zk.log" 2>&1 </dev/null &
    echo $! >"$STATE/zk.pid"
    echo "$port" >"$STATE/zk.port"
    for _ in $(seq 1 200); do
        if four_letter "$port" srvr | grep -q '^Mode:'; then
            echo "127.0.0.1:$port"
            return 0
        fi
        running || { tail -20 "$STATE/zk.log" >&2; die "ZooKeeper exited during startup"; }
        sleep 0.1
    done
    tail -20 "$STATE/zk.log" >&2
    stop >/dev/null
    die "ZooKeeper not serving on 127.0.0.1:$port after 20 s"
}

stop() {
    if running; then
        local pid
        pid=$(cat "$STATE/zk.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        echo "stopped"
    else
        echo "not running"
    fi
    rm -rf "$STATE"
}

status() {
    if running; then
        local port mode
        port=$(cat "$STATE/zk.port")
        mode=$(four_letter "$port" srvr | sed -n 's/^Mode: //p')
        echo "127.0.0.1:$port ${mode:-not serving} (pid $(cat "$STATE/zk.pid"))"
    else
        echo "stopped"
        return 1
    fi
}

case ${1:-} in
    start) start "${2:-}" ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start [PORT] | stop | status" >&2; exit 2 ;;
esac
