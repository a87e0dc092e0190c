#!/usr/bin/env python3
"""Turns the raw data of scripts/compare.sh into results/COMPARISON.md,
its plots (SVG, by scripts/svgplot.py), docs/benchmarks.md's benchmark
block (between <!-- bench:begin --> and <!-- bench:end -->: the efficiency
and goals tables) and README.md's headline block (between
<!-- headline:begin --> and <!-- headline:end -->: a few medians).

    python3 scripts/compare_report.py results/comparison results/COMPARISON.md docs/benchmarks.md README.md

Reads only files in <dir>/raw: loadgen's JSON reports
(<date>-<config>-<system>-r<round>.json, with the server's and its own CPU
time), redis-benchmark CSV, h2load and sockperf output, perf's syscall
counts, the CPU ticks of the servers around the cross-check clients,
env.json, params.json, common_rate.json, commands.txt, loadavg.txt. Every
run is repeated and reported as median and min–max; a goal is met only
when our worst run beats their best. A latency figure is printed only from
runs that held their open-loop target; otherwise the cell says which rule
failed. Standard library only.
"""

import csv
import glob
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import svgplot  # noqa: E402
from benchstats import held_cell, held_failures, spread  # noqa: E402

NAMES = {
    "ours": "mprpc (ours), loadgen engine",
    "ours-channel": "mprpc (ours), its own `Channel` client",
    "ours-channel-io2": "mprpc (ours), its own `Channel` client, 2 I/O threads",
    "ours-blocking": "mprpc (ours), `Channel::call` (blocking)",
    "ours-tls": "mprpc (ours) over TLS, loadgen engine",
    "ours-tls-channel": "mprpc (ours) over TLS, its own `Channel` client",
    "volo": "Volo (volo-thrift, default server)",
    "volo-mux": "Volo, `multiplex` server (non-default)",
    "tonic": "tonic (gRPC)",
    "tonic-tls": "tonic (gRPC) over TLS",
    "redis": "redis-server PING",
    "seed": "seed wire format → our provider (a connection per call)",
}
ORDER = ["ours", "ours-channel", "ours-channel-io2", "ours-tls", "ours-tls-channel", "ours-blocking", "volo",
         "volo-mux", "tonic", "tonic-tls", "redis", "seed"]
# Short names for the plots' labels and legends.
SHORT = {
    "ours": "ours (engine)", "ours-channel": "ours (Channel)", "ours-channel-io2": "ours (Channel, 2 I/O)",
    "ours-blocking": "ours (blocking call)", "ours-tls": "ours TLS (engine)", "ours-tls-channel": "ours TLS (Channel)",
    "volo": "Volo", "volo-mux": "Volo multiplex (non-default)", "tonic": "tonic", "tonic-tls": "tonic TLS",
    "redis": "redis", "seed": "seed format → ours",
}
# Does the client of a single-call row spin while it waits for the reply?
SPINS = {
    "ours": "no: the engine sleeps in epoll_wait",
    "ours-blocking": "yes: pinned, `Channel::call` shares the I/O thread's core, so it parks at once and the I/O "
                     "thread polls for the reply (up to 200 µs); on another core it spins up to 100 µs, then parks",
    "redis": "no: the engine sleeps in epoll_wait",
    "redis-benchmark": "no: redis-benchmark sleeps in its event loop (epoll)",
}
FLOOR_MODES = {
    "sleep": ("sockperf defaults: both sides block in the kernel", "no", "no"),
    "client-spins": ("client busy-polls a non-blocking socket, server blocks", "yes", "no"),
    "busy": ("both busy-poll non-blocking sockets", "yes", "yes"),
}
# The cost of TLS: (what, TLS system, the system it is compared with).
TLS_PAIRS = [
    ("ours: TLS ÷ plain (engine)", "ours-tls", "ours"),
    ("tonic: TLS ÷ plain", "tonic-tls", "tonic"),
    ("over TLS: ours ÷ tonic", "ours-tls", "tonic-tls"),
    ("ours: TLS ÷ plain (`Channel`)", "ours-tls-channel", "ours-channel"),
]
# Client I/O threads, per provider: (reactors key in params.json, [(system, client), ...]).
IO_BLOCKS = [
    ("reactors", [("ours", "engine, 1 thread"), ("ours-channel", "`Channel`, 1 I/O thread"),
                  ("ours-channel-io2", "`Channel`, 2 I/O threads")]),
    ("reactors_io", [("ours-r2", "engine, 2 threads"), ("ours-r2-channel", "`Channel`, 1 I/O thread"),
                     ("ours-r2-channel-io2", "`Channel`, 2 I/O threads")]),
]
IO_PAIRS = [
    ("`Channel` 2 ÷ 1 I/O threads", "ours-channel-io2", "ours-channel"),
    ("`Channel` 2 ÷ 1 I/O threads", "ours-r2-channel-io2", "ours-r2-channel"),
]
# A second I/O loop on the same core may cost at most 10% (issue 24).
IO_KEEP = 0.9
OPEN_PCTS = (25, 50, 75)
HELD_GOAL = 0.95


# ------------------------------------------------------------- loading


def load_runs(raw):
    """{(config, system): [run, ...]} from the loadgen JSON files."""
    runs = {}
    for path in sorted(glob.glob(os.path.join(raw, "*.json"))):
        data = json.load(open(path))
        m = re.fullmatch(r"(c\d+|p\d+|open\d+|common|single|sys[cp]\d+)-(.+)-r(\d+)", data.get("label", ""))
        if not m:
            continue
        data["file"] = os.path.basename(path)
        data["round"] = int(m.group(3))
        runs.setdefault((m.group(1), m.group(2)), []).append(data)
    return runs


def ticks(raw, label):
    path = os.path.join(raw, f"cpu-{label}.txt")
    return int(open(path).read().strip()) if os.path.exists(path) else None


def request_counts(commands):
    """redis-benchmark's -n per shape, from the commands it ran."""
    counts = {}
    for line in commands.splitlines():
        m = re.search(r"redis-benchmark .* -c (\d+) -n (\d+)( -P \d+)?", line)
        if m:
            shape = "single" if m.group(1) == "1" else ("p" if m.group(3) else "c1")
            counts[shape] = int(m.group(2))
    return counts


def load_redis_benchmark(raw, clk_tck, depth, commands):
    """{config: [{rps, p50, p99, server_cpu_us}, ...]} from redis-benchmark's CSV."""
    n = request_counts(commands)
    out = {}
    for path in sorted(glob.glob(os.path.join(raw, "redis-benchmark-*-r*.txt"))):
        label = os.path.basename(path)[:-4]
        config = re.match(r"redis-benchmark-(.+)-r\d+", label).group(1)
        rows = list(csv.DictReader(l for l in open(path) if l.startswith('"')))
        # `-t ping` runs PING_INLINE and PING_MBULK, -n requests each: the
        # server's ticks cover both.
        calls = n.get("p" if config.startswith("p") else config, 0) * len(rows)
        t = ticks(raw, label)
        for row in rows:
            if row.get("test") == "PING_MBULK":
                out.setdefault(config, []).append(dict(
                    rps=float(row["rps"]), p50=float(row["p50_latency_ms"]) * 1000,
                    p99=float(row["p99_latency_ms"]) * 1000,
                    server_cpu_us=t / clk_tck * 1e6 / calls if t is not None and calls else None))
    return out


def load_h2load(raw, clk_tck, secs, warmup):
    """{config: [{rps, ok, failed, server_cpu_us}, ...]} from h2load's output.
    The server's CPU ticks span warm-up + window; calls over that span are
    taken at the window's rate."""
    out = {}
    for path in sorted(glob.glob(os.path.join(raw, "h2load-*-r*.txt"))):
        label = os.path.basename(path)[:-4]
        config = re.match(r"h2load-(.+)-r\d+", label).group(1)
        text = open(path).read()
        rate = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", text)
        req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                        r"(\d+) errored", text)
        status = re.search(r"status codes: (\d+) 2xx", text)
        if not rate or not req:
            continue
        rps = float(rate.group(1))
        t = ticks(raw, label)
        out.setdefault(config, []).append(dict(
            rps=rps, ok=int(req.group(4)), failed=int(req.group(5)) + int(req.group(6)),
            status_2xx=int(status.group(1)) if status else None,
            server_cpu_us=t / clk_tck * 1e6 / (rps * (secs + warmup)) if t is not None and rps else None))
    return out


def load_floor(raw):
    """{mode: [{rate, p50, p99}, ...]} from sockperf's ping-pong output (µs)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(raw, "floor-*-r*.txt"))):
        mode = re.match(r"floor-(.+)-r\d+\.txt", os.path.basename(path)).group(1)
        text = open(path).read()
        pct = {float(k): float(v) for k, v in re.findall(r"percentile\s+([\d.]+)\s*=\s*([\d.]+)", text)}
        valid = re.search(r"\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=\d+; ReceivedMessages=(\d+)", text)
        if 50.0 in pct and valid:
            out.setdefault(mode, []).append(dict(rate=int(valid.group(2)) / float(valid.group(1)),
                                                 p50=pct[50.0], p99=pct.get(99.0)))
    return out


def load_syscalls(raw, runs):
    """{(config, system): {"total": per call, name: per call, ...}}: perf's
    counts over every call of the run (warm-up included)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(raw, "syscalls-*.csv"))):
        config, system = re.match(r"syscalls-(c\d+|p\d+)-(.+)\.csv", os.path.basename(path)).groups()
        run = (runs.get((f"sys{config}", system)) or [None])[0]
        if not run or not run.get("sent_total"):
            continue
        counts = {}
        for line in open(path):
            f = line.strip().split(",")
            if len(f) < 3 or line.startswith("#") or not f[0].isdigit():
                continue
            event = f[2].split(":")[-1].replace("sys_enter_", "")
            counts["total" if event == "sys_enter" else event] = int(f[0]) / run["sent_total"]
        out[(config, system)] = counts
    return out


# ------------------------------------------------------------- formatting


def us(v):
    if v is None:
        return "n/a"
    if v >= 1_000_000:
        return f"{v / 1e6:.2f} s"
    if v >= 1000:
        return f"{v / 1000:.2f} ms"
    return f"{v:.0f} µs"


def rate(v):
    return "n/a" if v is None else f"{v:,.0f}"


def cpu(v):
    return "n/a" if v is None else f"{v:.2f}"


def latency_cell(runs, value):
    return held_cell(runs, value, us)


class Data:
    def __init__(self, raw):
        self.runs = load_runs(raw)

    def get(self, config, system):
        return self.runs.get((config, system), [])

    def qps(self, config, system):
        return [r["achieved_qps"] for r in self.get(config, system)]

    def server_cpu(self, config, system):
        return [r["cpu"]["server_us_per_call"] for r in self.get(config, system)
                if r.get("cpu") and r["cpu"].get("server_us_per_call") is not None]

    def client_cpu(self, config, system):
        return [r["cpu"]["client_us_per_call"] for r in self.get(config, system)
                if r.get("cpu") and r["cpu"].get("client_us_per_call") is not None]

    def busy(self, config, system, side):
        """Fractions of a core `side` ("server" or "client") used over each run's window."""
        return [r["cpu"][f"{side}_cpu_s"] / r["cpu"]["window_s"] for r in self.get(config, system)
                if r.get("cpu") and r["cpu"].get(f"{side}_cpu_s") is not None and r["cpu"].get("window_s")]

    def held_p(self, config, system, key):
        return [r["latency_us"][key] for r in self.get(config, system) if r["target_held"]]


# ------------------------------------------------------------- goals


def goal(name, ours, theirs, target, higher_is_better=True, note=""):
    """Our worst run against their best; medians beside. Returns a row."""
    ours = [v for v in ours if v is not None]
    theirs = [v for v in theirs if v is not None]
    if not ours or not theirs:
        return (name, note, None, target, higher_is_better, "n/a")
    worst, best = (min(ours), max(theirs)) if higher_is_better else (max(ours), min(theirs))
    ratio = (worst / best, statistics.median(ours) / statistics.median(theirs))
    met = ratio[0] >= target if higher_is_better else ratio[0] <= target
    return (name, note, ratio, target, higher_is_better, "yes" if met else "**no**")


def fmt_pair(ours, theirs, fmt):
    """"ours vs theirs", medians, formatted ("" when a side has no runs)."""
    return f"{fmt(statistics.median(ours))} vs {fmt(statistics.median(theirs))}" if ours and theirs else ""


def goal_measured(row, measured):
    """The row with what was measured in its second column ("not run"
    when a side has no runs)."""
    name, note, ratio, target, hib, met = row
    return (name, (measured + note) if ratio is not None else "not run", ratio, target, hib, met)


def client_goals(d, p):
    """Issue 24's goals: the `Channel` against the engine, the engine never
    the limit, and a second I/O loop costing at most 10%."""
    depth, conns = p["depth"], p["connections"]
    pd = f"p{depth}"
    rows = []
    for config, shape, target in (("c1", f"{conns} × 1", 0.95), (pd, f"{conns} × {depth}", 0.9)):
        o, t = d.qps(config, "ours-channel"), d.qps(config, "ours")
        rows.append(goal_measured(goal(f"`Channel` ≥ {target:g}× the engine against our server ({shape})", o, t,
                                       target), fmt_pair(o, t, rate) + " /s"))
        o, t = d.client_cpu(config, "ours-channel"), d.client_cpu(config, "ours")
        rows.append(goal_measured(goal(f"`Channel` client CPU per call ≤ 1.2× the engine's ({shape})", o, t, 1.2,
                                       False), fmt_pair(o, t, lambda v: f"{v:.2f} µs")))
    o, t = d.qps("c1", "ours"), d.qps("c1", "ours-channel")
    rows.append(goal_measured(goal(f"the engine is not the limit: engine ≥ `Channel` at {conns} × 1", o, t, 1.0),
                              fmt_pair(o, t, rate) + " /s"))
    for config, shape in (("c1", f"{conns} × 1"), (pd, f"{conns} × {depth}")):
        if d.get(config, "ours-channel-io2"):
            o, t = d.qps(config, "ours-channel-io2"), d.qps(config, "ours-channel")
            rows.append(goal_measured(goal(f"`Channel` with 2 I/O loops loses ≤ 10% against 1 ({shape}, provider on "
                                           "its own core, both loops on the client core)", o, t, IO_KEEP),
                                      fmt_pair(o, t, rate) + " /s"))
    return rows


def goals(d, p, rb, h2, floor, sysc):
    depth, wide = p["depth"], p["wide_connections"]
    pd = f"p{depth}"
    rows = []
    for config, shape in (("c1", f"{p['connections']} × 1"), (pd, f"{p['connections']} × {depth}")):
        o, t = d.server_cpu(config, "ours"), d.server_cpu(config, "redis")
        rows.append(goal_measured(goal(f"server CPU per call ≤ 0.8× redis PING ({shape})", o, t, 0.8, False),
                                  fmt_pair(o, t, lambda v: f"{v:.2f} µs")))
        so, sr = sysc.get((config, "ours"), {}).get("total"), sysc.get((config, "redis"), {}).get("total")
        rows.append(goal_measured(goal(f"server syscalls per call ≤ redis ({shape}, one counted run each)",
                                       [so], [sr], 1.0, False),
                                  f"{so:.3f} vs {sr:.3f}" if so is not None and sr is not None else ""))
    blocking = [r["latency_us"]["p50"] for r in d.get("single", "ours-blocking")]
    floor_p50 = [f["p50"] for f in floor.get("client-spins", [])]
    rows.append(goal_measured(goal("single blocking call p50 ≤ 1.5× the loopback floor (sockperf, client spins, "
                                   "server sleeps: the same discipline)", blocking, floor_p50, 1.5, False),
                              fmt_pair(blocking, floor_p50, us)))
    rb1 = [r["p50"] for r in rb.get("single", [])]
    rows.append(goal_measured(goal("single blocking call p50 ≤ redis-benchmark `-c 1` PING p50", blocking, rb1, 1.0,
                                   False), fmt_pair(blocking, rb1, us)))
    rows += client_goals(d, p)
    for config, shape in (("c1", "50 × 1"), (pd, f"50 × {depth}")):
        o, t = d.qps(config, "ours"), d.qps(config, "tonic")
        rows.append(goal_measured(goal(f"≥ 3× tonic, both through the engine ({shape})", o, t, 3.0),
                                  fmt_pair(o, t, rate) + " /s"))
        t = [r["rps"] for r in h2.get(config, [])]
        rows.append(goal_measured(goal(f"≥ 3× tonic driven by h2load ({shape}, same connections and streams)", o, t,
                                       3.0), fmt_pair(o, t, rate) + " /s"))
    vw = d.qps(f"c{wide}", "volo")
    o = d.qps(f"c{wide}", "ours")
    rows.append(goal_measured(goal(f"≥ 1.5× Volo, both at Volo's users' shape ({wide} × 1)", o, vw, 1.5),
                              fmt_pair(o, vw, rate) + " /s"))
    o = d.qps(pd, "ours")
    rows.append(goal_measured(goal(f"≥ 1.5× Volo, each at its users' shape (ours 50 × {depth}, Volo {wide} × 1)", o,
                                   vw, 1.5), fmt_pair(o, vw, rate) + " /s"))
    t = d.qps(pd, "volo-mux")
    rows.append(goal_measured(goal(f"context: ours ÷ Volo's non-default `multiplex` server (50 × {depth})", o, t, 0),
                              fmt_pair(o, t, rate) + " /s"))
    for theirs in ("volo", "tonic"):
        o, t = d.held_p("common", "ours", "p99"), d.held_p("common", theirs, "p99")
        runs_o, runs_t = d.get("common", "ours"), d.get("common", theirs)
        note = "" if (len(o) == len(runs_o) and len(t) == len(runs_t)) else \
            f"; held runs only ({len(o)} of {len(runs_o)} and {len(t)} of {len(runs_t)})"
        row = goal_measured(goal(f"p99 at the common rate ≤ 0.5× {theirs}'s (held runs only)", o, t, 0.5, False),
                            fmt_pair(o, t, us) + note)
        if runs_o and runs_t and not (o and t):
            row = (row[0], f"not held ({len(o)} of {len(runs_o)} and {len(t)} of {len(runs_t)} runs held)",
                   *row[2:])
        rows.append(row)
    if d.get("c1", "seed"):
        o, t = d.qps("c1", "ours"), d.qps("c1", "seed")
        rows.append(goal_measured(goal("context: our protocol vs the seed's format against the same provider", o, t,
                                       0), fmt_pair(o, t, rate) + " /s"))
    return rows


def goals_table(rows):
    L = ["| goal | measured (medians) | ours worst ÷ their best (median ÷ median) | target | met |",
         "|---|---|---|---|---|"]
    for name, measured, ratio, target, hib, met in rows:
        r = "n/a" if ratio is None else f"{ratio[0]:.2f}× ({ratio[1]:.2f}×)"
        t = "—" if target == 0 else (f"≥ {target:g}×" if hib else f"≤ {target:g}×")
        L.append(f"| {name} | {measured or 'n/a'} | {r} | {t} | {met if target else '—'} |")
    L.append("| ≥ 100× the seed's C++ implementation as a system | not built on this machine (see below) | n/a | ≥ 100× | n/a |")
    return L


# ------------------------------------------------------------- tables


def shapes(p):
    depth, conns, wide = p["depth"], p["connections"], p["wide_connections"]
    return [("c1", f"{conns} × 1"), (f"p{depth}", f"{conns} × {depth}"), (f"c{wide}", f"{wide} × 1"),
            ("single", "1 × 1")]


def efficiency_table(d, p, rb, h2, sysc):
    """Server CPU per call first: it does not depend on how fast the client is."""
    L = ["| system | shape | client | **server CPU µs/call** | server syscalls/call | client CPU µs/call | calls/s | runs |",
         "|---|---|---|---|---|---|---|---|"]
    for config, shape in shapes(p):
        for s in ORDER:
            runs = d.get(config, s)
            if not runs:
                continue
            client = client_name(runs[0])
            sc = sysc.get((config, s), {}).get("total")
            L.append(f"| {NAMES[s]} | {shape} | {client} | {spread(d.server_cpu(config, s), cpu)} | "
                     f"{'—' if sc is None else f'{sc:.3f}'} | {spread(d.client_cpu(config, s), cpu)} | "
                     f"{spread(d.qps(config, s), rate)} | {len(runs)} |")
        for what, rows, system in (("redis-benchmark", rb.get(config, []), "redis-server PING"),
                                   ("h2load", h2.get(config, []), "tonic (gRPC)")):
            if rows:
                L.append(f"| {system} | {shape} | {what} | {spread([r['server_cpu_us'] for r in rows], cpu)} | — | — | "
                         f"{spread([r['rps'] for r in rows], rate)} | {len(rows)} |")
    return L


def client_name(run):
    kind = run.get("client", "engine")
    if kind == "engine":
        return "engine" if run.get("threads", 1) == 1 else f"engine, {run['threads']} threads"
    name = "`Channel::call`" if kind == "blocking" else "`Channel`"
    io = run.get("io_threads") or 1
    return name if io == 1 else f"{name}, {io} I/O threads"


def syscalls_table(sysc, depth):
    names = ["epoll_wait", "epoll_pwait", "read", "write", "readv", "writev", "recvfrom", "sendto", "recvmsg",
             "sendmsg", "futex"]
    seen = [n for n in names if any(c.get(n) for c in sysc.values())]
    L = ["| server | shape | all syscalls per call | " + " | ".join(seen) + " |",
         "|---|---|---|" + "---|" * len(seen)]
    for (config, system), c in sorted(sysc.items(), key=lambda kv: (kv[0][0], ORDER.index(kv[0][1]))):
        L.append(f"| {NAMES.get(system, system)} | {'50 × 1' if config == 'c1' else f'50 × {depth}'} | "
                 f"{c.get('total', 0):.3f} | " + " | ".join(f"{c.get(n, 0):.3f}" for n in seen) + " |")
    return L


def floor_table(d, rb, floor):
    L = ["| loopback round trip | client spins? | server spins? | round trips/s median | p50 median (min–max) | p99 median |",
         "|---|---|---|---|---|---|"]
    for mode, (what, cs, ss) in FLOOR_MODES.items():
        rows = floor.get(mode, [])
        if rows:
            L.append(f"| sockperf TCP ping-pong: {what} | {cs} | {ss} | {rate(statistics.median(r['rate'] for r in rows))} | "
                     f"{spread([r['p50'] for r in rows], us)} | {us(statistics.median(r['p99'] for r in rows))} |")
    L += ["", "| one call at a time | client spins? | p50 median | ÷ floor, both sleep | ÷ floor, client spins | ÷ floor, both spin |",
          "|---|---|---|---|---|---|"]
    floors = {m: statistics.median(r["p50"] for r in floor[m]) for m in FLOOR_MODES if floor.get(m)}
    ratio = lambda v, m: f"{v / floors[m]:.2f}×" if m in floors else "n/a"
    singles = [(NAMES[s], SPINS[s], [r["latency_us"]["p50"] for r in d.get("single", s)]) for s in
               ("ours-blocking", "ours", "redis")]
    singles.append(("redis-benchmark `-c 1` (its own client)", SPINS["redis-benchmark"],
                    [r["p50"] for r in rb.get("single", [])]))
    for name, spins, p50 in singles:
        if p50:
            v = statistics.median(p50)
            L.append(f"| {name} | {spins} | {us(v)} | {ratio(v, 'sleep')} | {ratio(v, 'client-spins')} | "
                     f"{ratio(v, 'busy')} |")
    return L


def saturation_table(d, p):
    L = ["| system | shape | calls/s median (min–max) | server CPU µs/call | core busy: server / client | p50 median | "
         "p99 median (min–max) | errors | runs |",
         "|---|---|---|---|---|---|---|---|---|"]
    for config, shape in shapes(p)[:3]:
        for s in ORDER:
            runs = d.get(config, s)
            if not runs:
                continue
            L.append(f"| {NAMES[s]} | {shape} | {spread(d.qps(config, s), rate)} | {spread(d.server_cpu(config, s), cpu)} | "
                     f"{busy_cell(d, config, s)} | "
                     f"{latency_cell(runs, lambda r: r['latency_us']['p50'])} | "
                     f"{latency_cell(runs, lambda r: r['latency_us']['p99'])} | "
                     f"{sum(r['errors'] for r in runs)} | {len(runs)} |")
    return L


def busy_cell(d, config, system):
    """Median share of its core each side used: the side near 100% was the limit."""
    pct = lambda v: f"{v:.0%}"
    server, client = d.busy(config, system, "server"), d.busy(config, system, "client")
    if not server and not client:
        return "n/a"
    med = lambda v: pct(statistics.median(v)) if v else "n/a"
    return f"{med(server)} / {med(client)}"


def cross_check_table(rb, h2, p):
    L = ["| client | server | shape | calls/s median (min–max) | server CPU µs/call | p50 median | p99 median | runs |",
         "|---|---|---|---|---|---|---|---|"]
    shape = {"c1": f"{p['connections']} × 1", f"p{p['depth']}": f"{p['connections']} × {p['depth']}",
             "single": "1 × 1"}
    for config, rows in sorted(rb.items()):
        L.append(f"| redis-benchmark | redis-server PING | {shape.get(config, config)} | "
                 f"{spread([r['rps'] for r in rows], rate)} | {spread([r['server_cpu_us'] for r in rows], cpu)} | "
                 f"{us(statistics.median(r['p50'] for r in rows))} | {us(statistics.median(r['p99'] for r in rows))} | "
                 f"{len(rows)} |")
    for config, rows in sorted(h2.items()):
        bad = sum(r["failed"] for r in rows)
        L.append(f"| h2load | tonic (gRPC) | {shape.get(config, config)} | {spread([r['rps'] for r in rows], rate)} | "
                 f"{spread([r['server_cpu_us'] for r in rows], cpu)} | — | — | {len(rows)}"
                 f"{f' ({bad} failed requests)' if bad else ''} |")
    return L


def single_table(d):
    L = ["| system | client spins? | calls/s median (min–max) | server CPU µs/call | p50 median (min–max) | p99 median (min–max) | runs |",
         "|---|---|---|---|---|---|---|"]
    for s in ("ours", "ours-blocking", "redis"):
        runs = d.get("single", s)
        if runs:
            L.append(f"| {NAMES[s]} | {SPINS[s]} | {spread(d.qps('single', s), rate)} | "
                     f"{spread(d.server_cpu('single', s), cpu)} | {latency_cell(runs, lambda r: r['latency_us']['p50'])} | "
                     f"{latency_cell(runs, lambda r: r['latency_us']['p99'])} | {len(runs)} |")
    return L


def open_loop_table(d, configs):
    L = ["| system | rate | target /s | achieved /s median (min–max) | held | rules broken | send lag p99 (worst) | "
         "server CPU µs/call | p50 (held runs) | p99 (held runs) |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for s in ORDER:
        for config, what in configs:
            runs = d.get(config, s)
            if not runs:
                continue
            held = sum(1 for r in runs if r["target_held"])
            rules = {}
            for r in runs:
                for rule in held_failures(r):
                    rules[rule] = rules.get(rule, 0) + 1
            L.append(f"| {NAMES[s]} | {what} | {rate(runs[0]['target_qps'])} | {spread(d.qps(config, s), rate)} | "
                     f"{held}/{len(runs)} | {', '.join(f'{k} ×{v}' for k, v in sorted(rules.items())) or '—'} | "
                     f"{us(max(r['send_lag_us']['p99'] for r in runs))} | {spread(d.server_cpu(config, s), cpu)} | "
                     f"{latency_cell(runs, lambda r: r['latency_us']['p50'])} | "
                     f"{latency_cell(runs, lambda r: r['latency_us']['p99'])} |")
    return L


def held_fraction(d):
    """(held, total, {system: (held, total)}, {rule: n}) over the open-loop
    runs at 25–75% of each system's own saturation."""
    per, rules = {}, {}
    for (config, s), runs in d.runs.items():
        if config in {f"open{p}" for p in OPEN_PCTS}:
            h, n = per.get(s, (0, 0))
            per[s] = (h + sum(1 for r in runs if r["target_held"]), n + len(runs))
            for r in runs:
                for rule in held_failures(r):
                    rules[rule] = rules.get(rule, 0) + 1
    held = sum(h for h, _ in per.values())
    total = sum(n for _, n in per.values())
    return held, total, per, rules


def tls_table(d, depth):
    """TLS ÷ plain for ours and tonic, and ours ÷ tonic over TLS: calls/s at
    saturation, and p99 at the common rate from the rounds where both held."""
    ratio = lambda v: f"{v:.2f}×"
    qps = lambda r: r["achieved_qps"]
    cols = [("c1", qps, False), (f"p{depth}", qps, False), ("common", lambda r: r["latency_us"]["p99"], True)]
    L = ["| comparison | calls/s, 1 call per connection | calls/s, pipelined " + str(depth) + " deep | "
         "p99 at the common rate (lower is better; rounds where both held) |", "|---|---|---|---|"]
    for what, a, b in TLS_PAIRS:
        cells = []
        for config, value, held_only in cols:
            a_runs, b_runs = d.get(config, a), d.get(config, b)
            if held_only:
                a_runs = [r for r in a_runs if r["target_held"]]
                b_runs = [r for r in b_runs if r["target_held"]]
            vals = per_round_ratios(a_runs, b_runs, value)
            cells.append(spread(vals, ratio) if vals or not held_only or not d.get(config, a)
                         else "not held in any common round")
        if any(c != "n/a" for c in cells):
            L.append(f"| {what} | " + " | ".join(cells) + " |")
    if len(L) == 2:
        L.append("| not run | n/a | n/a | n/a |")
    return L


def per_round_ratios(a_runs, b_runs, value):
    b_by_round = {r["round"]: r for r in b_runs}
    return [value(a) / value(b_by_round[a["round"]]) for a in a_runs
            if a["round"] in b_by_round and value(b_by_round[a["round"]])]


def channel_engine_rounds(d, params):
    """Per round, the `Channel` ÷ the engine against our provider: each
    ratio is of two runs of one round, close in time (the medians and the
    worst ÷ best reading of the goals table compare runs from different
    moments of this machine)."""
    conns, depth = params["connections"], params["depth"]
    sh = [("c1", f"{conns} × 1"), (f"p{depth}", f"{conns} × {depth}")]
    cpu_of = lambda r: (r.get("cpu") or {}).get("client_us_per_call") or 0
    L = ["| `Channel` ÷ engine, per round: median (min–max) | " + " | ".join(shape for _, shape in sh) + " |",
         "|---|---|---|"]
    for what, value in (("calls/s", lambda r: r["achieved_qps"]), ("client CPU µs/call", cpu_of)):
        cells = [spread(per_round_ratios(d.get(c, "ours-channel"), d.get(c, "ours"), value), lambda v: f"{v:.2f}×")
                 for c, _ in sh]
        L.append(f"| {what} | " + " | ".join(cells) + " |")
    return L


def self_spread(d, params):
    """Each client's worst run ÷ its own best run, per shape, with the
    sentence that introduces it: what the goals table's worst ÷ best
    reading gives for a client measured against itself on this machine. A
    goal whose target is past it cannot be told from round-to-round noise
    by that reading, whichever client is faster."""
    conns, depth = params["connections"], params["depth"]
    sh = [("c1", f"{conns} × 1"), (f"p{depth}", f"{conns} × {depth}")]
    L = ["The goals' worst ÷ best reading for each client against itself (the same client's slowest run ÷ its "
         "fastest; for CPU, its highest ÷ its lowest): how far apart this machine puts two runs of one client. "
         "A target past it cannot be met by that reading even by a client exactly as fast as the engine:\n",
         "| client against itself: worst run ÷ best run | "
         + " | ".join(f"{what}, {shape}" for _, shape in sh for what in ("calls/s", "client CPU")) + " |",
         "|---|" + "---|" * (2 * len(sh))]
    for system in ("ours", "ours-channel", "ours-channel-io2"):
        cells = []
        for config, _ in sh:
            q, c = d.qps(config, system), d.client_cpu(config, system)
            cells.append(f"{min(q) / max(q):.2f}×" if q and max(q) else "n/a")
            # Lower is better: the worst is the highest.
            cells.append(f"{max(c) / min(c):.2f}×" if c and min(c) else "n/a")
        runs = d.get(sh[0][0], system) or d.get(sh[1][0], system)
        if runs:
            L.append(f"| {client_name(runs[0])} | " + " | ".join(cells) + " |")
    return L


def io_threads_tables(d, params):
    conns, depth = params["connections"], params["depth"]
    sh = [("c1", f"{conns} × 1"), (f"p{depth}", f"{conns} × {depth}")]
    L = ["| provider | client | shape | calls/s median (min–max) | client CPU µs/call | runs |",
         "|---|---|---|---|---|---|"]
    for key, systems in IO_BLOCKS:
        for config, shape in sh:
            for s, client in systems:
                if d.get(config, s):
                    L.append(f"| {params.get(key, '?')} reactor(s) | {client} | {shape} | {spread(d.qps(config, s), rate)} | "
                             f"{spread(d.client_cpu(config, s), cpu)} | {len(d.get(config, s))} |")
    L += ["", "| provider | ratio | " + " | ".join(f"calls/s, {shape}" for _, shape in sh) + " |", "|---|---|---|---|"]
    for (key, _), (what, a, b) in zip(IO_BLOCKS, IO_PAIRS):
        cells = [spread(per_round_ratios(d.get(c, a), d.get(c, b), lambda r: r["achieved_qps"]), lambda v: f"{v:.2f}×")
                 for c, _ in sh]
        L.append(f"| {params.get(key, '?')} reactor(s) | {what} | " + " | ".join(cells) + " |")
    return L


# ------------------------------------------------------------- plots


def plots(d, p, rb, h2, common_rate, out_dir):
    """Writes the SVGs; returns [(file, caption)]."""
    written = []
    rows = []
    colour = {s: i for i, s in enumerate(["ours", "volo", "tonic", "redis", "ours-channel", "volo-mux", "seed",
                                          "ours-tls", "tonic-tls", "ours-tls-channel", "ours-blocking",
                                          "ours-channel-io2"])}
    for config, shape in shapes(p):
        for s in ORDER:
            q = d.qps(config, s)
            if q:
                rows.append((f"{SHORT[s]}, {shape}", statistics.median(q), min(q), max(q), colour.get(s, 11)))
        for what, src, c in (("redis-benchmark → redis", rb, colour["redis"]), ("h2load → tonic", h2, colour["tonic"])):
            q = [r["rps"] for r in src.get(config, [])]
            if q:
                rows.append((f"{what}, {shape}", statistics.median(q), min(q), max(q), c))
    if svgplot.bars(os.path.join(out_dir, "throughput.svg"), "Calls/s per system and shape (closed loop)", rows,
                    "calls/s (log scale); bar = median, whisker = min–max of the rounds",
                    "server on core 0, client on core 1"):
        written.append(("throughput.svg", "calls/s per system and shape, median with min–max whiskers"))

    # The latency plots: the main systems only (the TLS twins and the seed's
    # format are in the tables).
    main_systems = ["ours", "ours-channel", "volo", "tonic", "redis"]
    series = []
    for s in main_systems:
        points = {}
        for config in [f"open{x}" for x in OPEN_PCTS] + ["common"]:
            for r in d.get(config, s):
                if r["target_held"]:
                    points.setdefault(r["target_qps"], []).append(r["latency_us"])
        if points:
            for key, dashed in (("p50", True), ("p99", False)):
                series.append((f"{SHORT[s]} {key}",
                               [(q, statistics.median(l[key] for l in ls)) for q, ls in points.items()],
                               colour.get(s, 11), dashed))
    if svgplot.lines(os.path.join(out_dir, "latency-vs-load.svg"), "Latency vs offered load (held runs only)", series,
                     "offered load, calls/s (log scale)", "latency (log scale)",
                     note="p50 dashed, p99 solid; median of the held runs at each rate; unheld runs left out"):
        written.append(("latency-vs-load.svg", "p50 and p99 against offered load, held runs only"))

    series = []
    for s in main_systems:
        held = [r for r in d.get("common", s) if r["target_held"] and r.get("latency_curve")]
        if held:
            held.sort(key=lambda r: r["latency_us"]["p99"])
            run = held[len(held) // 2]
            pts = [(1 / (1 - q / 100), v) for q, v in run["latency_curve"] if q < 100 and v > 0]
            series.append((f"{SHORT[s]} (round {run['round']})", pts, colour.get(s, 11), False))
    ticks = [(1 / (1 - q / 100), label) for q, label in ((50, "50%"), (90, "90%"), (99, "99%"), (99.9, "99.9%"),
                                                          (99.99, "99.99%"), (99.999, "99.999%"))]
    if svgplot.lines(os.path.join(out_dir, "hdr-common-rate.svg"),
                     f"Latency by percentile at {common_rate:,} calls/s (held runs)", series, "percentile",
                     "latency (log scale)", ticks,
                     note="each system's held run with the median p99 at the common rate"):
        written.append(("hdr-common-rate.svg", f"HDR percentile curve per system at the common rate ({common_rate:,}/s)"))
    return written


# ------------------------------------------------------------- output


def benchmark_block(env, p, rows, d, rb, h2, sysc, md_path, plot_links):
    """docs/benchmarks.md's block: every system and shape, and the goals."""
    dirty = " (uncommitted changes)" if env.get("git_dirty") else ""
    pin = env.get("pinning", {})
    L = [f"Generated by `scripts/compare.sh` on {env['date_utc']} at commit `{env['git_commit']}`{dirty}; "
         f"{env['nproc']} cores, loopback, 64-byte echo; every server pinned to core {pin.get('server_cpu', '?')}, "
         f"every client to core {pin.get('client_cpu', '?')}; servers loaded by loadgen's engine unless the client "
         f"column says otherwise. Medians with min–max of the rounds; full report: [{md_path}]({md_path}).", ""]
    L += efficiency_table(d, p, rb, h2, sysc)
    L.append("")
    L += goals_table(rows)
    if plot_links:
        L.append("")
        L.append("Plots: " + ", ".join(f"[{caption}]({link})" for link, caption in plot_links) + ".")
    return "\n".join(L)


# The README's headline: each system loaded by the same engine, at the two
# shapes the goals are set at, medians only (the spread is in the docs).
HEADLINE_SYSTEMS = ("ours", "redis", "volo", "volo-mux", "tonic")


def headline_block(env, p, rows, d, md_path, docs_path):
    dirty = " (uncommitted changes)" if env.get("git_dirty") else ""
    shown = shapes(p)[:2]
    med = lambda values, f: f(statistics.median(values)) if values else "—"
    L = [f"Measured by `scripts/compare.sh` on {env['date_utc']} at commit `{env['git_commit']}`{dirty}: "
         f"{env['nproc']} cores, loopback, 64-byte echo, server and load generator pinned to one core each, "
         "every server loaded by loadgen's engine; medians of the rounds.", "",
         "| system | " + " | ".join(f"{shape}: server CPU µs/call | {shape}: calls/s" for _, shape in shown) + " |",
         "|---|" + "---|---|" * len(shown)]
    for s in HEADLINE_SYSTEMS:
        if not any(d.get(config, s) for config, _ in shown):
            continue
        cells = [f"{med(d.server_cpu(config, s), cpu)} | {med(d.qps(config, s), rate)}" for config, _ in shown]
        L.append(f"| {NAMES[s]} | " + " | ".join(cells) + " |")
    judged = [r for r in rows if r[3] and r[5] in ("yes", "**no**")]
    met = sum(r[5] == "yes" for r in judged)
    L += ["", f"Performance goals met: {met} of {len(judged)} (ours worst run against their best). Every system, "
          f"shape and goal: [{docs_path}]({docs_path}); the full report: [{md_path}]({md_path})."]
    return "\n".join(L)


def write_block(path, name, block):
    """Replaces what stands between <!-- NAME:begin --> and <!-- NAME:end --> in PATH."""
    text = open(path).read()
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    if begin not in text or end not in text:
        sys.exit(f"{path} has no {begin} ... {end} block")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    open(path, "w").write(f"{head}{begin}\n{block}\n{end}{tail}")


def client_report(d, env, p, out_dir, md_path, commands, loadavg):
    """`ONLY=client`: issue 24's goals and the rows behind them, nothing else."""
    rel = os.path.relpath(out_dir, os.path.dirname(md_path) or ".")
    dirty = " **with uncommitted changes**" if env.get("git_dirty") else ""
    pin = env.get("pinning", {})
    L = ["# The client: the `Channel` against loadgen's engine (ONLY=client)\n"]
    L.append(f"Produced by `ONLY=client scripts/compare.sh` on {env['date_utc']} at commit `{env['git_commit']}`"
             f"{dirty}; {p['rounds']} round(s), interleaved (engine, `Channel`, `Channel` with 2 I/O loops, ...), "
             f"{p['secs']} s measured after {p['warmup_s']} s of warm-up per run, closed loop. Our provider "
             f"({p['reactors']} reactor) on core {pin.get('server_cpu', '?')}, loadgen (all its threads) on core "
             f"{pin.get('client_cpu', '?')}. CPU per call: utime + stime over the measured window ÷ its calls. "
             f"The script took {env.get('total_seconds', '?')} s.\n")
    L.append("## Goals (issue 24)\n")
    L += goals_table(client_goals(d, p))[:-1]
    L.append("")
    L.append("## Runs\n")
    L.append("| client | shape | calls/s median (min–max) | client CPU µs/call | server CPU µs/call | "
             "core busy: server / client | runs |")
    L.append("|---|---|---|---|---|---|---|")
    for config, shape in shapes(p)[:2]:
        for s in ("ours", "ours-channel", "ours-channel-io2"):
            runs = d.get(config, s)
            if runs:
                L.append(f"| {client_name(runs[0])} | {shape} | {spread(d.qps(config, s), rate)} | "
                         f"{spread(d.client_cpu(config, s), cpu)} | {spread(d.server_cpu(config, s), cpu)} | "
                         f"{busy_cell(d, config, s)} | {len(runs)} |")
    L.append("")
    L.append("Per round, the `Channel` ÷ the engine (a round's two runs follow each other):\n")
    L += channel_engine_rounds(d, p)
    L.append("")
    L += self_spread(d, p)
    L.append("")
    L.append("Per round, 2 ÷ 1 I/O loops:\n")
    ratios = io_threads_tables(d, p)
    L += ratios[ratios.index("") + 1:]
    L.append("")
    L.append("Load averages (1/5/15 min) around each round:\n")
    L.append("```\n" + loadavg + "\n```\n")
    L.append("## Exact commands\n")
    L.append("```\n" + commands + "\n```\n")
    L.append("## Raw data\n")
    for (config, system), runs in sorted(d.runs.items()):
        files = ", ".join(f"[r{r['round']}]({rel}/raw/{r['file']})" for r in sorted(runs, key=lambda r: r["round"]))
        L.append(f"- {config} {system}: {files}")
    open(md_path, "w").write("\n".join(L) + "\n")
    print(f"wrote {md_path}")


def main(out_dir, md_path, docs_md, readme):
    raw = os.path.join(out_dir, "raw")
    env = json.load(open(os.path.join(raw, "env.json")))
    p = json.load(open(os.path.join(raw, "params.json")))
    common_rate = json.load(open(os.path.join(raw, "common_rate.json")))["common_rate"]
    depth = p["depth"]
    clk = env.get("clk_tck", 100)
    commands = open(os.path.join(raw, "commands.txt")).read().strip()
    loadavg = open(os.path.join(raw, "loadavg.txt")).read().strip()
    d = Data(raw)
    if p.get("only") == "client":
        return client_report(d, env, p, out_dir, md_path, commands, loadavg)
    rb = load_redis_benchmark(raw, clk, depth, commands)
    h2 = load_h2load(raw, clk, p["secs"], p["warmup_s"])
    floor = load_floor(raw)
    sysc = load_syscalls(raw, d.runs)
    rows = goals(d, p, rb, h2, floor, sysc)
    th = env["threads"]
    pin = env.get("pinning", {})
    rel = os.path.relpath(out_dir, os.path.dirname(md_path) or ".")
    dirty = " **with uncommitted changes**" if env.get("git_dirty") else ""
    plot_files = plots(d, p, rb, h2, common_rate, out_dir)
    held, total, per_system, rules = held_fraction(d)

    L = ["# Comparison: mprpc vs Volo, tonic, redis and the seed's format, loopback on this machine\n"]
    L.append(f"Produced by `scripts/compare.sh` on {env['date_utc']} at commit `{env['git_commit']}`{dirty}"
             f"{' (QUICK: one round of the headline rows)' if env.get('quick') else ''}; every figure is read from "
             f"[`{rel}/raw/`]({rel}/raw/) by `scripts/compare_report.py`. The script took "
             f"{env.get('total_seconds', '?')} s (release build: {env.get('build_seconds', '?')} s). "
             f"{p['rounds']} round(s) of every configuration, interleaved across systems; {p['secs']} s measured "
             f"after {p['warmup_s']} s of warm-up per run.\n")
    L.append(f"**Pinned cores, the same for every system:** every server under test runs on core "
             f"{pin.get('server_cpu', '?')} (`taskset`), every client (loadgen, redis-benchmark, h2load, sockperf's "
             f"client, perf) on core {pin.get('client_cpu', '?')}. Each loadgen run reads the server's and its own "
             "CPU time (utime + stime, `/proc/PID/stat`) at the start and end of its measured window and divides "
             "by the calls sent in it; for redis-benchmark and h2load the server's CPU ticks are read around the "
             f"run. Clock tick: {1000 / clk:g} ms.\n")
    L.append("## Efficiency: server CPU per call\n")
    L.append("The first figure: the server's CPU time per call does not depend on how fast the client is. "
             "Syscalls per call are counted on separate short runs (perf's `raw_syscalls:sys_enter` tracepoint, "
             f"counting only, {p.get('syscall_secs', '?')} s after 0.2 s warm-up) over every call of the run, so "
             "perf's own cost is in none of the other figures.\n")
    L += efficiency_table(d, p, rb, h2, sysc)
    L.append("")
    if sysc:
        L.append("Syscalls per call by name (the server's; `read`/`write` include the eventfd and timerfd ones):\n")
        L += syscalls_table(sysc, depth)
        L.append("")
    L.append("## Goals (MISSION.md, performance goals)\n")
    L.append("A goal is met only when our worst run beats their best run; the median ratio is shown beside it. "
             "For \"≤\" goals (CPU, syscalls, latency) lower is better. Latency counts only from runs that held "
             "their open-loop target.\n")
    L += goals_table(rows)
    L.append("")
    L.append("## The loopback floor\n")
    L.append("What the loopback socket itself allows, one message at a time, on the same pinned cores: sockperf "
             f"TCP ping-pong, {p['payload']}-byte messages, full round trip (`--full-rtt`), {p['secs']} s per round. "
             "On this VM a sleeping thread's wake-up is slow, so the floor depends on whether a side spins; every "
             "row says whether its client does.\n")
    L += floor_table(d, rb, floor)
    L.append("")
    if plot_files:
        L.append("## Plots\n")
        for f, caption in plot_files:
            L.append(f"- [{caption}]({rel}/{f})")
        L.append("")
        for f, caption in plot_files:
            L.append(f"![{caption}]({rel}/{f})\n")
    L.append("## Machine and threads\n")
    L.append(f"- {env['nproc']} cores, {env['cpu_model']}; memory {env['mem_total']}; Linux {env['kernel']}; {env['rustc']}")
    L.append(f"- tonic {env['tonic']}, volo-thrift {env['volo_thrift']}; {env['redis_server']}; "
             f"{env.get('h2load', '')}; {env.get('sockperf', '')}")
    L.append(f"- Server threads: our provider {th['ours_reactors']} reactor(s); tonic {th['tonic_workers']} tokio "
             f"worker(s); Volo {th['volo_workers']} tokio worker(s); redis {th['redis']}. OS threads per server at "
             f"start (including acceptors, timers and runtime helpers): {th['os_threads_at_start']}.")
    L.append(f"- Client: loadgen, {th['loadgen_engine_threads']} engine thread (one mio loop) for every target; the "
             "`Channel` rows use the Channel's one I/O thread unless they say 2. Everything else in loadgen sleeps "
             "while it runs (a once-a-second progress line, the CPU sampler).")
    L.append("- Load averages (1/5/15 min) around each block:\n")
    L.append("```\n" + loadavg + "\n```\n")
    L.append("## Saturation (closed loop)\n")
    L.append(f"Each connection keeps its window (1, or {depth}) of calls outstanding, refilled as each reply arrives; "
             f"latency from the actual send of each call. {p['wide_connections']} × 1 is Volo's users' shape (its "
             "default server answers a connection's calls one at a time); pipelined, Volo's `multiplex` server "
             "(off by default) stands in. The seed's format opens a TCP connection per call.\n")
    L += saturation_table(d, p)
    L.append("")
    L.append("Cross-checks, each system's or an independent client, on the client core:\n")
    L += cross_check_table(rb, h2, p)
    L.append("")
    L.append("h2load's server CPU per call: the server's CPU over warm-up + window ÷ (req/s × (warm-up + window)). "
             "h2load counts HTTP/2 responses; the body is a fixed gRPC request (5-byte prefix + the EchoRequest), "
             "`content-type: application/grpc`, `te: trailers`.\n")
    L.append("## One connection, one call at a time\n")
    L += single_table(d)
    L.append("")
    L.append("## Open loop: does each system hold its own targets?\n")
    frac = f"{held / total:.0%}" if total else "n/a"
    L.append(f"**Held: {held} of {total} runs ({frac})** at 25/50/75% of each system's own saturation (goal for the "
             f"harness: ≥ {HELD_GOAL:.0%}). Rules broken: "
             f"{', '.join(f'{k} ×{v}' for k, v in sorted(rules.items())) or 'none'}. Per system: "
             + ", ".join(f"{s} {h}/{n}" for s, (h, n) in sorted(per_system.items(), key=lambda kv: ORDER.index(kv[0])))
             + ".\n")
    L.append(f"Window {depth} per connection. Held = achieved within 1% of the target (rule `achieved`), nothing left "
             "unsent that was due over 1 ms before the window ended (`unsent`), and send lag p99 ≤ 1 ms (`lag`). "
             "Latency runs from each call's intended send time and is printed from held runs only; a cell with no "
             "held run says which rules failed.\n")
    L += open_loop_table(d, [(f"open{x}", f"{x}% of own saturation") for x in OPEN_PCTS])
    L.append("")
    L.append(f"## Latency at one common rate: {rate(common_rate)} calls/s (50% of the slowest RPC system's saturation)\n")
    L += open_loop_table(d, [("common", "common rate")])
    L.append("")
    if any(d.get("c1", s) for s in ("ours-tls", "tonic-tls")):
        L.append("## The cost of TLS\n")
        L.append("Each TLS system is its plain twin with `tls=required` (ours) or `--tls-cert` (tonic), a throwaway "
                 "certificate from `loadgen certs`, the same engine over TLS (rustls, ring), handshakes before the "
                 "first call. Ratios per round, median (min–max).\n")
        L += tls_table(d, depth)
        L.append("")
    if d.get("c1", "ours-channel-io2"):
        L.append("## Client I/O threads\n")
        L.append("`io_threads = N` runs N driver loops per `Channel`. Pinned, all of them share the one client core, "
                 "so this shows the cost of a second loop there, not scaling; the ratio is N = 2 ÷ N = 1 per round.\n")
        L += io_threads_tables(d, p)
        L.append("")
    if d.get("c1", "ours-channel"):
        L.append("## The `Channel` against the engine, per round\n")
        L.append("Against our provider; each ratio is of two runs of the same round (one pass over every "
                 "system, so they are a few runs apart), not of the medians.\n")
        L += channel_engine_rounds(d, p)
        L.append("")
        L += self_spread(d, p)
        L.append("")
    L.append("## The seed's C++ implementation\n")
    L.append("It cannot be built on this machine, so the \"≥ 100×\" row is n/a. Its wire format is measured above "
             "against our provider. To drive a C++ mprpc provider the same way:\n")
    L.append("```\nloadgen --target seed --addr HOST:PORT --service UserServiceRpc --method Login \\\n"
             "        --request-hex <hex of an encoded LoginRequest> --qps max --connections 50 --in-flight 50\n```\n")
    L.append("## Exact commands\n")
    L.append("Ports are free ports chosen at run time; the provider configs are in the raw folder.\n")
    L.append("```\n" + commands + "\n```\n")
    L.append("## Raw data\n")
    for (config, system), runs in sorted(d.runs.items()):
        files = ", ".join(f"[r{r['round']}]({rel}/raw/{r['file']})" for r in sorted(runs, key=lambda r: r["round"]))
        L.append(f"- {config} {system}: {files}")
    L.append(f"- machine, versions, threads: [env.json]({rel}/raw/env.json); parameters: [params.json]({rel}/raw/params.json)")
    open(md_path, "w").write("\n".join(L) + "\n")
    rel_to = lambda target, page: os.path.relpath(target, os.path.dirname(page) or ".")
    write_block(docs_md, "bench", benchmark_block(env, p, rows, d, rb, h2, sysc, rel_to(md_path, docs_md),
                                                  [(f"{rel_to(out_dir, docs_md)}/{f}", c) for f, c in plot_files]))
    write_block(readme, "headline", headline_block(env, p, rows, d, rel_to(md_path, readme),
                                                   rel_to(docs_md, readme)))
    print(f"wrote {md_path}, {len(plot_files)} plot(s), the benchmark block of {docs_md} and the headline of {readme}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: compare_report.py RESULTS_DIR OUTPUT.md BENCHMARKS.md README.md")
    main(*sys.argv[1:])
