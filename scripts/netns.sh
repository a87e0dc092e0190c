# A private network of network namespaces for fault runs (sourced, not run;
# scripts/faults.sh and loadgen/tests/faults.rs use it).
#
# Each node (ZooKeeper server, provider, consumer) is a namespace with one
# veth link to a bridge in a hub namespace, on 10.77.0.0/24; nothing is
# routed to or from the machine's own network. Faults are nftables rules in
# a node's own table (`inet mprpc_faults`), each tagged with a comment so it
# can be removed on its own:
#   net_cut A B [oneway]    A and B cannot reach each other (oneway: A's
#                           packets to B are dropped, B's to A still pass)
#   net_loss A B PCT        a random PCT% of packets between A and B dropped
#                           (both directions)
#   net_redirect A B PORT TO  B's new TCP connections to A:PORT go to A:TO
#                           (a delay-relay listening there)
#   net_heal A [B]          every fault A's rules hold (towards B)
# net_exec runs a command in a node (net_spawn in the background).
# net_down removes everything (the processes in the namespaces, the
# namespaces, and so their links and rules); net_up arms it as an EXIT trap
# step through NET_CLEANUP, so a failed run leaves nothing behind.
#
# Names: namespaces are "mprpcf<ID>-<node>", links "vf<ID><node>"; <ID> is
# NET_ID (default: this shell's pid), so two runs never share a name.

NET_ID=${NET_ID:-$$}
NET_HUB=mprpcf$NET_ID-hub
NET_NODES=()
declare -A NET_IP=()

# Why this machine cannot run fault scenarios, or nothing if it can.
net_unavailable() {
    [[ $(id -u) == 0 ]] || { echo "not root (network namespaces and nftables need root)"; return; }
    command -v ip >/dev/null || { echo "ip (iproute2) not installed"; return; }
    command -v nft >/dev/null || { echo "nft (nftables) not installed"; return; }
    local probe=mprpcf$NET_ID-probe
    if ! ip netns add "$probe" 2>/dev/null; then
        echo "cannot create network namespaces (ip netns add failed)"
        return
    fi
    if ! ip netns exec "$probe" nft add table inet probe 2>/dev/null; then
        ip netns del "$probe" 2>/dev/null
        echo "nftables does not work in a network namespace (no nf_tables?)"
        return
    fi
    ip netns del "$probe"
}

# Creates the hub: a namespace holding the bridge, at 10.77.0.1 (tools run
# there reach every node).
net_up() {
    ip netns add "$NET_HUB"
    ip -n "$NET_HUB" link add br0 type bridge
    ip -n "$NET_HUB" addr add 10.77.0.1/24 dev br0
    ip -n "$NET_HUB" link set br0 up
    ip -n "$NET_HUB" link set lo up
    NET_IP[hub]=10.77.0.1
}

# net_node NAME HOST: namespace NAME at 10.77.0.HOST, linked to the bridge,
# with an empty fault table.
net_node() {
    local name=$1 host=$2 ns=mprpcf$NET_ID-$1 link=vf$NET_ID$1
    ip netns add "$ns"
    NET_NODES+=("$name")
    ip link add "$link" type veth peer name "${link}h"
    ip link set "$link" netns "$ns"
    ip link set "${link}h" netns "$NET_HUB"
    ip -n "$NET_HUB" link set "${link}h" master br0 up
    ip -n "$ns" link set "$link" name eth0
    ip -n "$ns" addr add "10.77.0.$host/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    ip netns exec "$ns" nft -f - <<NFT
table inet mprpc_faults {
    chain input { type filter hook input priority 0; policy accept; }
    chain output { type filter hook output priority 0; policy accept; }
}
table ip mprpc_faults_nat {
    chain prerouting { type nat hook prerouting priority -100; policy accept; }
}
NFT
    NET_IP[$name]=10.77.0.$host
}

# The IP address of node NAME.
net_ip() { echo "${NET_IP[$1]}"; }

# net_exec NAME CMD...: runs CMD in node NAME's namespace ("hub": the hub).
net_exec() {
    local ns=mprpcf$NET_ID-$1
    shift
    ip netns exec "$ns" "$@"
}

# net_spawn NAME CMD...: starts CMD in node NAME's namespace in the
# background; its pid (CMD's own: `ip netns exec` execs it) in NET_SPAWNED.
# Output goes where the caller redirects net_spawn's.
net_spawn() {
    local ns=mprpcf$NET_ID-$1
    shift
    ip netns exec "$ns" "$@" &
    NET_SPAWNED=$!
}

# Adds one tagged rule to node A's chain.
net_rule() { # node chain tag rule...
    local node=$1 chain=$2 tag=$3
    shift 3
    net_exec "$node" nft add rule inet mprpc_faults "$chain" "$@" comment "\"$tag\""
}

net_cut() { # A B [oneway]
    local a=$1 b=$2 ipb=${NET_IP[$2]}
    net_rule "$a" output "fault:$b" ip daddr "$ipb" drop
    [[ ${3:-} == oneway ]] || net_rule "$a" input "fault:$b" ip saddr "$ipb" drop
}

net_loss() { # A B PCT
    local a=$1 b=$2 pct=$3 ipb=${NET_IP[$2]}
    net_rule "$a" output "fault:$b" ip daddr "$ipb" numgen random mod 100 '<' "$pct" drop
    net_rule "$a" input "fault:$b" ip saddr "$ipb" numgen random mod 100 '<' "$pct" drop
}

net_redirect() { # A B PORT TO
    local a=$1 ipb=${NET_IP[$2]}
    net_exec "$a" nft add rule ip mprpc_faults_nat prerouting \
        ip saddr "$ipb" tcp dport "$3" redirect to ":$4" comment "\"fault:$2\""
}

# Removes node A's fault rules (those towards B only, if given).
net_heal() { # A [B]
    local a=$1 tag="fault:${2:-}" family table chain handle
    for family_table in "inet mprpc_faults" "ip mprpc_faults_nat"; do
        read -r family table <<<"$family_table"
        while read -r chain handle; do
            net_exec "$a" nft delete rule "$family" "$table" "$chain" handle "$handle"
        done < <(net_exec "$a" nft -a list table "$family" "$table" | awk -v tag="\"$tag" '
            $1 == "chain" { chain = $2 }
            index($0, "comment " tag) && /# handle/ { print chain, $NF }')
    done
}

# Stops every process left in our namespaces (SIGTERM, then SIGKILL after
# 3 s) and deletes the namespaces, which removes their links and rules.
net_down() {
    local node pids
    for node in "${NET_NODES[@]}" hub; do
        pids=$(ip netns pids "mprpcf$NET_ID-$node" 2>/dev/null || true)
        [[ -z $pids ]] || kill $pids 2>/dev/null || true
    done
    for _ in $(seq 1 30); do
        pids=$(for node in "${NET_NODES[@]}" hub; do ip netns pids "mprpcf$NET_ID-$node" 2>/dev/null || true; done)
        [[ -z $pids ]] && break
        sleep 0.1
    done
    [[ -z ${pids:-} ]] || kill -9 $pids 2>/dev/null || true
    for node in "${NET_NODES[@]}"; do
        ip netns del "mprpcf$NET_ID-$node" 2>/dev/null || true
    done
    ip netns del "$NET_HUB" 2>/dev/null || true
    NET_NODES=()
}
