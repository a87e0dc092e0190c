#!/usr/bin/env bash
# A call chain under load (not CI): what does a middle tier cost, and what
# do handlers that answer later buy? (issue 11, part 6; goal: the async
# gateway ≥ 0.8× the direct calls' throughput on the same cores.)
#
#   scripts/chain.sh          build (release), run, write results/CHAIN.md
#
# Processes, all on this machine over 127.0.0.1, started once:
#   ZooKeeper (scripts/zk.sh, a free port)
#   provider  the backend: UserServiceRpc (Login, on its reactors) and
#             FriendServiceRpc (GetFriendsList, on its worker pool), as in
#             the examples; registered in ZooKeeper; stdout to /dev/null
#             (it prints each call, as the seed's callee does)
#   gateway   GatewayServiceRpc.GetUserPage, handler answering later: Login
#             and GetFriendsList at once on the provider (found in
#             ZooKeeper), answers merged
#   gateway --blocking   the same handler on GATEWAY_WORKERS pool threads,
#             each blocked while its call waits for the backend
# Three ways of doing the same work, each loaded by loadgen (`--client
# channel`, the framework's Channel, closed loop) with CONNECTIONS
# connections and IN_FLIGHT calls outstanding (1,000 concurrent upstream
# calls by default), --addr to the process it loads:
#   async    GetUserPage through the gateway
#   pool     GetUserPage through the blocking gateway
#   direct   the client makes the gateway's two calls itself: Login to the
#            provider and, sent with it (`--also-call`), GetFriendsList; the
#            pair counts once, when both answered (1,000 pairs in flight =
#            2,000 backend calls, as through a gateway)
# A "call" is one user page in every row: calls/s are comparable. The three
# run one after another in each of ROUNDS rounds (interleaved), WARMUP +
# DURATION seconds each; the report gives medians with min–max, the
# ratios async÷direct and pool÷direct, the CPU seconds each server process
# used per run, and the machine's load average before and after.
#
# Knobs (environment): ROUNDS (3), DURATION (5), WARMUP (2), CONNECTIONS
# (50), IN_FLIGHT (1000), GATEWAY_WORKERS (4, the worker_threads default),
# GATEWAY_IO_THREADS (2: the gateways' client_io_threads, so their
# backend calls use two connections, one per backend reactor),
# GATEWAY_REACTORS (0: one per core), SKIP_BUILD=1. About 1.5 minutes plus the build; everything started is
# stopped on exit. Raw data: results/chain/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-50}
IN_FLIGHT=${IN_FLIGHT:-1000}
GATEWAY_WORKERS=${GATEWAY_WORKERS:-4}
GATEWAY_IO_THREADS=${GATEWAY_IO_THREADS:-2}
GATEWAY_REACTORS=${GATEWAY_REACTORS:-0}
OUT=results/chain
BIN=$RELEASE_DIR

command -v python3 >/dev/null || die "python3 not found"
T0=$(date +%s)
git_state
build_release loadgen:loadgen mprpc-examples:provider mprpc-examples:gateway
scratch chain
rm -rf "$OUT"
mkdir -p "$OUT/raw"
uptime >"$OUT/uptime-before.txt"

log "ZooKeeper"
export MPRPC_ZK_STATE=$WORK/zk
zk=$(scripts/zk.sh start | tail -n 1)
ZK_PORT=${zk##*:}
stop_zk() { scripts/zk.sh stop >/dev/null 2>&1 || true; stop_scratch; }
trap stop_zk EXIT

# Writes $OUT/NAME.conf for a server on a free port; prints the port.
write_conf() { # name [extra key=value lines]
    local port
    port=$(free_port)
    {
        echo "rpcserverip=127.0.0.1"
        echo "rpcserverport=$port"
        echo "zookeeperip=127.0.0.1"
        echo "zookeeperport=$ZK_PORT"
        echo "zk_session_timeout_ms=4000"
        echo "log_dir=$WORK/logs-$1"
        echo "log_level=warn"
        printf '%s\n' "${@:2}"
    } >"$OUT/$1.conf"
    echo "$port"
}

# Starts BIN/PROGRAM -i $OUT/NAME.conf ARGS..., stdout to FILE, and waits
# for its port; sets STARTED_PID.
start_server() { # name port stdout program [args...]
    "$BIN/$4" -i "$OUT/$1.conf" "${@:5}" >"$3" 2>"$WORK/$1.err" &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    wait_port "$2" 20 || { cat "$WORK/$1.err" >&2; die "$1 did not start"; }
}

log "backend provider"
PROVIDER_PORT=$(write_conf provider)
start_server provider "$PROVIDER_PORT" /dev/null provider
PROVIDER_PID=$STARTED_PID
log "gateways (async, and --blocking on $GATEWAY_WORKERS worker threads)"
GATEWAY_CONF=("client_io_threads=$GATEWAY_IO_THREADS" "reactor_threads=$GATEWAY_REACTORS")
ASYNC_PORT=$(write_conf gateway-async "${GATEWAY_CONF[@]}")
start_server gateway-async "$ASYNC_PORT" "$OUT/gateway-async.out" gateway
ASYNC_PID=$STARTED_PID
POOL_PORT=$(write_conf gateway-pool "worker_threads=$GATEWAY_WORKERS" "${GATEWAY_CONF[@]}")
start_server gateway-pool "$POOL_PORT" "$OUT/gateway-pool.out" gateway --blocking
POOL_PID=$STARTED_PID

# The requests, encoded (prost's layout: field 1 name, 2 pwd, 3 userid).
hex() { python3 -c "import sys; print(eval(sys.argv[1]).hex())" "$1"; }
LOGIN_HEX=$(hex "b'\\x0a\\x09zhang san\\x12\\x06123456'")
FRIENDS_HEX=$(hex "b'\\x08\\xe8\\x07'")
PAGE_HEX=$(hex "b'\\x0a\\x09zhang san\\x12\\x06123456\\x18\\xe8\\x07'")

# CPU time (user + system, clock ticks) a process has used so far.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# Runs a command, its output into FILE; prints the CPU clock ticks (user +
# system) it used; fails as it fails.
with_cpu() { # file command...
    python3 - "$@" <<'PY'
import os, resource, subprocess, sys
with open(sys.argv[1], "w") as out:
    code = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.STDOUT).returncode
used = resource.getrusage(resource.RUSAGE_CHILDREN)
print(round((used.ru_utime + used.ru_stime) * os.sysconf("SC_CLK_TCK")))
sys.exit(code)
PY
}

# A run's progress line from its JSON report.
summary() {
    python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat = r["ok_latency_us"]
print(f"{r['ok_qps']:,.0f} pages/s, p50 {lat['p50']} µs, p99 {lat['p99']} µs, errors {r['errors']}")
PY
}

# One loadgen run: label, then its target arguments.
load() { # label args...
    local label=$1
    local cmd=("$BIN/loadgen" --target mprpc --client channel --qps max
        --connections "$CONNECTIONS" --in-flight "$IN_FLIGHT"
        --duration "${DURATION}s" --warmup "${WARMUP}s"
        --label "$label" --out-dir "$WORK/raw" "${@:2}")
    printf '%s\n' "${cmd[*]#"$BIN/"}" >>"$OUT/commands.txt"
    local before=("$(ticks "$PROVIDER_PID")" "$(ticks "$ASYNC_PID")" "$(ticks "$POOL_PID")")
    local client_ticks load_before
    load_before=$(cut -d' ' -f1 /proc/loadavg)
    client_ticks=$(with_cpu "$OUT/raw/$label.txt" "${cmd[@]}") \
        || { tail -20 "$OUT/raw/$label.txt" >&2; die "loadgen ($label) failed"; }
    local after=("$(ticks "$PROVIDER_PID")" "$(ticks "$ASYNC_PID")" "$(ticks "$POOL_PID")")
    printf '%s,%s,%s,%s,%s,%s\n' "$label" $((after[0] - before[0])) $((after[1] - before[1])) \
        $((after[2] - before[2])) "$client_ticks" "$load_before" >>"$OUT/cpu.csv"
    cp "$WORK"/raw/*-"$label".json "$OUT/raw/$label.json"
    log "$label: $(summary "$OUT/raw/$label.json")"
}

python3 - "$OUT/env.json" <<'PY'
import json, os, platform, sys, time
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
json.dump({
    "date_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    "nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
    "git_commit": os.environ["GIT_COMMIT"], "git_dirty": os.environ["GIT_DIRTY"] == "true",
    "clk_tck": os.sysconf("SC_CLK_TCK"),
}, open(sys.argv[1], "w"), indent=2)
PY
cat >"$OUT/params.json" <<EOF
{"rounds": $ROUNDS, "duration_s": $DURATION, "warmup_s": $WARMUP, "connections": $CONNECTIONS,
 "in_flight": $IN_FLIGHT, "gateway_workers": $GATEWAY_WORKERS, "gateway_io_threads": $GATEWAY_IO_THREADS,
 "gateway_reactors": $GATEWAY_REACTORS}
EOF
echo "label,provider_ticks,gateway_async_ticks,gateway_pool_ticks,client_ticks,loadavg_1min_before" >"$OUT/cpu.csv"
: >"$OUT/commands.txt"

for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    load "async-$round" --addr "127.0.0.1:$ASYNC_PORT" --service GatewayServiceRpc \
        --method GetUserPage --request-hex "$PAGE_HEX"
    load "pool-$round" --addr "127.0.0.1:$POOL_PORT" --service GatewayServiceRpc \
        --method GetUserPage --request-hex "$PAGE_HEX"
    load "direct-$round" --addr "127.0.0.1:$PROVIDER_PORT" --service UserServiceRpc \
        --method Login --request-hex "$LOGIN_HEX" \
        --also-call "FriendServiceRpc/GetFriendsList=$FRIENDS_HEX"
done
for pid in "$ASYNC_PID" "$POOL_PID" "$PROVIDER_PID"; do
    kill -0 "$pid" 2>/dev/null || die "a server died during the run"
done
uptime >"$OUT/uptime-after.txt"
echo "$(($(date +%s) - T0))" >"$OUT/total_seconds.txt"

# ------------------------------------------------------------- report
python3 - "$OUT" results/CHAIN.md <<'PY'
import csv, json, statistics, sys
out, md = sys.argv[1], sys.argv[2]
env = json.load(open(f"{out}/env.json"))
p = json.load(open(f"{out}/params.json"))
rounds = range(1, p["rounds"] + 1)
run = lambda label: json.load(open(f"{out}/raw/{label}.json"))
cpu = {r["label"]: r for r in csv.DictReader(open(f"{out}/cpu.csv"))}
tck = env["clk_tck"]
KINDS = {
    "async": ("gateway, async handler (answers later)", "gateway_async_ticks"),
    "pool": (f"gateway `--blocking`, {p['gateway_workers']} worker threads", "gateway_pool_ticks"),
    "direct": ("direct: the client calls Login + GetFriendsList itself", None),
}
rows = {}
for kind, (name, gw) in KINDS.items():
    runs = [run(f"{kind}-{r}") for r in rounds]
    c = [cpu[f"{kind}-{r}"] for r in rounds]
    rows[kind] = {
        "qps": [x["ok_qps"] for x in runs],
        "p50": [x["ok_latency_us"]["p50"] for x in runs],
        "p99": [x["ok_latency_us"]["p99"] for x in runs],
        "errors": sum(x["errors"] for x in runs),
        "by_code": {k: sum(x["errors_by_code"].get(k, 0) for x in runs)
                    for x in runs for k in x["errors_by_code"]},
        "held": all(x["target_held"] for x in runs),
        # CPU µs per page of each process: its CPU time during the run
        # over the pages of warm-up + window, taken at the window's rate.
        "cpu": {proc: [int(cc[col]) / tck * 1e6 / (x["ok_qps"] * (p["warmup_s"] + p["duration_s"]))
                       for cc, x in zip(c, runs)]
                for proc, col in (("backend", "provider_ticks"), ("gateway", gw), ("client", "client_ticks"))
                if col},
        "seconds": p["warmup_s"] + p["duration_s"],
    }
med = statistics.median
def spread(xs, fmt):
    return f"{fmt(med(xs))} ({fmt(min(xs))}–{fmt(max(xs))})"
n = lambda x: f"{x:,.0f}"
ms = lambda us: f"{us / 1000:.2f} ms"
L = []
w = L.append
w("# A call chain: gateway → backend, async vs blocking pool vs direct\n")
dirty = " (uncommitted changes in the tree)" if env["git_dirty"] else " (clean tree)"
w(f"Generated by `scripts/chain.sh` on {env['date_utc']} at commit `{env['git_commit']}`{dirty}; "
  f"{env['nproc']} cores ({env['cpu_model']}), kernel {env['kernel']}; every process on the same machine "
  f"over 127.0.0.1. Whole run: {open(f'{out}/total_seconds.txt').read().strip()} s.\n")
loads = [float(r["loadavg_1min_before"]) for r in cpu.values()]
w(f"Machine load (other engineers build on this shared box): before `{open(f'{out}/uptime-before.txt').read().strip()}`; "
  f"after `{open(f'{out}/uptime-after.txt').read().strip()}`; 1-minute load average at the start of the "
  f"runs {min(loads):.2f}–{max(loads):.2f} (after the first, it includes the previous run of this script).\n")
w("Setup: one ZooKeeper; one backend `provider` (UserServiceRpc.Login on its reactors, "
  "FriendServiceRpc.GetFriendsList on its worker pool, both printing each call to /dev/null as the seed's callee "
  "does); two `gateway` processes finding it in ZooKeeper: the async one (GetUserPage awaits Login and "
  "GetFriendsList together on its reactors) and `--blocking` (the same handler on "
  f"{p['gateway_workers']} worker threads, `worker_threads`' default, each blocked while its call waits). "
  f"The client is loadgen through the framework's `Channel`, closed loop, {p['connections']} connections, "
  f"**{p['in_flight']:,} calls outstanding**, `--addr` to the process it loads. One *page* = one GetUserPage, "
  "or, in the direct row, one Login and one GetFriendsList sent together by the client (`--also-call`) and "
  "counted once both answered: the same two backend calls per page, and as many backend calls in flight, "
  "in every row. \"Direct\" is the client doing the gateway's work itself, not a smaller job: it is the "
  "cost without the middle tier.\n")
w(f"Each of {len(rounds)} rounds runs async, pool, direct one after another (interleaved), each "
  f"{p['warmup_s']} s warm-up + {p['duration_s']} s measured. Medians of the rounds, min–max in brackets; "
  "latency of successful calls, from the send (closed loop).\n")
w("## Result\n")
w("| variant | pages/s | p50 | p99 | errors | CPU µs per page: backend | gateway | client | all |")
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
us = lambda x: f"{x:.1f}"
for kind, (name, _) in KINDS.items():
    r = rows[kind]
    errs = f"{r['errors']:,}" + (f" ({', '.join(f'{k} {v:,}' for k, v in r['by_code'].items())})" if r["errors"] else "")
    cpu_ = r["cpu"]
    r["cpu_all"] = [sum(v[i] for v in cpu_.values()) for i in range(len(r["qps"]))]
    cols = [spread(cpu_[proc], us) if proc in cpu_ else "—" for proc in ("backend", "gateway", "client")]
    w(f"| {name} | {spread(r['qps'], n)} | {spread(r['p50'], ms)} | {spread(r['p99'], ms)} | {errs} | "
      f"{' | '.join(cols)} | {spread(r['cpu_all'], us)} |")
w("")
d = rows["direct"]["qps"]
def ratio(kind):
    x = rows[kind]["qps"]
    return med(x) / med(d), min(x) / max(d), max(x) / min(d)
w("| ratio | median ÷ median | worst ÷ best | best ÷ worst | goal | met |")
w("|---|---:|---:|---:|---|---|")
for kind, goal in (("async", 0.8), ("pool", None)):
    m, lo, hi = ratio(kind)
    met = ("yes" if m >= goal else "**no**") if goal else "—"
    w(f"| {kind} ÷ direct (pages/s) | {m:.2f}× | {lo:.2f}× | {hi:.2f}× | {f'≥ {goal}×' if goal else 'none (context)'} | {met} |")
bound = med(rows["direct"]["cpu_all"]) / med(rows["async"]["cpu_all"])
w(f"| CPU µs per page of all three processes, direct ÷ async (async ÷ direct if CPU-bound) | {bound:.2f}× | | | — | — |")
w("")
w("The goal is judged on the medians. A page through the gateway is more work than the same page done "
  "directly: the gateway receives and answers the upstream call and makes the two backend calls over its own "
  "`Channel`, one more RPC hop on the same cores. Were the three processes alone on the cores and CPU-bound, "
  "async ÷ direct would come to the inverse ratio of their CPU per page (the last row); on this shared box other "
  "programs take a varying share of the cores, so that row is a guide to what the extra hop costs, not a bound. "
  "CPU per page is each process's user + system time during the run (from /proc, and the client's from "
  "its rusage) over the pages of its warm-up and window, counted at the window's rate; the client is "
  "loadgen, on the same cores. The blocking gateway can have "
  f"at most {p['gateway_workers']} pages in progress, whatever the client sends: the other calls queue, "
  "which is what its throughput and p99 show.\n")
if not all(r["held"] for r in rows.values()):
    w("Some run left calls unanswered at its end (loadgen's `target_held` false): see the raw reports.\n")
w("Raw data: `results/chain/` (loadgen's JSON and text report per run, cpu.csv in clock ticks, the server "
  "configs, commands.txt, env.json, params.json, the gateways' start-up output). Gateway settings: "
  f"`client_io_threads={p['gateway_io_threads']}` (two connections to the backend, one per I/O thread), "
  f"`reactor_threads={p['gateway_reactors']}` (0: one per core).")
open(md, "w").write("\n".join(L) + "\n")
print(f"wrote {md}")
PY
log "done: results/CHAIN.md"
