#!/usr/bin/env bash
# Scale check (not CI): one echo provider on 127.0.0.1 holds CONNS (10,000)
# concurrent connections and serves calls on every one of them; reports the
# provider's memory per connection, idle and after first use.
#
#   scripts/scale.sh              build (release), run, write results/SCALE.md
#
# Steps (the client is target/release/connscale, see loadgen/src/bin/connscale.rs):
#   start      provider up, no connections
#   idle       CONNS raw TCP connections open, nothing sent (no buffers yet)
#   raw_used   one Echo call answered on every one of them (buffers allocated)
#   raw_closed all closed by the client
#   chan_open  the framework's Channel opened CONNS connections, one call each
#   chan_rounds ROUNDS more calls per connection, round robin, at RATE calls/s
#   end        the client has exited
#   churn_K    K more clients came, opened CONNS connections through a
#              Channel (one call each) and left: does the RSS keep growing?
#              (a least-squares slope over the churns, with its 95% CI)
#   trimmed    (if gdb is installed) after malloc_trim(0) in the provider:
#              how much of the RSS is memory the allocator kept, not live
#              data; malloc_stats() goes to results/scale/malloc-stats.txt
# Then the memory options: for each way of giving memory back (glibc as
# is; MALLOC_ARENA_MAX=1; the provider's own trim_memory=true, the
# default), a fresh provider goes through the same CHURN cycles and its
# RSS with no connection is compared with its start
# (results/scale/memory-options.csv).
# At each step it samples the provider's VmRSS, its open fds, the server-side
# established connections (ss), the client's VmRSS and the kernel's TCP
# memory (/proc/net/sockstat); after a churn, once the RSS has settled
# (unchanged for 3 s: trim_memory gives memory back about a second after
# the last close). The provider runs on core SERVER_CPU (0), the
# clients on CLIENT_CPU (1). Raw data goes to results/scale/.
#
# Knobs (environment): CONNS (10000), ROUNDS (3), RATE (5000 calls/s),
# CHURN (20 extra client cycles per series), TRIM (1: the gdb malloc_trim
# step, 0: skip), SERVER_CPU (0), CLIENT_CPU (1),
# SKIP_BUILD=1 (use target/release as is). The run takes about five minutes
# (most of it the churns and the raw client's sequential connects) and is bounded (each wait gives up after a timeout); everything it starts is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

CONNS=${CONNS:-10000}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-5000}
CHURN=${CHURN:-20}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
TRIM=${TRIM:-1}
OUT=results/scale
BIN=$RELEASE_DIR


# File descriptors. RLIMIT_NOFILE is per process: the provider and the client
# each hold CONNS sockets plus a few, so each needs CONNS + 1000. Both
# inherit this shell's limit.
want=65536
hard=$(ulimit -Hn)
if [[ $hard == unlimited ]] || ((hard >= want)); then
    ulimit -n "$want"
else
    ulimit -n "$hard"
fi
NOFILE=$(ulimit -n)
need=$((CONNS + 1000))
((NOFILE >= need)) || die "open-file limit is $NOFILE (hard limit $hard); each of the provider and the client needs $need for $CONNS connections: raise the hard limit (e.g. 'ulimit -Hn 65536' as root, or LimitNOFILE in the unit) or lower CONNS"
FILE_MAX=$(cat /proc/sys/fs/file-max)
((FILE_MAX >= 2 * CONNS + 5000)) || die "fs.file-max is $FILE_MAX, below the $((2 * CONNS + 5000)) file handles both ends need together"
read -r PORT_LO PORT_HI </proc/sys/net/ipv4/ip_local_port_range
((PORT_HI - PORT_LO >= CONNS + 1000)) || die "ephemeral port range $PORT_LO-$PORT_HI is too small for $CONNS client connections"

for tool in python3 ss taskset; do command -v "$tool" >/dev/null || die "$tool not found"; done

T0=$(date +%s)
git_state
build_release loadgen:connscale mprpc-examples:echo-provider

WORK=$(mktemp -d "${TMPDIR:-/tmp}/mprpc-scale.XXXXXX")
PROVIDER_PID=
CLIENT_PID=
GDB_PID=
cleanup() {
    exec 3>&- 2>/dev/null || true
    for pid in $GDB_PID $CLIENT_PID $PROVIDER_PID; do kill "$pid" 2>/dev/null || true; done
    for pid in $CLIENT_PID $PROVIDER_PID; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$OUT"
mkdir -p "$OUT"


# ------------------------------------------------------------- provider
PORT=$(free_port)
cat >"$WORK/echo.conf" <<EOF
registry=none
rpcserverip=127.0.0.1
rpcserverport=$PORT
max_connections=$((2 * CONNS + 1000))
log_dir=$WORK/logs
log_level=warn
EOF
cp "$WORK/echo.conf" "$OUT/echo-provider.conf"
log "echo-provider on 127.0.0.1:$PORT (open-file limit $NOFILE)"
# Appending, so the file can be truncated under it (malloc_stats below).
taskset -c "$SERVER_CPU" "$BIN/echo-provider" -i "$WORK/echo.conf" >>"$WORK/provider.out" 2>&1 &
PROVIDER_PID=$!
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || { cat "$WORK/provider.out"; die "echo-provider did not start"; }

# The listener's accept-queue length (for a LISTEN socket, ss shows it as Send-Q).
ss -Hltn "( sport = :$PORT )" | awk '{ print $3 }' | head -1 >"$OUT/listen_backlog.txt"

# ------------------------------------------------------------- sampling
status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
established() { ss -Htn state established "( sport = :$PORT )" | wc -l; }
# TCP "mem" in /proc/net/sockstat is in pages: kernel socket buffers, not in any RSS.
tcp_mem_kib() { awk -v pg="$(getconf PAGESIZE)" '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) * pg / 1024 }' /proc/net/sockstat; }

# The kernel's count of connections dropped because the accept queue was full.
listen_overflows() { awk '$1 == "TcpExt:" { if (!seen) { seen = 1; for (i = 2; i <= NF; i++) if ($i == "ListenOverflows") col = i; next } print $col }' /proc/net/netstat; }
OVERFLOWS0=$(listen_overflows)

echo "step,t_s,server_rss_kib,server_hwm_kib,server_fds,server_established,client_rss_kib,kernel_tcp_mem_kib,listen_overflows,loadavg1" >"$OUT/samples.csv"
sample() {
    local client=0
    [[ -n $CLIENT_PID ]] && client=$(status_kib "$CLIENT_PID" VmRSS)
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$1" "$(($(date +%s) - T0))" \
        "$(status_kib "$PROVIDER_PID" VmRSS)" "$(status_kib "$PROVIDER_PID" VmHWM)" \
        "$(find "/proc/$PROVIDER_PID/fd" -mindepth 1 | wc -l)" "$(established)" \
        "${client:-0}" "$(tcp_mem_kib)" "$(($(listen_overflows) - OVERFLOWS0))" \
        "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$OUT/samples.csv"
}

# Waits (up to $2 s) until the server holds exactly $1 established connections.
wait_established() {
    local deadline=$((SECONDS + $2)) n
    while :; do
        n=$(established)
        ((n == $1)) && return 0
        ((SECONDS >= deadline)) && { echo "server holds $n established connections, expected $1" >&2; return 1; }
        sleep 0.2
    done
}

# Waits (up to $2 s) for connscale's "PHASE" line of phase $1.
wait_phase() {
    local deadline=$((SECONDS + $2))
    while ! grep -q "\"phase\":\"$1\"" "$WORK/connscale.out"; do
        kill -0 "$CLIENT_PID" 2>/dev/null || { cat "$WORK/connscale.out" "$WORK/connscale.err" >&2; die "connscale exited before phase $1"; }
        ((SECONDS >= deadline)) && die "connscale: no phase $1 within $2 s"
        sleep 0.2
    done
    grep "\"phase\":\"$1\"" "$WORK/connscale.out" | sed 's/^PHASE //' >>"$OUT/phases.jsonl"
}

go() { echo go >&3; }

# Waits (up to 15 s) until the provider's RSS has not changed for 3 s:
# longer than the second of quiet after which trim_memory gives memory
# back, so a sample is never taken just before the trim fires.
settle_rss() {
    local last now same=0
    last=$(status_kib "$PROVIDER_PID" VmRSS)
    for _ in $(seq 1 60); do
        sleep 0.25
        now=$(status_kib "$PROVIDER_PID" VmRSS)
        if [[ $now == "$last" ]]; then same=$((same + 1)); else same=0; fi
        ((same >= 12)) && return 0
        last=$now
    done
}

# One churn: a client opens CONNS connections through a Channel (one call
# each) and leaves; then the provider's RSS settles. $1 names it in errors.
churn() {
    timeout 120 taskset -c "$CLIENT_CPU" "$BIN/connscale" --addr "127.0.0.1:$PORT" --connections "$CONNS" \
        --rounds 0 --no-raw </dev/null >"$WORK/churn.out" 2>&1 || { cat "$WORK/churn.out" >&2; die "$1 failed"; }
    grep -q '"failed":0' "$WORK/churn.out" || { cat "$WORK/churn.out" >&2; die "$1: calls failed"; }
    wait_established 0 30
    settle_rss
}

# ------------------------------------------------------------- machine facts
uptime >"$OUT/uptime-before.txt"
machine_json "$OUT/env.json" nofile_soft="$NOFILE" nofile_hard="$hard" page_size="$(getconf PAGE_SIZE)" \
    server_cpu="$SERVER_CPU" client_cpu="$CLIENT_CPU"

sample start

# ------------------------------------------------------------- client
mkfifo "$WORK/ctl"
CMD=(taskset -c "$CLIENT_CPU" "$BIN/connscale" --addr "127.0.0.1:$PORT" --connections "$CONNS" --rounds "$ROUNDS" --rate "$RATE")
printf '%s\n' "${CMD[*]}" >"$OUT/command.txt"
log "${CMD[*]}"
"${CMD[@]}" <"$WORK/ctl" >"$WORK/connscale.out" 2>"$WORK/connscale.err" &
CLIENT_PID=$!
exec 3>"$WORK/ctl"

wait_phase idle 150
wait_established "$CONNS" 20
sleep 1
sample idle
go

wait_phase raw_used 60
wait_established "$CONNS" 20
sample raw_used
go

wait_phase raw_closed 30
wait_established 0 30
sleep 1
sample raw_closed
go

wait_phase channel_open 90
wait_established "$CONNS" 20
sleep 1
sample chan_open
go

wait_phase channel_rounds $((CONNS * ROUNDS / RATE + 60))
wait_established "$CONNS" 20
sample chan_rounds
go

exec 3>&-
wait "$CLIENT_PID" || die "connscale failed: $(cat "$WORK/connscale.err")"
CLIENT_PID=
wait_established 0 30
sleep 2 # trim_memory gives memory back a second after the last close
sample end

# Churn: more clients come and go; a leak shows as RSS that keeps climbing.
for k in $(seq 1 "$CHURN"); do
    churn "churn client $k"
    sed -n "s/^PHASE //p" "$WORK/churn.out" | grep '"channel_open"' | sed "s/\"phase\":\"channel_open\"/\"phase\":\"churn_$k\"/" >>"$OUT/phases.jsonl"
    sample "churn_$k"
done

# How much of the RSS is live data: the allocator's own statistics, then
# give free memory back to the kernel and sample again.
if [[ $TRIM == 1 ]] && command -v gdb >/dev/null; then
    : >"$WORK/provider.out"
    timeout 120 gdb -q -batch "/proc/$PROVIDER_PID/exe" -p "$PROVIDER_PID" \
        -ex 'call (void)malloc_stats()' -ex 'call (int)malloc_trim(0)' >/dev/null 2>&1 &
    GDB_PID=$!
    wait "$GDB_PID" || true
    GDB_PID=
    sleep 1
    sed -n '/^Arena 0/,$p' "$WORK/provider.out" >"$OUT/malloc-stats.txt"
    sample trimmed
fi
kill -0 "$PROVIDER_PID" 2>/dev/null || die "the provider died"
uptime >"$OUT/uptime-after.txt"
cp "$WORK/connscale.err" "$OUT/connscale.stderr.txt"
# The provider's warnings, if any (bounded).
cat "$WORK"/logs/* 2>/dev/null | head -200 >"$OUT/provider-log-head.txt" || true
kill "$PROVIDER_PID" && wait "$PROVIDER_PID" 2>/dev/null || true

# ------------------------------------------------------------- memory options
# The same churn against a fresh provider per option; the sampling helpers
# follow PROVIDER_PID and PORT.
echo "option,step,server_rss_kib" >"$OUT/memory-options.csv"
for option in glibc arena_max_1 trim_memory; do
    PORT=$(free_port)
    sed -e "s/^rpcserverport=.*/rpcserverport=$PORT/" "$WORK/echo.conf" >"$WORK/$option.conf"
    envs=(MPRPC_OPTION="$option")
    case $option in
        glibc) echo "trim_memory=false" >>"$WORK/$option.conf" ;;
        arena_max_1) echo "trim_memory=false" >>"$WORK/$option.conf"; envs+=(MALLOC_ARENA_MAX=1) ;;
        trim_memory) echo "trim_memory=true" >>"$WORK/$option.conf" ;;
    esac
    log "memory option $option: $CHURN churns of $CONNS connections"
    env "${envs[@]}" taskset -c "$SERVER_CPU" "$BIN/echo-provider" -i "$WORK/$option.conf" >>"$WORK/$option.out" 2>&1 &
    PROVIDER_PID=$!
    wait_port "$PORT" 10 || { cat "$WORK/$option.out" >&2; die "echo-provider ($option) did not start"; }
    sleep 1
    echo "$option,start,$(status_kib "$PROVIDER_PID" VmRSS)" >>"$OUT/memory-options.csv"
    for k in $(seq 1 "$CHURN"); do
        churn "$option churn $k"
        echo "$option,churn_$k,$(status_kib "$PROVIDER_PID" VmRSS)" >>"$OUT/memory-options.csv"
    done
    echo "$option,peak,$(status_kib "$PROVIDER_PID" VmHWM)" >>"$OUT/memory-options.csv"
    kill "$PROVIDER_PID" && wait "$PROVIDER_PID" 2>/dev/null || true
done
PROVIDER_PID=
echo "$(($(date +%s) - T0))" >"$OUT/total_seconds.txt"

# ------------------------------------------------------------- report
python3 - "$OUT" results/SCALE.md "$CONNS" <<'PY'
import csv, json, sys
out, md, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, "scripts")
from benchstats import slope


def growth(rss_kib):
    """The least-squares slope of the RSS over the churns' second half
    (after the allocator's first growth), KiB per churn with its 95% CI,
    and a verdict: it grows only if the whole interval is above 0."""
    half = list(range(len(rss_kib) // 2, len(rss_kib)))
    fit = slope([k + 1 for k in half], [rss_kib[k] for k in half])
    if fit is None:
        return "n/a (too few churns)", None
    b, lo, hi = fit
    verdict = "**grows**" if lo > 0 else "no growth shown (the interval includes 0)" if hi >= 0 else "falls"
    return f"{b:+.1f} KiB/churn (95% CI {lo:+.1f} to {hi:+.1f}; churns {half[0] + 1}–{half[-1] + 1}): {verdict}", fit


env = json.load(open(f"{out}/env.json"))
rows = {r["step"]: r for r in csv.DictReader(open(f"{out}/samples.csv"))}
phases = {p["phase"]: p for p in (json.loads(l) for l in open(f"{out}/phases.jsonl"))}
kib = lambda step, col="server_rss_kib": int(rows[step][col])
per = lambda a, b, col="server_rss_kib": (kib(b, col) - kib(a, col)) / n
cmd = open(f"{out}/command.txt").read().strip()
up_before = open(f"{out}/uptime-before.txt").read().strip()
up_after = open(f"{out}/uptime-after.txt").read().strip()
total = open(f"{out}/total_seconds.txt").read().strip()
raw, co, cr = phases["raw_used"], phases["channel_open"], phases["channel_rounds"]
calls_ok = raw["ok"] + co["ok"] + cr["ok"]
calls_failed = raw["failed"] + co["failed"] + cr["failed"]
L = []
w = L.append
w("# Scale: 10,000 concurrent connections on one provider\n")
w(f"Generated by `scripts/scale.sh` on {env['date_utc']} (commit `{env['git_commit']}{'-dirty' if env.get('git_dirty') else ''}`), "
  f"{env['nproc']} cores ({env['cpu_model']}), {env['mem_total']} RAM, kernel {env['kernel']}, {env['rustc']}. "
  f"Provider (pinned to core {env.get('server_cpu', '?')}) and client (core {env.get('client_cpu', '?')}) on the "
  f"same machine over 127.0.0.1; open-file limit {env['nofile_soft']} per process "
  f"(hard {env['nofile_hard']}). Whole run: {total} s.\n")
w(f"Machine load (other agents build on this box): before `{up_before}`; after `{up_after}`.\n")
if env["git_dirty_src"]:
    w("The working tree had uncommitted changes by other agents when the binaries were built: "
      + ", ".join(f"`{l.strip()}`" for l in env["git_dirty_src"]) + ".\n")
w("Command: `scripts/scale.sh` (provider: `echo-provider -i echo-provider.conf`, `registry=none`, log level warn; "
  f"client: `{cmd.replace('target/release/', '')}`).\n")
w("## Result\n")
w(f"- Connections held at once: **{n:,}** (counted on the server with `ss state established`: "
  f"{rows['idle']['server_established']} idle, {rows['chan_open']['server_established']} through the client's Channel).")
w(f"- Calls: **{calls_ok:,} ok, {calls_failed} failed** — one on each raw connection "
  f"({raw['ok']:,} ok / {raw['failed']} failed), one per connection while the Channel opened its pool "
  f"({co['ok']:,} / {co['failed']}), then {cr['rounds']} more rounds round robin at {cr['rate']:.0f} calls/s "
  f"({cr['ok']:,} / {cr['failed']}). Every reply was checked against its own request's unique payload.")
w(f"- Provider memory per connection, **idle: {per('start', 'idle'):.2f} KiB**; "
  f"**after one call: {per('start', 'raw_used'):.2f} KiB** (VmRSS delta / {n:,}, from the empty server).")
w(f"- Through the Channel (after the raw connections were closed): {per('raw_closed', 'chan_open'):.2f} KiB per connection "
  f"over the RSS after closing, {per('start', 'chan_open'):.2f} KiB over the empty server; after {cr['rounds']} more rounds "
  f"{per('start', 'chan_rounds'):.2f} KiB.")
tcp_max = max(float(r["kernel_tcp_mem_kib"]) for r in rows.values())
w(f"- Kernel TCP buffer memory (`/proc/net/sockstat` mem, machine-wide, not in any RSS) stayed at or below "
  f"{tcp_max / 1024:.1f} MiB throughout: a loopback socket with no queued data holds no buffer pages "
  f"(the socket structures themselves are kernel slab, not measured here).")
ci = phases["idle"]
backlog = open(f"{out}/listen_backlog.txt").read().strip() or "?"
w(f"- Time to open: {ci['open_s']:.2f} s for {n:,} raw connects (one thread, blocking, one after the other: "
  f"connect p50 {ci['connect_us']['p50']} µs, p99 {ci['connect_us']['p99']} µs, max {ci['connect_us']['max'] / 1000:.0f} ms, "
  f"{ci['connects_over_500ms']} waited over 0.5 s; the kernel counted {rows['idle']['listen_overflows']} accept-queue overflows "
  f"(`ListenOverflows`) meanwhile, with the provider's listen backlog at {backlog}: a dropped SYN is retried after 1 s); "
  f"{co['seconds']:.2f} s for the Channel to open {n:,} connections and complete a call on each "
  f"(at most {1000} calls, hence connects, outstanding at once); the {cr['rounds']} rounds took {cr['seconds']:.2f} s.")
w(f"- Client (connscale) VmRSS: {kib('idle', 'client_rss_kib') / 1024:.1f} MiB holding {n:,} raw sockets, "
  f"{kib('chan_open', 'client_rss_kib') / 1024:.1f} MiB with the Channel's {n:,} connections "
  f"({kib('chan_rounds', 'client_rss_kib') / 1024:.1f} MiB after the rounds).")
w(f"- After everything closed, the provider's RSS is {kib('end') / 1024:.1f} MiB "
  f"(peak {kib('end', 'server_hwm_kib') / 1024:.1f} MiB, {kib('start') / 1024:.1f} MiB at start); "
  f"its open fds went back to {rows['end']['server_fds']} (from {rows['start']['server_fds']}).")
churn = [k for k in rows if k.startswith("churn_")]
if churn:
    cp = [phases.get(k, {}) for k in churn]
    w(f"- Churn: {len(churn)} more clients each opened {n:,} connections through a Channel (one call each: "
      f"{sum(p.get('ok', 0) for p in cp):,} ok, {sum(p.get('failed', 0) for p in cp)} failed) and left. Provider RSS with no "
      f"connection after each (settled): " + ", ".join(f"{kib(k) / 1024:.1f}" for k in ["end"] + churn) + " MiB. "
      f"Slope test: {growth([kib(k) for k in churn])[0]}.")
if "trimmed" in rows:
    ms = open(f"{out}/malloc-stats.txt").read().split("Total (incl. mmap):")[-1].split()
    inuse = next((int(ms[i + 4]) for i in range(len(ms)) if ms[i:i + 3] == ["in", "use", "bytes"]), None)
    w(f"- Retained, not leaked: with no connection left, glibc's `malloc_stats()` says {inuse / 2**20:.1f} MiB are in use "
      f"in the provider, and a `malloc_trim(0)` through gdb took its RSS from {kib(churn[-1] if churn else 'end') / 1024:.1f} "
      f"to {kib('trimmed') / 1024:.1f} MiB (see malloc-stats.txt); with `trim_memory` on (the default, as here) the provider "
      "has given back what glibc kept on its own, so little is left to trim (the options below compare it with glibc as is).")
w("")
opts = {}
for r in csv.DictReader(open(f"{out}/memory-options.csv")):
    opts.setdefault(r["option"], {})[r["step"]] = int(r["server_rss_kib"])
if opts:
    about = {
        "glibc": "glibc as it is (`trim_memory=false`): freed memory stays in its per-thread arenas",
        "arena_max_1": "`trim_memory=false` with `MALLOC_ARENA_MAX=1`: every thread shares one arena",
        "trim_memory": "`trim_memory=true` (the default): each reactor calls `malloc_trim(0)` a second after a storm of closes",
    }
    churns = sorted((k for k in next(iter(opts.values())) if k.startswith("churn_")), key=lambda k: int(k[6:]))
    w("## Memory after connection storms: the options\n")
    w(f"Each option: a fresh provider, then {len(churns)} clients one after the other, each opening {n:,} connections "
      "through a Channel (one call each) and leaving; RSS sampled once it had settled (unchanged for 3 s) "
      "after the last connection closed. The `trim_memory` series repeats the main run's configuration on a fresh "
      "provider. Goal: RSS with no connection ≤ 2× the RSS at start, and no growth left over the churns' second "
      "half (the slope's 95% interval includes 0).\n")
    shown = [k for i, k in enumerate(churns) if i in (0, 1, 4, 9, 14) or i == len(churns) - 1]
    w("| option | start (MiB) | " + " | ".join(f"after churn {k[6:]}" for k in shown)
      + " | peak (MiB) | last ÷ start | ≤ 2× | slope over the second half |")
    w("|---|---:|" + "---:|" * len(shown) + "---:|---:|---|---|")
    for name, r in opts.items():
        ratio = r[churns[-1]] / r["start"]
        w(f"| {about.get(name, name)} | {r['start'] / 1024:.1f} | " + " | ".join(f"{r[k] / 1024:.1f}" for k in shown)
          + f" | {r['peak'] / 1024:.1f} | {ratio:.2f}× | {'yes' if ratio <= 2 else '**no**'} | "
          f"{growth([r[k] for k in churns])[0]} |")
    w("")
    w("Every churn's RSS is in memory-options.csv.")
    w("")
    best = min(opts, key=lambda k: opts[k][churns[-1]])
    w(f"Lowest RSS after the last churn: `{best}`. The provider's default is `trim_memory=true`; "
      "an allocator of its own (jemalloc, mimalloc) was not measured: it would add a C build or a dependency "
      "for what one glibc call already gives back.\n")
fails = [f for p in (raw, co, cr) for f in p.get("first_failures", [])]
if fails:
    w("First failures reported by the client:\n")
    for f in fails:
        w(f"- `{f}`")
    w("")
w("## Samples\n")
w("| step | t (s) | provider RSS (MiB) | provider fds | server established | client RSS (MiB) | kernel TCP mem (MiB) | accept-queue overflows | load1 |")
w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for step, r in rows.items():
    w(f"| {step} | {r['t_s']} | {int(r['server_rss_kib']) / 1024:.1f} | {r['server_fds']} | {r['server_established']} | "
      f"{int(r['client_rss_kib']) / 1024:.1f} | {int(float(r['kernel_tcp_mem_kib'])) / 1024:.1f} | {r['listen_overflows']} | {r['loadavg1']} |")
w("")
w("Steps: `start` provider up, nothing connected; `idle` the raw connections open, nothing sent; "
  "`raw_used` one call answered on each; `raw_closed` all closed by the client; `chan_open` the Channel's "
  "connections open, one call each; `chan_rounds` after the extra rounds; `end` the client exited; "
  "`churn_K` after the K-th extra client (CONNS connections, one call each) left; `trimmed` after `malloc_trim(0)`. "
  "Accept-queue overflows are counted since the start of the run, machine-wide.\n")
w("How it is measured: VmRSS/VmHWM from `/proc/PID/status`; fds from `/proc/PID/fd`; connections with "
  "`ss -Htn state established '( sport = :PORT )'`; the client prints a `PHASE` line and waits on a FIFO "
  "at each step, so every sample is taken while the connections are held. "
  "The server allocates a connection's read buffer on its first read, so the idle figure is the cost of "
  "the connection's struct, its slab slot and epoll registration; the after-use figure adds its buffers.\n")
w("Raw data: `results/scale/` (samples.csv, memory-options.csv, phases.jsonl with the client's per-phase counts, env.json, "
  "the provider config, the command, uptime before/after).")
open(md, "w").write("\n".join(L) + "\n")
print(f"wrote {md}")
PY
log "done: results/SCALE.md"
