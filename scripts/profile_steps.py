#!/usr/bin/env python3
"""The client's instructions per call, by step, from callgrind profiles.

Used by scripts/profile.sh (not meant to be run by hand, though it can be):

  profile_steps.py steps OUT.json LABEL=KIND:FILE.callgrind:LOADGEN.json ...
      counts each profile's steps (KIND is `channel` or `engine`) and writes
      them, with the commit and dirty flag from $GIT_COMMIT / $GIT_DIRTY,
      into OUT.json
  profile_steps.py table BEFORE.json AFTER.json
      prints the Markdown tables comparing two such files (BEFORE may be
      missing: then only AFTER is shown)

A step's count is the inclusive instruction count of the functions that
make it up (callgrind_annotate --inclusive=yes; a function inlined into
another counts where callgrind attributes it), divided by the calls the
process sent in all (warm-up included: `sent_total` in loadgen's JSON).
Steps nest as the call path does (on the Channel's driver thread the
completion runs loadgen's callback, which starts the next call), so a row
is an inclusive count less the rows nested in it, and the Channel's
top-level rows add up to its driver thread (see CHANNEL_STEPS; a warning
says when they do not); the whole process includes start-up.
"""

import json
import os
import re
import subprocess
import sys


def inclusive(path):
    """function name (without file and object) -> largest inclusive count."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                         capture_output=True, text=True, check=True).stdout
    rows = {}
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.+?)(?: \[[^]]*\])?$", line)
        if not m:
            continue
        name = m.group(2).split(":", 1)[-1] if ":" in m.group(2) else m.group(2)
        count = int(m.group(1).replace(",", ""))
        rows[name] = max(rows.get(name, 0), count)
    return rows


def total(rows):
    return rows.get("PROGRAM TOTALS", 0) or max(rows.values(), default=0)


def largest(rows, pattern):
    """The largest inclusive count among functions matching `pattern` (0 if none)."""
    return max((v for k, v in rows.items() if re.search(pattern, k)), default=0)


def summed(rows, *patterns):
    return sum(largest(rows, p) for p in patterns)


# The reply parsing of the client (the decoder, or the format's parse_reply
# around it once the driver went through the protocol interface).
DECODE = (r"^(mprpc::(codec|protocol::mprpc)::decoder::Decoder::decode"
          r"|<mprpc::protocol::mprpc::Mprpc as mprpc::protocol::Protocol>::parse_reply)$")

# The client's fast path for a plain successful reply (since the driver
# took those off without the generic parse).
FAST_REPLY = r"^<mprpc::protocol::mprpc::Mprpc as mprpc::protocol::Protocol>::take_ok_reply$"


def decode(r):
    """Reply parsing: the generic parse and the fast path, each a function."""
    return summed(r, DECODE, FAST_REPLY)


# The driver thread's loop (a method before the lean call path, a function after).
THREAD = r"^mprpc::client::driver::(Driver::)?run$"
# The user's callback as the cells run it (with its panic guard, when that
# is a function of its own).
CALLBACK = (r"^(mprpc::client::cells::run_callback"
            r"|<core::option::Option<F> as mprpc::client::cells::Callback>::run)$")
# Completing a call in its cell (the method's path names the module of the
# impl and, since the cells' pool moved out, the type's own module).
DELIVER = (r"^(mprpc::client::cells::(<impl mprpc::client::cells::(pool::)?Cells>|Cells)"
           r"::(deliver|finish)"
           # the driver's delivery (cells, and since then callbacks it holds)
           r"|mprpc::client::driver::deliver)$")
PACK = (r"^(mprpc::(codec|protocol::mprpc)::frame::encode_request\w*"
        r"|<mprpc::protocol::mprpc::Mprpc as mprpc::protocol::Protocol>::pack_request)$")
# `Channel::start`, or for a detached call `start_detached` (the driver
# holds its callback when it starts on the driver's thread).
START = r"^mprpc::client::Channel::(start|start_detached)$"
# loadgen's call through the Channel: `call_detached` (arming a completion
# cell, then `Channel::start`; or `start_detached`) and loadgen's pick of a
# channel.
TARGET_CALL = r"^<loadgen::mprpc_target::MprpcTarget as loadgen::driver::Target>::call$"
ROUTE = r"drain_queue$"


def record(r):
    return summed(r, r"^loadgen::recorder::Recorder::on_done$", r"^loadgen::recorder::Recorder::on_sent$",
                  r"^loadgen::recorder::Recorder::on_done_batch$",
                  r"^loadgen::recorder::Recorder::on_sent_closed$")


def target_call(r):
    """loadgen's `Target::call`, at least `Channel::start` (if it were inlined
    into its caller, its arming would read 0 rather than negative)."""
    return max(largest(r, TARGET_CALL), largest(r, START))


def callback(r):
    """The user's callback: at least the call it starts and the recording."""
    return max(largest(r, CALLBACK), target_call(r) + record(r))


def deliver(r):
    """Completing calls, their callbacks included (at least the callbacks)."""
    return max(largest(r, DELIVER), callback(r))


# (key, label, how to count it from the rows); nested steps are indented
# in the label. Patterns name functions of both the old and the new call
# path, so one table compares them.
#
# The driver thread runs every step: loadgen's callback runs in the cells'
# completion and starts the next call from there, so a function's inclusive
# count holds the steps it calls. Each top-level row below is therefore an
# inclusive count less the rows nested in it, and the top-level rows after
# "the driver thread in all" add up to it (`check` says so, or says what is
# off): the call entry (`Target::call`) less `Channel::start`; the
# callback less the call entry and the recording; the completion less the
# callback; the loop less the queue, the parsing and the completion.
CHANNEL_STEPS = [
    ("whole", "whole loadgen process (start-up and loadgen's own bookkeeping included)", total),
    ("thread", "the driver thread in all (every step below; no start-up)", lambda r: largest(r, THREAD)),
    ("start", "caller: `Channel::start` (checks, providers, packing; on the driver's thread also routing and, for a detached call, holding its callback)",
     lambda r: largest(r, START)),
    ("encode", "  of which packing the request", lambda r: largest(r, PACK)),
    ("arm", "caller: arming a completion cell (none for a detached call on the driver's thread), the rest of `call_detached` and loadgen's channel pick",
     lambda r: target_call(r) - largest(r, START)),
    ("route", "driver: take calls queued by other threads and route them onto connections",
     lambda r: largest(r, ROUTE)),
    ("decode", "driver: parse replies (plain successes by the fast path, the rest by the generic parse)", decode),
    ("cells", "driver: complete calls in their cells, or run the callbacks it holds (the callback excluded)",
     lambda r: deliver(r) - callback(r)),
    ("loop", "driver: the rest of its loop (epoll, socket reads and writes, timers)",
     lambda r: largest(r, THREAD) - largest(r, ROUTE) - decode(r) - deliver(r)),
    ("record", "loadgen: recording each call (send and outcome; in the callback, batched as the engine's)",
     record),
    ("callback", "loadgen: the rest of its callback (clock read, outcome, next call's bookkeeping)",
     lambda r: callback(r) - target_call(r) - record(r)),
]
# The rows that add up to "thread" (the others are the whole process or nested).
CHANNEL_PARTS = ("start", "arm", "route", "decode", "cells", "loop", "record", "callback")


def check(label, per_call):
    """Warnings (to stderr and the report) when a channel profile's rows do
    not partition its driver thread: a negative row, or parts that do not
    add up (a function renamed or inlined so a pattern missed)."""
    bad = [f"{k} = {v}" for k, v in per_call.items() if v < 0]
    parts = sum(per_call[k] for k in CHANNEL_PARTS)
    # Rounding each row to whole instructions leaves at most one per row.
    if abs(parts - per_call["thread"]) > len(CHANNEL_PARTS):
        bad.append(f"parts add up to {parts:,}, the thread to {per_call['thread']:,}")
    return [f"{label}: {b}" for b in bad]


ENGINE_STEPS = [
    ("whole", "whole loadgen process (start-up and loadgen's own bookkeeping included)", total),
    ("encode", "engine: encode a call into a free slot", lambda r: largest(r, r"^loadgen::engine::(.*<impl )?(loadgen::engine::)?Engine<P>>?::enqueue$")),
    ("read", "engine: socket reads", lambda r: largest(r, r"^loadgen::engine::(socket::)?read_available$")),
    ("decode", "engine: decode replies",
     lambda r: largest(r, r"^<loadgen::protocol::mprpc::Mprpc as loadgen::protocol::Protocol>::decode$")),
    ("write", "engine: socket writes", lambda r: largest(r, r"^loadgen::engine::(.*<impl )?(loadgen::engine::)?Engine<P>>?::flush$")),
    ("record", "loadgen: recording each call (send and outcome)",
     lambda r: summed(r, r"^loadgen::recorder::Recorder::on_done_batch$", r"^loadgen::recorder::Recorder::on_sent$")),
]


def steps(out, specs):
    profiles = {}
    for spec in specs:
        label, rest = spec.split("=", 1)
        kind, cg, report = rest.split(":", 2)
        loadgen = json.load(open(report))
        calls = loadgen["sent_total"]
        rows = inclusive(cg)
        table = CHANNEL_STEPS if kind == "channel" else ENGINE_STEPS
        profiles[label] = {
            "kind": kind,
            "calls": calls,
            "connections": loadgen["connections"],
            "in_flight": loadgen["in_flight"],
            "per_call": {key: round(count(rows) / max(1, calls)) for key, _, count in table},
        }
        if kind == "channel":
            for warning in check(label, profiles[label]["per_call"]):
                print(f"profile_steps: WARNING {warning}", file=sys.stderr)
                profiles[label].setdefault("warnings", []).append(warning)
    json.dump({
        "commit": os.environ.get("GIT_COMMIT", "unknown"),
        "dirty": os.environ.get("GIT_DIRTY", "true") == "true",
        "profiles": profiles,
    }, open(out, "w"), indent=2)


def table(before_path, after_path):
    after = json.load(open(after_path))
    before = json.load(open(before_path)) if os.path.exists(before_path) else None

    def name(run):
        return f"`{run['commit']}`" + (" (dirty)" if run["dirty"] else "")

    for label, prof in after["profiles"].items():
        old = before["profiles"].get(label) if before else None
        rows = CHANNEL_STEPS if prof["kind"] == "channel" else ENGINE_STEPS
        print(f"#### {label}: {prof['connections']} connections, {prof['in_flight']} calls in flight")
        print()
        if old:
            print(f"| step | before ({name(before)}) | after ({name(after)}) | change |")
            print("|---|---:|---:|---:|")
        else:
            print(f"| step | {name(after)} |")
            print("|---|---:|")
        for key, text, _ in rows:
            text = text.replace("  of which", "&nbsp;&nbsp;of which")
            now = prof["per_call"].get(key)
            if old:
                was = old["per_call"].get(key)  # None: a step the earlier run did not count
                change = f"{(now - was) / was:+.0%}" if was else "n/a"
                print(f"| {text} | {'n/a' if was is None else f'{was:,}'} | {now:,} | {change} |")
            else:
                print(f"| {text} | {now:,} |")
        print()
        for warning in prof.get("warnings", []):
            print(f"**Warning: the steps do not partition the driver thread: {warning}.**")
            print()
        print(f"Calls sent in the profile (warm-up included): {prof['calls']:,}"
              + (f" (before: {old['calls']:,})." if old else "."))
        print()


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "steps":
        steps(sys.argv[2], sys.argv[3:])
    elif len(sys.argv) == 4 and sys.argv[1] == "table":
        table(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
