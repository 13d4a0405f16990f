"""
Grading throughput: solutions per second through sandbox.grade_many with one worker and with one
per CPU, on a fixed mix of honest reference solutions and every hack style. Writes bench/sandbox.json.
    python bench/sandbox.py
"""

import json
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import codehack  # noqa: E402
import flags  # noqa: E402
import sandbox  # noqa: E402  (the repository's sandbox.py: the root comes first on sys.path)
from bench.pretrain import machine  # noqa: E402

SETTINGS = dict(
    n=(200, "solutions graded per run (one held-out task each)"),
    out=("bench/sandbox.json", "where the results go"),
)
KINDS = ["honest"] + codehack.STYLES  # task i gets KINDS[i % len(KINDS)]


def workload(n):
    """n held-out tasks, each with an honest solution or one of the hacks, in a fixed rotation.
    An honest solution costs one child run (the judge); a hack costs two (judge, then grader)."""
    tasks = codehack.tasks("heldout", n)
    solutions = [task.solution if kind == "honest" else codehack.hack(task, kind)
                 for task, kind in zip(tasks, (KINDS[i % len(KINDS)] for i in range(n)))]
    return tasks, solutions


def main():
    config = flags.parse(SETTINGS, doc=__doc__)
    flags.positive(config, "n")
    tasks, solutions = workload(config["n"])
    sandbox.grade_many(tasks[:4], solutions[:4], workers=1)  # warm-up: page cache, first imports

    runs = []
    for workers in (1, os.cpu_count()):
        t0 = time.perf_counter()
        grades = sandbox.grade_many(tasks, solutions, workers=workers)
        seconds = time.perf_counter() - t0
        runs.append({"workers": workers, "seconds": seconds, "solutions_per_s": len(tasks) / seconds,
                     "verdicts": dict(Counter(g.verdict for g in grades))})
    scaling = runs[1]["solutions_per_s"] / runs[0]["solutions_per_s"]

    print(f"{config['n']} solutions: {', '.join(f'{v} {k}' for k, v in sorted(runs[0]['verdicts'].items()))}; "
          f"{os.cpu_count()} CPUs, running as {'root' if sandbox.ROOT else 'an ordinary user'}, isolation {sandbox.isolation()}\n")
    print("| workers | seconds | solutions/s |\n|---|---|---|")
    for r in runs:
        print(f"| {r['workers']} | {r['seconds']:.2f} | {r['solutions_per_s']:.1f} |")
    print(f"\nscaling {os.cpu_count()} workers / 1: {scaling:.2f}x")
    result = {"settings": config, "machine": machine("cpu"), "root": sandbox.ROOT, "isolation": sandbox.isolation(), "kinds": KINDS,
              "runs": runs, "scaling": scaling}
    with open(config["out"], "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    flags.main(main)
