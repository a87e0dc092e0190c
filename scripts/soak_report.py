#!/usr/bin/env python3
"""Writes results/SOAK.md and soak.svg from the raw data of scripts/soak.sh.

    soak_report.py results/soak results/SOAK.md

Standard library only. Every figure comes from the files in the raw
directory (windows.csv from loadgen's per-window JSON reports, rss.csv
from the 1 s RSS sampler, saturation.json, params.json, env.json).
"""

import csv
import json
import os
import statistics
import sys


def load(raw):
    windows = list(csv.DictReader(open(os.path.join(raw, "windows.csv"))))
    rss = [r for r in csv.DictReader(open(os.path.join(raw, "rss.csv"))) if r["rss_kib"]]
    params = json.load(open(os.path.join(raw, "params.json")))
    env = json.load(open(os.path.join(raw, "env.json")))
    sat = json.load(open(os.path.join(raw, "saturation.json")))
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


def svg(windows_t, rss_t, rss_mib, p99_t, p99_ms, path, title):
    """Two stacked line charts sharing the time axis: RSS (MiB) and p99 (ms)."""
    width, height, left, right, top, gap, panel = 860, 520, 70, 20, 40, 50, 190
    tmax = max([1.0] + rss_t + p99_t)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>']

    def panel_at(y0, ts, vs, label, color, fmt):
        vmax = max(vs + [0.0]) * 1.15 or 1.0
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
        if ts:
            pts = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(ts, vs))
            out.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.8"/>')
        return x

    x = panel_at(top, rss_t, rss_mib, "provider RSS (MiB)", "#1f77b4", lambda v: f"{v:.1f}")
    y1 = top + panel + gap
    panel_at(y1, p99_t, p99_ms, "p99 per 10 s window (ms)", "#d62728", lambda v: f"{v:.2f}")
    step = 60 if tmax > 180 else 10
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


def main():
    raw, md = sys.argv[1], sys.argv[2]
    windows, rss, params, env, sat = load(raw)
    t0 = float(windows[0]["start_epoch_s"])
    # From the soak's start (the saturation run before it is not plotted).
    rss_pts = [(float(r["epoch_s"]) - t0, int(r["rss_kib"]) / 1024, r) for r in rss]
    rss_pts = [p for p in rss_pts if p[0] >= 0] or rss_pts
    rows = []
    for w in windows:
        start, end = float(w["start_epoch_s"]) - t0, float(w["end_epoch_s"]) - t0
        inside = [p for p in rss_pts if start <= p[0] <= end]
        last = inside[-1] if inside else min(rss_pts, key=lambda p: abs(p[0] - end))
        rows.append({
            "w": int(w["window"]), "start": start, "end": end,
            "rss_last": last[1], "rss_max": max((p[1] for p in inside), default=last[1]),
            "fds": last[2]["fds"], "load": last[2]["loadavg1"],
            "rate": float(w["achieved_qps"]), "ok_rate": float(w["ok_qps"]),
            "errors": int(w["errors"]), "delayed": int(w["delayed"]), "unsent": int(w["unsent"]),
            "unfinished": int(w["unanswered"]),
            "p50": int(w["p50_us"]) / 1000, "p99": int(w["p99_us"]) / 1000,
            "p999": int(w["p999_us"]) / 1000, "max": int(w["max_us"]) / 1000,
        })
    gaps = [b["start"] - a["end"] for a, b in zip(rows, rows[1:])]
    run_s = [r["end"] - r["start"] for r in rows]
    soak_s = rows[-1]["end"]
    mins = [r["end"] / 60 for r in rows]
    rss_text, rss_up = trend("RSS", "MiB", mins, [r["rss_last"] for r in rows], 0.05)
    p99_text, p99_up = trend("p99", "ms", mins, [r["p99"] for r in rows], 0.25)
    errors = sum(r["errors"] for r in rows)
    calls = sum(int(w["completed"]) for w in windows)
    rate = params["rate"]
    under = [r for r in rows if r["rate"] < 0.95 * rate]

    svg_name = "soak.svg"
    svg([r["end"] for r in rows], [p[0] for p in rss_pts], [p[1] for p in rss_pts],
        [r["end"] for r in rows], [r["p99"] for r in rows], os.path.join(raw, svg_name),
        f"Soak: {rate:,} calls/s ({params['pct']}% of saturation), {params['connections']} connections, "
        f"{params['payload']} B echo")

    up_before = open(os.path.join(raw, "uptime-before.txt")).read().strip()
    up_after = open(os.path.join(raw, "uptime-after.txt")).read().strip()
    total = open(os.path.join(raw, "total_seconds.txt")).read().strip()
    L = []
    w = L.append
    w(f"# Soak: {params['pct']}% of saturation, RSS and p99 every 10 seconds\n")
    w(f"Generated by `scripts/soak.sh {params['duration']}` on {env['date_utc']} (commit `{env['git_commit']}{'-dirty' if env.get('git_dirty') else ''}`), "
      f"{env['nproc']} cores ({env['cpu_model']}), {env['mem_total']} RAM, kernel {env['kernel']}, {env['rustc']}. "
      f"Provider, ZooKeeper and loadgen on the same machine over 127.0.0.1. Whole script: {total} s.\n")
    w(f"Machine load (other agents build on this box, the load average includes them): before `{up_before}`; "
      f"after `{up_after}`. The load column below is the 1-minute load average at each window's end.\n")
    if env.get("git_dirty_src"):
        w("Uncommitted changes by other agents in the tree when the binaries were built: "
          + ", ".join(f"`{l.strip()}`" for l in env["git_dirty_src"]) + ".\n")
    w("## Setup\n")
    w(f"- Provider: `echo-provider` with the default `reactor_threads` (one per core: {env['nproc']}), registered in a "
      f"local ZooKeeper; loadgen (one sender thread, {params['connections']} connections on one channel) finds it by "
      f"discovery (`--zk`). Everything shares the {env['nproc']} cores, so \"saturation\" is that of this whole "
      f"setup, client included.")
    w(f"- Saturation: closed loop, {sat['connections']} connections, one call in flight each, {sat['duration_s']:.0f} s: "
      f"**{sat['achieved_qps']:,.0f} calls/s** (p50 {sat['latency_us']['p50']} µs, p99 {sat['latency_us']['p99']} µs, "
      f"{sat['errors']} errors).")
    if params.get("note"):
        w(f"- Note: {params['note']}")
    w(f"- Soak rate: **{rate:,} calls/s** ({params['pct']}% of that), open loop (latency from each call's intended send "
      f"time), {params['payload']} B echo, {params['windows']} windows of {params['window_s']} s.")
    w(f"- Per-window p99: loadgen's progress line only has percentiles of the whole run so far, so the soak is "
      f"{len(rows)} back-to-back loadgen runs (`--warmup 1s --duration {params['window_s']}s`), each with its own HDR "
      f"histogram; each run reconnects (new ZooKeeper session, {params['connections']} new connections). Measured "
      f"windows took {min(run_s):.1f}–{max(run_s):.1f} s of wall time each (1 s warm-up, 10 s measured, drain, exit); "
      f"the gap between one run's exit and the next run's start was {min(gaps, default=0):.2f}–{max(gaps, default=0):.2f} s, "
      f"and each run's ZooKeeper lookup and connects fall in its unmeasured warm-up. Load was applied for "
      f"{soak_s / 60:.1f} min in all.")
    w(f"- RSS: `VmRSS` of the provider from `/proc/PID/status`, sampled every second; the table shows the last sample "
      f"in each window and the largest.\n")
    w("## Result\n")
    w(f"- Calls: {calls:,} measured, **{errors} errors**; windows below 95% of the target rate: {len(under)}.")
    w(f"- {rss_text} " + ("**Upward trend: possible leak.**" if rss_up else "No upward trend (threshold: +5% last third vs first, with a positive slope)."))
    w(f"- {p99_text} " + ("**Upward trend in p99.**" if p99_up else "No upward trend (threshold: +25%, with a positive slope)."))
    w(f"- p99 over the windows: median {statistics.median(r['p99'] for r in rows):.2f} ms, "
      f"best {min(r['p99'] for r in rows):.2f} ms, worst {max(r['p99'] for r in rows):.2f} ms "
      f"(window {max(rows, key=lambda r: r['p99'])['w']}); worst max latency {max(r['max'] for r in rows):.1f} ms.")
    w(f"- Provider RSS: {rss_pts[0][1]:.1f} MiB at the first sample, {max(p[1] for p in rss_pts):.1f} MiB at most, "
      f"{rss_pts[-1][1]:.1f} MiB at the last (after the load stopped); open fds {rss_pts[0][2]['fds']} → "
      f"{rss_pts[-1][2]['fds']}; threads {rss_pts[0][2]['threads']} → {rss_pts[-1][2]['threads']}.\n")
    w(f"![RSS and p99 over time](soak/{svg_name})\n")
    w("## Per window\n")
    w("| window | end (m:s) | RSS MiB (last / max) | fds | p50 ms | p99 ms | p99.9 ms | max ms | achieved calls/s | errors | delayed | load1 |")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        e = int(r["end"])
        w(f"| {r['w']} | {e // 60}:{e % 60:02d} | {r['rss_last']:.1f} / {r['rss_max']:.1f} | {r['fds']} | {r['p50']:.3f} | "
          f"**{r['p99']:.3f}** | {r['p999']:.3f} | {r['max']:.1f} | {r['rate']:,.0f} | {r['errors']} | {r['delayed']} | {r['load']} |")
    w("")
    w("`delayed`: calls that waited for an in-flight slot (none expected with `--in-flight 100000`). "
      "Raw data: `results/soak/` (windows.csv, rss.csv, saturation.json, params.json, env.json, commands.txt, "
      "the first window's loadgen output).")
    open(md, "w").write("\n".join(L) + "\n")
    print(f"wrote {md} and {os.path.join(raw, svg_name)}")


if __name__ == "__main__":
    main()
