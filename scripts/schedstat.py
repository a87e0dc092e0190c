#!/usr/bin/env python3
"""Samples how long a process's threads waited for a CPU (scripts/faults.sh).

    schedstat.py PARENT_PID NAME OUT.csv [INTERVAL_MS]

Finds the child of PARENT_PID named NAME (the consumer under `ip netns
exec ... timeout ...`), or PARENT_PID itself if it is named NAME (a
delay-relay that `ip netns exec` exec'd), then every INTERVAL_MS (20) appends, per thread,
`epoch_ms,thread,cpu_ns,wait_ns` from /proc/PID/task/TID/schedstat: the
time the thread ran and the time it was runnable but waiting on a run
queue. A call answered past its deadline while the consumer's I/O thread
sat on the run queue was late because the machine gave it no CPU, not
because of the client; faults_report.py tells the two apart. Stops when the
process is gone (or after 5 s if it never appears). Standard library only.
"""

import os
import sys
import time


def child_named(parent, name):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if comm == name and ppid in parent:
            return pid
    return None


def main():
    parent, name, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    interval = (int(sys.argv[4]) if len(sys.argv) > 4 else 20) / 1000
    give_up = time.time() + 5
    pid = str(parent) if _comm(parent) == name else None
    while pid is None and time.time() < give_up:
        # The spawned pid, or its child (`ip netns exec` may fork first).
        family = {parent} | {int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == parent}
        pid = child_named(family, name)
        time.sleep(0.01)
    if pid is None:
        return
    with open(out, "w") as f:
        f.write("epoch_ms,thread,cpu_ns,wait_ns\n")
        while os.path.exists(f"/proc/{pid}/task"):
            now = round(time.time() * 1000)
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                break
            for tid in tids:
                try:
                    comm = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
                    cpu, wait, _ = open(f"/proc/{pid}/task/{tid}/schedstat").read().split()
                except (OSError, ValueError):
                    continue
                f.write(f"{now},{comm}-{tid},{cpu},{wait}\n")
            f.flush()
            time.sleep(interval)


def _comm(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip()
    except OSError:
        return None


def _ppid(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


if __name__ == "__main__":
    main()
