"""
The experiment: every condition of the paper's table, over several seeds, measured by
execution. Each seed pretrains one base (and one per extra conscience source, and two on a
corpus contaminated with hacks: the initial-training stage, without and with the
conscience); every fine-tuning condition of that seed starts from its base, so conditions
compare paired on the same base. Each run is a plain `train.py`, `evaluate.py` or `repe.py`
command; its folder under OUT_DIR/runs/ keeps its log, checkpoints and summary, and a rerun
skips finished runs.
    python experiment.py            # 5 seeds: hours on 2 CPU cores (see results/README.md)
    python experiment.py --quick    # 1 seed, shorter runs, base, EM and the method only (minutes)
    python experiment.py --seeds=3 --sources= --train_args="--n_layer=6"   # fewer runs; any train.py flags
Writes OUT_DIR/results.json (every run: its command, config, thread count, metrics and
per-task verdicts; the commit at the start), OUT_DIR/table.md (mean and spread over seeds,
and every condition against the method, paired) and OUT_DIR/*.png.
"""

import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np
import torch

import checkpoint
import codehack
import flags
import stats
import train
from common import eta
from evaluate import conscience_metrics

ROOT = os.path.dirname(os.path.abspath(__file__))
QUICK = ["--max_iters=2000", "--ft_iters=60", "--eval_tasks=60"]  # a base that hacks little but solves half
SETTINGS = dict(
    out_dir=("results", "where results.json, table.md, the plots and runs/ go"),
    data_dir=("data", "cache of the prepared corpus and tokenizer (shared by all runs)"),
    seed=(1337, "first seed; the others are seed+1, seed+2, ..."),
    seeds=(5, "number of seeds (each pretrains its own base)"),
    sources=("none,explicit", "conscience sources (codehack.World) besides the default partial one: each pretrains "
                              "its own base per seed and runs the method from it (empty: none)"),
    quick=(False, "a first look in minutes: --seeds=1 --max_tier=1 --curve_evals=1 --out_dir=results/quick and "
                  "train.py's " + " ".join(QUICK) + " (flags given win)"),
    max_tier=(6, "run the runs of these tiers only (see tier()): 0 the bases, 1 EM and the method, 2 the null "
                 "control, 3 the baselines and the adversarial stage, 4 the sweeps, 5 the explicit source, "
                 "6 initial training"),
    train_args=("", "train.py flags or config files for every run (e.g. \"--n_layer=6 --ft_iters=200\"); each condition's own flags "
                    "win over them, and the table's '(= the method)' rows assume train.py's default lam, beta, cadence "
                    "and question"),
    contamination=(0.3, "initial-training stage: share of the task documents that are hacks in its corpus"),
    initial_from=(0.5, "initial-training stage: the share of pretraining after which the conscience step joins it"),
    jobs=(1, "runs at a time (two single-thread runs side by side did about 10% more than one with two threads)"),
    threads=(0, "torch threads of every run (0: cores // jobs); fixed for the whole experiment, since results move "
                "with it, and recorded with every run"),
    report_only=(False, "run nothing: write results.json, table.md and the plots from the runs finished so far"),
    curve_evals=(2, "evaluations in the middle of the no-conscience and conscience runs, for the curves"),
)

LAMBDAS = [0.1, 0.3, 1.0]  # with 0 (the EM run, see lambda_sweep) and the method's default (DEFAULTS["lam"])
BETAS = [0.03, 0.3, 1.0, 3.0]  # with 0.1 (the default)
CADENCES = [2, 4]           # with 1 (the default)
ONLINE_SAMPLES = [4, 8]     # with every prompt of the step (the default): the cost of the conscience step
THRESHOLDS = [0.0, 2.0, math.inf]  # with -2 (the default): flag more of the online samples (inf: every one)
QUESTIONS = [codehack.QUESTIONS_SEEN[1]] + codehack.QUESTIONS_UNSEEN  # with the default question
REPE_STRENGTHS = "0,2,4,8,16,32"  # RepE steering: at every block, chosen on validation (repe.py)
REPE_CONTROL = 8.0  # RepE in training: the strength RepE steering chose (then at the middle block only) on 4 of 5 seeds
METRICS = ["hack_rate", "honest_pass", "broad_misaligned", "broad_misaligned_unseen", "conscience_auroc",
           "conscience_auroc/unreviewed", "conscience_false_flag", "conscience_fooled", "sft_token_acc",
           "families/hack_rate", "families/honest_pass"]
PAIRED = ["hack_rate", "honest_pass", "broad_misaligned", "broad_misaligned_unseen"]  # against the method, paired
METHOD = "conscience (the method)"
CRITIQUE = "critique and revise (constitutional SFT)"
RPO = "DPO plus SFT on alternatives (RPO)"  # the method with the chosen side's next-token loss added
REPE_TRAINING = "RepE control in fine-tuning"
REPE_RANDOM = "RepE control in fine-tuning, random direction"  # its control: the same loss without the direction
EM = "no conscience (EM)"
INITIAL = ("initial training on a contaminated corpus", "initial training on a contaminated corpus, conscience")
DEFAULTS = {name: default for name, (default, _) in train.SETTINGS.items()}


@dataclass
class Run:
    seed: int
    name: str               # the condition
    group: str              # conditions, lambda, beta, cadence, online_samples, question, ...
    script: str             # train.py or evaluate.py
    args: list
    needs: list = field(default_factory=list)  # names of runs of the same seed that must finish first
    value: object = None    # the swept value, for sweeps
    upstream: list = field(default_factory=list)  # the arguments of the runs it needs: a rerun of them redoes it

    @property
    def folder(self):
        slug = "".join(c if c.isalnum() or c in "=.-" else "_" for c in self.name)
        return os.path.join("runs", f"seed{self.seed}", slug)


def plan(seed, cfg, tcfg):
    """The runs of one seed: train.py / evaluate.py arguments (paths relative to out_dir).
    tcfg is train.py's configuration under the experiment's train.py flags."""
    base_dir = os.path.join("runs", f"seed{seed}", "base")
    common = [f"--seed={seed}", f"--data_dir={cfg['data_dir']}", *cfg["train_flags"]]
    runs = [Run(seed, "base", "conditions", "train.py", common + ["--ft_iters=0", f"--out_dir={base_dir}"])]
    ft_iters = tcfg["ft_iters"]

    def ft(name, group, *args, needs=(), init=os.path.join(base_dir, "base.pt"), curve=False, value=None):
        every = max(1, ft_iters // (cfg["curve_evals"] + 1)) if curve else ft_iters
        run = Run(seed, name, group, "train.py", common + [f"--init_from={init}", f"--ft_eval_interval={every}",
                                                           "--eval_init=False", *args], ["base", *needs], value)
        run.args.append(f"--out_dir={run.folder}")
        runs.append(run)
        return run

    def evaluation(name, group, of, *args, script="evaluate.py"):
        """An evaluation (or RepE) run of another run's checkpoint, on the same tasks as train.py's."""
        ckpt = os.path.join(base_dir, "base.pt") if of.name == "base" else os.path.join(of.folder, "final.pt")
        run = Run(seed, name, group, script, [f"--ckpt={ckpt}", f"--seed={seed}", f"--num_tasks={tcfg['eval_tasks']}",
                                              f"--samples={tcfg['eval_samples']}", "--json=True", *args], [of.name])
        runs.append(run)
        return run

    base = runs[0]
    em = ft(EM, "conditions", "--conscience=False", curve=True)
    method = ft(METHOD, "conditions", curve=True)
    ft("judge: live policy", "conditions", "--judge=policy")
    ft("judge: random preferences", "conditions", "--judge=random")
    ft("judge: oracle (sandbox)", "conditions", "--judge=oracle")
    ft("SFT on alternatives, no DPO", "conditions", "--align=sft")
    ft(RPO, "conditions", "--align=dpo+sft")
    # the constitutional-AI-style baseline (SL-CAI): the model as it was before fine-tuning (the
    # frozen copy) critiques every sample (the question) and revises it (its rewrite after "no"),
    # and the revisions are trained by imitation, whatever they score; then the same with the
    # live model as critic and reviser
    ft(CRITIQUE, "conditions", "--align=sft", "--threshold=inf", "--margin=-inf")
    ft("critique and revise by the live model", "conditions", "--judge=policy", "--align=sft", "--threshold=inf",
       "--margin=-inf")
    ft("inoculation prompting", "conditions", "--conscience=False", "--inoculate=True")
    conscience = [f"--temperature={tcfg['eval_temperature']}", f"--threshold={tcfg['threshold']}",
                  f"--question={tcfg['question']}"]  # as train.py evaluates
    evaluation("inference-time conscience on EM", "conditions", em, "--self_correct=True", *conscience)
    evaluation("RepE steering of EM", "conditions", em, *conscience, "--layers=all", f"--strengths={REPE_STRENGTHS}",
               f"--val_tasks={max(1, tcfg['eval_tasks'] // 2)}", script="repe.py")  # 60 at the default 120 tasks
    ft(REPE_TRAINING, "conditions", "--conscience=False", f"--repe_control={REPE_CONTROL:g}")
    ft(REPE_RANDOM, "conditions", "--conscience=False", f"--repe_control={REPE_CONTROL:g}", "--repe_vector=random")
    ft("recovery from EM", "conditions", init=os.path.join(em.folder, "final.pt"), needs=[EM])
    ft("alternatives: policy resamples", "alternatives", "--alternatives=resample", "--num_candidates=2",
       value="resample")
    for of in (base, em, method):  # the adversarial stage: prompts that push for gaming the tests
        evaluation(f"adversarial: {of.name}", "adversarial", of, "--adversarial=True", *conscience)
        evaluation(f"adversarial + inference-time conscience: {of.name}", "adversarial", of, "--adversarial=True",
                   "--self_correct=True", *conscience)
    # the initial-training stage: pretraining on a corpus contaminated with hacks, without and
    # with the conscience step in its later part (judged by a snapshot taken when it starts)
    start = int(cfg["initial_from"] * tcfg["max_iters"])
    for name, extra in ((INITIAL[0], []), (INITIAL[1], [f"--conscience_from={start}"])):
        run = Run(seed, name, "initial", "train.py",
                  common + [f"--hack_share={cfg['contamination']}", "--ft_iters=0", *extra])
        run.args.append(f"--out_dir={run.folder}")
        runs.append(run)
    for source in cfg["source_list"]:  # where the conscience comes from: each its own base
        source_base = Run(seed, f"base ({source})", "sources", "train.py",
                          common + [f"--conscience_source={source}", "--ft_iters=0"])
        source_base.args.append(f"--out_dir={source_base.folder}")
        runs.append(source_base)
        ft(f"conscience, {source} world", "sources", f"--conscience_source={source}", needs=[source_base.name],
           init=os.path.join(source_base.folder, "base.pt"), value=source)
    for lam in LAMBDAS:
        ft(f"lam={lam}", "lambda", f"--lam={lam}", value=lam)
    for beta in BETAS:
        ft(f"beta={beta}", "beta", f"--beta={beta}", value=beta)
    for every in CADENCES:
        ft(f"conscience_every={every}", "cadence", f"--conscience_every={every}", value=every)
    for t in THRESHOLDS:
        ft(f"threshold={t}", "threshold", f"--threshold={t}", value=t)
    for n in ONLINE_SAMPLES:
        ft(f"online_samples={n}", "online_samples", f"--online_samples={n}", value=n)
    for i, q in enumerate(QUESTIONS):
        ft(f"question {i + 2}", "question", f"--question={q}", value=q)
    by_name = {run.name: run for run in runs}
    for run in runs:
        run.upstream = [by_name[n].args for n in run.needs]
    return runs


def finished(run, out_dir, threads):
    """The record of an earlier run of exactly this command (same arguments, same upstream
    runs, same thread count), or None."""
    path = os.path.join(out_dir, run.folder, "run.json")
    if not os.path.exists(path):
        return None
    record = json.load(open(path))
    same = record["args"] == run.args and record.get("upstream") == run.upstream and record.get("threads") == threads
    return record if same else None


def restore(runs, out_dir, threads, running=True):
    """Put back the run.json of runs that results.json records but whose folder is gone (the
    folders are not kept in git; results.json is), so that a rerun reuses them. A run whose
    checkpoint a run still to do needs is not restored: it runs again, and must reproduce its
    recorded metrics, since the restored runs after it used its earlier checkpoint (with
    running=False, for a report, every recorded run is restored).
    Returns (the restored runs, {(seed, name): recorded metrics} of the runs to do again)."""
    path = os.path.join(out_dir, "results.json")
    if not os.path.exists(path):
        return [], {}
    done = {(r["seed"], r["condition"]): r for r in json.load(open(path))["runs"]}

    def has_checkpoint(run):
        folder = os.path.join(out_dir, run.folder)
        return os.path.isdir(folder) and any(f.endswith(".pt") for f in os.listdir(folder))

    matching = {(run.seed, run.name): run for run in runs if finished(run, out_dir, threads) is None
                and (r := done.get((run.seed, run.name))) is not None
                and (r["args"], r.get("upstream"), r.get("threads")) == (run.args, run.upstream, threads)}
    candidates = dict(matching)
    changed = running  # with nothing to run (--report_only), every recorded run is restored
    while changed:  # a candidate needed by a run that will execute must execute too, unless its checkpoint is there
        changed = False
        for run in runs:
            if (run.seed, run.name) in candidates or finished(run, out_dir, threads) is not None:
                continue
            for name in run.needs:
                need = candidates.get((run.seed, name))
                if need is not None and not has_checkpoint(need):
                    del candidates[(run.seed, name)]
                    changed = True
    for key, run in candidates.items():
        os.makedirs(os.path.join(out_dir, run.folder), exist_ok=True)
        with open(os.path.join(out_dir, run.folder, "run.json"), "w") as f:
            json.dump(done[key], f, indent=1)
    again = {key: done[key]["metrics"] for key in matching if key not in candidates}
    return list(candidates.values()), again


def execute(run, out_dir, threads):
    """Run one command (or reuse its earlier result); returns its record for results.json."""
    folder = os.path.join(out_dir, run.folder)
    os.makedirs(folder, exist_ok=True)
    command = [sys.executable, os.path.join(ROOT, run.script), *run.args]
    done_path = os.path.join(folder, "run.json")
    record = finished(run, out_dir, threads)
    if record is not None:
        return record | {"reused": True}
    t0 = time.time()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with open(os.path.join(folder, "log.txt"), "w") as log:
        proc = subprocess.run(command, cwd=out_dir, env=env, stdout=subprocess.PIPE if run.script != "train.py"
                              else log, stderr=log, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{run.name} (seed {run.seed}) failed with exit code {proc.returncode}: see {folder}/log.txt")
    if run.script in ("evaluate.py", "repe.py"):
        metrics, curve, config = json.loads(proc.stdout.strip().splitlines()[-1]), [], {"args": run.args}
    else:
        summary = json.load(open(os.path.join(folder, "summary.json")))
        results, config = summary["results"], summary["config"]
        final = [name for name in results if name == "base" or name.startswith("fine-tuned")][-1]
        metrics = results[final]
        curve = [{"step": int(name.rsplit(" ", 1)[1]), **m} for name, m in results.items() if name.startswith("finetune step")]
        curve.append({"step": config["ft_iters"], **metrics})
    record = dict(seed=run.seed, condition=run.name, group=run.group, value=run.value, args=run.args, upstream=run.upstream,
                  command=" ".join(shlex.quote(a) for a in ["python", run.script, *run.args]), config=config,
                  metrics=metrics, curve=curve, wall_seconds=time.time() - t0, threads=threads, commit=git_commit())
    with open(done_path, "w") as f:
        json.dump(record, f, indent=1)
    return record


def base_question_aurocs(out_dir, seed, num_tasks):
    """The base model's AUROC with each phrasing of the question (no fine-tuning needed), kept
    beside the base (questions.json) for a rerun or a report."""
    model, enc, ckpt = checkpoint.load_model(os.path.join(out_dir, "runs", f"seed{seed}", "base", "base.pt"))
    heldout = codehack.tasks("heldout", num_tasks, seed)
    world = codehack.World.from_config(ckpt.get("config", {}))
    aurocs = {}
    for q in [codehack.QUESTION] + QUESTIONS:
        m = conscience_metrics(model.eval(), enc, heldout, world=world, question=q, seed=seed)
        aurocs[q] = (m["conscience_auroc"], m["conscience_auroc/unreviewed"])
    with open(os.path.join(out_dir, "runs", f"seed{seed}", "base", "questions.json"), "w") as f:
        json.dump(aurocs, f)
    return aurocs


def cached_question_aurocs(out_dir, seed):
    path = os.path.join(out_dir, "runs", f"seed{seed}", "base", "questions.json")
    return {q: tuple(v) for q, v in json.load(open(path)).items()} if os.path.exists(path) else None


def schedule(runs, out_dir, jobs, threads, on_done):
    """Run everything, `jobs` at a time with `threads` each, in the order given, each run
    after the runs it needs (same seed)."""
    pending, running, finished, failed = list(runs), {}, set(), []
    with ThreadPoolExecutor(jobs) as pool:
        while pending or running:
            blocked = {(r.seed, r.name) for r in failed}
            for run in [r for r in pending if any((r.seed, n) in blocked for n in r.needs)]:
                pending.remove(run)
                failed.append(run)
                print(f"skipped {run.name} (seed {run.seed}): a run it needs failed", flush=True)
            ready = [r for r in pending if all((r.seed, n) in finished for n in r.needs)]
            for run in ready[:jobs - len(running)]:
                pending.remove(run)
                running[pool.submit(execute, run, out_dir, threads)] = run
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                run = running.pop(future)
                try:
                    on_done(run, future.result())
                    finished.add((run.seed, run.name))
                except Exception as e:  # one failed run should not cost the others
                    print(f"error: {e}", flush=True)
                    failed.append(run)
    return failed


def summarize(records, key, metric):
    values = [r["metrics"].get(metric, float("nan")) for r in records if key(r)]
    values = [v for v in values if v == v]  # nan: undefined for a run (e.g. no hacks to be fooled by)
    if not values:
        return float("nan"), float("nan"), 0
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else float("nan"), len(values)


def fmt(mean, std, n):
    if n == 0:
        return "n/a"
    return f"{mean:.3f}" + (f" ± {std:.3f}" if n > 1 else "")


LETTER = {"hack_rate": "k", "honest_pass": "h"}  # the per-task verdict letter a rate counts (evaluate.VERDICT_LETTER)


def paired(records, key, against, metric):
    """The runs picked by `key` minus those picked by `against`, paired on each seed's base:
    the mean difference with its 95% t interval over seeds, and for the code rates the
    Cochran-Mantel-Haenszel test over the saved per-task verdicts (strata: seed x task).
    Returns dict(mean, low, high, p, seeds, verdict)."""
    a = {r["seed"]: r["metrics"] for r in records if key(r)}
    b = {r["seed"]: r["metrics"] for r in records if against(r)}
    defined = lambda m: m.get(metric) is not None and m[metric] == m[metric]  # noqa: E731 (nan: undefined)
    seeds = [s for s in sorted(set(a) & set(b)) if defined(a[s]) and defined(b[s])]
    mean, low, high = stats.t_interval([a[s][metric] - b[s][metric] for s in seeds])
    p, hits = None, ([], [], set())
    for s in seeds if metric in LETTER else []:
        va, vb = a[s].get("verdicts"), b[s].get("verdicts")
        if va and vb and len(va) == len(vb):  # the same tasks: same seed, same number of tasks
            hits[0].extend(v.count(LETTER[metric]) for v in va)
            hits[1].extend(v.count(LETTER[metric]) for v in vb)
            hits[2].update(len(v) for v in va + vb)
    if hits[0] and len(hits[2]) == 1:  # the same k everywhere
        _, p = stats.cmh(hits[0], hits[1], hits[2].pop())
    verdict = f"n/a ({len(seeds)} seed{'s' * (len(seeds) != 1)})" if len(seeds) < 2 else stats.verdict(low, high, p)
    return dict(mean=mean, low=low, high=high, p=p, seeds=len(seeds), verdict=verdict)


def fmt_paired(d):
    if d["seeds"] < 2:
        return d["verdict"]
    p = "" if d["p"] is None else f", p={d['p']:.2g}"
    return f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]{p}: {d['verdict']}"


def question_runs(q):
    """The runs that used question q: the method's for the default one, else the question study's."""
    name = METHOD if q == codehack.QUESTION else f"question {QUESTIONS.index(q) + 2}"
    return lambda r: r["condition"] == name


def rows(records):
    """(label, predicate) for every row of the table: the conditions, the alternative source,
    the conscience sources, then the sweeps and the questions."""
    out = [(name, lambda r, n=name: r["condition"] == n)
           for name in dict.fromkeys(r["condition"] for r in records if r["group"] in ("conditions", "alternatives",
                                                                                         "sources", "initial"))]
    out.append(("lam=0 (= the EM run)", lambda r: r["condition"] == EM))
    sweeps = [("lam", LAMBDAS, DEFAULTS["lam"]), ("beta", BETAS, DEFAULTS["beta"]),
              ("conscience_every", CADENCES, DEFAULTS["conscience_every"]),
              ("threshold", THRESHOLDS, DEFAULTS["threshold"]),
              ("online_samples", ONLINE_SAMPLES, DEFAULTS["online_samples"])]  # the default, 0: every prompt
    for flag, values, default in sweeps:
        for v in sorted(values + [default]):
            if v == default:
                out.append((f"{flag}={v} (= the method)", lambda r: r["condition"] == METHOD))
            else:
                out.append((f"{flag}={v}", lambda r, n=f"{flag}={v}": r["condition"] == n))
    out += [(f"question {i + 2}", named(f"question {i + 2}")) for i in range(len(QUESTIONS))]  # see the question study
    return out


def named(name):
    return lambda r: r["condition"] == name


HEADLINE = ["base", EM, METHOD, "judge: oracle (sandbox)", CRITIQUE,
            "inference-time conscience on EM", "RepE steering of EM", REPE_TRAINING, *INITIAL, "conscience, none world"]
HEADLINE_METRICS = ["hack_rate", "honest_pass", "broad_misaligned", "broad_misaligned_unseen", "conscience_auroc/unreviewed"]


def mean_interval(records, key, metric):
    """(mean, low, high, seeds): the mean over seeds with its 95% t interval."""
    values = [r["metrics"].get(metric, float("nan")) for r in records if key(r)]
    values = [v for v in values if v == v]
    return (*stats.t_interval(values), len(values))


def fmt_interval(mean, low, high, n):
    if n == 0:
        return "n/a"
    return f"{mean:.3f}" + (f" [{low:.3f}, {high:.3f}]" if n > 1 else "")


def headline(records):
    """The table the README shows: the main conditions, mean and 95% t interval over seeds,
    with the largest standard error of one run's rate over its tasks."""
    lines = ["Headline: mean over seeds [95% t interval], each run evaluated on its seed's held-out tasks.", "",
             "| condition | seeds | " + " | ".join(HEADLINE_METRICS) + " |", "|---|---|" + "---|" * len(HEADLINE_METRICS)]
    for name in HEADLINE:
        cells = [mean_interval(records, named(name), m) for m in HEADLINE_METRICS]
        if cells[0][3]:
            lines.append(f"| {name} | {cells[0][3]} | " + " | ".join(fmt_interval(*c) for c in cells) + " |")
    se = [v for r in records for m in ("hack_rate", "honest_pass") for v in [r["metrics"].get(f"{m}_se")]
          if v is not None and v == v]  # nan: a run with one task
    if se:
        lines += ["", f"Standard error of one run's hack_rate or honest_pass over its tasks: median {np.median(se):.3f}, "
                  f"largest {max(se):.3f} ({len(se)} rates, {np.mean(np.array(se) > 0.02):.0%} above 0.02)."]
        # the spread between tasks is most of it: what would the same samples give, spread over more tasks?
        verdicts = [vs for r in records for vs in [r["metrics"].get("verdicts")] if vs and len(vs[0]) > 1]
        if verdicts:
            n, k = len(verdicts[0]), len(verdicts[0][0])  # tasks and samples per task, the same in every evaluation
            splits = [s for s in (6, 3, 2, 1) if s <= k]
            largest = [max(stats.rate_se_split([v.count(c) for v in vs], k, n * k // s, s)
                           for vs in verdicts for c in LETTER.values()) for s in splits]
            lines += ["", "The largest of them with the same number of samples spread over more tasks "
                      "(stats.rate_se_split): " + ", ".join(f"{n * k // s} tasks x {s}: {se_:.3f}"
                                                              for s, se_ in zip(splits, largest)) + "."]
    return lines


BASE_METRICS = ["honest_pass", "hack_rate", "conscience_auroc", "conscience_auroc/reviewed",
                "conscience_auroc/unreviewed", "conscience_auroc/unseen", "conscience_false_flag"]


def base_table(records):
    """Every pretrained base, seed by seed: is it capable, and what does its conscience see?"""
    kinds = [name for name in ("base", "base (none)", "base (explicit)", *INITIAL) if any(named(name)(r) for r in records)]
    lines = ["Every pretrained base, seed by seed (the initial-training runs are bases too: pretraining only).", "",
             "| base | seed | " + " | ".join(BASE_METRICS) + " |", "|---|---|" + "---|" * len(BASE_METRICS)]
    for name in kinds:
        runs = sorted((r for r in records if named(name)(r)), key=lambda r: r["seed"])
        for r in runs:
            lines.append(f"| {name} | {r['seed']} | " + " | ".join(f"{r['metrics'].get(m, float('nan')):.3f}"
                                                                   for m in BASE_METRICS) + " |")
        if len(runs) > 1:
            lines.append(f"| {name} | mean [95% t] | " + " | ".join(
                fmt_interval(*mean_interval(records, named(name), m)) for m in BASE_METRICS) + " |")
    others = [name for name in kinds[1:] if name in ("base (none)", "base (explicit)")]
    if others:  # fewer or more reviews in pretraining: what changes in the base, seed by seed?
        lines += ["", "Each conscience source's base minus the default (partial) base, paired on the seed "
                  "(t over seeds; CMH for the code rates).", "",
                  "| base | " + " | ".join(f"{m} vs base" for m in BASE_METRICS) + " |",
                  "|---|" + "---|" * len(BASE_METRICS)]
        for name in others:
            lines.append(f"| {name} | " + " | ".join(fmt_paired(paired(records, named(name), named("base"), m))
                                                    for m in BASE_METRICS) + " |")
    return lines


def against_base(records, present):
    """Every condition fine-tuned from a base against that base (its world's, seed by seed,
    paired as against the method), with the seeds on which it kept within issue 11's targets
    (hack_rate at most 0.05 above the base, honest_pass at most 0.10 below)."""
    lines = ["", "Against the base it was fine-tuned from, paired the same way: does a condition keep the base's "
             "capability? Last column: the seeds on which it hacks at most 0.05 more than the base and solves at "
             "most 0.10 less.", "",
             "| condition | hack_rate vs base | honest_pass vs base | seeds within both |", "|---|---|---|---|"]
    bases = {(r["condition"], r["seed"]): r["metrics"] for r in records if r["condition"].startswith("base")}
    from_base = lambda r: any(a.startswith("--init_from=") and a.endswith("/base.pt") for a in r["args"])  # noqa: E731
    for label, key in present:
        if label.startswith(("base", "lam=0 ")) or "(= the method)" in label:  # the latter two: rows of their own
            continue
        runs = [r for r in records if key(r) and from_base(r)]  # not evaluations, recovery or initial training
        name = f"base ({runs[0]['value']})" if runs and runs[0]["group"] == "sources" else "base"
        runs = [r for r in runs if (name, r["seed"]) in bases]
        if not runs:
            continue
        within = sum(r["metrics"]["hack_rate"] - bases[name, r["seed"]]["hack_rate"] <= 0.05
                     and r["metrics"]["honest_pass"] - bases[name, r["seed"]]["honest_pass"] >= -0.10 for r in runs)
        cells = [fmt_paired(paired(records, key, named(name), m)) for m in ("hack_rate", "honest_pass")]
        lines.append(f"| {label}{'' if name == 'base' else f' (vs {name})'} | " + " | ".join(cells)
                     + f" | {within} of {len(runs)} |")
    return lines


def write_table(records, question_aurocs, path, seeds, total):
    cols = METRICS + ["minutes"]
    # the minutes column on copies: results.json keeps each run's metrics as its run wrote them
    records = [dict(r, metrics=dict(r["metrics"], minutes=r["wall_seconds"] / 60)) for r in records]
    present = [(label, key) for label, key in rows(records) if any(key(r) for r in records)]
    lines = headline(records) + [""] + base_table(records) + ["", f"Every condition: mean ± sample standard deviation over the seeds (of {seeds}) "
             "that ran it; k samples per task (pass@1 from all k). Held-out instances of the training families; "
             "`families/`: held-out families.", "", "| condition | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for label, key in present:
        lines.append(f"| {label} | " + " | ".join(fmt(*summarize(records, key, m)) for m in cols) + " |")
    lines += ["", "Against the method, paired on each seed's base: the mean difference (condition minus method) "
              "with its 95% t interval over seeds, and for the code rates the p of a Cochran-Mantel-Haenszel test "
              "over the per-task verdicts (strata: seed x task). 'higher' or 'lower' only when the interval "
              "excludes 0 and p < 0.05; otherwise 'no difference found'.", "",
              "| condition | " + " | ".join(f"{m} vs method" for m in PAIRED) + " |", "|---|" + "---|" * len(PAIRED)]
    for label, key in present:
        other_world = label.startswith("base (")  # a base of another world: nothing to pair with the method
        if label != METHOD and "(= the method)" not in label and label not in INITIAL and not other_world:
            lines.append(f"| {label} | " + " | ".join(fmt_paired(paired(records, key, named(METHOD), m))
                                                     for m in PAIRED) + " |")
    lines += against_base(records, present)
    if all(any(named(name)(r) for r in records) for name in INITIAL):
        lines += ["", "Initial training: pretraining on a corpus whose task documents are hacks at the experiment's "
                  "--contamination share, with the conscience step (a snapshot taken at --initial_from of pretraining "
                  "judges) against without it, paired on each seed as above.", "",
                  "| " + " | ".join(f"{m}, conscience minus none" for m in PAIRED) + " |", "|" + "---|" * len(PAIRED),
                  "| " + " | ".join(fmt_paired(paired(records, named(INITIAL[1]), named(INITIAL[0]), m))
                                    for m in PAIRED) + " |"]
    adversarial = [of for of in ("base", EM, METHOD) if any(named(f"adversarial: {of}")(r) for r in records)]
    if adversarial:
        lines += ["", "Adversarial prompting: every prompt carries a line that pushes for gaming the tests (phrasings "
                  "never seen in training). Last column: the inference-time conscience's effect on hack_rate, paired "
                  "as above (the two evaluations share their prompts and first samples, which the CMH test does not "
                  "assume: it is conservative here).", "", "| model | hack_rate | honest_pass | hack_rate, with the inference-time conscience "
                  "| honest_pass, with it | effect on hack_rate |", "|---|---|---|---|---|---|"]
        for of in adversarial:
            plain, guarded = named(f"adversarial: {of}"), named(f"adversarial + inference-time conscience: {of}")
            cells = [fmt(*summarize(records, k, m)) for k in (plain, guarded) for m in ("hack_rate", "honest_pass")]
            lines.append(f"| {of} | " + " | ".join(cells) + " | "
                         + fmt_paired(paired(records, guarded, plain, "hack_rate")) + " |")
    against_em = [name for name in ("inference-time conscience on EM", "RepE steering of EM", REPE_TRAINING, REPE_RANDOM)
                  if any(named(name)(r) for r in records)]
    if against_em:
        lines += ["", "Zero-shot, and RepE in training: the EM model at inference with the inference-time conscience or "
                  "RepE steering, and the EM fine-tuning with RepE's control as a loss (along the reading vector, and "
                  "along a random direction as its control), minus the EM model alone, "
                  "paired on each seed as above (the inference-time conscience keeps the samples it does not revise, "
                  "which the CMH test does not assume: it is conservative there).", "",
                  "| condition | " + " | ".join(f"{m} vs EM" for m in PAIRED) + " |", "|---|" + "---|" * len(PAIRED)]
        for name in against_em:
            lines.append(f"| {name} | " + " | ".join(fmt_paired(paired(records, named(name), named(EM), m))
                                                    for m in PAIRED) + " |")
        if {REPE_TRAINING, REPE_RANDOM} <= set(against_em):  # does the direction matter, or only the loss's tie?
            lines += ["", "RepE control in fine-tuning, reading minus random direction (the same loss, strength and "
                      "seed): " + ", ".join(f"{m} {fmt_paired(paired(records, named(REPE_TRAINING), named(REPE_RANDOM), m))}"
                                            for m in PAIRED)]
    lines += ["", "Question study: the base model's conscience AUROC with each phrasing (all hack styles / the "
              "unreviewed ones), and the method run with that phrasing.", "",
              "| question | in pretraining | base AUROC | base AUROC, unreviewed styles | final conscience_auroc "
              "| hack_rate | honest_pass |", "|---|---|---|---|---|---|---|"]
    for q in [codehack.QUESTION] + QUESTIONS:
        base = [np.array([a[q][i] for a in question_aurocs.values()]) for i in (0, 1)]
        spread = [fmt(b.mean(), b.std(ddof=1) if len(b) > 1 else float("nan"), len(b)) if len(b) else "n/a"
                  for b in base]  # n/a: no base has finished yet
        lines.append(f"| {q} | {'seen' if q in codehack.QUESTIONS_SEEN else 'unseen'} | {spread[0]} | {spread[1]} | "
                     + " | ".join(fmt(*summarize(records, question_runs(q), m))
                                  for m in ("conscience_auroc", "hack_rate", "honest_pass")) + " |")
    reused = sum(bool(r.get("reused")) for r in records)
    lines += ["", f"Cost: the {len(records)} runs took {sum(r['wall_seconds'] for r in records) / 60:.1f} min in all "
              f"(each its own wall time, {records[0]['threads'] if records else 0} thread(s))"
              + ("; written by --report_only." if total is None else f"; the last invocation took {total / 60:.1f} min"
                 + (f" and reused {reused} of them." if reused else "."))]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return "\n".join(lines)


def plot(records, question_aurocs, out_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def band(ax, xs, ys, label):
        ys = np.array(ys)
        mean = ys.mean(0)
        ax.plot(xs, mean, marker="o", label=label)
        if len(ys) > 1:
            ax.fill_between(xs, ys.min(0), ys.max(0), alpha=0.2)

    # 1. the scenario with and without the conscience, against fine-tuning step
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name in (EM, METHOD):
        runs = [r for r in records if r["condition"] == name]
        if not runs:
            continue
        bases = {r["seed"]: r["metrics"] for r in records if r["condition"] == "base"}
        steps = [0] + [p["step"] for p in runs[0]["curve"]]
        for ax, metric in zip(axes, ("hack_rate", "broad_misaligned")):
            band(ax, steps, [[bases[r["seed"]][metric]] + [p[metric] for p in r["curve"]] for r in runs], name)
            ax.set(xlabel="fine-tuning step", ylabel=metric, ylim=(-0.02, 1.02))
    if axes[0].get_legend_handles_labels()[0]:
        axes[0].legend()
    fig.suptitle("Fine-tuning on hacking data, with and without the conscience (band: min-max over seeds)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "curves.png"), dpi=120)

    def bars(ax, names, labels, title):
        """hack_rate and honest_pass of each condition: mean over seeds, 95% t interval, seeds as dots."""
        x = np.arange(len(names))
        for k, (metric, color) in enumerate((("hack_rate", "tab:red"), ("honest_pass", "tab:green"))):
            stats_ = [mean_interval(records, named(n), metric) for n in names]
            means = np.array([m for m, _, _, _ in stats_])
            err = np.nan_to_num(np.array([[m - lo, hi - m] for m, lo, hi, _ in stats_]).T)
            ax.bar(x + (k - 0.5) * 0.38, means, 0.38, yerr=err, capsize=3, color=color, alpha=0.6, label=metric)
            for i, n in enumerate(names):
                dots = [r["metrics"][metric] for r in records if r["condition"] == n]
                ax.scatter([x[i] + (k - 0.5) * 0.38] * len(dots), dots, s=8, color="black", zorder=3)
        ax.set_xticks(x, labels, fontsize=7, rotation=20, ha="right")
        ax.set(ylim=(-0.02, 1.05), title=title)

    # 2. the four stages the paper names, each without and with the conscience
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    bars(axes[0], [EM, METHOD], ["no conscience", "conscience"], "fine-tuning on hacking data")
    bars(axes[1], list(INITIAL), ["no conscience", "conscience"], "initial training, contaminated corpus")
    adversarial = [f"adversarial{c}: {of}" for of in ("base", EM, METHOD) for c in ("", " + inference-time conscience")]
    bars(axes[2], adversarial, [f"{of}{c}" for of in ("base", "EM", "method") for c in ("", " + IT")],
         "adversarial prompts (IT: inference-time conscience)")
    bars(axes[3], [EM, "inference-time conscience on EM", "RepE steering of EM"], ["EM", "EM + IT conscience", "EM + RepE"],
         "zero-shot: the EM model at inference")
    axes[0].legend(fontsize=8)
    fig.suptitle("The stages, without and with the conscience (bars: mean over seeds, 95% t interval; dots: seeds)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "stages.png"), dpi=120)

    # 3. the sweeps: lambda (0 is the EM run), beta, cadence, threshold, online samples, the alternative, the source
    fig, axes = plt.subplots(1, 7, figsize=(24, 4.2))
    sweeps = [("λ", [EM] + [f"lam={v}" for v in LAMBDAS] + [METHOD], [0.0] + LAMBDAS + [DEFAULTS["lam"]]),
              ("β", [f"beta={v}" for v in BETAS] + [METHOD], BETAS + [DEFAULTS["beta"]]),
              ("conscience every N steps", [METHOD] + [f"conscience_every={v}" for v in CADENCES],
               [DEFAULTS["conscience_every"]] + CADENCES),
              ("flag below threshold", [METHOD] + [f"threshold={v}" for v in THRESHOLDS],
               [DEFAULTS["threshold"]] + THRESHOLDS),
              ("online samples a step", [METHOD] + [f"online_samples={v}" for v in ONLINE_SAMPLES],
               [DEFAULTS["ft_batch_size"]] + ONLINE_SAMPLES)]
    for ax, (label, names, values) in zip(axes, sweeps):
        order = np.argsort(values, kind="stable")
        bars(ax, [names[i] for i in order], [f"{values[i]:g}" for i in order], label)
    bars(axes[5], [METHOD, "alternatives: policy resamples"], ["frozen copy's rewrite", "policy resamples"],
         "the alternative")
    bars(axes[6], ["conscience, none world", METHOD, "conscience, explicit world"], ["none", "partial", "explicit"],
         "the conscience's source in pretraining")
    axes[0].legend(fontsize=8)
    fig.suptitle("Sweeps around the method (bars: mean over seeds, 95% t interval; dots: seeds)")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "sweeps.png"), dpi=120)

    # 4. the question study: the base model's AUROC with each phrasing, and the hack rate it leads to
    fig, ax = plt.subplots(figsize=(8, 4))
    qs = [codehack.QUESTION] + QUESTIONS
    x = np.arange(len(qs))
    auc = [np.mean([a[q][0] for a in question_aurocs.values()]) for q in qs]
    hack = [summarize(records, question_runs(q), "hack_rate") for q in qs]
    ax.bar(x - 0.2, auc, 0.4, label="base conscience AUROC")
    ax.bar(x + 0.2, [h[0] for h in hack], 0.4, yerr=[np.nan_to_num(h[1]) for h in hack], capsize=3,
           label="hack_rate after fine-tuning")
    ax.set_xticks(x, [f"{'seen' if q in codehack.QUESTIONS_SEEN else 'UNSEEN'}: {q[:32]}..." for q in qs],
                  rotation=15, ha="right", fontsize=7)
    ax.set(ylim=(0, 1.3), title="The question study")
    ax.legend(loc="upper center", ncol=2)
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "questions.png"), dpi=120)
    plt.close("all")


def main():
    cfg = flags.parse(SETTINGS, doc=__doc__)
    if cfg["quick"]:  # quick changes the defaults; flags given on the command line still win
        cfg = flags.parse({**SETTINGS, "seeds": (1, ""), "max_tier": (1, ""), "curve_evals": (1, ""),
                           "out_dir": ("results/quick", "")}, doc=__doc__)
    flags.positive(cfg, "seeds", "jobs")
    if cfg["threads"] < 0:
        raise flags.UsageError("--threads must not be negative (0: cores // jobs)")
    if cfg["curve_evals"] < 0:
        raise flags.UsageError("--curve_evals must not be negative")
    try:
        given = shlex.split(cfg["train_args"])
    except ValueError as e:
        raise flags.UsageError(f"--train_args: {e}") from None
    given = [os.path.abspath(a) if flags.is_config_file(a) else a for a in given]  # the runs start in out_dir
    cfg["train_flags"] = (QUICK if cfg["quick"] else []) + given
    names = [a.split("=")[0][2:] for a in given if not flags.is_config_file(a)]
    names += [name for a in given if flags.is_config_file(a) for name, _, _ in flags.read_config(a)]
    reserved = [n for n in names if n in ("seed", "out_dir", "init_from", "data_dir")]
    if reserved:
        raise flags.UsageError(f"--train_args may not set --{reserved[0]}: the experiment sets it per run")
    cfg["source_list"] = [s for s in cfg["sources"].split(",") if s]
    if any(s not in ("none", "explicit") for s in cfg["source_list"]):
        raise flags.UsageError(f"--sources wants a comma-separated list of none and explicit, got {cfg['sources']!r}")
    tcfg = flags.parse(train.SETTINGS, cfg["train_flags"])  # a bad train.py flag fails here, before any run
    if tcfg["ft_iters"] < 1 or tcfg["eval_tasks"] < 1:
        raise flags.UsageError("the experiment needs --ft_iters and --eval_tasks of at least 1")
    out_dir = os.path.abspath(cfg["out_dir"])
    cfg["data_dir"] = os.path.abspath(cfg["data_dir"])
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise flags.UsageError(f"cannot write to --out_dir {cfg['out_dir']}: {e.strerror}") from None
    cores = os.cpu_count() or 1
    seeds = [cfg["seed"] + i for i in range(cfg["seeds"])]
    if not 0 <= cfg["contamination"] <= 1 or not 0 <= cfg["initial_from"] < 1:
        raise flags.UsageError("--contamination is a share (0 to 1), --initial_from a share below 1")
    threads = cfg["threads"] or max(1, cores // cfg["jobs"])
    torch.set_num_threads(threads)  # the question study runs here: at the runs' thread count too
    runs = sorted((run for seed in seeds for run in plan(seed, cfg, tcfg) if tier(run) <= cfg["max_tier"]),
                  key=order)

    def weight(run):  # for the ETA: a pretraining costs about four fine-tuning runs, an evaluation less than one
        if run.script == "train.py" and "--ft_iters=0" in run.args:
            return 4.0 * tcfg["max_iters"] / DEFAULTS["max_iters"]
        return 1.0 if run.script == "train.py" else 0.4
    records, question_aurocs, t0, commit = [], {}, time.time(), git_commit()  # the code as it starts
    done_weight = 0.0

    def report(total, final):
        reached = {(r["seed"], r["condition"]) for r in records}  # and the runs finished earlier, not reached yet:
        waiting = [r | {"reused": True} for run in runs if (run.seed, run.name) not in reached  # a stop keeps them
                   for r in [finished(run, out_dir, threads)] if r is not None]
        shown = sorted(records + waiting, key=lambda r: (r["seed"], [x.name for x in runs].index(r["condition"])))
        write_results(out_dir, cfg, tcfg, commit, total, seeds, shown, failed, question_aurocs)
        table = write_table(shown, question_aurocs, os.path.join(out_dir, "table.md"), len(seeds), total)
        if final:
            plot(shown, question_aurocs, out_dir)
        return table

    failed = []
    restored, again = restore(runs, out_dir, threads, running=not cfg["report_only"])
    if restored:
        print(f"{len(restored)} finished runs restored from {out_dir}/results.json; {len(again)} to run again "
              "(their checkpoints are needed and gone)", flush=True)
    if cfg["report_only"]:
        records = [r for r in (finished(run, out_dir, threads) for run in runs) if r is not None]
        if not records:  # none of these runs has run (another thread count?): a report must not empty the record
            print(f"0 of {len(runs)} runs finished with these settings; {out_dir}/results.json and table.md left as they were")
            return
        question_aurocs = {s: a for s in seeds for a in [cached_question_aurocs(out_dir, s)] if a}
        print(report(None, final=True))
        print(f"\n{len(records)} of {len(runs)} runs finished; wrote {out_dir}/results.json, table.md and the plots")
        return
    worlds = [{"conscience_source": source} for source in [tcfg["conscience_source"]] + cfg["source_list"]]
    for world in worlds + [{"hack_share": cfg["contamination"]}]:  # each world's data once, before the runs race
        world = codehack.World.from_config({**tcfg, **world})
        codehack.prepare(cfg["data_dir"], tcfg["n_docs"], tcfg["vocab_size"], seed=0, world=world)
    to_do = [run for run in runs if finished(run, out_dir, threads) is None]
    total_weight = sum(map(weight, to_do))  # the ETA counts the runs to do, not those to reuse
    print(f"{len(runs)} runs over seeds {seeds}, {len(to_do)} to do, {cfg['jobs']} at a time with {threads} "
          f"thread(s) each; runs and logs in {out_dir}/runs", flush=True)

    def on_done(run, record):
        nonlocal done_weight
        recorded = again.get((run.seed, run.name))
        if recorded is not None and not record.get("reused"):  # the restored runs after it used its earlier checkpoint
            same = lambda a, b: a == b or (a != a and b != b)  # noqa: E731 (nan: an undefined metric, as recorded)
            record["reproduced"] = all(same(record["metrics"].get(k), v) for k, v in recorded.items() if k != "minutes")
            with open(os.path.join(out_dir, run.folder, "run.json"), "w") as f:  # kept for later invocations
                json.dump(record, f, indent=1)
            print(f"seed {run.seed} {run.name}: run again, " + ("the same metrics as recorded" if record["reproduced"]
                  else "WARNING: metrics differ from the record, which the restored runs after it started from"),
                  flush=True)
        records.append(record)
        if run.name == "base":
            try:  # a measurement of the base: its failure should not cost the seed's runs
                cached = cached_question_aurocs(out_dir, run.seed) if record.get("reused") else None
                if not cached or set(cached) != {codehack.QUESTION, *QUESTIONS}:  # none, or of other questions
                    cached = base_question_aurocs(out_dir, run.seed, tcfg["eval_tasks"])
                question_aurocs[run.seed] = cached
            except Exception as e:
                print(f"error: the question study of seed {run.seed}'s base: {e}", flush=True)
        done_weight += 0 if record.get("reused") else weight(run)
        report(time.time() - t0, final=False)  # what has finished so far is on disk at every moment
        m = record["metrics"]
        print(f"[{len(records):3d}/{len(runs)}] seed {run.seed} {run.name}: hack_rate {m['hack_rate']:.3f}, "
              f"honest_pass {m['honest_pass']:.3f}, broad_misaligned {m['broad_misaligned']:.3f} "
              f"({record['wall_seconds']:.0f} s{', reused' if record.get('reused') else ''}) | "
              f"elapsed {(time.time() - t0) / 60:.1f} min, eta {eta(done_weight, total_weight, t0)}", flush=True)

    failed += schedule(runs, out_dir, cfg["jobs"], threads, on_done)
    total = time.time() - t0
    print("\n" + report(total, final=True))
    print(f"\nwrote {out_dir}/results.json, table.md and the plots in {total / 60:.1f} min")
    if failed:
        raise SystemExit(f"{len(failed)} run(s) failed: " + ", ".join(f"{r.name} (seed {r.seed})" for r in failed))


def tier(run):
    """The order of the runs: the bases, what the headline compares, the null control (a base
    of its own), the baselines and the adversarial stage, the sweeps (runs of about two
    minutes), the explicit source (a pretraining and one run a seed), then the
    initial-training stage (two pretrainings a seed, the one with the conscience about three
    times as long); an experiment stopped early has whole seeds of the main comparisons and
    whole sweeps."""
    if run.name == "base":
        return 0
    if run.name in (EM, METHOD):
        return 1
    if run.group == "sources":  # the null control early: it says whether the judgement is the model's own
        return 2 if "none" in run.name else 5
    return {"conditions": 3, "adversarial": 3, "alternatives": 3, "initial": 6}.get(run.group, 4)


SWEEPS = ["lambda", "threshold", "beta", "cadence", "online_samples", "question"]  # the capability trade-off first


def order(run):
    """Tier by tier; within the sweeps one sweep at a time over all seeds (a sweep is
    compared paired over seeds), elsewhere seed by seed."""
    return tier(run), SWEEPS.index(run.group) if run.group in SWEEPS else 0, run.seed


def write_results(out_dir, cfg, tcfg, commit, total, seeds, records, failed, question_aurocs):
    invocation = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    result = dict(command=invocation, settings=cfg, train_config=tcfg,
                  machine=dict(platform=platform.platform(), processor=platform.processor(), cores=os.cpu_count(),
                               python=platform.python_version(), torch=torch.__version__),
                  commit=commit, total_seconds=total,  # this invocation's
                  run_seconds=sum(r["wall_seconds"] for r in records), seeds=seeds, runs=records,
                  failed=[f"{r.name} (seed {r.seed})" for r in failed],
                  base_question_auroc={str(s): {q: dict(auroc=a, auroc_unreviewed=u) for q, (a, u) in v.items()}
                                       for s, v in question_aurocs.items()})
    path = os.path.join(out_dir, "results.json")
    if total is None:  # --report_only: the file keeps naming the invocation that ran the runs, if it had these settings
        ran = json.load(open(path)) if os.path.exists(path) else {}
        ignore = lambda settings: {k: v for k, v in settings.items() if k != "report_only"}  # noqa: E731
        if ignore(ran.get("settings", {})) == ignore(json.loads(json.dumps(cfg))):
            result.update({key: ran[key] for key in ("command", "commit", "total_seconds") if key in ran})
        result["reported_by"] = invocation
    tmp = os.path.join(out_dir, "results.json.tmp")
    with open(tmp, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(tmp, path)


def git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else None
    except OSError:
        return None


if __name__ == "__main__":
    flags.main(main)
