#!/usr/bin/env python3
"""Checks fault scenarios and writes their report (scripts/faults.sh runs it).

    faults_report.py check OUT SCENARIO   one scenario's figures and checks
    faults_report.py report OUT FILE      every scenario in OUT as Markdown

A scenario's folder holds what its run recorded: ledger.csv (loadgen
--ledger: each call issued, when it was sent, its outcome and when it came,
how many outcomes it got), handler-<node>.csv (echo-provider
--handler-ledger: the call numbers each provider's handler ran, and when),
events.csv (the faults, heals and restarts, with their times),
registry.csv (the providers registered, polled twice a second),
providers-final.csv (the providers alive at the end, with their pids);
where the scenario has them, conns-<node>.csv (the consumer's established
connections to a provider, counted every 0.1 s) and params.json (what the
scenario runs differently from run.json: deadline, rate, channel options).

The checks every scenario must pass: every call issued has exactly one
outcome; no outcome came later than the deadline plus the margin; no handler
ran twice for one call (the client retries only requests it could not send,
so nothing allows a second run); no call was answered ok without a handler
run or with another call's reply; the registry ends with exactly one node
per live provider, holding that process's pid. Then the scenario's own
(EXPECTATIONS below). Exit status 1 when a check failed.
"""

import csv
import json
import os
import sys
from collections import Counter, defaultdict


def read_rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.reader(f))


class Run:
    """What one scenario recorded, and the figures derived from it."""

    def __init__(self, out, name, params):
        self.name = name
        self.dir = os.path.join(out, name)
        own = os.path.join(self.dir, "params.json")
        self.own_params = json.load(open(own)) if os.path.exists(own) else {}
        params = {**params, **self.own_params}
        self.deadline_ms = params["deadline_ms"]
        self.margin_ms = params["margin_ms"]
        self.session_s = params["session_ms"] / 1000
        rows = read_rows(os.path.join(self.dir, "ledger.csv"))[1:]
        self.calls = [
            {
                "id": int(r[0]),
                "sent": float(r[1]),
                "done": float(r[2]) if r[2] else None,
                "outcome": r[3],
                "outcomes": int(r[4]),
            }
            for r in rows
        ]
        self.by_id = {c["id"]: c for c in self.calls}
        # Handler runs: call number -> [(node, ran_ms)].
        self.runs = defaultdict(list)
        self.runs_per_node = Counter()
        for f in sorted(os.listdir(self.dir)):
            if f.startswith("handler-") and f.endswith(".csv"):
                node = f[len("handler-") : -len(".csv")]
                for number, ran in read_rows(os.path.join(self.dir, f)):
                    self.runs[int(number)].append((node, float(ran)))
                    self.runs_per_node[node] += 1
        # An event's text may hold commas: everything after the time.
        self.events = [(float(r[0]), ",".join(r[1:])) for r in read_rows(os.path.join(self.dir, "events.csv"))]
        self.registry = []
        for row in read_rows(os.path.join(self.dir, "registry.csv")):
            t, listed = float(row[0]), ",".join(row[1:])
            if listed == "error":
                self.registry.append((t, None))
            else:
                self.registry.append((t, dict(p.split("=") for p in listed.split())))
        self.final = {addr: pid for node, addr, pid in read_rows(os.path.join(self.dir, "providers-final.csv"))}
        self.node_of = {addr.split(":")[0]: node for node, addr, _ in read_rows(os.path.join(self.dir, "providers-final.csv"))}
        # The consumer's established connections per provider: node ->
        # [(ms, count)].
        self.conns = {}
        for f in sorted(os.listdir(self.dir)):
            if f.startswith("conns-") and f.endswith(".csv"):
                node = f[len("conns-") : -len(".csv")]
                self.conns[node] = [(float(t), int(n)) for t, n in read_rows(os.path.join(self.dir, f)) if n.strip()]
        # Every sampled thread's cumulative run-queue wait (ns) per sample
        # time (ms): the consumer's, and the delay relays' where there are.
        self.thread_wait = defaultdict(list)
        for f in sorted(os.listdir(self.dir)):
            if f == "consumer-sched.csv" or (f.startswith("relay-") and f.endswith("-sched.csv")):
                for row in read_rows(os.path.join(self.dir, f))[1:]:
                    self.thread_wait[(f, row[1])].append((float(row[0]), int(row[3])))
        # The consumer's I/O threads' cumulative run-queue wait (ns) per
        # sample time (ms), from scripts/schedstat.py.
        self.io_wait = defaultdict(list)
        for row in read_rows(os.path.join(self.dir, "consumer-sched.csv"))[1:]:
            if row[1].startswith("mprpc-client-io"):
                self.io_wait[row[1]].append((float(row[0]), int(row[3])))

    def starved_ms(self, t_from, t_to):
        """The longest any consumer I/O thread sat runnable on a run queue
        (waiting for a CPU) between the samples around t_from and t_to;
        None without samples covering that span."""
        worst = None
        for samples in self.io_wait.values():
            before = [w for t, w in samples if t <= t_from]
            after = [w for t, w in samples if t >= t_to]
            if before and after:
                waited = (after[0] - before[-1]) / 1e6
                worst = waited if worst is None else max(worst, waited)
        return worst

    def late_calls(self):
        """The calls answered later than deadline + margin, each with how
        long the consumer's I/O thread waited for a CPU from the deadline to
        the outcome: (call, lateness past the limit ms, starved ms or None)."""
        limit = self.deadline_ms + self.margin_ms
        late = []
        for c in self.calls:
            if c["done"] is None or self.latency_ms(c) <= limit:
                continue
            excess = self.latency_ms(c) - limit
            late.append((c, excess, self.starved_ms(c["sent"] + self.deadline_ms, c["done"])))
        return late

    # ---------------------------------------------------------------- figures
    def latency_ms(self, c):
        return c["done"] - c["sent"]

    def figures(self):
        calls = self.calls
        answered = [c for c in calls if c["done"] is not None]
        lat = sorted(self.latency_ms(c) for c in answered)
        limit = self.deadline_ms + self.margin_ms
        failed = Counter(c["outcome"] for c in answered if c["outcome"] != "ok")
        ok = sum(1 for c in answered if c["outcome"] == "ok")
        span_s = (calls[-1]["sent"] - calls[0]["sent"]) / 1000 if len(calls) > 1 else 0
        runs = self.runs
        issued_ids = set(self.by_id)
        late = self.late_calls()
        starved = [x for x in late if x[2] is not None and x[2] >= x[1]]
        return {
            "late_starved": len(starved),
            "starved_max_ms": max((x[2] for x in starved), default=0),
            "issued": len(calls),
            "ok": ok,
            "failed": dict(sorted(failed.items())),
            "failed_total": sum(failed.values()),
            "no_outcome": sum(1 for c in calls if c["done"] is None),
            "extra_outcomes": sum(1 for c in calls if c["outcomes"] > 1),
            "late": sum(1 for c in answered if self.latency_ms(c) > limit),
            "max_ms": lat[-1] if lat else 0,
            "p50_ms": pct(lat, 0.50),
            "p99_ms": pct(lat, 0.99),
            "ok_per_s": ok / span_s if span_s else 0,
            "handler_runs": sum(len(v) for k, v in runs.items() if k != 0),
            "runs_per_node": dict(sorted(self.runs_per_node.items())),
            "duplicated": sum(1 for k, v in runs.items() if k != 0 and len(v) > 1),
            "ok_without_run": sum(1 for c in calls if c["outcome"] == "ok" and not runs.get(c["id"])),
            "ran_failed": sum(1 for c in answered if c["outcome"] != "ok" and runs.get(c["id"])),
            "unknown_runs": sum(len(v) for k, v in runs.items() if k != 0 and k not in issued_ids),
            "wrong_reply": failed.get("WrongReply", 0),
        }

    # ---------------------------------------------------------------- timeline
    def event_time(self, prefix):
        for t, text in self.events:
            if text.startswith(prefix):
                return t
        raise KeyError(f"no event '{prefix}' in {self.name}")

    def addr_of(self, node):
        for ip, n in self.node_of.items():
            if n == node:
                return ip
        return None

    def listed(self, node, listing):
        return listing is not None and self.pid_in(node, listing) is not None

    def deregistered(self, node, after):
        """Seconds from event `after` until the registry no longer lists `node`."""
        t0 = self.event_time(after)
        for t, listing in self.registry:
            if t >= t0 and listing is not None and not self.listed(node, listing):
                return (t - t0) / 1000
        return None

    def registered(self, node, after):
        """Seconds from event `after` until the registry lists `node` anew:
        listed where it was not just before the event, or with another pid
        (a restarted process)."""
        t0 = self.event_time(after)
        before = [l for t, l in self.registry if t < t0 and l is not None]
        old_pid = self.pid_in(node, before[-1]) if before else None
        for t, listing in self.registry:
            if t < t0 or listing is None:
                continue
            pid = self.pid_in(node, listing)
            if pid is not None and pid != old_pid:
                return (t - t0) / 1000
        return None

    def pid_in(self, node, listing):
        ip = self.addr_of(node)
        return next((p for a, p in listing.items() if a.split(":")[0] == ip), None)

    def serves(self, node, after):
        """Seconds from event `after` until `node`'s handler first ran a call
        sent after it that was answered ok (calls queued in TCP during a cut
        and delivered at the heal do not count)."""
        t0 = self.event_time(after)
        firsts = [
            ran
            for number, runs in self.runs.items()
            for n, ran in runs
            if n == node
            and self.by_id.get(number, {}).get("sent", 0) >= t0
            and self.by_id[number]["outcome"] == "ok"
        ]
        return (min(firsts) - t0) / 1000 if firsts else None

    def dropped_polls(self, node, after, before):
        """Registry polls between two events that did not list `node`."""
        t0, t1 = self.event_time(after), self.event_time(before)
        return sum(1 for t, l in self.registry if t0 <= t < t1 and l is not None and not self.listed(node, l))

    def share_during(self, node, after, before):
        """Of the calls sent between two events, how many `node`'s handler
        ran (whenever it ran them), as 'n of m (x%)'."""
        t0, t1 = self.event_time(after), self.event_time(before)
        sent = [c["id"] for c in self.calls if t0 <= c["sent"] < t1]
        ran = sum(1 for i in sent if any(n == node for n, _ in self.runs.get(i, ())))
        return f"{ran:,} of {len(sent):,} ({100 * ran / max(1, len(sent)):.0f}%)"

    def failures_for(self, after):
        """Seconds from event `after` until the last failed call issued after
        it was sent (0: none failed)."""
        t0 = self.event_time(after)
        failed = [c["sent"] for c in self.calls if c["sent"] >= t0 and c["outcome"] not in ("ok", "")]
        return (max(failed) - t0) / 1000 if failed else 0.0

    def failures_done_for(self, after):
        """Seconds from event `after` until the last outcome of a failed
        call sent after it (0: none failed)."""
        t0 = self.event_time(after)
        failed = [c["done"] for c in self.calls if c["sent"] >= t0 and c["outcome"] not in ("ok", "")]
        return (max(failed) - t0) / 1000 if failed else 0.0

    def conns_gone(self, node, after):
        """Seconds from event `after` until the consumer first had no
        established connection to `node` (None: it always had one, or
        had none at the event, so nothing is measured)."""
        t0 = self.event_time(after)
        samples = self.conns.get(node, [])
        before = [n for t, n in samples if t <= t0]
        if not before or before[-1] == 0:
            return None
        return next(((t - t0) / 1000 for t, n in samples if t > t0 and n == 0), None)

    def conns_changes(self, node, after):
        """The consumer's established connections to `node` at event `after`
        and at each change after it, as '2 at the cut; 1 at +1.07 s; ...'."""
        t0 = self.event_time(after)
        samples = self.conns.get(node, [])
        before = [n for t, n in samples if t <= t0]
        last = before[-1] if before else None
        text = [f"{last} at the cut"]
        for t, n in samples:
            if t > t0 and n != last:
                text.append(f"{n} at +{(t - t0) / 1000:.2f} s")
                last = n
        return "; ".join(text)

    def waited_ms(self, t_from, t_to):
        """The longest run-queue wait any sampled thread (consumer, relays)
        accumulated between the samples around t_from and t_to (0: none
        covered)."""
        worst = 0.0
        for samples in self.thread_wait.values():
            before = [w for t, w in samples if t <= t_from]
            after = [w for t, w in samples if t >= t_to]
            if before and after:
                worst = max(worst, (after[0] - before[-1]) / 1e6)
        return worst

    def slow_calls(self, over_ms, first_s=2, wait_ms=5):
        """Calls slower than `over_ms`: how many in the first `first_s`
        seconds of the load and after, and how many of them (and of the
        others) spanned a run-queue wait of `wait_ms` or more by a consumer
        or relay thread."""
        t0 = self.event_time("load starts")
        slow = [c for c in self.calls if c["done"] is not None and self.latency_ms(c) > over_ms]
        early = sum(1 for c in slow if c["sent"] - t0 < first_s * 1000)
        rest = [c for c in self.calls if c["done"] is not None and self.latency_ms(c) <= over_ms]
        def starved(calls):
            return sum(1 for c in calls if self.waited_ms(c["sent"], c["done"]) >= wait_ms)
        s_slow, s_rest = starved(slow), starved(rest)
        return (
            f"{len(slow):,} ({early:,} sent in the first {first_s} s of the load, {len(slow) - early:,} after); "
            f"{s_slow:,} of them ({100 * s_slow / max(1, len(slow)):.0f}%) spanned a wait of {wait_ms} ms or more "
            f"for a CPU by a consumer or relay thread, against {s_rest:,} of the {len(rest):,} others "
            f"({100 * s_rest / max(1, len(rest)):.0f}%)"
        )

    def cpu_split(self, first_s=2):
        """CPU time (ms per second) the sampled processes took in the first
        `first_s` seconds of the load and after: the consumer, the relays,
        ZooKeeper's JVM (threads that begin or end between two samples
        count from or to the sample they are in)."""
        t0 = self.event_time("load starts")
        t1 = t0 + first_s * 1000
        groups = {
            "the machine (all processes)": ["machine-sched.csv"],
            "consumer": ["consumer-sched.csv"],
            "relays": [],
            "ZooKeeper": ["zk-sched.csv"],
        }
        for f in sorted(os.listdir(self.dir)):
            if f.startswith("relay-") and f.endswith("-sched.csv"):
                groups["relays"].append(f)
        parts = []
        for label, files in groups.items():
            early = late = 0.0
            end = t0
            for f in files:
                per_thread = defaultdict(list)
                for row in read_rows(os.path.join(self.dir, f))[1:]:
                    per_thread[row[1]].append((float(row[0]), int(row[2])))
                for samples in per_thread.values():
                    for (ta, ca), (tb, cb) in zip(samples, samples[1:]):
                        end = max(end, tb)
                        if tb <= t0:
                            continue
                        if tb <= t1:
                            early += (cb - ca) / 1e6
                        else:
                            late += (cb - ca) / 1e6
            if end > t1:
                parts.append(
                    f"{label} {early / first_s:.0f} ms/s in the first {first_s} s, "
                    f"{late / ((end - t1) / 1000):.0f} ms/s after"
                )
        return "; ".join(parts) or "not sampled"

    def final_registry(self):
        """The last registry listing, or None."""
        for _, listing in reversed(self.registry):
            if listing is not None:
                return listing
        return None


def pct(sorted_values, q):
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# ---------------------------------------------------------------- expectations
# Per scenario: recovery figures (label, how, bound in seconds or None) and
# figure checks (label, predicate on the figures). `S` is the session
# timeout in seconds, `D` the deadline in seconds.
def expectations(run):
    S, D = run.session_s, run.deadline_ms / 1000
    none_fail = ("no call fails", lambda f: f["failed_total"] == 0)
    return {
        "provider-zk-partition": (
            [
                ("p1 dropped from the registry after the cut", lambda: run.deregistered("p1", "cut p1"), S + 2),
                ("p1 registered again after the heal", lambda: run.registered("p1", "heal p1"), 5 + S),
                ("p1 serves again after the heal", lambda: run.serves("p1", "heal p1"), 5 + S),
            ],
            [none_fail],
        ),
        "consumer-zk-partition": (
            [
                ("p3 serves after the consumer's heal", lambda: run.serves("p3", "heal c"), 5 + S),
                ("calls p3 served before the heal (it cannot be seen)", lambda: run.serves_before("p3", "heal c"), None),
            ],
            [("at most 5 calls fail (in flight on p2 as it closes)", lambda f: f["failed_total"] <= 5)],
        ),
        "provider-link-cut": (
            [
                ("failures stop after the cut (last failed call sent)", lambda: run.failures_for("cut c"), 2 * D),
                ("p1 serves again after the heal", lambda: run.serves("p1", "heal c"), 5),
            ],
            [],
        ),
        "provider-link-oneway": (
            [
                ("failures stop after the cut (last failed call sent)", lambda: run.failures_for("cut p1"), 2 * D),
                ("p1 serves again after the heal", lambda: run.serves("p1", "heal p1"), 5),
            ],
            [],
        ),
        "loss-1": ([], [("at least 99% ok", lambda f: f["ok"] >= 0.99 * f["issued"])]),
        "loss-10": ([], [("at least 90% ok", lambda f: f["ok"] >= 0.90 * f["issued"])]),
        "delay-20ms": (
            [],
            [none_fail, ("p50 at least 40 ms", lambda f: f["p50_ms"] >= 40)],
        ),
        "keepalive-ping": keepalive(run, 1.0),
        "keepalive-tcp": keepalive(run, 1.5),
        "keepalive-idle": keepalive(run, 2.5, max_failed=2, serves_s=9),
        "ensemble-leader-isolated": (
            [
                ("p2 registered again after its restart", lambda: run.registered("p2", "restart p2"), 5 + S),
                ("polls not listing p1 while the leader is isolated", lambda: run.dropped_polls("p1", "isolate", "heal"), None),
            ],
            [none_fail],
        ),
    }.get(run.name, ([], []))


def keepalive(run, bound_s, max_failed=None, serves_s=5):
    """The keepalive scenarios' checks: the consumer's connections to p1 end
    within `bound_s` plus the margin of the cut, and so do the failures;
    none waits out its deadline; p1 serves again after the heal."""
    bound = bound_s + run.margin_ms / 1000
    figure_checks = [
        ("no call fails DeadlineExceeded (each failure came from the dead connection, not its deadline)",
         lambda f: f["failed"].get("deadline_exceeded", 0) == 0),
        ("every failure is Unavailable", lambda f: set(f["failed"]) <= {"unavailable"}),
    ]
    if max_failed is not None:
        figure_checks.append((f"at most {max_failed} calls fail", lambda f: f["failed_total"] <= max_failed))
    return (
        [
            ("the consumer's connections to p1 gone after the cut", lambda: run.conns_gone("p1", "cut "), bound),
            ("failures end after the cut (last failed call's outcome)", lambda: run.failures_done_for("cut "), bound),
            ("p1 serves again after the heal", lambda: run.serves("p1", "heal p1"), serves_s),
        ],
        figure_checks,
    )


# Per scenario: figures shown beside the checks, not checked.
def notes(run):
    return {
        "provider-link-cut": [
            ("calls sent during the cut that p1 ran (the client kept choosing it)",
             lambda: run.share_during("p1", "cut c", "heal c")),
        ],
        "provider-link-oneway": [
            ("calls sent during the cut that p1 ran (the client kept choosing it)",
             lambda: run.share_during("p1", "cut p1", "heal p1")),
        ],
        "provider-zk-partition": [
            ("calls sent while p1 was cut off from ZooKeeper that p1 ran",
             lambda: run.share_during("p1", "cut p1", "heal p1")),
        ],
        "delay-20ms": [
            ("the first 10 calls' latencies (connections opened on demand, through the relay)",
             lambda: ", ".join(f"{run.latency_ms(c):.1f}" for c in run.calls[:10] if c["done"]) + " ms"),
            ("calls slower than 50 ms (the two 20 ms legs plus 10 ms)", lambda: run.slow_calls(50)),
            ("CPU taken (all cores; the machine has 2)", lambda: run.cpu_split()),
        ],
        **{
            name: [
                ("the consumer's established connections to p1 at the cut, then as they changed",
                 lambda: run.conns_changes("p1", "cut ")),
                ("calls sent during the cut that p1 ran", lambda: run.share_during("p1", "cut ", "heal p1")),
            ]
            for name in ("keepalive-ping", "keepalive-tcp", "keepalive-idle")
        },
    }.get(run.name, [])


def serves_before(self, node, before):
    """Handler runs on `node` before event `before` (a count, not seconds)."""
    t1 = self.event_time(before)
    return sum(1 for runs in self.runs.values() for n, ran in runs if n == node and ran < t1)


Run.serves_before = serves_before


def evaluate(run):
    """(figures, recovery rows, check rows); a check row is (label, passed, detail)."""
    f = run.figures()
    failed_run = os.path.join(run.dir, "loadgen-failed.txt")
    why = open(failed_run).read().strip().splitlines()[-1:] if os.path.exists(failed_run) else []
    checks = [
        ("the consumer ran its load to the end", not why and f["issued"] > 0, "; ".join(why)),
        ("every call has an outcome", f["no_outcome"] == 0, f"{f['no_outcome']} without"),
        ("no call has two outcomes", f["extra_outcomes"] == 0, f"{f['extra_outcomes']} with more"),
        (
            f"no outcome later than deadline + {run.margin_ms} ms (but while the consumer's I/O thread waited that long for a CPU)",
            f["late"] == f["late_starved"],
            f"{f['late']} late, max {f['max_ms']:.0f} ms"
            + (
                f"; {f['late_starved']} of them while the consumer's I/O thread sat on a run queue "
                f"at least as long as it was late (up to {f['starved_max_ms']:.0f} ms)"
                if f["late_starved"]
                else ""
            ),
        ),
        ("no handler ran twice for one call", f["duplicated"] == 0, f"{f['duplicated']} duplicated"),
        ("no ok without a handler run", f["ok_without_run"] == 0, f"{f['ok_without_run']}"),
        ("no reply to another call", f["wrong_reply"] == 0, f"{f['wrong_reply']}"),
        ("no handler run for a call never issued", f["unknown_runs"] == 0, f"{f['unknown_runs']}"),
    ]
    final = run.final_registry()
    checks.append(
        (
            "registry at the end: one node per live provider, with its pid",
            final == run.final,
            f"registered {fmt_listing(final)}; alive {fmt_listing(run.final)}",
        )
    )
    recovery_specs, figure_checks = expectations(run)
    recovery = []
    for label, how, bound in recovery_specs:
        try:
            value = how()
        except KeyError as e:
            value, label = None, f"{label} ({e})"
        if bound is None:
            # A count that must be zero.
            checks.append((label, value == 0, f"{value}"))
            continue
        passed = value is not None and value <= bound
        recovery.append((label, value, bound))
        checks.append((f"{label} within {bound:g} s", passed, "never" if value is None else f"{value:.1f} s"))
    for label, pred in figure_checks:
        checks.append((label, pred(f), ""))
    return f, recovery, checks


def fmt_listing(listing):
    if listing is None:
        return "none"
    return ", ".join(f"{a} (pid {p})" for a, p in sorted(listing.items())) or "nothing"


def fmt_failed(failed):
    return ", ".join(f"{code} {n}" for code, n in failed.items()) or "0"


def check(out, name):
    params = json.load(open(os.path.join(out, "run.json")))
    run = Run(out, name, params)
    f, recovery, checks = evaluate(run)
    print(
        f"{name}: issued {f['issued']}, ok {f['ok']}, failed {fmt_failed(f['failed'])}, "
        f"no outcome {f['no_outcome']}, late {f['late']}, duplicated {f['duplicated']}, "
        f"max {f['max_ms']:.0f} ms, p99 {f['p99_ms']:.1f} ms, handler runs {f['runs_per_node']}"
    )
    for label, passed, detail in checks:
        print(f"  {'ok  ' if passed else 'FAIL'} {label}{': ' + detail if detail else ''}")
    return all(p for _, p, _ in checks)


def report(out, path):
    params = json.load(open(os.path.join(out, "run.json")))
    names = [n for n in sorted(os.listdir(out)) if os.path.isfile(os.path.join(out, n, "events.csv"))]
    order = [
        "provider-zk-partition",
        "consumer-zk-partition",
        "provider-link-cut",
        "provider-link-oneway",
        "loss-1",
        "loss-10",
        "delay-20ms",
        "ensemble-leader-isolated",
        "keepalive-ping",
        "keepalive-tcp",
        "keepalive-idle",
    ]
    names.sort(key=lambda n: order.index(n) if n in order else len(order))
    results = [(n, Run(out, n, params)) for n in names]
    evaluated = [(n, run, *evaluate(run)) for n, run in results]
    all_passed = all(p for *_, checks in evaluated for _, p, _ in checks)
    L = []
    L.append("# Faults between machines")
    L.append("")
    L.append(
        "Written by `scripts/faults.sh` (do not edit). ZooKeeper, the providers (echo-provider) and the "
        "consumer (loadgen, the framework's `Channel`, open loop) each run in their own network namespace "
        "on a private bridge; links are cut with nftables rules (both ways or one way), lose a random share "
        "of their packets, or pass a user-space relay adding delay (the kernel has no netem). Every call "
        "issued is numbered (`loadgen --ledger`) and gets exactly one recorded outcome; each provider "
        "records the numbers its handler ran (`echo-provider --handler-ledger`); the two are joined per call."
    )
    L.append("")
    dirty = " (dirty: uncommitted changes)" if params["git_dirty"] else ""
    L.append(f"- command: `{params['command']}`")
    L.append(f"- commit: `{params['git_commit']}`{dirty}; {params['date_utc']}")
    L.append(
        f"- machine: {params['nproc']} cores ({params['cpu_model']}), kernel {params['kernel']}, "
        f"{params['rustc']}; load average at the start {params['load']}"
    )
    L.append(
        f"- load: {params['rate']} calls/s open loop, 64-byte Echo, 2 connections per provider; "
        f"deadline {params['deadline_ms']} ms per call; **margin {params['margin_ms']} ms** "
        f"(an outcome later than deadline + margin counts as late, and fails its check unless the "
        f"consumer's I/O thread was waiting for a CPU at least that long meanwhile: the machine's doing, "
        f"recorded from /proc/PID/task/TID/schedstat by scripts/schedstat.py); ZooKeeper session timeout "
        f"{params['session_ms']} ms (providers and consumer), tickTime 500 ms"
    )
    L.append(f"- all checks passed: **{'yes' if all_passed else 'no'}**")
    for n, run, f, recovery, checks in evaluated:
        for label, passed, detail in checks:
            if not passed:
                L.append(f"  - FAIL {n}: {label}{' — ' + detail if detail else ''}")
    L.append("")
    L.append(
        "| scenario | calls issued | ok | failed by code | no outcome | late | duplicated | ran, failed | "
        "max latency | p99 | ok/s | time to recover | checks |"
    )
    L.append("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for n, run, f, recovery, checks in evaluated:
        rec = "; ".join(
            f"{label.split(' after')[0]}: {'never' if v is None else f'{v:.1f} s'}" for label, v, _ in recovery[:2]
        ) or "—"
        passed = sum(1 for _, p, _ in checks if p)
        late = f"{f['late']}" + (f" ({f['late_starved']} starved)" if f["late_starved"] else "")
        L.append(
            f"| [{n}](#{n}) | {f['issued']:,} | {f['ok']:,} | {fmt_failed(f['failed'])} | {f['no_outcome']} | "
            f"{late} | {f['duplicated']} | {f['ran_failed']} | {f['max_ms']:.0f} ms | {f['p99_ms']:.1f} ms | "
            f"{f['ok_per_s']:.0f} | {rec} | {passed}/{len(checks)}{'' if passed == len(checks) else ' FAIL'} |"
        )
    L.append("")
    L.append(
        "*ran, failed*: calls whose outcome was a failure although a provider's handler ran them (the "
        "ambiguous outcome every RPC system has: the request arrived, the reply did not arrive in time). "
        "*late (starved)*: outcomes past deadline + margin while the consumer's I/O thread sat runnable on a "
        "run queue, waiting for a CPU, at least as long as they were late (the poll timeout had expired; the "
        "thread was not run). *duplicated*: calls whose handler ran more than once. *time to recover*: the scenario's own "
        "recovery figures, in full below."
    )
    for n, run, f, recovery, checks in evaluated:
        L.append("")
        L.append(f"## {n}")
        L.append("")
        L.append(open(os.path.join(run.dir, "title.txt")).read().strip() + ".")
        L.append("")
        L.append("**Expected:** " + open(os.path.join(run.dir, "expected.txt")).read().strip())
        L.append("")
        if run.own_params:
            L.append(
                "Run with its own settings: "
                + "; ".join(f"{k.replace('_', ' ')} {v}" for k, v in run.own_params.items())
                + "."
            )
            L.append("")
        t0 = run.events[0][0] if run.events else 0
        L.append(
            "Timeline (s from the first event): "
            + "; ".join(f"{(t - t0) / 1000:.1f} {text}" for t, text in run.events)
        )
        L.append("")
        L.append(
            f"Calls: {f['issued']:,} issued, {f['ok']:,} ok, failed {fmt_failed(f['failed'])}; p50 "
            f"{f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.1f} ms, max {f['max_ms']:.0f} ms; handler runs per "
            f"provider {f['runs_per_node']} ({f['handler_runs']:,} in all, {f['ran_failed']} for calls that "
            f"failed)."
        )
        for label, how in notes(run):
            try:
                L.append(f"- {label}: {how()}")
            except KeyError as e:
                L.append(f"- {label}: {e}")
        L.append("")
        L.append("| check | result |")
        L.append("|---|---|")
        for label, passed, detail in checks:
            L.append(f"| {label} | {'ok' if passed else '**FAIL**'}{' — ' + detail if detail else ''} |")
    L.append("")
    L.append(
        "Raw data per scenario (ledgers, handler runs, events, registry polls, loadgen output) in "
        "`results/faults/<scenario>/` when run in full."
    )
    with open(path, "w") as fh:
        fh.write("\n".join(L) + "\n")
    print(f"wrote {path}; all checks passed: {'yes' if all_passed else 'no'}")
    return all_passed


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "check":
        sys.exit(0 if check(sys.argv[2], sys.argv[3]) else 1)
    if len(sys.argv) == 4 and sys.argv[1] == "report":
        sys.exit(0 if report(sys.argv[2], sys.argv[3]) else 1)
    sys.exit(__doc__)
