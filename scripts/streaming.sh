#!/usr/bin/env bash
# Streaming benchmarks of issue 26 ("Measured"), written to
# results/STREAMING.md with the raw outputs in results/streaming/raw/:
#
#  1. Server-stream throughput: STREAMS (50) streams open at once, closed
#     loop, each of MESSAGES (1000) messages of PAYLOAD (64) bytes. Ours:
#     `loadgen --stream server` (the `Channel`, a thread per stream; with
#     --stream-async, every stream a future on one tokio thread, the
#     tonic client's shape; with --stream-callback, every stream consumed
#     by a StreamHandler on the Channel's I/O thread) against
#     echo-provider's EchoStreamService.Pump.
#     tonic: `loadgen --stream server --target
#     tonic` (tonic's own generated client, one current-thread tokio
#     runtime) against tonic-echo-server's Pump. Each side's client drives
#     its own server, STREAMS connections with one stream each; interleaved
#     over ROUNDS rounds; messages/s and server/client CPU µs per message.
#  2. Per-message round trip: a bidi echo stream (EchoStream: each message
#     awaited before the next; a thread per stream, and with
#     --stream-callback the next sent from the handler on the Channel's I/O
#     thread) against a unary call (Echo) through the
#     `Channel`, async (`--client channel`) and blocking (one thread per
#     caller, as the bidi run has one per stream), the same connections,
#     closed loop, one message or call in flight each: STREAMS at once,
#     and 1; judged against the lower unary p50 (the stricter).
#  3. A slow reader: `loadgen --stream server --stall-reader STALL_SECS` on
#     one connection: STALL_STREAMS Pump streams and STALL_UNARY blocking
#     Echo callers beside one endless Pump stream of STALL_SIZE-byte
#     messages whose reader stops for STALL_SECS; the provider's (and
#     loadgen's) RSS against one stream window, and the others' rates
#     before/during/after.
#
# Pinned as scripts/compare.sh: every server on core SERVER_CPU (0) with one
# thread (REACTORS reactors; tonic's tokio with as many workers), every
# client on CLIENT_CPU (1). Every figure in the report comes from the raw
# files; the report records the commit, the dirty flag and the load average
# before and after every round.
#
#   scripts/streaming.sh            full run (about 6 minutes after the build)
#   QUICK=1 scripts/streaming.sh    1 round of 1 s runs, a 3 s stall (under a
#                                   minute); the report says QUICK in its title
#   SKIP_BUILD=1 CARGO_TARGET_DIR=DIR scripts/streaming.sh
#                                   reuse release binaries in DIR/release
#                                   (loadgen and tonic-echo-server built with
#                                   --features tonic; echo-provider)
#
# Knobs (environment): QUICK (0), ROUNDS (5), SECS (5), WARMUP (1), STREAMS
# (50), MESSAGES (1000), BIDI_MESSAGES (100), PAYLOAD (64), REACTORS (1), STALL_SECS (10),
# STALL_SIZE (65536), STALL_STREAMS (8), STALL_UNARY (4), SERVER_CPU (0),
# CLIENT_CPU (1), SKIP_BUILD, OUT_DIR (results: where STREAMING.md and
# streaming/ go), NOTE (a sentence for the report's header, e.g. what else
# the machine was doing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source scripts/lib.sh

if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi

QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    ROUNDS=${ROUNDS:-1} SECS=${SECS:-1} WARMUP=${WARMUP:-0.3} STALL_SECS=${STALL_SECS:-3}
fi
ROUNDS=${ROUNDS:-5}
SECS=${SECS:-5}
WARMUP=${WARMUP:-1}
STREAMS=${STREAMS:-50}
MESSAGES=${MESSAGES:-1000}
# Bidi streams are shorter: a stream counts when it opens inside the
# measured window, and 50 × 1000 round trips take longer than one.
BIDI_MESSAGES=${BIDI_MESSAGES:-100}
PAYLOAD=${PAYLOAD:-64}
REACTORS=${REACTORS:-1}
STALL_SECS=${STALL_SECS:-10}
STALL_SIZE=${STALL_SIZE:-65536}
STALL_STREAMS=${STALL_STREAMS:-8}
STALL_UNARY=${STALL_UNARY:-4}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
OUT_DIR=${OUT_DIR:-results}
REPORT=$OUT_DIR/STREAMING.md
RAW=$OUT_DIR/streaming/raw
BIN=${CARGO_TARGET_DIR:-target}/release
T0=$(date +%s)

for tool in python3 taskset; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/setup.sh installs it)"
done

# What the binaries are built from, before this script writes anything.
git_state
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "release build (loadgen and tonic-echo-server with --features tonic, echo-provider)"
    cargo build --release -p loadgen --features tonic --bin loadgen --bin tonic-echo-server
    cargo build --release -p mprpc-examples --bin echo-provider
fi
for b in loadgen tonic-echo-server echo-provider; do
    [[ -x $BIN/$b ]] || die "$BIN/$b missing"
done
"$BIN/loadgen" --help | grep -q -- --stall-reader || die "$BIN/loadgen has no --stall-reader: rebuild it"
T_BUILD=$(($(date +%s) - T0))

scratch streaming
rm -rf "$RAW"
mkdir -p "$RAW"
: >"$RAW/commands.txt"
: >"$RAW/loadavg.txt"
loadavg() { printf '%s\t%s\n' "$1" "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW/loadavg.txt"; }
loadavg "start"

# ------------------------------------------------------------- servers
log "servers on core $SERVER_CPU ($REACTORS thread(s) each), clients on core $CLIENT_CPU"
declare -A SERVER_PID
# Starts a pinned server in the background and waits for its port: name port command...
serve() {
    local name=$1 port=$2
    shift 2
    printf '%s\n' "taskset -c $SERVER_CPU $*" >>"$RAW/commands.txt"
    taskset -c "$SERVER_CPU" "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
    SERVER_PID[$name]=$!
    wait_port "$port" 20 || { cat "$WORK/$name.log"; die "$name did not start"; }
}
OURS_PORT=$(free_port)
printf '%s\n' "rpcserverip=127.0.0.1" "rpcserverport=$OURS_PORT" "registry=none" \
    "log_dir=$WORK/logs" "reactor_threads=$REACTORS" >"$RAW/echo-provider.conf"
serve ours "$OURS_PORT" "$BIN/echo-provider" -i "$RAW/echo-provider.conf"
TONIC_PORT=$(free_port)
serve tonic "$TONIC_PORT" "$BIN/tonic-echo-server" --addr "127.0.0.1:$TONIC_PORT" --workers "$REACTORS"
sleep 0.5

machine_json "$RAW/env.json" build_seconds="$T_BUILD" quick="$([[ $QUICK == 1 ]] && echo true || echo false)" \
    "pinning={\"server_cpu\": $SERVER_CPU, \"client_cpu\": $CLIENT_CPU}" \
    "tonic=\"$(grep -A1 '^name = "tonic"$' Cargo.lock | sed -n 's/version = "\(.*\)"/\1/p')\""
cat >"$RAW/params.json" <<EOF
{"rounds": $ROUNDS, "secs": $SECS, "warmup_s": $WARMUP, "streams": $STREAMS, "messages": $MESSAGES,
 "bidi_messages": $BIDI_MESSAGES, "payload": $PAYLOAD, "reactors": $REACTORS, "stall_secs": $STALL_SECS, "stall_size": $STALL_SIZE,
 "stall_streams": $STALL_STREAMS, "stall_unary": $STALL_UNARY, "quick": $([[ $QUICK == 1 ]] && echo true || echo false)}
EOF

# ------------------------------------------------------------- runs
N=0
TOTAL=$((ROUNDS * 12 + 1))
step() { N=$((N + 1)); log "[$N/$TOTAL, $(($(date +%s) - T0))s] $*"; }
# One pinned loadgen run: label server args... (stdout into RAW/label.txt).
lg() {
    local label=$1 server=$2
    shift 2
    step "$label"
    local cmd=(taskset -c "$CLIENT_CPU" "$BIN/loadgen" --duration "${SECS}s" --warmup "${WARMUP}s"
        --payload "$PAYLOAD" --cpu-pid "${SERVER_PID[$server]}" --label "$label" --out-dir "$RAW" "$@")
    printf '%s\n' "${cmd[*]}" >>"$RAW/commands.txt"
    "${cmd[@]}" >"$RAW/$label.txt" 2>&1 || { cat "$RAW/$label.txt"; die "loadgen failed: $label"; }
    grep -E '^summary:|^- rate' "$RAW/$label.txt" | sed 's/^/    /' >&2 || true
}
OURS=(--target mprpc --addr "127.0.0.1:$OURS_PORT")
STREAM=(--connections "$STREAMS" --stream-messages "$MESSAGES")
for r in $(seq 1 "$ROUNDS"); do
    loadavg "round $r start"
    # 1. Server-stream throughput, ours then tonic.
    lg "server-ours-r$r" ours "${OURS[@]}" --stream server "${STREAM[@]}"
    lg "server-ours-async-r$r" ours "${OURS[@]}" --stream server --stream-async "${STREAM[@]}"
    lg "server-ours-callback-r$r" ours "${OURS[@]}" --stream server --stream-callback "${STREAM[@]}"
    lg "server-tonic-r$r" tonic --target tonic --addr "127.0.0.1:$TONIC_PORT" --stream server "${STREAM[@]}"
    # 2. Bidi round trip against unary, STREAMS at once and 1.
    for n in "$STREAMS" 1; do
        lg "bidi$n-ours-r$r" ours "${OURS[@]}" --stream bidi --connections "$n" --stream-messages "$BIDI_MESSAGES"
        lg "bidicb$n-ours-r$r" ours "${OURS[@]}" --stream bidi --stream-callback --connections "$n" \
            --stream-messages "$BIDI_MESSAGES"
        lg "unaryc$n-ours-r$r" ours "${OURS[@]}" --client channel --connections "$n" --in-flight "$n" --qps max
        lg "unaryb$n-ours-r$r" ours "${OURS[@]}" --client blocking --connections "$n" --threads "$n" \
            --in-flight "$n" --qps max
    done
    loadavg "round $r end"
done

# 3. The slow reader.
loadavg "stall start"
lg "stall-ours" ours "${OURS[@]}" --stream server --connections "$STALL_STREAMS" --stream-messages "$MESSAGES" \
    --stall-reader "$STALL_SECS" --stall-size "$STALL_SIZE" --stall-unary "$STALL_UNARY"
loadavg "stall end"

T_TOTAL=$(($(date +%s) - T0))
log "report"
python3 - "$RAW" "$REPORT" "$T_TOTAL" <<'PY'
import glob, json, os, re, statistics, sys
raw, report, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
env = json.load(open(f"{raw}/env.json"))
p = json.load(open(f"{raw}/params.json"))

def summary(label):
    text = open(f"{raw}/{label}.txt").read()
    line = next(l for l in text.splitlines() if l.startswith("summary:"))
    return dict(kv.split("=", 1) for kv in line.split()[1:])

def unary(label):
    path = next(iter(glob.glob(f"{raw}/*-{label}.json")))
    j = json.load(open(path))
    cpu = j.get("cpu") or {}
    return {"rate": j["achieved_qps"], "p50": j["latency_us"]["p50"], "p99": j["latency_us"]["p99"],
            "errors": j["errors"], "server_us": cpu.get("server_us_per_call"),
            "client_us": cpu.get("client_us_per_call")}

def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

def rng(xs, fmt):
    xs = [x for x in xs if x is not None]
    return f"{fmt(min(xs))}–{fmt(max(xs))}" if xs else "–"

k = lambda x: "–" if x is None else f"{x / 1000:,.0f} k"
us = lambda x: "–" if x is None else f"{x:.2f}"
i0 = lambda x: "–" if x is None else f"{x:,.0f}"
rounds = range(1, p["rounds"] + 1)
quick = p["quick"]
out = []
w = out.append
title = "Streaming benchmarks (issue 26)"
w(f"# {title}{' — QUICK run, not the figures' if quick else ''}\n")
if quick:
    la = open(f"{raw}/loadavg.txt").readline().rstrip("\n").split("\t")[1]
    w(f"**QUICK mode** ({p['rounds']} round of {p['secs']} s runs, load average {la} at the start): "
      "this shows the script works; its figures say nothing about the goals. The full run is "
      "`scripts/streaming.sh`.\n")
if os.environ.get("NOTE"):
    w(f"Note from whoever ran it: {os.environ['NOTE']}\n")
w(f"Written by `scripts/streaming.sh` on {env['date_utc']} in {total} s "
  f"(build {env['build_seconds']} s). Commit `{env['git_commit']}`"
  f"{' **(dirty: tracked files differ from it)**' if env['git_dirty'] else ' (clean)'}; "
  f"{env['nproc']} cores ({env['cpu_model']}), {env['mem_total']} memory, kernel {env['kernel']}, "
  f"{env['rustc']}, tonic {env.get('tonic', '?')}.\n")
w(f"Pinned: every server on core {env['pinning']['server_cpu']} with {p['reactors']} thread "
  f"(our provider's reactors = tonic's tokio workers), every client on core "
  f"{env['pinning']['client_cpu']}. Load average (1, 5, 15 min) through the run:\n")
w("| when | load average |\n|---|---|")
for line in open(f"{raw}/loadavg.txt"):
    when, la = line.rstrip("\n").split("\t")
    w(f"| {when} | {la} |")
w("")
w(f"Every command run is in [streaming/raw/commands.txt](streaming/raw/commands.txt); the outputs "
  f"beside it. {p['rounds']} round(s), interleaved (per round: ours, ours-async, ours-callback, tonic, then bidi, bidi callback, unary async, unary blocking at each load); each run "
  f"{p['warmup_s']} s warm-up then {p['secs']} s measured.\n")

# 1. Server-stream throughput.
w("## 1. Server-stream throughput\n")
w(f"{p['streams']} streams open at once, closed loop (a stream ends, the next opens), each of "
  f"{p['messages']} messages of {p['payload']} bytes; messages/s received by the client.\n")
w("- **ours**: `loadgen --stream server` (mprpc's `Channel`, one sender thread per stream, "
  f"{p['streams']} connections) → `echo-provider`'s `EchoStreamService.Pump` (an async handler "
  "awaiting each send).")
w("- **ours-async**: `loadgen --stream server --stream-async` (the same `Channel`, its streams read "
  "as `futures_core::Stream`s, every one a task of one current-thread tokio runtime: the tonic "
  "client's shape) → the same `Pump`.")
w("- **ours-callback**: `loadgen --stream server --stream-callback` (the same `Channel`, every "
  "stream consumed by a `StreamHandler` on its I/O thread, messages decoded there in the batches "
  "the driver read, the next stream opened from `on_closed`; loadgen's bookkeeping once per batch: "
  "a batch's first message's latency is the gap since the stream's previous delivery, the others "
  "1 µs) → the same `Pump`.")
w("- **tonic**: `loadgen --stream server --target tonic` (tonic's own generated client, "
  f"{p['streams']} connections with one stream each, one current-thread tokio runtime) → "
  "`tonic-echo-server`'s `Pump` (a `tokio_stream::iter` of the replies: no channel or task "
  "in between).\n")
sysrows = {}
for s in ("ours", "ours-async", "ours-callback", "tonic"):
    runs = [summary(f"server-{s}-r{r}") for r in rounds]
    sysrows[s] = runs
w("| system | messages/s per round | median | min–max | server CPU µs/msg (median) | client CPU µs/msg (median) | server core busy | client core busy | failed streams |")
w("|---|---|---|---|---|---|---|---|---|")
busy = lambda runs, key: med(num(r[key]) * num(r["messages_per_s"]) / 1e4 for r in runs if num(r[key]) is not None)
pct = lambda x: "–" if x is None else f"{x:.0f}%"
for s, runs in sysrows.items():
    rates = [num(r["messages_per_s"]) for r in runs]
    w(f"| {s} | {', '.join(k(x) for x in rates)} | {k(med(rates))} | {rng(rates, k)} | "
      f"{us(med(num(r['server_us_per_msg']) for r in runs))} | "
      f"{us(med(num(r['client_us_per_msg']) for r in runs))} | {pct(busy(runs, 'server_us_per_msg'))} | "
      f"{pct(busy(runs, 'client_us_per_msg'))} | {sum(int(r['failed']) for r in runs)} |")
w("")
w("(A core's busy share is its process's CPU µs per message × messages/s: the side near 100% is the "
  "one that limits the rate.)")
tonic_med = med(num(r["messages_per_s"]) for r in sysrows["tonic"])
tonic_cpu = med(num(r["server_us_per_msg"]) for r in sysrows["tonic"])
w("")
for s in ("ours", "ours-async", "ours-callback"):
    ratios = [num(a["messages_per_s"]) / num(b["messages_per_s"]) for a, b in zip(sysrows[s], sysrows["tonic"])]
    ratio = med(num(r["messages_per_s"]) for r in sysrows[s]) / tonic_med
    own_cpu = med(num(r["server_us_per_msg"]) for r in sysrows[s])
    cpu_note = f"; server CPU per message, tonic / {s}: {tonic_cpu / own_cpu:.2f}×" if own_cpu and tonic_cpu else ""
    w(f"- **{s} / tonic: {ratio:.2f}×** messages/s (medians; per round {rng(ratios, lambda x: f'{x:.2f}×')})"
      f"{cpu_note}. Goal ≥ 3×: **{'met' if ratio >= 3 else 'not met'}**.")
w("")

# 2. Bidi vs unary.
w("## 2. Bidi per-message round trip against a unary call\n")
w("All through mprpc's `Channel` against the same provider, closed loop, the same number of "
  "connections, each stream or caller with one message in flight: **bidi** is `loadgen --stream "
  f"bidi` (`EchoStream`, each message's echo awaited before the next, one client thread per stream; "
  f"streams of {p['bidi_messages']} messages); **bidi callback** is `loadgen --stream bidi "
  "--stream-callback` (the same streams consumed by a `StreamHandler` on the `Channel`'s I/O "
  "thread, each next message sent from inside its `on_messages`: no thread hand-off; a message's "
  "round trip is from its `try_send` to the delivery of its echo, one clock read per delivery); "
  "**unary async** is `loadgen --client channel` (`Echo`, "
  "the `Channel`'s non-blocking call, the next sent from the reply's callback); **unary blocking** "
  "is `loadgen --client blocking` (the blocking call, one client thread per caller, as bidi). "
  "Latency is each message's round trip (µs): p50 per round, then the median and min–max. The goal "
  "is judged against the lower of the two unary p50s (the stricter).\n")
w("| load | kind | p50 per round | p50 median | p50 min–max | p99 median | rate median (msg or calls/s) | server CPU µs/msg | client CPU µs/msg |")
w("|---|---|---|---|---|---|---|---|---|")
verdicts = []
for n in (p["streams"], 1):
    bidi_p50 = {}
    for tag, name in (("bidi", "bidi"), ("bidicb", "bidi callback")):
        b = [summary(f"{tag}{n}-ours-r{r}") for r in rounds]
        bp = [num(x["p50_us"]) for x in b]
        bidi_p50[name] = med(bp)
        w(f"| {n} at once | {name} | {', '.join(i0(x) for x in bp)} | {i0(med(bp))} | {rng(bp, i0)} | "
          f"{i0(med(num(x['p99_us']) for x in b))} | {i0(med(num(x['messages_per_s']) for x in b))} | "
          f"{us(med(num(x['server_us_per_msg']) for x in b))} | {us(med(num(x['client_us_per_msg']) for x in b))} |")
    unary_p50 = {}
    for tag, name in (("c", "unary async"), ("b", "unary blocking")):
        u = [unary(f"unary{tag}{n}-ours-r{r}") for r in rounds]
        up = [x["p50"] for x in u]
        unary_p50[name] = med(up)
        w(f"| {n} at once | {name} | {', '.join(i0(x) for x in up)} | {i0(med(up))} | {rng(up, i0)} | "
          f"{i0(med(x['p99'] for x in u))} | {i0(med(x['rate'] for x in u))} | "
          f"{us(med(x['server_us'] for x in u))} | {us(med(x['client_us'] for x in u))} |")
    for name, bp in bidi_p50.items():
        verdicts.append((n, name, bp, unary_p50))
w("")
for n, name, bp, unary_p50 in verdicts:
    if not bp or not all(unary_p50.values()):
        w(f"- {n} at once, {name}: **no measured messages** in a run (a stream counts only when it "
          "opens in the measured window): no verdict.")
        continue
    each = "; ".join(f"against {u} {bp / v:.2f}×" for u, v in unary_p50.items())
    worst = max(bp / v for v in unary_p50.values())
    w(f"- {n} at once, {name}: p50 / unary p50: {each}. Goal ≤ 1.2× (against the lower unary p50): "
      f"**{worst:.2f}×, {'met' if worst <= 1.2 else 'not met'}**.")
w("")

# 3. Slow reader.
st = summary("stall-ours")
stall_text = open(f"{raw}/stall-ours.txt").read()
w("## 3. A reader that stops reading\n")
w(f"`loadgen --stream server --stall-reader {p['stall_secs']}` against the provider: one `Channel`, "
  f"**one connection**, carrying {p['stall_streams']} closed-loop `Pump` streams ({p['messages']} × "
  f"{p['payload']} bytes) and {p['stall_unary']} blocking `Echo` callers beside one endless `Pump` "
  f"stream of {p['stall_size']}-byte messages the provider pushes as fast as credit allows. After "
  f"the warm-up and {p['secs']} s (before), that stream's reader reads nothing for "
  f"{p['stall_secs']} s (stalled), then reads again for {p['secs']} s (after). RSS from "
  "/proc/PID/status every 20 ms. (The stalled stream's few messages counted in the stalled phase "
  "are those its reader was already taking when the phase began.)\n")
win_kib = int(st["window_bytes"]) / 1024
w(f"- **Window**: {st['window_messages']} messages × {st['stall_size']} bytes = **{win_kib:,.0f} KiB** "
  "(`stream_window` messages, or as many as fit the provider's `stream_window_bytes` cap, the defaults).")
w(f"- **Provider RSS**: {int(st['provider_rss_before_kib']):,} KiB before the stall, at most "
  f"{int(st['provider_rss_stall_max_kib']):,} KiB during it: **{int(st['provider_rss_growth_kib']):+,} KiB** "
  f"({int(st['provider_rss_growth_kib']) / win_kib:.2f} windows).")
w(f"- loadgen's RSS (the stalled reader holds the window it granted): "
  f"{int(st['loadgen_rss_before_kib']):,} KiB before, at most {int(st['loadgen_rss_stall_max_kib']):,} KiB "
  f"during: {int(st['loadgen_rss_growth_kib']):+,} KiB.")
w("")
w("| phase | other streams, messages/s | unary calls/s | the stalled stream, messages/s |")
w("|---|---|---|---|")
for ph in ("before", "stalled", "after"):
    w(f"| {ph} | {i0(num(st[f'{ph}_other_per_s']))} | {i0(num(st[f'{ph}_unary_per_s']))} | "
      f"{i0(num(st[f'{ph}_stalled_per_s']))} |")
w("")
keep = lambda key: num(st[f"stalled_{key}_per_s"]) / max(1, num(st[f"before_{key}_per_s"]))
w(f"During the stall the other streams ran at {keep('other'):.2f}× and the unary calls at "
  f"{keep('unary'):.2f}× their rate before it (the stalled stream's own reads stop taking its "
  f"share). Failed: other streams {st['other_failed']}, unary calls {st['unary_failed']}; the "
  f"stalled stream: {st['stalled_outcome']}.\n")
w("loadgen's own words:\n")
w("```")
w(stall_text.strip())
w("```")
open(report, "w").write("\n".join(out) + "\n")
PY
echo "done in ${T_TOTAL}s: $REPORT"
