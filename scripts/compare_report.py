#!/usr/bin/env python3
"""Turns the raw data of scripts/compare.sh into results/COMPARISON.md and
two SVG plots (throughput bars, latency percentile curves).

    python3 scripts/compare_report.py results/comparison results/COMPARISON.md

Reads only files in <dir>/raw: loadgen's JSON reports (named
<date>-<label>.json), redis-benchmark CSV, env.json, params.json,
commands.txt, loadavg.txt, seed.txt. Standard library only; the SVG is
written by hand.
"""

import csv
import glob
import json
import math
import os
import sys

OURS, TONIC, REDIS = "mprpc (ours)", "tonic (gRPC)", "redis PING"
OURS_RAW = "mprpc (ours), raw pipelining client"
COLORS = {OURS: "#1f77b4", OURS_RAW: "#17becf", TONIC: "#d62728", REDIS: "#7f7f7f"}


def load_runs(raw):
    runs = {}
    for path in sorted(glob.glob(os.path.join(raw, "*.json"))):
        name = os.path.basename(path)
        if name in ("env.json", "params.json"):
            continue
        data = json.load(open(path))
        if "label" in data:
            runs[data["label"]] = dict(data, file=name)
    return runs


def load_redis(raw, conns, depth):
    out = {}
    for key, fname in (("plain", f"redis-c{conns}.csv"), ("pipelined", f"redis-c{conns}-P{depth}.csv")):
        path = os.path.join(raw, fname)
        if not os.path.exists(path):
            continue
        for row in csv.DictReader(open(path)):
            out[(key, row["test"])] = dict(
                rps=float(row["rps"]),
                p50=float(row["p50_latency_ms"]) * 1000,
                p99=float(row["p99_latency_ms"]) * 1000,
                max=float(row["max_latency_ms"]) * 1000,
                file=fname,
            )
    return out


def axis_us(v):
    """Decade labels: 1 µs, 10 µs, ..., 1 ms, ..., 1 s."""
    for unit, div in (("s", 1e6), ("ms", 1e3)):
        if v >= div:
            return f"{v / div:g} {unit}"
    return f"{v:g} µs"


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


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "n/a" if r is None else f"{r:.2f}×"


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ------------------------------------------------------------------ SVG


def throughput_svg(bars, path):
    """bars: [(label, system, value)] drawn as horizontal bars."""
    w, left, right, bar_h, gap, top = 1000, 460, 110, 22, 8, 40
    h = top + len(bars) * (bar_h + gap) + 40
    vmax = max((b[2] for b in bars), default=1) or 1
    scale = (w - left - right) / vmax
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="13">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{w / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">Saturation throughput (calls/s, closed loop, loopback)</text>',
    ]
    for i, (label, system, value) in enumerate(bars):
        y = top + i * (bar_h + gap)
        bw = max(1, value * scale)
        out.append(f'<text x="{left - 8}" y="{y + bar_h * 0.7}" text-anchor="end">{esc(label)}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{bw:.1f}" height="{bar_h}" fill="{COLORS[system]}"/>')
        out.append(f'<text x="{left + bw + 6:.1f}" y="{y + bar_h * 0.7}">{value:,.0f}</text>')
    y = h - 14
    x = left
    for system, color in COLORS.items():
        out.append(f'<rect x="{x}" y="{y - 11}" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{x + 16}" y="{y}">{esc(system)}</text>')
        x += 150
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


def latency_svg(panels, path):
    """panels: [(title, [(system, [(percentile, µs)])])]: one chart each,
    x = percentile on a 1/(1-p) log scale, y = latency on a log scale."""
    pw, ph, ml, mr, mt, mb = 340, 340, 60, 15, 50, 40
    w = max(1, len(panels)) * pw + 20
    h = ph + 20
    xmax = 5.0  # 99.999 %
    allv = [v for _, series in panels for _, pts in series for _, v in pts if v > 0]
    lo = 10 ** math.floor(math.log10(min(allv))) if allv else 1
    hi = 10 ** math.ceil(math.log10(max(allv))) if allv else 10
    if hi <= lo:
        hi = lo * 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{w / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">Latency by percentile at fixed open-loop rates (from intended send time)</text>',
    ]
    for i, (title, series) in enumerate(panels):
        x0 = 10 + i * pw + ml
        y0 = mt
        cw, ch = pw - ml - mr, ph - mt - mb + 20

        def px(p):
            x = -math.log10(max(1e-9, 1 - p / 100)) if p < 100 else xmax
            return x0 + min(x, xmax) / xmax * cw

        def py(v):
            v = max(v, lo)
            return y0 + ch - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * ch

        out.append(f'<text x="{x0 + cw / 2}" y="{y0 - 10}" text-anchor="middle" font-weight="bold">{esc(title)}</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{cw}" height="{ch}" fill="none" stroke="#999"/>')
        for k, lab in enumerate(["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]):
            x = x0 + k / xmax * cw
            out.append(f'<line x1="{x}" y1="{y0}" x2="{x}" y2="{y0 + ch}" stroke="#eee"/>')
            out.append(f'<text x="{x}" y="{y0 + ch + 15}" text-anchor="middle" font-size="10">{lab}</text>')
        decade = lo
        while decade <= hi:
            y = py(decade)
            out.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + cw}" y2="{y}" stroke="#eee"/>')
            out.append(f'<text x="{x0 - 4}" y="{y + 4}" text-anchor="end" font-size="10">{esc(axis_us(decade))}</text>')
            decade *= 10
        out.append(f'<text x="{x0 + cw / 2}" y="{y0 + ch + 32}" text-anchor="middle" font-size="11">percentile</text>')
        for j, (system, pts) in enumerate(series):
            pts = [(p, v) for p, v in pts if p <= 99.999 or p == 100]
            if not pts:
                continue
            d = " ".join(f"{px(p):.1f},{py(v):.1f}" for p, v in pts)
            out.append(f'<polyline points="{d}" fill="none" stroke="{COLORS[system]}" stroke-width="2"/>')
            lx, ly = x0 + cw - 120, y0 + ch - 12 - 16 * (len(series) - 1 - j)
            out.append(f'<rect x="{lx - 4}" y="{ly - 12}" width="122" height="16" fill="white" fill-opacity="0.8"/>')
            out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 18}" y2="{ly - 4}" stroke="{COLORS[system]}" stroke-width="2"/>')
            out.append(f'<text x="{lx + 22}" y="{ly}">{esc(system)}</text>')
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


# --------------------------------------------------------------- report


def latency_table(L, run, p99, prefix):
    L.append("| rate | system | achieved/s | p50 | p90 | p99 | p99.9 | p99.99 | max | errors | delayed/unsent | tonic ÷ ours (p99) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for pct in (25, 50, 75):
        o, t = run(f"ours-open-{prefix}{pct}"), run(f"tonic-open-{prefix}{pct}")
        for system, r in ((OURS, o), (TONIC, t)):
            if not r:
                continue
            lat = r["latency_us"]
            cmp_ = fmt_ratio(ratio(p99(f"tonic-open-{prefix}{pct}"), p99(f"ours-open-{prefix}{pct}"))) if system == TONIC else ""
            L.append(f"| {pct}% ({rate(r['target_qps'])}/s) | {system} | {rate(r['achieved_qps'])} | {us(lat['p50'])} | "
                     f"{us(lat['p90'])} | {us(lat['p99'])} | {us(lat['p999'])} | {us(lat['p9999'])} | {us(lat['max'])} | "
                     f"{r['errors']} | {r['delayed']}/{r['unsent']} | {cmp_} |")


def main(out_dir, md_path):
    raw = os.path.join(out_dir, "raw")
    env = json.load(open(os.path.join(raw, "env.json")))
    params = json.load(open(os.path.join(raw, "params.json")))
    conns, depth, payload = params["connections"], params["depth"], params["payload"]
    runs = load_runs(raw)
    redis = load_redis(raw, conns, depth)
    commands = open(os.path.join(raw, "commands.txt")).read().strip()
    loadavg = open(os.path.join(raw, "loadavg.txt")).read().strip() if os.path.exists(os.path.join(raw, "loadavg.txt")) else ""
    seed = open(os.path.join(raw, "seed.txt")).read().strip() if os.path.exists(os.path.join(raw, "seed.txt")) else "not run"

    def run(label):
        return runs.get(label)

    def qps(label):
        r = run(label)
        return r["achieved_qps"] if r else None

    def redis_rps(key, test="PING_MBULK"):
        r = redis.get((key, test))
        return r["rps"] if r else None

    # Saturation table rows: (system, shape, outstanding, calls/s, p50, p99, p99.9, errors, source, ours same shape)
    sat_rows = []
    for label, system, shape, outstanding, base in (
        ("ours-sat", OURS, f"{conns} conns, 1 call each", conns, "ours-sat"),
        ("ours-sat-pipelined", OURS, f"{conns} conns × {depth} pipelined", conns * depth, "ours-sat-pipelined"),
        ("ours-raw-sat", OURS_RAW, f"{conns} conns, 1 call each", conns, "ours-sat"),
        ("ours-raw-sat-pipelined", OURS_RAW, f"{conns} conns × {depth} pipelined", conns * depth, "ours-sat-pipelined"),
        ("tonic-sat", TONIC, f"{conns} HTTP/2 conns, 1 call each", conns, "ours-sat"),
        ("tonic-sat-2threads", TONIC, f"{conns} HTTP/2 conns, 1 call each, 2 client threads", conns, "ours-sat"),
        ("tonic-sat-pipelined", TONIC, f"{conns} HTTP/2 conns × {depth} streams", conns * depth, "ours-sat-pipelined"),
    ):
        r = run(label)
        if not r:
            continue
        lat = r["latency_us"]
        sat_rows.append((system, shape, outstanding, r["achieved_qps"], lat["p50"], lat["p99"], lat["p999"],
                         r["errors"], r["file"], qps(base)))
    for key, shape, outstanding, base in (
        ("plain", f"{conns} conns, 1 call each", conns, "ours-sat"),
        ("pipelined", f"{conns} conns × {depth} pipelined (-P {depth})", conns * depth, "ours-sat-pipelined"),
    ):
        for test in ("PING_INLINE", "PING_MBULK"):
            r = redis.get((key, test))
            if r:
                sat_rows.append((REDIS, f"{test}, {shape}", outstanding, r["rps"], r["p50"], r["p99"], None, 0,
                                 r["file"], qps(base)))

    ours_best = max((q for q in (qps("ours-sat"), qps("ours-sat-pipelined")) if q), default=None)
    tonic_best = max((q for q in (qps("tonic-sat"), qps("tonic-sat-2threads"), qps("tonic-sat-pipelined")) if q), default=None)

    def p99(label):
        r = run(label)
        return r["latency_us"]["p99"] if r else None

    goals = [
        ("throughput at saturation ≥ 3× tonic (best of each side's shapes)",
         f"{rate(ours_best)} vs {rate(tonic_best)} calls/s", ratio(ours_best, tonic_best), 3.0),
        (f"throughput at saturation ≥ 3× tonic (same shape: {conns} connections, 1 call each, 1 client thread)",
         f"{rate(qps('ours-sat'))} vs {rate(qps('tonic-sat'))} calls/s", ratio(qps("ours-sat"), qps("tonic-sat")), 3.0),
        (f"throughput ≥ 1.0× redis PING ({conns} connections, no pipelining; PING_MBULK)",
         f"{rate(qps('ours-sat'))} vs {rate(redis_rps('plain'))} /s", ratio(qps("ours-sat"), redis_rps("plain")), 1.0),
        (f"throughput ≥ 1.0× redis PING ({conns} connections, pipelined {depth}; PING_MBULK)",
         f"{rate(qps('ours-sat-pipelined'))} vs {rate(redis_rps('pipelined'))} /s",
         ratio(qps("ours-sat-pipelined"), redis_rps("pipelined")), 1.0),
        (f"server vs server: ours with loadgen's raw pipelining client ≥ 1.0× redis PING with redis-benchmark ({conns} connections, no pipelining; PING_MBULK)",
         f"{rate(qps('ours-raw-sat'))} vs {rate(redis_rps('plain'))} /s", ratio(qps("ours-raw-sat"), redis_rps("plain")), 1.0),
        (f"server vs server: ours with loadgen's raw pipelining client ≥ 1.0× redis PING with redis-benchmark ({conns} connections, pipelined {depth}; PING_MBULK)",
         f"{rate(qps('ours-raw-sat-pipelined'))} vs {rate(redis_rps('pipelined'))} /s",
         ratio(qps("ours-raw-sat-pipelined"), redis_rps("pipelined")), 1.0),
        ("p99 at 50% of our saturation ≤ 0.5× tonic's p99 at the same rate (tonic p99 ÷ ours ≥ 2)",
         f"{us(p99('ours-open-50'))} vs {us(p99('tonic-open-50'))}", ratio(p99("tonic-open-50"), p99("ours-open-50")), 2.0),
        ("p99 at 50% of tonic's saturation ≤ 0.5× tonic's p99 (both below capacity)",
         f"{us(p99('ours-open-t50'))} vs {us(p99('tonic-open-t50'))}", ratio(p99("tonic-open-t50"), p99("ours-open-t50")), 2.0),
    ]

    # Plots.
    bars = [(f"{s} — {shape}", s, v) for s, shape, _, v, *_ in sat_rows]
    throughput_svg(bars, os.path.join(out_dir, "throughput.svg"))
    def panels_for(prefix, base_name):
        panels = []
        for pct in (25, 50, 75):
            o, t = run(f"ours-open-{prefix}{pct}"), run(f"tonic-open-{prefix}{pct}")
            target = (o or t or {}).get("target_qps")
            series = [(name, r["latency_curve"]) for name, r in ((OURS, o), (TONIC, t)) if r]
            if series:
                panels.append((f"{pct}% of {base_name}: {rate(target)}/s", series))
        return panels

    latency_svg(panels_for("", "our saturation"), os.path.join(out_dir, "latency.svg"))
    latency_svg(panels_for("t", "tonic's saturation"), os.path.join(out_dir, "latency_tonic_rates.svg"))

    rel = os.path.relpath(out_dir, os.path.dirname(md_path) or ".")
    L = []
    L.append("# Comparison: mprpc vs tonic (gRPC) vs redis, loopback on this machine\n")
    L.append(f"Produced by `scripts/compare.sh` on {env['date_utc']} at commit `{env['git_commit']}`; "
             f"every figure below is read from the raw files in [`{rel}/raw/`]({rel}/raw/) by "
             "`scripts/compare_report.py`. Runs took "
             f"{env.get('total_seconds', '?')} s (release build included: {env.get('build_seconds', '?')} s).\n")
    L.append("## Machine\n")
    L.append(f"- CPU: {env['nproc']} cores, {env['cpu_model']}; memory {env['mem_total']}; Linux {env['kernel']}")
    L.append(f"- {env['rustc']}; tonic {env['tonic']}; {env['redis_server']}; ZooKeeper {os.path.basename(env['zookeeper_jar'])}")
    L.append("- Everything (servers, load generators, ZooKeeper) runs on this one machine over loopback, so the "
             "client competes with the server for the same cores. The machine is shared with other build "
             "jobs; the 1/5/15-minute load averages around each phase were:\n")
    L.append("```\n" + loadavg + "\n```\n")
    L.append("## Goals (docs: MISSION.md, performance goals)\n")
    L.append("| goal | measured | ratio | target | met |")
    L.append("|---|---|---|---|---|")
    for name, measured, r, target in goals:
        met = "n/a" if r is None else ("yes" if r >= target else "**no**")
        L.append(f"| {name} | {measured} | {fmt_ratio(r)} | ≥ {target:g}× | {met} |")
    L.append(f"| ≥ 100× the seed's C++ implementation | {seed} | n/a | ≥ 100× | n/a |\n")

    ours_run = run("ours-sat") or {}
    endpoint = ours_run.get("endpoint", "?")
    how = ("found through ZooKeeper" if endpoint.startswith("zk://")
           else "called directly at its address (discovery skipped)")
    providers = ", ".join(ours_run.get("discovered_providers", [])) or endpoint
    L.append("## Saturation throughput (closed loop)\n")
    L.append(f"Our echo provider was {how}: `{endpoint}` (providers: {providers}), with "
             f"{params.get('reactors', '?')} reactor thread(s): the load generators share the same two cores, and one "
             "reactor leaves the other core to the client, as single-threaded redis does.\n")
    L.append(f"Echo of a {payload}-byte payload. loadgen keeps the given "
             "number of calls outstanding (`--qps max --in-flight N`) for "
             f"{params['duration_s']} s after a {params['warmup_s']} s warm-up. redis-benchmark answers PING with the "
             "same connection count (its own client, its own latency figures: p99.9 is not reported by it). "
             "The last column is our throughput in the same shape divided by the row's; it compares against the "
             "rows measured with the framework's own `Channel` client.\n")
    L.append("Two clients drive our server. `mprpc (ours)` is the framework's `Channel` (what an application "
             "uses: per-call completion, deadline, routing; on these two cores its I/O thread is the limit). "
             "`raw pipelining client` is `loadgen --client raw`: one mio loop keeping pre-encoded requests "
             "outstanding on each connection, which is how redis-benchmark loads redis; those rows compare the "
             "servers on equal terms.\n")
    L.append("| system | shape | outstanding | calls/s | p50 | p99 | p99.9 | errors | ours ÷ this |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for system, shape, outstanding, v, p50, p99_, p999, errors, _f, base in sat_rows:
        L.append(f"| {system} | {shape} | {outstanding} | {rate(v)} | {us(p50)} | {us(p99_)} | {us(p999)} | {errors} | "
                 f"{fmt_ratio(ratio(base, v))} |")
    L.append(f"\n![throughput]({rel}/throughput.svg)\n")

    L.append("## Latency at fixed open-loop rates\n")
    L.append(f"Requests leave on a fixed schedule at 25%, 50% and 75% of our saturation ({rate(qps('ours-sat'))} calls/s, "
             f"{conns} connections, 1 call each), for both systems; latency is measured from each request's intended "
             "send time (coordinated omission corrected, as wrk2 does), so it includes any queueing the server "
             "causes and the load generator's own scheduling delay (the same tool for both). "
             "\"tonic ÷ ours\" is tonic's p99 divided by ours.\n")
    latency_table(L, run, p99, "")
    L.append(f"\n![latency]({rel}/latency.svg)\n")
    L.append(f"The same at 25%, 50% and 75% of tonic's saturation ({rate(qps('tonic-sat'))} calls/s, same shape), "
             "where neither system is overloaded:\n")
    latency_table(L, run, p99, "t")
    L.append(f"\n![latency at tonic's rates]({rel}/latency_tonic_rates.svg)\n")

    L.append("## How the load is generated\n")
    L.append("- `loadgen` (this repository) drives both RPC systems with the same code: one sender thread keeps the "
             "schedule (open loop) or the in-flight count (closed loop); completions record into HDR histograms "
             "(µs, 3 significant digits).")
    L.append("- mprpc: calls go through the framework's own non-blocking client (`Channel::call_with`), one channel "
             "holding all the connections (opened during the warm-up, used round robin), served by one client I/O "
             "thread.")
    L.append("- tonic: each call is a task spawned from the sender thread onto a tokio runtime with one worker "
             "(two in the `2 client threads` row), over one HTTP/2 connection per `--connection`. At a fixed "
             "rate the idle worker is woken for most calls, so tonic's open-loop capacity in this harness can be "
             "lower than its closed-loop saturation: compare the achieved rates above. mprpc's client has the same "
             "hand-off (sender thread to I/O thread).")
    L.append(f"- redis: `redis-benchmark` is redis's own C client. With `-P {depth}` it writes {depth} commands per "
             "connection in one go; loadgen issues pipelined calls one at a time and the client coalesces what is "
             "queued on a connection into each write, so in that shape the client side costs more CPU than "
             "redis-benchmark does, on the same 2 cores the server uses.")
    L.append("- Open-loop latency counts from the intended send time, so a late sender thread (descheduled on this "
             "shared 2-core machine) shows up as latency, the same for both systems; each run's JSON also holds the "
             "latency from the actual send (`service_time_us`).\n")
    L.append("## Seed C++ implementation\n")
    L.append(seed + "\n")
    L.append("## Exact commands\n")
    L.append("Ports were free ports chosen at run time; `echo-provider.conf` is in the raw folder.\n")
    L.append("```\n" + commands + "\n```\n")
    L.append("## Raw data\n")
    for label in sorted(runs):
        r = runs[label]
        stem = r["file"][:-5]
        L.append(f"- `{label}`: [{r['file']}]({rel}/raw/{r['file']}), [{stem}.hgrm]({rel}/raw/{stem}.hgrm), "
                 f"[{stem}.md]({rel}/raw/{stem}.md)")
    for fname in sorted({v["file"] for v in redis.values()}):
        L.append(f"- redis-benchmark: [{fname}]({rel}/raw/{fname})")
    L.append(f"- machine and versions: [env.json]({rel}/raw/env.json), parameters: [params.json]({rel}/raw/params.json)")
    open(md_path, "w").write("\n".join(L) + "\n")
    print(f"wrote {md_path}, {out_dir}/throughput.svg, {out_dir}/latency.svg")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: compare_report.py RESULTS_DIR OUTPUT.md")
    main(sys.argv[1], sys.argv[2])
