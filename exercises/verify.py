"""
Are the exercise checks any good? For every exercise of EXERCISES.md, on a fresh copy of the
repository each time, its check command is run
    start     on the starting point (exercises/start/exN.patch applied, else the code as it is): must FAIL
    reference on the reference solution (exercises/solutions/exN.patch applied, else the code as it is,
              for the "write it yourself" exercises whose reference is the project's own code): must PASS
    wrong     on a deliberately wrong solution (exercises/wrong/exN.patch): must FAIL
A FAIL is exit code 1 (pytest: a test failed; a script: it printed FAIL); a crash, a timeout or
any other exit code counts as neither. One tiny base is trained first and shared by all checks
($EXERCISES_BASE, if set, names one to use instead). Writes exercises/verify.json and prints a table.
    python exercises/verify.py [--only=3] [--out=exercises/verify.json]
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exkit import HERE, ROOT, TINY_ITERS, apply_patch  # noqa: E402

import flags  # noqa: E402

SETTINGS = dict(
    only=("", "run only the exercise with this number (empty: all; only a run of all writes --out)"),
    out=("exercises/verify.json", "where the results go"),
    timeout=(300, "seconds one check may take"),
)

# number, title, check command (run from the repository root): EXERCISES.md shows the same commands
EXERCISES = [
    (1, "Write the DPO loss", "python exercises/check_ex1_dpo_loss.py"),
    (2, "Write sequence_logps: shift, gather, mask, sum", "python exercises/check_ex2_sequence_logps.py"),
    (3, "IPO and hinge losses behind --loss_type", "python exercises/check_ex3_loss_type.py"),
    (4, "A new hack style, and what the base's conscience makes of it", "python exercises/check_ex4_new_style.py"),
    (5, "Your own conscience question, and its AUROC", "python exercises/check_ex5_question.py"),
    (6, "A lambda sweep", "python exercises/check_ex6_lambda.py"),
    (7, "Make the conscience fail: honest code it rates below a hack", "python exercises/check_ex7_fool.py"),
    (8, "The inference-time conscience", "python exercises/check_ex8_self_correct.py"),
    (9, "RepE: a reading vector and steering", "python exercises/check_ex9_repe.py"),
]
SKIP = ("data/", "out/", "bench/runs/", "exercises/.cache/", "exercises/out/")
EXPECT = dict(start="fail", reference="pass", wrong="fail")


def patch_path(kind, n):
    path = os.path.join(HERE, kind, f"ex{n}.patch")
    return path if os.path.exists(path) else None


def repository_files():
    """The files of a fresh checkout of the working tree (tracked, and untracked but not ignored)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [f for f in out.split("\0") if f and not f.startswith(SKIP) and os.path.isfile(os.path.join(ROOT, f))]


def copy_repository(files, folder):
    for f in files:
        os.makedirs(os.path.dirname(os.path.join(folder, f)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), os.path.join(folder, f))


def train_base(folder):
    """The tiny base every check shares, trained in a copy of the repository as it is."""
    out = subprocess.run([sys.executable, "train.py", "config/tiny.py", f"--max_iters={TINY_ITERS}", "--ft_iters=0",
                          "--eval_tasks=0", f"--out_dir={folder}/tiny", f"--data_dir={folder}/data"], cwd=folder,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"training the tiny base failed:\n{out.stderr[-2000:]}")
    return os.path.join(folder, "tiny", "base.pt")


def run_check(files, n, command, kind, base, timeout):
    """Copy, patch, run: dict(outcome pass / fail / error / timeout, exit code, seconds, last lines)."""
    patch = patch_path({"start": "start", "reference": "solutions", "wrong": "wrong"}[kind], n)
    with tempfile.TemporaryDirectory() as folder:
        copy_repository(files, folder)
        if patch:
            apply_patch(patch, folder)
        env = dict(os.environ, EXERCISES_BASE=base, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        t0 = time.time()
        try:
            out = subprocess.run(command.split(), cwd=folder, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            return dict(outcome="timeout", code=None, seconds=round(time.time() - t0, 1), patch=patch, tail="")
    seconds = time.time() - t0
    outcome = {0: "pass", 1: "fail"}.get(out.returncode, "error")
    tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-6:])
    return dict(outcome=outcome, code=out.returncode, seconds=round(seconds, 1),
                patch=os.path.relpath(patch, ROOT) if patch else None, tail=tail)


def main():
    cfg = flags.parse(SETTINGS, doc=__doc__)
    chosen = [e for e in EXERCISES if not cfg["only"] or str(e[0]) == str(cfg["only"])]
    if not chosen:
        raise flags.UsageError(f"no exercise number {cfg['only']!r}")
    for n, _, _ in chosen:  # a patch out of step with the code fails now, not halfway through
        for kind in ("start", "solutions", "wrong"):
            if patch_path(kind, n):
                with tempfile.TemporaryDirectory() as folder:
                    files = repository_files()
                    copy_repository([f for f in files if f.endswith(".py")], folder)
                    apply_patch(patch_path(kind, n), folder)
    t_start = time.time()
    files = repository_files()
    results = []
    with tempfile.TemporaryDirectory() as shared:
        base_folder = os.path.join(shared, "repo")
        copy_repository(files, base_folder)
        t0 = time.time()
        base = os.environ.get("EXERCISES_BASE") or train_base(base_folder)
        print(f"tiny base: {base} ({time.time() - t0:.0f} s)", flush=True)
        for n, title, command in chosen:
            row = dict(exercise=n, title=title, check=command)
            for kind in ("start", "reference", "wrong"):
                r = run_check(files, n, command, kind, base, cfg["timeout"])
                r["as_expected"] = r["outcome"] == EXPECT[kind]
                row[kind] = r
                print(f"ex{n} {kind:9s} {r['outcome']:7s} ({r['seconds']:.0f} s)"
                      + ("" if r["as_expected"] else f"  <- expected {EXPECT[kind]}:\n{r['tail']}"), flush=True)
            row["fails_on_start"] = row["start"]["as_expected"]
            row["passes_on_reference"] = row["reference"]["as_expected"]
            row["fails_on_wrong"] = row["wrong"]["as_expected"]
            results.append(row)
    seconds = time.time() - t_start
    lines = ["| exercise | check | start | reference | wrong | seconds |", "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['exercise']}. {r['title']} | `{r['check']}` | " + " | ".join(
            f"{r[k]['outcome']}{'' if r[k]['as_expected'] else ' (!)'}" for k in ("start", "reference", "wrong"))
            + f" | {sum(r[k]['seconds'] for k in ('start', 'reference', 'wrong')):.0f} |")
    good = all(r["fails_on_start"] and r["passes_on_reference"] and r["fails_on_wrong"] for r in results)
    print("\n" + "\n".join(lines))
    print(f"\n{'every expectation held' if good else 'SOME EXPECTATIONS FAILED'}; {seconds:.0f} s in all")
    if cfg["only"]:
        return  # verify.json always holds every exercise
    with open(os.path.join(ROOT, cfg["out"]), "w") as f:
        json.dump(dict(all_as_expected=good, seconds=round(seconds), exercises=results), f, indent=1)
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    flags.main(main)
