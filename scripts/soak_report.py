#!/usr/bin/env python3
"""Writes results/SOAK.md and soak.svg from the raw data of scripts/soak.sh.

    soak_report.py results/soak results/SOAK.md

Standard library only. Every figure comes from the files in the raw
directory (windows.csv from loadgen's per-window JSON reports, rss.csv
from the 1 s RSS sampler of every server, saturation-STREAM.json,
params.json, env.json). Three streams (plain, tls, chain) run side by
side; each gets its own p99 trend test, each server its own RSS one.
"""

import csv
import json
import os
import statistics
import sys

STREAMS = ["plain", "tls", "chain"]
SERVERS = ["echo-provider", "gateway", "backend"]
COLORS = ["#1f77b4", "#d62728", "#2ca02c"]
WHAT = {
    "plain": "EchoService.Echo, plain TCP, no metadata",
    "tls": "EchoService.Echo over TLS, with metadata",
    "chain": "GatewayServiceRpc.GetUserPage through the async gateway (two backend calls each), with metadata",
}


def load(raw):
    windows = list(csv.DictReader(open(os.path.join(raw, "windows.csv"))))
    rss = [r for r in csv.DictReader(open(os.path.join(raw, "rss.csv"))) if r["rss_kib"]]
    params = json.load(open(os.path.join(raw, "params.json")))
    env = json.load(open(os.path.join(raw, "env.json")))
    sat = {s: json.load(open(os.path.join(raw, f"saturation-{s}.json"))) for s in STREAMS}
    return windows, rss, params, env, sat


def slope(xs, ys):
    """Least-squares slope of ys over xs (per unit of x)."""
    if len(xs) < 2:
        return 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def thirds(values):
    k = max(1, len(values) // 3)
    return statistics.median(values[:k]), statistics.median(values[-k:])


def trend(name, unit, xs_min, ys, rel_limit):
    """A sentence on the trend of ys (after the first minute) and a flag."""
    pairs = [(x, y) for x, y in zip(xs_min, ys) if x >= 1.0] or list(zip(xs_min, ys))
    xs, vs = [p[0] for p in pairs], [p[1] for p in pairs]
    s = slope(xs, vs)
    first, last = thirds(vs)
    change = (last - first) / first if first else 0.0
    rising = s > 0 and change > rel_limit
    text = (f"{name}: median of the first third {first:.2f} {unit}, of the last third {last:.2f} {unit} "
            f"({change:+.1%}); least-squares slope {s:+.3f} {unit}/min (fitted after the first minute).")
    return text, rising


def svg(rss_series, p99_series, path, title):
    """Two stacked line charts sharing the time axis: RSS (MiB) per server
    and p99 (ms) per stream; each series is (name, ts, values)."""
    width, height, left, right, top, gap, panel = 860, 540, 70, 20, 40, 50, 190
    tmax = max([1.0] + [t for _, ts, _ in rss_series + p99_series for t in ts])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']

    def panel_at(y0, series, label, fmt):
        vmax = max([v for _, _, vs in series for v in vs] + [0.0]) * 1.15 or 1.0
        x = lambda t: left + (width - left - right) * t / tmax
        y = lambda v: y0 + panel - panel * v / vmax
        out.append(f'<rect x="{left}" y="{y0}" width="{width - left - right}" height="{panel}" '
                   f'fill="none" stroke="#999"/>')
        for i in range(5):
            v = vmax * i / 4
            out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{fmt(v)}</text>')
        out.append(f'<text x="16" y="{y0 + panel / 2}" transform="rotate(-90 16 {y0 + panel / 2})" '
                   f'text-anchor="middle">{label}</text>')
        for i, (name, ts, vs) in enumerate(series):
            color = COLORS[i % len(COLORS)]
            if ts:
                pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(ts, vs))
                out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.6"/>')
            out.append(f'<text x="{left + 10 + 150 * i}" y="{y0 + 14}" fill="{color}">{name}</text>')
        return x

    x = panel_at(top, rss_series, "RSS (MiB)", lambda v: f"{v:.1f}")
    y1 = top + panel + gap
    panel_at(y1, p99_series, "p99 per window (ms)", lambda v: f"{v:.2f}")
    step = 60 if tmax > 180 else 10
    if tmax > 1200:
        step = 300
    t = 0
    while t <= tmax:
        xp = x(t)
        out.append(f'<line x1="{xp:.1f}" x2="{xp:.1f}" y1="{y1 + panel}" y2="{y1 + panel + 5}" stroke="#999"/>')
        out.append(f'<text x="{xp:.1f}" y="{y1 + panel + 18}" text-anchor="middle">'
                   f'{t // 60}:{t % 60:02d}</text>')
        t += step
    out.append(f'<text x="{width / 2}" y="{height - 8}" text-anchor="middle">time since the soak started (min:s)</text>')
    out.append("</svg>")
    open(path, "w").write("\n".join(out) + "\n")


def per_window(windows, t0):
    """The windows in order, each {w, start, end, streams: {stream: row}}."""
    by_w = {}
    for r in windows:
        w = by_w.setdefault(int(r["window"]), {"w": int(r["window"]), "start": float(r["start_epoch_s"]) - t0,
                                                "end": float(r["end_epoch_s"]) - t0, "streams": {}})
        w["streams"][r["stream"]] = {
            "target": float(r["target_qps"]), "rate": float(r["achieved_qps"]), "completed": int(r["completed"]),
            "errors": int(r["errors"]), "delayed": int(r["delayed"]),
            "p50": int(r["p50_us"]) / 1000, "p99": int(r["p99_us"]) / 1000,
            "p999": int(r["p999_us"]) / 1000, "max": int(r["max_us"]) / 1000,
        }
    return [by_w[k] for k in sorted(by_w)]


def main():
    raw, md = sys.argv[1], sys.argv[2]
    windows, rss, params, env, sat = load(raw)
    t0 = min(float(w["start_epoch_s"]) for w in windows)
    rows = per_window(windows, t0)
    # RSS per server, from the soak's start (the saturation runs before it
    # are not plotted).
    rss_pts = {srv: [(float(r["epoch_s"]) - t0, int(r["rss_kib"]) / 1024, r) for r in rss if r["server"] == srv]
               for srv in SERVERS}
    rss_pts = {srv: ([p for p in pts if p[0] >= 0] or pts) for srv, pts in rss_pts.items()}
    for row in rows:
        row["rss"] = {}
        for srv, pts in rss_pts.items():
            inside = [p for p in pts if row["start"] <= p[0] <= row["end"]]
            last = inside[-1] if inside else min(pts, key=lambda p: abs(p[0] - row["end"]))
            row["rss"][srv] = last[1]
            row["load"] = last[2]["loadavg1"]
    gaps = [b["start"] - a["end"] for a, b in zip(rows, rows[1:])]
    run_s = [r["end"] - r["start"] for r in rows]
    soak_s = rows[-1]["end"]
    mins = [r["end"] / 60 for r in rows]
    rss_trends = {srv: trend(f"{srv} RSS", "MiB", mins, [r["rss"][srv] for r in rows], 0.05) for srv in SERVERS}
    p99_trends = {s: trend(f"{s} p99", "ms", mins, [r["streams"][s]["p99"] for r in rows], 0.25) for s in STREAMS}
    calls = {s: sum(r["streams"][s]["completed"] for r in rows) for s in STREAMS}
    errors = {s: sum(r["streams"][s]["errors"] for r in rows) for s in STREAMS}
    rates = params["rates"]
    under = [r for r in rows if any(r["streams"][s]["rate"] < 0.95 * rates[s] for s in STREAMS)]
    total_rate = sum(rates.values())

    svg_name = "soak.svg"
    svg([(srv, [p[0] for p in rss_pts[srv]], [p[1] for p in rss_pts[srv]]) for srv in SERVERS],
        [(s, [r["end"] for r in rows], [r["streams"][s]["p99"] for r in rows]) for s in STREAMS],
        os.path.join(raw, svg_name),
        f"Soak: {total_rate:,} calls/s ({params['pct']}% of saturation): plain, TLS + metadata, async gateway chain")

    up_before = open(os.path.join(raw, "uptime-before.txt")).read().strip()
    up_after = open(os.path.join(raw, "uptime-after.txt")).read().strip()
    total = open(os.path.join(raw, "total_seconds.txt")).read().strip()
    L = []
    w = L.append
    w(f"# Soak: {params['pct']}% of saturation, a mixed load, RSS and p99 every {params['window_s']} seconds\n")
    w(f"Generated by `scripts/soak.sh {params['duration']}` on {env['date_utc']} (commit `{env['git_commit']}{'-dirty' if env.get('git_dirty') else ''}`), "
      f"{env['nproc']} cores ({env['cpu_model']}), {env['mem_total']} RAM, kernel {env['kernel']}, {env['rustc']}. "
      f"Servers, ZooKeeper and loadgen on the same machine over 127.0.0.1; servers and ZooKeeper pinned to core "
      f"{params['server_cpu']}, the three loadgen processes to core {params['client_cpu']}. Whole script: {total} s.\n")
    w(f"Machine load (the load average includes anything else running on the box): before `{up_before}`; "
      f"after `{up_after}`. The load column below is the 1-minute load average at each window's end.\n")
    if env.get("git_dirty_src"):
        w("Uncommitted changes in the tree when the binaries were built: "
          + ", ".join(f"`{l.strip()}`" for l in env["git_dirty_src"]) + ".\n")
    w("## Setup\n")
    w("- Servers, each with one reactor, registered in a local ZooKeeper: `echo-provider` with `tls=optional` "
      "(plain and TLS clients on one port), the examples' backend `provider` (UserServiceRpc, FriendServiceRpc), and "
      "`gateway` (GatewayServiceRpc.GetUserPage: a handler that answers later, calling Login and GetFriendsList on "
      "the backend at once). Commands and configs: `results/soak/commands.txt`, `*.conf`.")
    w(f"- Three streams side by side, each a loadgen process (the `Channel` client, one sender thread, "
      f"{params['connections']} connections, providers found through ZooKeeper):")
    for s in STREAMS:
        w(f"  - **{s}**: {WHAT[s]}.")
    w(f"- Saturation: the three closed loop at once ({params['connections']} calls in flight each), "
      f"{sat['plain']['duration_s']:.0f} s: " + "; ".join(
          f"{s} **{sat[s]['achieved_qps']:,.0f} calls/s** (p99 {sat[s]['latency_us']['p99']} µs, {sat[s]['errors']} errors)"
          for s in STREAMS) + f"; {params['saturation_qps']:,} calls/s in all.")
    if params.get("note"):
        w(f"- Note: {params['note']}")
    w(f"- Soak rate: {params['pct']}% of each stream's rate in that mix: " + ", ".join(
        f"{s} **{rates[s]:,}/s**" for s in STREAMS) + f" ({total_rate:,} calls/s in all), open loop (latency from "
      f"each call's intended send time), {params['payload']} B echo payload, {params['windows']} windows of "
      f"{params['window_s']} s.")
    w(f"- Per-window p99: loadgen's progress line only has percentiles of the whole run so far, so each stream is "
      f"{len(rows)} back-to-back loadgen runs (`--warmup 1s --duration {params['window_s']}s`), each with its own HDR "
      f"histogram; each run reconnects (new ZooKeeper session, new connections, TLS handshakes). Windows took "
      f"{min(run_s):.1f}–{max(run_s):.1f} s of wall time each (1 s warm-up, measured, drain, exit); the gap between "
      f"windows was {min(gaps, default=0):.2f}–{max(gaps, default=0):.2f} s, and each run's ZooKeeper lookup and "
      f"connects fall in its unmeasured warm-up. Load was applied for {soak_s / 60:.1f} min in all.")
    w("- RSS: `VmRSS` of each server from `/proc/PID/status`, sampled every second; the table shows the last sample "
      "in each window.\n")
    w("## Result\n")
    w(f"- Calls: " + ", ".join(f"{s} {calls[s]:,} measured, **{errors[s]} errors**" for s in STREAMS)
      + f"; windows where a stream fell below 95% of its target rate: {len(under)}.")
    for srv in SERVERS:
        text, up = rss_trends[srv]
        w(f"- {text} " + ("**Upward trend: possible leak.**" if up else "No upward trend (threshold: +5% last third vs first, with a positive slope)."))
    for s in STREAMS:
        text, up = p99_trends[s]
        w(f"- {text} " + ("**Upward trend in p99.**" if up else "No upward trend (threshold: +25%, with a positive slope)."))
    for s in STREAMS:
        p99s = [r["streams"][s]["p99"] for r in rows]
        worst = max(rows, key=lambda r: r["streams"][s]["p99"])
        w(f"- {s} p99 over the windows: median {statistics.median(p99s):.2f} ms, best {min(p99s):.2f} ms, worst "
          f"{max(p99s):.2f} ms (window {worst['w']}); worst max latency "
          f"{max(r['streams'][s]['max'] for r in rows):.1f} ms.")
    for srv in SERVERS:
        pts = rss_pts[srv]
        w(f"- {srv}: RSS {pts[0][1]:.1f} MiB at the first sample, {max(p[1] for p in pts):.1f} MiB at most, "
          f"{pts[-1][1]:.1f} MiB at the last (after the load stopped); open fds {pts[0][2]['fds']} → "
          f"{pts[-1][2]['fds']}; threads {pts[0][2]['threads']} → {pts[-1][2]['threads']}.")
    w("")
    w(f"![RSS and p99 over time](soak/{svg_name})\n")
    w("## Per window\n")
    w("| window | end (m:s) | RSS MiB echo / gateway / backend | " + " | ".join(f"{s} p99 ms" for s in STREAMS)
      + " | " + " | ".join(f"{s} max ms" for s in STREAMS) + " | calls/s | errors | delayed | load1 |")
    w("|---:|---:|---:|" + "---:|" * (2 * len(STREAMS)) + "---:|---:|---:|---:|")
    for r in rows:
        e = int(r["end"])
        st = r["streams"]
        w(f"| {r['w']} | {e // 60}:{e % 60:02d} | " + " / ".join(f"{r['rss'][srv]:.1f}" for srv in SERVERS) + " | "
          + " | ".join(f"**{st[s]['p99']:.3f}**" for s in STREAMS) + " | "
          + " | ".join(f"{st[s]['max']:.1f}" for s in STREAMS)
          + f" | {sum(st[s]['rate'] for s in STREAMS):,.0f} | {sum(st[s]['errors'] for s in STREAMS)} | "
          f"{sum(st[s]['delayed'] for s in STREAMS)} | {r['load']} |")
    w("")
    w("`delayed`: calls that waited for an in-flight slot (none expected with `--in-flight 100000`). "
      "Raw data: `results/soak/` (windows.csv, rss.csv, saturation-*.json, params.json, env.json, commands.txt, "
      "the first window's loadgen output per stream).")
    open(md, "w").write("\n".join(L) + "\n")
    print(f"wrote {md} and {os.path.join(raw, svg_name)}")


if __name__ == "__main__":
    main()
