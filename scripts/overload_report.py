#!/usr/bin/env python3
"""Turns the raw data of scripts/overload.sh into results/OVERLOAD.md:
twice the load a provider can serve, the concurrency limiter on and off,
over several rounds: medians (min–max), latency only from runs that held
their open-loop rate, the backlog's growth and the RSS's as slopes.

    python3 scripts/overload_report.py results/overload results/OVERLOAD.md

Reads <dir>/env.json, params.json, raw/<label>.json (loadgen), rss.csv,
loadavg.txt, commands.txt, uptime-*.txt, total_seconds.txt. Standard
library only.
"""

import csv
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchstats import generated_by, held_cell, load_averages, run_facts, slope, spread  # noqa: E402

MODES = ["auto", "off"]


def backlog_slope(run):
    """Calls due in the window that were neither answered nor refused by
    its end, per second of it: how fast the backlog grows (0 when the
    server keeps up or refuses the surplus)."""
    due = run["target_qps"] * run["duration_s"]
    return max(0.0, due - run["completed"]) / run["duration_s"]


def main(out, md):
    env = json.load(open(f"{out}/env.json"))
    p = json.load(open(f"{out}/params.json"))
    load = lambda label: json.load(open(f"{out}/raw/{label}.json"))
    sat = load("saturation")
    S = sat["ok_qps"]
    rounds = range(1, p["rounds"] + 1)
    rss = {}
    for r in csv.DictReader(open(f"{out}/rss.csv")):
        rss.setdefault(r["run"], []).append((int(r["t_s"]), int(r["rss_kib"])))
    ms = lambda us: f"{us / 1000:.2f} ms"
    n = lambda x: f"{x:,.0f}"
    pct = lambda x: f"{x:.0%}"
    mib = lambda k: f"{k / 1024:.1f}"
    runs = {m: {"half": [load(f"{m}-half-{r}") for r in rounds], "over": [load(f"{m}-over-{r}") for r in rounds]}
            for m in MODES}
    refused = lambda r: r["errors_by_code"].get("overloaded", 0)
    pin = env.get("pinning", {})

    L = []
    w = L.append
    w("# Overload: twice the load a provider can serve\n")
    w(f"{generated_by('scripts/overload.sh', env)}; provider on core {pin.get('server_cpu', '?')}, "
      f"loadgen on core {pin.get('client_cpu', '?')}, over 127.0.0.1. {run_facts(out)}\n")
    w(f"Server: `echo-provider --handler-sleep-us {p['sleep_us']}`: a blocking Echo on {p['workers']} worker threads, "
      f"each call waiting {p['sleep_us']} µs, one reactor. Client: loadgen's engine, open loop, {p['connections']} "
      f"connections, at most {p['in_flight']} calls outstanding, latency from each call's intended send time. "
      f"Saturation: closed loop for {p['sat_duration_s']} s, limiter off: **{n(S)} successful calls/s**. Then "
      f"{p['rounds']} rounds, each with a fresh provider per limiter setting: {p['half_duration_s']} s at 50% "
      f"({n(p['half_qps'])}/s), then {p['duration_s']} s at 200% ({n(p['over_qps'])}/s). Medians over the rounds, "
      "min–max in brackets. A latency figure comes only from runs that held their rate (achieved within 1%, "
      "nothing unsent that was due over 1 ms before the end, send lag p99 ≤ 1 ms); otherwise the cell names the "
      "rule that failed.\n")
    w("## Result\n")
    w("| | limiter `auto` | limiter `off` | goal |")
    w("|---|---:|---:|---|")

    def line(name, f, goal=""):
        w(f"| {name} | {f(runs['auto'])} | {f(runs['off'])} | {goal} |")

    def mode_line(name, f, goal=""):
        w(f"| {name} | {f('auto')} | {f('off')} | {goal} |")

    line("50% load: successful calls/s", lambda m: spread([r["ok_qps"] for r in m["half"]], n))
    line("50% load: refused `Overloaded` (counted against the limiter)",
         lambda m: f"{sum(refused(r) for r in m['half']):,} of {sum(r['sent'] for r in m['half']):,}", "0")
    line("50% load: held its rate", lambda m: f"{sum(r['target_held'] for r in m['half'])}/{len(m['half'])}")
    line("50% load: p99 of successful calls", lambda m: held_cell(m["half"], lambda r: r["ok_latency_us"]["p99"], ms))
    line("200% load: calls sent/s", lambda m: spread([r["achieved_qps"] for r in m["over"]], n))
    line("200% load: **goodput** (successful calls/s, share of saturation)",
         lambda m: spread([r["ok_qps"] for r in m["over"]], n) + " (" +
         spread([r["ok_qps"] / S for r in m["over"]], pct) + ")", "≥ 90% of saturation")
    line("200% load: refused `Overloaded`", lambda m: spread([refused(r) for r in m["over"]], n))
    line("200% load: other errors", lambda m: ", ".join(
        f"{k} {sum(r['errors_by_code'].get(k, 0) for r in m['over']):,}"
        for k in sorted({k for r in m["over"] for k in r["errors_by_code"] if k != "overloaded"})) or "0")
    line("200% load: held its rate", lambda m: f"{sum(r['target_held'] for r in m['over'])}/{len(m['over'])}")
    line("200% load: **backlog growth** (due calls neither answered nor refused, per second)",
         lambda m: spread([backlog_slope(r) for r in m["over"]], lambda x: f"{x:,.0f} calls/s"), "≈ 0")
    line("200% load: p50 / p99 of successful calls",
         lambda m: held_cell(m["over"], lambda r: r["ok_latency_us"]["p50"], ms) + " / " +
         held_cell(m["over"], lambda r: r["ok_latency_us"]["p99"], ms))

    def tail_ratio(m):
        vals = [o["ok_latency_us"]["p99"] / max(h["ok_latency_us"]["p99"], 1)
                for h, o in zip(m["half"], m["over"]) if h["target_held"] and o["target_held"]]
        return spread(vals, lambda x: f"{x:.1f}×") if vals else "not held in any round"

    line("200% load: **p99 of successful calls ÷ p99 at 50%** (rounds where both held)", tail_ratio, "≤ 5×")

    def rss_cells(m):
        out = []
        for r in rounds:
            pts = rss.get(f"{m}-{r}", [])
            if len(pts) >= 3:
                out.append((pts[0][1], pts[-1][1], max(k for _, k in pts), slope([t for t, _ in pts], [k for _, k in pts])))
        return out

    rss_by_mode = {m: rss_cells(m) for m in MODES}
    mode_line("200% load: provider RSS first / last / max (MiB, medians)", lambda k: " / ".join(
        mib(statistics.median(x[i] for x in rss_by_mode[k])) for i in range(3)) if rss_by_mode[k] else "n/a", "flat")
    mode_line("200% load: RSS slope, KiB/s (95% CI), per round", lambda k: "; ".join(
        f"{s[0]:+.1f} ({s[1]:+.1f} to {s[2]:+.1f})" for *_, s in rss_by_mode[k] if s) or "n/a", "CI includes 0")
    w("")
    for mode in MODES:
        m = runs[mode]
        good = min(r["ok_qps"] for r in m["over"]) >= 0.9 * S
        held_pairs = [(h, o) for h, o in zip(m["half"], m["over"]) if h["target_held"] and o["target_held"]]
        tail = bool(held_pairs) and max(o["ok_latency_us"]["p99"] / max(h["ok_latency_us"]["p99"], 1)
                                        for h, o in held_pairs) <= 5
        flat = all(s is None or s[1] <= 0 <= s[2] or s[2] <= 1.0 for *_, s in rss_by_mode[mode])
        refusals_at_half = sum(refused(r) for r in m["half"])
        verdict = "met" if good and tail and flat and not refusals_at_half else "**not met**"
        w(f"- limiter `{mode}`: goal {verdict} (goodput ≥ 90% in the worst round: {'yes' if good else 'no'}; p99 ≤ 5× "
          f"in every held round: {'yes' if tail else 'no (or not held)'}; RSS flat (slope's CI includes 0, or "
          f"under 1 KiB/s) every round: {'yes' if flat else 'no'}; no refusal at 50%: "
          f"{'yes' if not refusals_at_half else f'no, {refusals_at_half:,}'}).")
    w("")
    w("Goodput counts successful replies to calls intended inside the measured window, per second of it. With the "
      "limiter on, the provider answers the surplus `Overloaded` at once, so the calls it admits wait behind a "
      "handful of others and the backlog does not grow. With it off, every call queues for the workers until the "
      "client's in-flight cap is full; after that calls wait in the client, their latency from the intended send "
      "time grows for as long as the run lasts, and the run cannot hold its rate: the backlog slope is the figure "
      "that does not depend on the run's length.\n")
    w(load_averages(out))
    w("Raw data: `results/overload/` (loadgen's JSON and text report per run, rss.csv, the provider configs, "
      "commands.txt, env.json, params.json).")
    open(md, "w").write("\n".join(L) + "\n")
    print(f"wrote {md}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: overload_report.py RESULTS_DIR OUTPUT.md")
    main(*sys.argv[1:])
