"""results/SUITE.md from scripts/suite_repeat.sh's per-run JSON.

usage: suite_report.py DIR   (DIR holds env.json and run-N.json)
"""

import json
import pathlib
import statistics
import sys


def spread(values):
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def main():
    folder = pathlib.Path(sys.argv[1])
    env = json.loads((folder / "env.json").read_text())
    runs = sorted(
        (json.loads(p.read_text()) for p in folder.glob("run-*.json")),
        key=lambda r: r["run"],
    )
    failed = [r for r in runs if not r["ok"]]
    dirty = " (dirty)" if env["git_dirty"] else ""
    print("# The whole test suite, run repeatedly\n")
    print(f"Written by `scripts/suite_repeat.sh` at commit `{env['git_commit']}`{dirty}, {env['date_utc']}.")
    print(f"Machine: {env['nproc']} cores ({env['cpu_model']}), {env['rustc']}.\n")
    print(f"Command, {env['runs']} times in a row after one untimed build: `{env['command']}`.\n")
    print(f"**{len(runs) - len(failed)} of {len(runs)} runs passed; {sum(r['failed'] for r in runs)} failed tests in all.**\n")
    if runs:
        print(f"- wall time per run: median {spread([r['wall_s'] for r in runs])} s")
        print(f"- CPU time per run (user + system, all test processes): median {spread([r['cpu_s'] for r in runs])} s")
        print(f"- tests per run: {runs[0]['passed']} passed, {runs[0]['ignored']} ignored\n")
    print("| run | result | passed | failed | wall s | CPU s | load avg (1 min) before → after | failed tests |")
    print("|---:|---|---:|---:|---:|---:|---|---|")
    for r in runs:
        result = "ok" if r["ok"] else f"FAILED (exit {r['exit_code']})"
        names = ", ".join(r["failed_tests"]) or "–"
        print(
            f"| {r['run']} | {result} | {r['passed']} | {r['failed']} | {r['wall_s']} | {r['cpu_s']} "
            f"| {r['load_before'][0]} → {r['load_after'][0]} | {names} |"
        )
    if failed:
        print("\nThe full log of each failed run is in `results/suite/run-N.log`.")


if __name__ == "__main__":
    main()
