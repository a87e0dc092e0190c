#!/usr/bin/env bash
# The seed's demo, end to end on this machine: a real ZooKeeper, the
# `provider` (UserServiceRpc + FriendServiceRpc) registering in it, and the
# `consumer` finding the provider through ZooKeeper and calling all three
# methods. Everything runs on 127.0.0.1 and is stopped at the end.
#
# Usage: scripts/demo.sh            (after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

work=$(mktemp -d "${TMPDIR:-/tmp}/mprpc-demo.XXXXXX")
export MPRPC_ZK_STATE=$work/zk
provider_pid=""
cleanup() {
    [[ -n $provider_pid ]] && kill "$provider_pid" 2>/dev/null && wait "$provider_pid" 2>/dev/null || true
    scripts/zk.sh stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== building the examples =="
cargo build --quiet -p mprpc-examples --bins

echo "== starting ZooKeeper =="
zk=$(scripts/zk.sh start | tail -n 1)
zk_port=${zk##*:}
rpc_port=$(free_port)

# The seed's test.conf, pointed at this ZooKeeper and a free RPC port.
conf=$work/test.conf
sed -e "s/^rpcserverport=.*/rpcserverport=$rpc_port/" \
    -e "s/^zookeeperport=.*/zookeeperport=$zk_port/" examples/test.conf > "$conf"
echo "log_dir=$work/logs" >> "$conf"
echo "zk_session_timeout_ms=4000" >> "$conf"
echo "--- $conf"; cat "$conf"; echo "---"

echo "== provider -i test.conf =="
target/debug/provider -i "$conf" > "$work/provider.out" 2>&1 &
provider_pid=$!
for _ in $(seq 1 100); do
    grep -q "RpcProvider start service" "$work/provider.out" 2>/dev/null && break
    kill -0 "$provider_pid" 2>/dev/null || { cat "$work/provider.out"; echo "provider exited"; exit 1; }
    sleep 0.1
done
cat "$work/provider.out"
shown=$(wc -l < "$work/provider.out")

echo "== consumer -i test.conf =="
target/debug/consumer -i "$conf"

echo "== stopping the provider (graceful: deregister, drain, close) =="
kill -TERM "$provider_pid"
wait "$provider_pid" || true
provider_pid=""
echo "--- what the provider printed meanwhile:"
tail -n +$((shown + 1)) "$work/provider.out" || true
echo "demo finished"
