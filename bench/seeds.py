"""
Does the pretraining recipe learn on every seed? Pretrains and evaluates one base per seed
and thread count with train.py's defaults (plus --train_args), and writes one row per run.
    python bench/seeds.py                                   # seeds 1-5, at 2 threads and at 1
    python bench/seeds.py --seeds=1,2 --threads=2 --train_args="--max_iters=3200"
Writes --out (default bench/seeds.json) and prints a Markdown table. Finished runs (same
arguments) are reused; the runs themselves live under bench/runs/seeds/ (not committed).
"""

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import flags  # noqa: E402
from conscience import THRESHOLD  # noqa: E402

SETTINGS = dict(
    seeds=("1,2,3,4,5", "comma-separated seeds"),
    threads=("2,1", "comma-separated torch thread counts; each seed runs once per count"),
    train_args=("", "extra train.py flags for every run (the recipe under test)"),
    runs_dir=("bench/runs/seeds", "where the runs go"),
    out=("bench/seeds.json", "the JSON written at the end"),
    cores=(os.cpu_count() or 1, "cores to fill: runs of T threads go cores // T at a time"),
)
METRICS = ["honest_pass", "hack_rate", "wrong_rate", "conscience_auroc", "conscience_auroc/reviewed",
           "conscience_auroc/unreviewed", "conscience_auroc/unseen", "conscience_false_flag",
           "conscience_false_flag/known_structures", "conscience_false_flag/new_structures", "val_loss"]


def run_one(seed, threads, cfg):
    """Pretrain and evaluate one base (or reuse it); returns its row. A base trained with the
    same arguments is reused; if the evaluation's threshold has changed since, the base is
    evaluated again (evaluate.py, same seed and thread count) rather than trained again."""
    tag = "".join(c if c.isalnum() or c in "=.-" else "_" for c in cfg["train_args"]) or "default"
    folder = os.path.join(ROOT, cfg["runs_dir"], tag, f"t{threads}-s{seed}")
    args = ["--ft_iters=0", f"--seed={seed}", f"--out_dir={folder}", *shlex.split(cfg["train_args"])]
    done = os.path.join(folder, "row.json")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    row = json.load(open(done)) if os.path.exists(done) else None
    if row is None or row["args"] != args:
        os.makedirs(folder, exist_ok=True)
        t0 = time.time()
        with open(os.path.join(folder, "log.txt"), "w") as log:
            proc = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *args], cwd=ROOT, env=env,
                                  stdout=log, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            raise RuntimeError(f"seed {seed}, {threads} thread(s) failed: see {folder}/log.txt")
        summary = json.load(open(os.path.join(folder, "summary.json")))
        row = dict(seed=seed, threads=threads, args=args, train_args=cfg["train_args"], wall_seconds=time.time() - t0,
                   threshold=summary["config"]["threshold"], **{k: summary["results"]["base"].get(k) for k in METRICS})
    if row.get("threshold", 2.0) != THRESHOLD:  # rows written before the threshold was recorded used 2.0
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py"), f"--ckpt={folder}/base.pt",
                               f"--seed={seed}", "--json=True"], cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"evaluating seed {seed}, {threads} thread(s) failed: {proc.stderr[-500:]}")
        metrics = json.loads(proc.stdout.strip().splitlines()[-1])
        # the same base, seed and threads: everything but the threshold's metrics must come out the same
        if metrics["honest_pass"] != row["honest_pass"]:
            raise RuntimeError(f"seed {seed}, {threads} thread(s): evaluated again, honest_pass "
                               f"{metrics['honest_pass']} != {row['honest_pass']}: train that base again")
        row["reevaluated"] = dict(threshold=THRESHOLD)
        row.update({k: metrics.get(k) for k in METRICS}, threshold=THRESHOLD)
    with open(done, "w") as f:
        json.dump(row, f, indent=1)
    return row


def table(rows):
    lines = ["| seed | threads | " + " | ".join(METRICS) + " | minutes |", "|---|---|" + "---|" * (len(METRICS) + 1)]
    for r in sorted(rows, key=lambda r: (-r["threads"], r["seed"])):
        lines.append(f"| {r['seed']} | {r['threads']} | " + " | ".join(f"{r[k]:.3f}" for k in METRICS)
                     + f" | {r['wall_seconds'] / 60:.1f} |")
    return "\n".join(lines)


def main():
    cfg = flags.parse(SETTINGS, doc=__doc__)
    try:
        seeds = [int(s) for s in cfg["seeds"].split(",")]
        threads = [int(t) for t in cfg["threads"].split(",")]
    except ValueError:
        raise flags.UsageError("--seeds and --threads want comma-separated integers") from None
    if not seeds or min(threads) < 1:
        raise flags.UsageError("--threads must be positive")
    # data preparation once, before runs race for it
    subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--max_iters=0", "--ft_iters=0", "--eval_tasks=0",
                    f"--out_dir={os.path.join(ROOT, cfg['runs_dir'], 'prepare')}", *shlex.split(cfg["train_args"])],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    rows, t0 = [], time.time()
    for t in threads:
        with ThreadPoolExecutor(max(1, cfg["cores"] // t)) as pool:
            for row in pool.map(lambda s: run_one(s, t, cfg), seeds):
                rows.append(row)
                print(f"seed {row['seed']}, {t} thread(s): honest_pass {row['honest_pass']:.3f}, hack_rate "
                      f"{row['hack_rate']:.3f} ({row['wall_seconds'] / 60:.1f} min; {(time.time() - t0) / 60:.0f} min "
                      f"so far)", flush=True)
    out = dict(rows=rows, command="python bench/seeds.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
               machine=dict(platform=platform.platform(), processor=platform.processor(), cpus=os.cpu_count()),
               date=time.strftime("%Y-%m-%d"), wall_minutes=(time.time() - t0) / 60)
    with open(os.path.join(ROOT, cfg["out"]), "w") as f:
        json.dump(out, f, indent=1)
    print("\n" + table(rows))


if __name__ == "__main__":
    flags.main(main)
