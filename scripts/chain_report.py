#!/usr/bin/env python3
"""Turns the raw data of scripts/chain.sh into results/CHAIN.md: the CPU µs a
middle tier adds per page and the latency it adds (p50/p99), from open-loop
runs at one rate that held it, per round, median (min–max).

    python3 scripts/chain_report.py results/chain results/CHAIN.md

Reads <dir>/env.json, params.json, raw/<label>.json (loadgen's reports, with
the CPU time of the backend, the gateway and loadgen itself over each
window), loadavg.txt, commands.txt, uptime-*.txt. Standard library only.
"""

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchstats import generated_by, held_cell, held_failures, load_averages, run_facts, spread  # noqa: E402

VARIANTS = ["async", "pool", "direct"]


def names(p):
    return {
        "async": "through the gateway, async handler (answers later)",
        "pool": f"through the gateway `--blocking`, {p['gateway_workers']} worker threads",
        "direct": "direct: the client calls Login + GetFriendsList itself",
    }


def cpu_per_page(run):
    """{backend, gateway, client, servers, all}: CPU µs per page sent in the window."""
    c = run.get("cpu") or {}
    calls = c.get("calls") or 0
    if not calls:
        return {}
    per = [s * 1e6 / calls for s in c.get("per_server_cpu_s", [])]
    out = {"backend": per[0] if per else None, "gateway": per[1] if len(per) > 1 else None,
           "client": c["client_cpu_s"] * 1e6 / calls}
    out["servers"] = sum(per)
    out["all"] = out["servers"] + out["client"]
    return out


def per_round(runs_a, runs_b, value, held_only=False):
    """value(a) − value(b) for each round both ran (and, if asked, both held)."""
    b = {r["round"]: r for r in runs_b}
    out = []
    for a in runs_a:
        other = b.get(a["round"])
        if other is None or (held_only and not (a["target_held"] and other["target_held"])):
            continue
        va, vb = value(a), value(other)
        if va is not None and vb is not None:
            out.append(va - vb)
    return out


def main(out, md):
    env = json.load(open(f"{out}/env.json"))
    p = json.load(open(f"{out}/params.json"))
    load = lambda label: json.load(open(f"{out}/raw/{label}.json"))
    runs = {}
    for v in VARIANTS:
        runs[v] = []
        for r in range(1, p["rounds"] + 1):
            run = load(f"{v}-{r}")
            run["round"] = r
            runs[v].append(run)
    sat = {v: load(f"sat-{v}") for v in VARIANTS}
    label = names(p)
    n = lambda x: f"{x:,.0f}"
    c1 = lambda x: f"{x:.1f}"
    ms = lambda us: f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"
    signed_us = lambda us: f"{'+' if us >= 0 else '−'}{ms(abs(us))}"
    signed_cpu = lambda x: f"{'+' if x >= 0 else '−'}{abs(x):.1f}"
    pin = env.get("pinning", {})
    L = []
    w = L.append
    w("# A call chain: gateway → backend, async vs blocking pool vs direct\n")
    w(f"{generated_by('scripts/chain.sh', env)}; every process on this machine over 127.0.0.1. {run_facts(out)}\n")
    w(f"**Pinned:** ZooKeeper, the backend and both gateways on core {pin.get('server_cpu', '?')}, the client "
      f"(loadgen) on core {pin.get('client_cpu', '?')}. Setup: one backend `provider` (UserServiceRpc.Login on its "
      "reactor, FriendServiceRpc.GetFriendsList on its worker pool); two `gateway` processes finding it in "
      "ZooKeeper: async (GetUserPage awaits Login and GetFriendsList together on its reactor) and `--blocking` "
      f"(the same handler on {p['gateway_workers']} worker threads, each blocked while its call waits). Each server "
      "has one reactor and one client I/O thread. The client is loadgen through the framework's `Channel`, "
      f"{p['connections']} connections, at most {p['in_flight']:,} calls outstanding. One *page* = one GetUserPage "
      "or, direct, one Login and one GetFriendsList sent together by the client (`--also-call`), counted once "
      "both answered: the same two backend calls per page in every row.\n")
    w(f"Saturation first (closed loop, {p['sat_duration_s']} s each), then {p['rounds']} rounds of the three "
      f"variants interleaved, **open loop at {p['rate']:,} pages/s** ({p['rate_pct']}% of the slowest variant's "
      f"saturation), {p['warmup_s']} s warm-up + {p['duration_s']} s measured each. Latency from each page's "
      "intended send time, printed from runs that held the rate only. CPU per page: each process's utime + "
      "stime over the measured window (`loadgen --cpu-pid`) ÷ the pages sent in it.\n")
    w("## What the middle tier costs\n")
    w("Per round, the gateway variant minus direct (the same round), median (min–max) over the rounds:\n")
    w("| middle tier | CPU µs it adds per page: servers (backend + gateway − backend) | all processes (client "
      "included) | p50 latency it adds | p99 latency it adds |")
    w("|---|---:|---:|---:|---:|")
    for v in ("async", "pool"):
        cpu_servers = per_round(runs[v], runs["direct"], lambda r: cpu_per_page(r).get("servers"))
        cpu_all = per_round(runs[v], runs["direct"], lambda r: cpu_per_page(r).get("all"))
        lat = {}
        for key in ("p50", "p99"):
            d = per_round(runs[v], runs["direct"], lambda r: r["ok_latency_us"][key], held_only=True)
            lat[key] = spread(d, signed_us) if d else "not held (" + ", ".join(sorted(
                {x for r in runs[v] + runs["direct"] for x in held_failures(r)})) + ")"
        w(f"| {label[v]} | {spread(cpu_servers, signed_cpu)} | {spread(cpu_all, signed_cpu)} | {lat['p50']} | "
          f"{lat['p99']} |")
    w("")
    w("## Every variant\n")
    w("| variant | pages/s | held | p50 (held runs) | p99 (held runs) | errors | CPU µs per page: backend | gateway "
      "| client | all |")
    w("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for v in VARIANTS:
        rs = runs[v]
        cpus = [cpu_per_page(r) for r in rs]
        col = lambda k: spread([c.get(k) for c in cpus], c1) if any(c.get(k) is not None for c in cpus) else "—"
        errors = sum(r["errors"] for r in rs)
        w(f"| {label[v]} | {spread([r['ok_qps'] for r in rs], n)} | {sum(r['target_held'] for r in rs)}/{len(rs)} | "
          f"{held_cell(rs, lambda r: r['ok_latency_us']['p50'], ms)} | "
          f"{held_cell(rs, lambda r: r['ok_latency_us']['p99'], ms)} | {errors:,} | {col('backend')} | "
          f"{col('gateway')} | {col('client')} | {col('all')} |")
    w("")
    w("## Saturation (closed loop, one run each, context)\n")
    w("| variant | pages/s | ÷ direct | CPU µs per page, all processes |")
    w("|---|---:|---:|---:|")
    for v in VARIANTS:
        c = cpu_per_page(sat[v]).get("all")
        w(f"| {label[v]} | {n(sat[v]['ok_qps'])} | {sat[v]['ok_qps'] / sat['direct']['ok_qps']:.2f}× | "
          f"{'n/a' if c is None else c1(c)} |")
    w("")
    w("A page through a gateway is more work than the same page done directly: the gateway receives and answers "
      "the upstream call and makes the two backend calls over its own `Channel`, one more RPC hop on the same "
      "server core. The blocking gateway holds a worker thread per page in progress; with "
      f"{p['gateway_workers']} threads it keeps up at this rate, and what it costs shows as CPU (thread wake-ups) "
      "and latency.\n")
    w(load_averages(out))
    w("Raw data: `results/chain/` (loadgen's JSON and text report per run, the server configs, commands.txt, "
      "env.json, params.json, the gateways' start-up output). Commands:\n")
    w("```\n" + open(f"{out}/commands.txt").read().strip() + "\n```")
    open(md, "w").write("\n".join(L) + "\n")
    print(f"wrote {md}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: chain_report.py RESULTS_DIR OUTPUT.md")
    main(*sys.argv[1:])
