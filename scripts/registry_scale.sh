#!/usr/bin/env bash
# The registry at fleet scale (issue 28): for each size N providers x M
# consumers, a fresh 3-server ZooKeeper ensemble on free loopback ports
# (the zoo.cfg of tests/common/zk.rs, plus `mntr` allowed and a heap sized
# for thousands of sessions), then target/release/regscale: N real
# Registrars and M real ZkDiscovers (see loadgen/src/bin/regscale/main.rs)
# time registration, convergence after one provider leaves or joins, the
# idle cost of the sessions and a rolling restart of every provider, with
# the ensemble's CPU, request rate, watches and outstanding requests.
#
#   scripts/registry_scale.sh          build, run the grid, write results/REGISTRY.md
#
# Knobs (environment):
#   GRID      sizes as N:M, space separated (default below)
#   REPEATS   runs per size (2)
#   VARIANT   a name for this code's runs (default "current"); runs of other
#             variants already in results/registry/runs.jsonl stay, so the
#             report shows before/after side by side
#   EVENTS    leave+join pairs timed per run (3)
#   ROLLING   1: end each run with a rolling restart of all N providers (default); 0: skip it
#   ZK_HEAP   each server's JVM heap (1g)
#   SKIP_BUILD=1, REPORT_ONLY=1 (rewrite REGISTRY.md from the raw runs)
# Raw runs: results/registry/runs.jsonl (one JSON object per run, with the
# commit and dirty flag); logs of the last run in results/registry/last/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

GRID=${GRID:-"10:100 10:1000 100:1000 10:5000 100:5000 10:10000 100:10000 1000:1000 1000:10000"}
REPEATS=${REPEATS:-2}
VARIANT=${VARIANT:-current}
EVENTS=${EVENTS:-3}
ROLLING=${ROLLING:-1}
ROLLING_FLAG=()
((ROLLING)) || ROLLING_FLAG=(--no-rolling)
ZK_HEAP=${ZK_HEAP:-1g}
OUT=results/registry
CLASSPATH_ZK=${MPRPC_ZK_CLASSPATH:-/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar}
mkdir -p "$OUT/last"

report() {
    python3 scripts/registry_report.py "$OUT/runs.jsonl" results/REGISTRY.md "$OUT"
    if command -v rsvg-convert >/dev/null; then
        rsvg-convert "$OUT/registry.svg" -o "$OUT/registry.png"
    fi
}
if [[ ${REPORT_ONLY:-0} == 1 ]]; then
    report
    exit 0
fi

git_state
build_release loadgen:regscale
scratch registry-scale

# Starts a 3-server ensemble under $WORK/ens-$1; sets ZK_CONNECT and ZK_PIDS.
ensemble_start() {
    local dir=$WORK/ens-$1 servers="" i
    local -a client=()
    for i in 1 2 3; do
        client[i]=$(free_port)
        servers+="server.$i=127.0.0.1:$(free_port):$(free_port)"$'\n'
    done
    ZK_PIDS=""
    ZK_CONNECT=""
    for i in 1 2 3; do
        mkdir -p "$dir/s$i/data"
        echo "$i" >"$dir/s$i/data/myid"
        cat >"$dir/s$i/zoo.cfg" <<CFG
tickTime=1000
initLimit=20
syncLimit=10
dataDir=$dir/s$i/data
clientPort=${client[i]}
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=mntr,srvr,ruok
forceSync=no
maxClientCnxns=0
$servers
CFG
        nice -n 10 java "-Xmx$ZK_HEAP" "-Xms$ZK_HEAP" -XX:+UseSerialGC \
            -Dzookeeper.root.logger=WARN,CONSOLE -Dzookeeper.console.threshold=WARN \
            "-Dzookeeper.log.dir=$dir/s$i" -cp "$CLASSPATH_ZK" \
            org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/s$i/zoo.cfg" \
            >"$dir/s$i/zk.log" 2>&1 &
        PIDS+=($!)
        ZK_PIDS+="${ZK_PIDS:+,}$!"
        ZK_CONNECT+="${ZK_CONNECT:+,}127.0.0.1:${client[i]}"
    done
    for i in 1 2 3; do
        local tries=0
        until echo srvr | (exec 3<>"/dev/tcp/127.0.0.1/${client[i]}" && cat >&3 && cat <&3) 2>/dev/null | grep -qE 'Mode: (leader|follower)'; do
            tries=$((tries + 1))
            ((tries < 300)) || die "ZooKeeper server $i did not start: $(tail -5 "$dir/s$i/zk.log")"
            sleep 0.1
        done
    done
}

ensemble_stop() {
    local pid
    for pid in ${ZK_PIDS//,/ }; do kill "$pid" 2>/dev/null || true; done
    for pid in ${ZK_PIDS//,/ }; do wait "$pid" 2>/dev/null || true; done
}

for size in $GRID; do
    n=${size%%:*}
    m=${size##*:}
    for rep in $(seq 1 "$REPEATS"); do
        log "$VARIANT: N=$n providers, M=$m consumers, run $rep of $REPEATS"
        ensemble_start "$n-$m-$rep"
        if nice -n 10 "$RELEASE_DIR/regscale" --zk "$ZK_CONNECT" --zk-pids "$ZK_PIDS" \
            -n "$n" -m "$m" --events "$EVENTS" --label "$VARIANT" "${ROLLING_FLAG[@]}" \
            >"$OUT/last/run.json" 2> >(tee "$OUT/last/run.log" >&2); then
            python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); r.update(variant=sys.argv[2], rep=int(sys.argv[3]), commit=sys.argv[4], dirty=sys.argv[5]=="true", date=sys.argv[6]); print(json.dumps(r))' \
                "$OUT/last/run.json" "$VARIANT" "$rep" "$GIT_COMMIT" "$GIT_DIRTY" "$(date -u +%FT%TZ)" >>"$OUT/runs.jsonl"
        else
            log "run failed (N=$n M=$m): see $OUT/last/run.log"
            python3 -c 'import json,sys; print(json.dumps(dict(variant=sys.argv[1], providers=int(sys.argv[2]), consumers=int(sys.argv[3]), rep=int(sys.argv[4]), failed=True, commit=sys.argv[5], dirty=sys.argv[6]=="true", reason=sys.argv[7])))' \
                "$VARIANT" "$n" "$m" "$rep" "$GIT_COMMIT" "$GIT_DIRTY" "$(grep -v 'opened\|restarted' "$OUT/last/run.log" | tail -1)" >>"$OUT/runs.jsonl"
        fi
        ensemble_stop
    done
done
report
