#!/usr/bin/env python3
"""Writes results/REGISTRY.md and registry.svg from the runs of scripts/registry_scale.sh.

    registry_report.py results/registry/runs.jsonl results/REGISTRY.md results/registry

Standard library only. Every figure comes from runs.jsonl (one JSON object
per run of target/release/regscale, see loadgen/src/bin/regscale/), grouped
by variant (the code measured: "before" and "after" the consumer's node
cache) and size (N providers x M consumers). The capacity model at the end
is computed from the same runs; its inputs are named next to each estimate.
"""

import json
import math
import os
import statistics
import sys

VARIANT_ORDER = ["before", "after"]
# Bytes one child name costs in a getChildren answer (4-byte length + an
# "a.b.c.d:port" name of ~17 characters): an assumption, not measured.
NAME_BYTES = 21
# JVM heap one ZooKeeper server may use for sessions and watches in the model.
MODEL_HEAP = 8 << 30


def load(path):
    runs = [json.loads(line) for line in open(path) if line.strip()]
    ok = [r for r in runs if not r.get("failed")]
    failed = [r for r in runs if r.get("failed")]
    return ok, failed


def variants(runs):
    seen = {r["variant"] for r in runs}
    return [v for v in VARIANT_ORDER if v in seen] + sorted(seen - set(VARIANT_ORDER))


def sizes(runs):
    return sorted({(r["providers"], r["consumers"]) for r in runs}, key=lambda s: (s[1], s[0]))


def of(runs, variant, size):
    return [r for r in runs if r["variant"] == variant and (r["providers"], r["consumers"]) == size]


def events(run, kind):
    return [e for e in run["events"] if e["kind"] == kind]


def fmt(x, digits=0):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def ms(x):
    if x is None:
        return "–"
    return f"{x / 1000:,.1f} s" if x >= 10_000 else f"{x:,.0f} ms"


def event_summary(run, kind):
    """Over a run's events of one kind: median p50, worst p99 and max, mean load."""
    evs = events(run, kind)
    if not evs:
        return None
    conv = [e["convergence"] for e in evs]
    idle = run["idle"]
    # What the change itself cost: the event's load less what the same
    # sessions cost idle (pings) over the same window.
    net_requests = [max(0.0, e["load"]["requests"] - idle["requests_per_s"] * e["load"]["seconds"]) for e in evs]
    net_cpu = [max(0.0, e["load"]["cpu_seconds"] - idle["cpu_cores"] * e["load"]["seconds"]) for e in evs]
    return {
        "p50": statistics.median(c["p50_ms"] or 0 for c in conv),
        "p99": max(c["p99_ms"] or 0 for c in conv),
        "max": max(c["max_ms"] or 0 for c in conv),
        "missed": sum(c["missed"] for c in conv),
        "requests": statistics.fmean(e["load"]["requests"] for e in evs),
        "net_requests": statistics.fmean(net_requests),
        "net_cpu_s": statistics.fmean(net_cpu),
        "cpu_s": statistics.fmean(e["load"]["cpu_seconds"] for e in evs),
        "cores": statistics.fmean(e["load"]["cpu_cores"] for e in evs),
        "rate": statistics.fmean(e["load"]["requests_per_s"] for e in evs),
        "outstanding": max(e["load"]["max_outstanding"] for e in evs),
        "watches": max(e["load"]["watches"] for e in evs),
        "action": statistics.median(e["action_ms"] for e in evs),
    }


def saturated_rate(runs):
    """The highest request rate the ensemble served in any event: its capacity on this box."""
    rates = [e["load"]["requests_per_s"] for r in runs for e in r["events"]]
    return max(rates) if rates else 0.0


def cpu_per_request(runs, variant):
    """Ensemble CPU per request over every event, pings included (they are requests too)."""
    evs = [e for r in runs if r["variant"] == variant for e in r["events"]]
    req = sum(e["load"]["requests"] for e in evs)
    return sum(e["load"]["cpu_seconds"] for e in evs) / req if req else float("nan")


def slope(xs, ys):
    if len(xs) < 2:
        return float("nan"), float("nan")
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else float("nan")
    return my - b * mx, b


def tables(runs, w):
    for variant in variants(runs):
        vr = [r for r in runs if r["variant"] == variant]
        commits = sorted({f'{r["commit"]}{" (dirty)" if r.get("dirty") else ""}' for r in vr})
        w(f"\n## Variant `{variant}` (commit {', '.join(commits)})\n")
        w("\nOne row per run. Leave/join: over the run's events, median p50, worst p99 and max of the "
          "per-consumer time from the provider's first step (deregister, or start of registration) until "
          "that consumer's list was right; requests, CPU and peak outstanding of the ensemble during one event "
          "(mean over events); \"of which the change\": the event's requests less the same sessions' idle rate (pings) "
          "over the event's window (a lower bound: a client busy re-reading skips its pings). Register: all N providers, 16 at a time.\n\n")
        w("| N | M | run | register N | open M | leave p50 | leave p99 | leave max | join p99 | missed "
          "| requests/event | of which the change | ensemble CPU-s/event | cores | req/s | peak outstanding | watches |\n")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
        for size in sizes(vr):
            for r in sorted(of(runs, variant, size), key=lambda r: r["rep"]):
                lv, jn = event_summary(r, "leave"), event_summary(r, "join")
                w(f'| {size[0]} | {size[1]} | {r["rep"]} | {fmt(r["register"]["seconds"], 1)} s '
                  f'| {fmt(r["consumers_open"]["seconds"], 1)} s | {ms(lv["p50"])} | {ms(lv["p99"])} '
                  f'| {ms(lv["max"])} | {ms(jn["p99"])} | {lv["missed"] + jn["missed"]} '
                  f'| {fmt(lv["requests"])} | {fmt(lv["net_requests"])} | {fmt(lv["cpu_s"], 2)} | {fmt(lv["cores"], 2)} | {fmt(lv["rate"])} '
                  f'| {lv["outstanding"]} | {lv["watches"]} |\n')
        w("\nIdle sessions, memory and the rolling restart of all N providers (each: deregister, close "
          "the session, register again with a new one; no pause between providers) while every consumer's "
          "list is swept for the shortest one:\n\n")
        w("| N | M | run | idle cores | idle req/s | provider KiB/session | consumer KiB/session "
          "| ensemble heap B/session | restart all N | per provider | final p99 | ensemble CPU-s | requests "
          "| shortest list | empty lists seen |\n")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
        for size in sizes(vr):
            for r in sorted(of(runs, variant, size), key=lambda r: r["rep"]):
                mem, idle, roll = r["memory"], r["idle"], r.get("rolling_restart") or {}
                load_ = roll.get("load", {})
                w(f'| {size[0]} | {size[1]} | {r["rep"]} | {fmt(idle["cpu_cores"], 2)} | {fmt(idle["requests_per_s"])} '
                  f'| {fmt(mem["provider_bytes_per_session"] / 1024)} | {fmt(mem["consumer_bytes_per_session"] / 1024)} '
                  f'| {fmt(mem["ensemble_bytes_per_session"])} | {fmt(roll.get("seconds"), 1)} s '
                  f'| {ms(roll.get("per_provider_ms"))} | {ms((roll.get("final_convergence") or {}).get("p99_ms"))} '
                  f'| {fmt(load_.get("cpu_seconds"), 1)} | {fmt(load_.get("requests"))} '
                  f'| {roll.get("min_list_len", "–")} of {size[0]} | {roll.get("empty_seen", "–")} '
                  f'({roll.get("sweeps", "–")} sweeps) |\n')


def comparison(runs, w):
    vs = variants(runs)
    if not {"before", "after"} <= set(vs):
        return
    w("\n## Before and after the node cache\n\n")
    w("Sizes measured with both. Medians over runs of each run's figures below. \"Of which the change\" "
      "subtracts the idle ping rate over the event's window; clients that send requests skip their pings, "
      "so it is a lower bound, and the ratio compares those lower bounds.\n\n")
    w("| N | M | requests/event before | after | of which the change before | after | ratio | leave p99 before | after | ensemble CPU-s/event before "
      "| after | rolling restart before | after |\n")
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    for size in sizes(runs):
        b, a = of(runs, "before", size), of(runs, "after", size)
        if not b or not a:
            continue

        def med(rs, key, kind="leave"):
            return statistics.median(event_summary(r, kind)[key] for r in rs)

        def roll(rs):
            vals = [r["rolling_restart"]["seconds"] for r in rs if r.get("rolling_restart")]
            return statistics.median(vals) if vals else None

        rb, ra = med(b, "net_requests"), med(a, "net_requests")
        w(f"| {size[0]} | {size[1]} | {fmt(med(b, 'requests'))} | {fmt(med(a, 'requests'))} | {fmt(rb)} | {fmt(ra)} | {fmt(rb / ra if ra else None, 1)}× "
          f"| {ms(med(b, 'p99'))} | {ms(med(a, 'p99'))} | {fmt(med(b, 'cpu_s'), 2)} | {fmt(med(a, 'cpu_s'), 2)} "
          f"| {fmt(roll(b), 1)} s | {fmt(roll(a), 1)} s |\n")


def goals(runs, w):
    best = variants(runs)[-1]
    vr = [r for r in runs if r["variant"] == best]
    cap = saturated_rate(runs)
    w(f"\n## The goals, for variant `{best}`\n\n")
    w(f"Ensemble capacity on this box is taken as the highest request rate it served in any event of any "
      f"run: {fmt(cap)} requests/s (the `before` herds saturate it). \"Below half capacity\" means an "
      f"event's request rate under {fmt(cap / 2)}/s.\n\n")
    big_m = max((r["consumers"] for r in vr), default=0)
    at_big = [r for r in vr if r["consumers"] == big_m]
    for r in sorted(at_big, key=lambda r: (r["providers"], r["rep"])):
        lv = event_summary(r, "leave")
        verdict = "met" if lv["p99"] <= 1000 and lv["missed"] == 0 else f"missed by {ms(lv['p99'] - 1000)}"
        idle = r["idle"]
        w(f'- N={r["providers"]}, M={big_m}, run {r["rep"]}: leave p99 {ms(lv["p99"])} (goal 1 s: {verdict}; '
          f'the provider\'s deregister and session close took {ms(lv["action"])}); '
          f'ensemble {fmt(lv["rate"])} req/s = {fmt(100 * lv["rate"] / cap if cap else None)} % of capacity, '
          f'{fmt(lv["cores"], 2)} cores of 2; idle before the event {fmt(idle["requests_per_s"])} req/s '
          f'(pings, {fmt(100 * idle["requests_per_s"] / cap if cap else None)} %), {fmt(idle["cpu_cores"], 2)} cores.\n')
    rolls = [r for r in vr if r["providers"] >= 100 and r["consumers"] == big_m and r.get("rolling_restart")]
    for r in rolls:
        rr = r["rolling_restart"]
        w(f'- Rolling restart of {r["providers"]} providers behind {big_m} consumers, run {r["rep"]}: '
          f'{fmt(rr["seconds"], 1)} s, shortest list any consumer returned {rr["min_list_len"]}, '
          f'empty lists seen {rr["empty_seen"]} (goal: none).\n')


def capacity(runs, w):
    best = variants(runs)[-1]
    vr = [r for r in runs if r["variant"] == best]
    if not vr:
        return
    cap = saturated_rate(runs)
    c_req = cpu_per_request(runs, best)
    sessions = [r["providers"] + r["consumers"] for r in vr]
    a, b = slope(sessions, [r["idle"]["cpu_cores"] for r in vr])
    _, ping = slope(sessions, [r["idle"]["requests_per_s"] for r in vr])
    heap = statistics.median(r["memory"]["ensemble_bytes_per_session"] for r in vr if r["consumers"] >= 1000)
    prov = statistics.median(r["memory"]["provider_bytes_per_session"] for r in vr)
    cons = statistics.median(r["memory"]["consumer_bytes_per_session"] for r in vr)
    largest = max(vr, key=lambda r: (r["consumers"] * r["providers"], r["consumers"]))
    n0, m0 = largest["providers"], largest["consumers"]
    w(f"\n## Capacity model (computed from the `{best}` runs)\n\n")
    w("Inputs, measured above:\n\n")
    w(f"- ensemble CPU per request during events: {c_req * 1e6:,.1f} µs (all events' CPU-s ÷ requests)\n")
    w(f"- ensemble capacity on this box: {fmt(cap)} requests/s (highest event rate seen)\n")
    w(f"- idle cost: {fmt(a, 2)} cores with no session + {fmt(b * 1e6, 1)} µcores per session; "
      f"{ping:.3f} requests/s per session (pings; session timeout {vr[0]['session_timeout_ms']} ms)\n")
    w(f"- ensemble heap per session: {fmt(heap)} B summed over the 3 servers (live heap after a full GC, "
      f"jcmd); client memory per session: provider {fmt(prov / 1024)} KiB, consumer {fmt(cons / 1024)} KiB "
      f"(a thread, a runtime and a socket each)\n")
    w(f"- per change, after the node cache: each consumer lists the service once (+ reads the newcomer on a "
      f"join): ≈ M requests per leave, 2M per join; each listing carries N names (≈ {NAME_BYTES} B each, "
      f"assumed)\n\n")
    w("Estimates (same ensemble hardware as this box unless said; a real 3-server ensemble on dedicated "
      "cores serves reads on all three servers, so scale the rate by its cores ÷ the cores used here):\n\n")
    w("| fleet | sessions | idle ensemble cores | heap | one leave: requests | its convergence ≥ | "
      "listing bytes per change | rolling restart: requests | ensemble busy |\n")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
    for label, k in [("this box's largest", 1), ("10×", 10), ("100×", 100)]:
        n, m = n0 * k, m0 * k
        s = n + m
        leave = m
        rolling = n * 3 * m
        w(f"| {label}: N={fmt(n)}, M={fmt(m)} | {fmt(s)} | {fmt(a + b * s, 2)} | {fmt(s * heap / 2**20)} MiB "
          f"| {fmt(leave)} | {fmt(leave / cap, 2)} s | {fmt(m * n * NAME_BYTES / 2**20)} MiB "
          f"| {fmt(rolling)} | {fmt(rolling / cap / 60, 1)} min |\n")
    max_sessions_mem = MODEL_HEAP / (heap / 3) if heap else float("nan")
    max_consumers_1s = cap / 2
    w(f"\nOne ensemble carries, by memory, about {fmt(max_sessions_mem)} sessions per {MODEL_HEAP >> 30} GiB "
      f"server heap; by idle pings it stays under half of this box's 2 cores up to about "
      f"{fmt((1 - a) / b if b > 0 else None)} sessions; and for a departure to reach every consumer within 1 s "
      f"at half capacity a service can have about {fmt(max_consumers_1s)} consumers (M ≤ capacity/2 × 1 s). "
      f"Rolling restarts cost N × 3M requests (leave, join listing, join read): quadratic in the fleet.\n")


GRID = [(10, 100), (10, 1000), (100, 1000), (10, 5000), (100, 5000), (10, 10000), (100, 10000),
        (1000, 1000), (1000, 10000)]
WHY_TRIMMED = {
    "before": "without the node cache one change costs M × (1 + N) requests: at N=100, M=10,000 a million "
              "per event and a rolling restart of 100 such storms, far past the time window (see the "
              "N=100, M=5,000 row); at N=1,000 ten times more",
    "after": "the measuring window (the box is shared; runs had to end by 11:10 UTC): the N=100, M=10,000 "
             "rolling restart alone took the time of several smaller runs (table below), so the second "
             "run at that size and the smaller sizes were left out; N=1,000 ran without its rolling "
             "restart (1,000 restarts); N=1,000 × M=10,000 was not run (11,000 sessions and a listing "
             "of 1,000 names to each of 10,000 consumers per change)",
}


def trimmed(runs, w):
    """The sizes of the issue's grid a variant did not measure twice, and why."""
    lines = []
    for variant in variants(runs):
        missing = [f"N={n}, M={m}" + (f" ({len(of(runs, variant, (n, m)))} run)" if of(runs, variant, (n, m)) else "")
                   for n, m in GRID if len(of(runs, variant, (n, m))) < 2]
        if missing:
            lines.append(f"- `{variant}`: {'; '.join(missing)}. Why: {WHY_TRIMMED.get(variant, 'not run')}.\n")
    if lines:
        w("\n## Trimmed from the grid\n\n")
        for line in lines:
            w(line)


def svg(runs, path):
    """Three panels against M (log): leave p99, requests and ensemble CPU per leave (log), one line per variant and N."""
    width, height, left, top, pw, ph, gap = 1320, 420, 70, 40, 330, 300, 110
    colors = {"before": ["#d62728", "#ff9896", "#8c564b"], "after": ["#1f77b4", "#aec7e8", "#2ca02c"]}
    dash = {10: "", 100: "6,3", 1000: "2,2"}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">', '<rect width="100%" height="100%" fill="white"/>']
    ms_ = [r["consumers"] for r in runs]
    xlo, xhi = math.log10(min(ms_)), math.log10(max(ms_))
    xhi = xhi if xhi > xlo else xlo + 1

    def panel(x0, title, value, unit):
        pts = {}
        for r in runs:
            v = value(r)
            if v and v > 0:
                pts.setdefault((r["variant"], r["providers"]), {}).setdefault(r["consumers"], []).append(v)
        vals = [v for d in pts.values() for vs in d.values() for v in vs] or [1]
        ylo, yhi = math.floor(math.log10(min(vals))), math.ceil(math.log10(max(vals)))
        yhi = yhi if yhi > ylo else ylo + 1
        X = lambda m: x0 + (math.log10(m) - xlo) / (xhi - xlo) * pw
        Y = lambda v: top + ph - (math.log10(v) - ylo) / (yhi - ylo) * ph
        out.append(f'<text x="{x0}" y="{top - 15}" font-weight="bold">{title}</text>')
        out.append(f'<rect x="{x0}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
        for e in range(ylo, yhi + 1):
            out.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{Y(10**e):.1f}" y2="{Y(10**e):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{x0 - 5}" y="{Y(10**e) + 4:.1f}" text-anchor="end">{f"{10**e:,}" if e >= 0 else f"{10**e:g}"}</text>')
        for m in sorted(set(ms_)):
            out.append(f'<text x="{X(m):.1f}" y="{top + ph + 15}" text-anchor="middle">{m:,}</text>')
        out.append(f'<text x="{x0 + pw / 2}" y="{top + ph + 32}" text-anchor="middle">M consumers</text>')
        out.append(f'<text x="{x0 - 50}" y="{top + ph / 2}" transform="rotate(-90 {x0 - 50} {top + ph / 2})" '
                   f'text-anchor="middle">{unit}</text>')
        for (variant, n), d in sorted(pts.items()):
            palette = colors.get(variant, ["#555"])
            color = palette[[10, 100, 1000].index(n) % len(palette)] if n in (10, 100, 1000) else palette[0]
            line = [(X(m), Y(statistics.median(vs))) for m, vs in sorted(d.items())]
            path_ = " ".join(f"{x:.1f},{y:.1f}" for x, y in line)
            out.append(f'<polyline points="{path_}" fill="none" stroke="{color}" stroke-width="2" '
                       f'stroke-dasharray="{dash.get(n, "")}"/>')
            for x, y in line:
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>')
            lx, ly = line[-1]
            out.append(f'<text x="{lx - 5:.1f}" y="{ly + {100: 16}.get(n, -6):.1f}" fill="{color}" text-anchor="end">{variant} N={n}</text>')

    panel(left, "Leave: p99 until every consumer's list is right", lambda r: (event_summary(r, "leave") or {}).get("p99"), "ms")
    panel(left + pw + gap, "Ensemble requests per leave", lambda r: (event_summary(r, "leave") or {}).get("requests"), "requests")
    panel(left + 2 * (pw + gap), "Ensemble CPU per leave (3 JVMs)", lambda r: (event_summary(r, "leave") or {}).get("cpu_s"), "CPU-seconds")
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    runs_path, md_path, raw = sys.argv[1:4]
    runs, failed = load(runs_path)
    svg(runs, os.path.join(raw, "registry.svg"))
    lines = []
    w = lines.append
    w("# The registry at fleet scale\n\n")
    w("Written by `scripts/registry_scale.sh` (via `scripts/registry_report.py`) from "
      "`results/registry/runs.jsonl`; do not edit by hand. Each run: a fresh 3-server ZooKeeper 3.8 "
      "ensemble on loopback (tickTime 1 s, 1 GiB heap each, `mntr` allowed), then "
      "`target/release/regscale -n N -m M --events 2`: N providers, each a real `Registrar` with its own "
      "session and ephemeral node, and M consumers, each a real `ZkDiscover` with its own session and "
      "watch, spread over consumer processes of at most 4,000 (the 20,000 open-file limit; each consumer "
      "holds a socket and its runtime's epoll fds). Every process, the JVMs included, ran under "
      "`nice -n 10` on a 2-core box shared with other work (load average often above 10): figures "
      "are what this box gave, not what a dedicated ensemble gives.\n\n")
    w("Commands: `VARIANT=before GRID=\"...\" REPEATS=2 EVENTS=2 scripts/registry_scale.sh` at the harness "
      "commit (library without the node cache), then `VARIANT=after ...` at the node-cache commit. "
      "Per-run commits and dirty flags are in the tables' headings and in runs.jsonl. Those are the "
      "branch's commits as measured, before it was rebased onto main: `before` ran the library as it was "
      "before the commit \"regscale + scripts/registry_scale.sh ...\" (the harness only), `after` the "
      "library of the commit \"Discovery: a changed provider list reads only the provider nodes not read "
      "before ...\"; the rebase brought in another helper's seed-layout lookup changes, which do not touch "
      "the reads of our layout measured here. N=1000 ran with `ROLLING=0` (a later commit on the same "
      "binary, only the script differs).\n\n")
    w("![leave p99, requests and ensemble CPU per leave against M, per variant and N](registry/registry.svg)\n")
    comparison(runs, w)
    goals(runs, w)
    tables(runs, w)
    capacity(runs, w)
    trimmed(runs, w)
    if failed:
        w("\n## Failed runs\n\n")
        for r in failed:
            w(f'- {r["variant"]} N={r["providers"]} M={r["consumers"]} run {r["rep"]} (commit {r["commit"]}): '
              f'{r.get("reason", "see its log")}\n')
    with open(md_path, "w") as f:
        f.write("".join(lines))


if __name__ == "__main__":
    main()
