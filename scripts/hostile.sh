#!/usr/bin/env bash
# Hostile peers against a release provider (not CI): each attack of issue 22
# runs against a fresh provider while a well-behaved client calls beside it,
# and results/HOSTILE.md records, per attack, the good client's errors and
# latency, the provider's RSS and CPU, and whether it survived.
#
#   scripts/hostile.sh [SECONDS]     each attack lasts SECONDS (default 8)
#
# Both halves are target/release/hostile (loadgen/src/bin/hostile.rs):
# `hostile serve` is the provider (Echo inline, Pool blocking, Park async;
# registry=none, loopback only), `hostile attack NAME` the attacker and the
# good client. Survived means: the provider is alive, every good call
# succeeded, its calls in flight are back to 0, and its RSS is back within
# 32 MiB of where it started (sampled 2 s after the attack, once trim_memory
# has run). The provider runs with the defaults except
# write_stall_timeout_ms=2000 (30 s by default), so the never-reading peers
# are closed within the bounded run. Everything started is stopped on exit;
# the run takes about (SECONDS + 6) s per attack.
#
# Knobs (environment): ATTACKS (space-separated names, default all),
# AFTER (seconds the good client goes on after each attack, 3),
# SKIP_BUILD=1 (use $RELEASE_DIR as is).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

SECONDS_EACH=${1:-8}
AFTER=${AFTER:-3}
ATTACKS=${ATTACKS:-pool-reset seed-trickle paused-reset duplicate-ids big-frames never-read garbage}
OUT=results/hostile

git_state
build_release loadgen:hostile
scratch hostile
rm -rf "$OUT"
mkdir -p "$OUT"
: >"$OUT/runs.jsonl"

status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# The sum of mprpc_in_flight on the provider's /metrics (admin pages are on
# by default on a loopback address).
in_flight() {
    python3 - "$1" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
print(int(sum(float(l.split()[-1]) for l in body.splitlines() if l.startswith("mprpc_in_flight{"))))
PY
}

for attack in $ATTACKS; do
    port=$(free_port)
    cat >"$WORK/$attack.conf" <<EOF
registry=none
rpcserverip=127.0.0.1
rpcserverport=$port
write_stall_timeout_ms=2000
log_dir=$WORK/logs-$attack
EOF
    "$RELEASE_DIR/hostile" serve -i "$WORK/$attack.conf" >"$WORK/$attack.provider.out" 2>"$WORK/$attack.provider.err" &
    pid=$!
    PIDS+=("$pid")
    wait_port "$port" 10 || { cat "$WORK/$attack.provider.err" >&2; die "the provider did not start"; }
    sleep 1
    rss0=$(status_kib "$pid" VmRSS)
    cpu0=$(cpu_ticks "$pid")
    log "$attack: ${SECONDS_EACH} s against pid $pid (RSS $((rss0 / 1024)) MiB)"
    timeout $((SECONDS_EACH + AFTER + 60)) "$RELEASE_DIR/hostile" attack "$attack" --addr "127.0.0.1:$port" \
        --seconds "$SECONDS_EACH" --after "$AFTER" >"$WORK/$attack.attack.out" 2>"$WORK/$attack.attack.err" || true
    cpu1=$(cpu_ticks "$pid")
    sleep 2 # trim_memory gives freed memory back a second after the last large close
    alive=false
    kill -0 "$pid" 2>/dev/null && alive=true
    rss1=$(status_kib "$pid" VmRSS)
    hwm=$(status_kib "$pid" VmHWM)
    vmpeak=$(status_kib "$pid" VmPeak)
    flight=-1
    $alive && flight=$(in_flight "$port" 2>/dev/null || echo -1)
    log_bytes=$(du -sb "$WORK/logs-$attack" 2>/dev/null | cut -f1)
    err_bytes=$(stat -c %s "$WORK/$attack.provider.err")
    result=$(sed -n 's/^RESULT //p' "$WORK/$attack.attack.out")
    [[ -n $result ]] || result='{"error": "no result from the attacker"}'
    python3 - "$OUT/runs.jsonl" "$attack" "$alive" "$rss0" "$rss1" "$hwm" "$vmpeak" "$cpu0" "$cpu1" \
        "$(getconf CLK_TCK)" "$flight" "${log_bytes:-0}" "$err_bytes" "$result" <<'PY'
import json, sys
(out, attack, alive, rss0, rss1, hwm, vmpeak, cpu0, cpu1, tck, flight, log_bytes, err_bytes, result) = sys.argv[1:]
run = json.loads(result)
run.update(name=attack, alive=alive == "true", rss_start_kib=int(rss0), rss_end_kib=int(rss1),
           rss_peak_kib=int(hwm), vm_peak_kib=int(vmpeak),
           cpu_s=(int(cpu1) - int(cpu0)) / int(tck), in_flight_after=int(flight),
           log_bytes=int(log_bytes), stderr_bytes=int(err_bytes))
open(out, "a").write(json.dumps(run) + "\n")
print(json.dumps(run))
PY
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
done

uptime >"$OUT/uptime.txt"
python3 - "$OUT" results/HOSTILE.md "$SECONDS_EACH" "$AFTER" <<'PY'
import json, os, sys, time
out, md, seconds, after = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
runs = [json.loads(l) for l in open(f"{out}/runs.jsonl")]
about = {
    "pool-reset": "50 connections pipeline 1,000 `Pool.Sleep(10 ms)` calls each (4 workers), then reset",
    "seed-trickle": "2 seed-format requests: a 1 MiB header, then args (8 MiB announced) a byte every 2 ms",
    "paused-reset": "20 connections send 1,024 `Park.Wait` (async, never answers) each, pausing at the in-flight limit, then reset",
    "duplicate-ids": "20 connections send 1,000 `Park.Wait` each, all with id 7, then reset",
    "big-frames": "200 headers announcing 16 MiB held, then 40 frames of 16 MiB less a byte",
    "never-read": "50 connections pipeline 64 KiB echoes and never read a reply",
    "garbage": "4 threads open connection after connection, each sending 512 random bytes",
}
dirty = os.environ["GIT_DIRTY"] == "true"
L = []
w = L.append
w("# Hostile peers against a release provider\n")
w(f"Generated by `scripts/hostile.sh {seconds}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} at commit "
  f"`{os.environ['GIT_COMMIT']}` (dirty: {str(dirty).lower()}), {os.cpu_count()} cores shared with other work "
  f"(load after the run: `{open(f'{out}/uptime.txt').read().strip()}`).\n")
w(f"Each attack runs {seconds} s against a fresh `hostile serve` (defaults, except `write_stall_timeout_ms=2000`), "
  f"with a good client calling beside it (one call at a time, 2 s timeout, 2 ms apart; `Pool.Sleep(0)` in the pool "
  f"attack, `Echo.Echo` otherwise) until {after} s after it. **Survived**: the provider is alive, every good call "
  "succeeded, no call is left in flight, and its RSS 2 s after the attack is within 32 MiB of its start.\n")
w("| attack | good calls ok / errors | good p50 / p99 / max (ms) | provider CPU (s) | RSS start → peak → after (MiB) | peak address space (MiB) | in flight after | log + stderr (KiB) | survived |")
w("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for r in runs:
    ok = r.get("ok", 0) > 0 and r.get("errors", 1) == 0
    back = r["rss_end_kib"] <= r["rss_start_kib"] + 32 * 1024
    survived = r["alive"] and ok and back and r["in_flight_after"] == 0
    why = [] if survived else [x for x, bad in [("died", not r["alive"]), ("good calls failed", not ok),
                                                 ("RSS stayed up", not back), ("calls left in flight", r["in_flight_after"] != 0)] if bad]
    ms = lambda k: f"{r.get(k, 0) / 1000:.1f}"
    w(f"| {r['name']} | {r.get('ok', 0):,} / {r.get('errors', '?')} | {ms('p50_us')} / {ms('p99_us')} / {ms('max_us')} | "
      f"{r['cpu_s']:.2f} | {r['rss_start_kib'] / 1024:.0f} → {r['rss_peak_kib'] / 1024:.0f} → {r['rss_end_kib'] / 1024:.0f} | "
      f"{r['vm_peak_kib'] / 1024:.0f} | {r['in_flight_after']} | {(r['log_bytes'] + r['stderr_bytes']) / 1024:.0f} | "
      f"{'yes' if survived else '**no**: ' + ', '.join(why)} |")
w("")
w("The attacks:\n")
for r in runs:
    w(f"- `{r['name']}`: {about.get(r['name'], '')}." + (f" First good-call error: `{r['first_error']}`." if r.get("first_error") else ""))
w("")
w("CPU is the provider's user + system time from the attack's start to its end (`/proc/PID/stat`); RSS peak is VmHWM "
  "(the provider's high-water mark since it started), peak address space VmPeak. The log column is the provider's log "
  "directory plus its stderr. Raw data: `results/hostile/runs.jsonl`.")
open(md, "w").write("\n".join(L) + "\n")
print(f"wrote {md}")
PY
log "done: results/HOSTILE.md"
