#!/usr/bin/env bash
# The seed's demo, end to end on this machine: a real ZooKeeper, the
# `provider` (UserServiceRpc + FriendServiceRpc) registering in it, and the
# `consumer` finding the provider through ZooKeeper and calling all three
# methods. Everything runs on 127.0.0.1 and is stopped at the end.
#
# With --gateway: three processes instead of two. The `gateway` example
# (GatewayServiceRpc) registers in the same ZooKeeper and finds the provider
# there; `consumer --gateway` finds the gateway there and calls GetUserPage,
# which the gateway answers by calling Login and GetFriendsList on the
# provider at once and merging the answers.
#
# Usage: scripts/demo.sh [--gateway]     (after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

gateway=false
case ${1:-} in
    "") ;;
    --gateway) gateway=true ;;
    *) die "usage: scripts/demo.sh [--gateway]" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/mprpc-demo.XXXXXX")
export MPRPC_ZK_STATE=$work/zk
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
    scripts/zk.sh stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== building the examples =="
cargo build --quiet -p mprpc-examples --bins
BIN=${CARGO_TARGET_DIR:-target}/debug

echo "== starting ZooKeeper =="
zk=$(scripts/zk.sh start | tail -n 1)
zk_port=${zk##*:}

# The seed's config FILE, pointed at this ZooKeeper and a free RPC port.
write_conf() { # file template
    sed -e "s/^rpcserverport=.*/rpcserverport=$(free_port)/" \
        -e "s/^zookeeperport=.*/zookeeperport=$zk_port/" "$2" > "$1"
    echo "log_dir=$work/logs" >> "$1"
    echo "zk_session_timeout_ms=4000" >> "$1"
    echo "--- $1"; cat "$1"; echo "---"
}

# Starts $BIN/NAME -i CONF in the background, output in
# $work/NAME.out, and waits until it serves; sets STARTED_PID.
start_server() { # name conf
    local out=$work/$1.out
    "$BIN/$1" -i "$2" > "$out" 2>&1 &
    STARTED_PID=$!
    pids+=("$STARTED_PID")
    for _ in $(seq 1 100); do
        grep -q "RpcProvider start service" "$out" 2>/dev/null && break
        kill -0 "$STARTED_PID" 2>/dev/null || { cat "$out"; echo "$1 exited"; exit 1; }
        sleep 0.1
    done
    cat "$out"
}

conf=$work/test.conf
write_conf "$conf" examples/test.conf
echo "== provider -i test.conf =="
start_server provider "$conf"
provider_pid=$STARTED_PID
shown=$(wc -l < "$work/provider.out")

if $gateway; then
    gateway_conf=$work/gateway.conf
    write_conf "$gateway_conf" examples/gateway.conf
    echo "== gateway -i gateway.conf =="
    start_server gateway "$gateway_conf"
    echo "== consumer --gateway -i test.conf =="
    "$BIN/consumer" --gateway -i "$conf"
else
    echo "== consumer -i test.conf =="
    "$BIN/consumer" -i "$conf"
fi

echo "== stopping the provider (graceful: deregister, drain, close) =="
kill -TERM "$provider_pid"
wait "$provider_pid" || true
echo "--- what the provider printed meanwhile:"
tail -n +$((shown + 1)) "$work/provider.out" || true
echo "demo finished"
