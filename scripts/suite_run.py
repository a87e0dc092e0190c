"""One timed run of the test suite (for scripts/suite_repeat.sh).

usage: suite_run.py INDEX OUT.json LOG COMMAND...

Runs COMMAND with its output in LOG and writes OUT.json: wall seconds, CPU
seconds of every process it started (user + system, from the kernel's
accounting of waited-for children), the load average before and after,
the passed/failed/ignored counts summed over every "test result:" line,
and the names of failed tests. Exits 1 when the run failed.
"""

import json
import os
import re
import resource
import subprocess
import sys
import time


def counts(text):
    total = {"passed": 0, "failed": 0, "ignored": 0}
    for line in text.splitlines():
        m = re.search(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", line)
        if m:
            for key, value in zip(("passed", "failed", "ignored"), m.groups()):
                total[key] += int(value)
    return total


def failed_names(text):
    names = re.findall(r"^---- (\S+) stdout ----$", text, re.M)
    names += re.findall(r"^test (\S+) \.\.\. FAILED$", text, re.M)
    return sorted(set(names))


def main():
    index, out, log, command = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    load_before = os.getloadavg()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with open(log, "w") as sink:
        code = subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = open(log, errors="replace").read()
    tally = counts(text)
    result = {
        "run": index,
        "ok": code == 0 and tally["failed"] == 0,
        "exit_code": code,
        "wall_s": round(wall, 1),
        "cpu_s": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        **tally,
        "failed_tests": failed_names(text),
    }
    json.dump(result, open(out, "w"), indent=2)
    status = "ok" if result["ok"] else f"FAILED {result['failed_tests']}"
    print(f"  {status}: {tally['passed']} passed, wall {result['wall_s']} s, cpu {result['cpu_s']} s")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
