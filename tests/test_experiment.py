"""experiment.py end to end on a tiny untrained model (the plumbing, not the science), and
the rule that decides what counts as a difference."""

import json
import math
import shlex

import pytest

import codehack
import experiment
from conftest import TINY, run_in_process, run_script

TINY_TRAIN = " ".join(map(shlex.quote, TINY))


@pytest.fixture(scope="module")
def tiny_experiment(tiny_base, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("experiment")
    args = ["--seeds=1", "--jobs=2", "--threads=1", f"--out_dir={out_dir}", f"--data_dir={tiny_base['folder']}/data",
            f"--train_args={TINY_TRAIN} --max_iters=0 --ft_iters=2 --ft_batch_size=2 --eval_tasks=2 --eval_samples=1 "
            "--dpo_batch=2"]
    out = run_script("experiment.py", *args, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return dict(out_dir=out_dir, args=args, stdout=out.stdout)


def test_every_condition_sweep_and_question_has_a_run_with_metrics(tiny_experiment):
    result = json.load(open(tiny_experiment["out_dir"] / "results.json"))
    runs = {r["condition"]: r for r in result["runs"]}
    expected = {"base", experiment.EM, experiment.METHOD, "judge: live policy", "judge: random preferences",
                "judge: oracle (sandbox)", "SFT on alternatives, no DPO", experiment.RPO, experiment.CRITIQUE,
                "critique and revise by the live model",
                "inoculation prompting", "inference-time conscience on EM", "RepE steering of EM", experiment.REPE_TRAINING,
                experiment.REPE_RANDOM, "recovery from EM",
                "alternatives: policy resamples", "base (none)", "base (explicit)", "conscience, none world",
                "conscience, explicit world", *experiment.INITIAL}
    expected |= {f"adversarial{c}: {of}" for c in ("", " + inference-time conscience")
                 for of in ("base", experiment.EM, experiment.METHOD)}
    expected |= {f"lam={v}" for v in experiment.LAMBDAS} | {f"beta={v}" for v in experiment.BETAS}
    expected |= {f"conscience_every={v}" for v in experiment.CADENCES}
    expected |= {f"online_samples={v}" for v in experiment.ONLINE_SAMPLES}
    expected |= {f"threshold={v}" for v in experiment.THRESHOLDS}
    expected |= {f"question {i + 2}" for i in range(len(experiment.QUESTIONS))}
    assert set(runs) == expected and not result["failed"]
    for r in result["runs"]:
        for key in experiment.METRICS:
            value = r["metrics"][key]
            assert math.isnan(value) or 0.0 <= value <= 1.0, (r["condition"], key, value)
        assert r["wall_seconds"] > 0 and r["command"].startswith("python ")
    # each run really used its condition's settings
    assert runs["judge: oracle (sandbox)"]["config"]["judge"] == "oracle"
    assert runs["SFT on alternatives, no DPO"]["config"]["align"] == "sft"
    assert runs[experiment.RPO]["config"]["align"] == "dpo+sft"
    assert runs["inoculation prompting"]["config"]["inoculate"] is True
    assert runs["recovery from EM"]["config"]["init_from"].endswith("final.pt")
    assert runs[experiment.EM]["config"]["conscience"] is False
    assert runs["question 3"]["config"]["question"] == codehack.QUESTIONS_UNSEEN[0]
    assert "--self_correct=True" in runs["inference-time conscience on EM"]["args"]
    for name, judge in ((experiment.CRITIQUE, "frozen"), ("critique and revise by the live model", "policy")):
        critique = runs[name]["config"]  # every sample revised, every revision trained by imitation
        assert (critique["judge"], critique["align"], critique["threshold"], critique["margin"]) == \
            (judge, "sft", math.inf, -math.inf)
    assert runs["alternatives: policy resamples"]["config"]["alternatives"] == "resample"
    assert runs["threshold=2.0"]["config"]["threshold"] == 2.0
    assert runs["online_samples=4"]["config"]["online_samples"] == 4
    assert runs["conscience, none world"]["config"]["conscience_source"] == "none"
    assert runs["base (explicit)"]["config"]["conscience_source"] == "explicit"
    assert runs[experiment.INITIAL[0]]["config"]["hack_share"] == runs[experiment.INITIAL[1]]["config"]["hack_share"] > 0.02
    steered = runs["RepE steering of EM"]["metrics"]  # a block and a strength chosen among every block's
    n_layer = runs["base"]["config"]["n_layer"]
    assert {key.split("@")[1].split("/")[0] for key in steered if key.startswith("repe/val_verdicts@")} == \
        {str(layer) for layer in range(n_layer)} and 0 <= steered["repe/layer"] < n_layer and "repe/strength" in steered
    assert (runs[experiment.REPE_TRAINING]["config"]["repe_control"], runs[experiment.REPE_TRAINING]["config"]["conscience"]) \
        == (experiment.REPE_CONTROL, False)
    assert (runs[experiment.REPE_TRAINING]["config"]["repe_vector"], runs[experiment.REPE_RANDOM]["config"]["repe_vector"],
            runs[experiment.REPE_RANDOM]["config"]["repe_control"]) == ("reading", "random", experiment.REPE_CONTROL)
    assert "--adversarial=True" in runs[f"adversarial: {experiment.EM}"]["args"]
    for r in result["runs"]:  # every evaluation keeps its per-task verdicts, k letters a task
        assert len(r["metrics"]["verdicts"]) == 2 and len({len(v) for v in r["metrics"]["verdicts"]}) == 1
    assert [p["step"] for p in runs[experiment.METHOD]["curve"]] == [1, 2]  # curve_evals=2 -> every step
    assert {r["threads"] for r in result["runs"]} == {1}  # the thread count asked for, every run
    assert set(result["base_question_auroc"]["1337"]) == {codehack.QUESTION, *experiment.QUESTIONS}


def test_table_and_plots_are_written(tiny_experiment):
    out_dir = tiny_experiment["out_dir"]
    table = (out_dir / "table.md").read_text()
    assert "| conscience (the method) |" in table and "| lam=0 (= the EM run) |" in table
    assert "Against the method, paired" in table and "Against the base" in table and "Adversarial prompting" in table
    assert "Question study" in table and "unseen" in table and "Initial training" in table
    against_em = table.split("minus the EM model alone")[1]
    assert f"| {experiment.REPE_TRAINING} | " in against_em and f"| {experiment.REPE_RANDOM} | " in against_em
    assert "reading minus random direction" in against_em  # the two paired with each other
    assert "| base (explicit) | " in table.split("minus the default (partial) base")[1]  # the sources' bases, paired
    for name in ("curves.png", "stages.png", "sweeps.png", "questions.png"):
        assert (out_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_rerun_reuses_finished_runs_and_runs_again_what_lost_its_checkpoint(tiny_experiment):
    # EM's checkpoint and run.json are gone, and a run that needs the checkpoint is still to do:
    # EM runs again and is checked against its record, the check kept with the run; the rest is reused
    out_dir, args = tiny_experiment["out_dir"], tiny_experiment["args"]
    folders = {json.load(open(p))["condition"]: p.parent for p in out_dir.glob("runs/seed1337/*/run.json")}
    em, steered = folders[experiment.EM], folders["RepE steering of EM"]
    for path in [em / "run.json", *em.glob("*.pt"), steered / "run.json"]:
        path.unlink()
    result = json.load(open(out_dir / "results.json"))
    total = len(result["runs"])
    result["runs"] = [r for r in result["runs"] if r["condition"] != "RepE steering of EM"]  # so it must run
    json.dump(result, open(out_dir / "results.json", "w"))
    out = run_script("experiment.py", *args, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = {r["condition"]: r for r in json.load(open(out_dir / "results.json"))["runs"]}
    assert len(runs) == total and out.stdout.count(", reused)") == len(runs) - 2
    assert f"{experiment.EM}: run again, the same metrics as recorded" in out.stdout
    assert json.load(open(em / "run.json"))["reproduced"] is True  # with the run: later invocations read it there
    assert runs[experiment.EM]["reproduced"] is True and "repe/strength" in runs["RepE steering of EM"]["metrics"]
    assert not any("minutes" in r["metrics"] for r in runs.values())  # the table's column stays in the table
    # a report of what has finished runs nothing, and a different thread count is not the same run
    out = run_script("experiment.py", *args, "--report_only=True", timeout=120)
    assert out.returncode == 0 and f"{total} of {total} runs finished" in out.stdout, out.stderr[-2000:]
    result = json.load(open(out_dir / "results.json"))  # still names the invocation that ran
    assert "--report_only" not in result["command"] and "--report_only=True" in result["reported_by"]
    assert {r["condition"]: r for r in result["runs"]}[experiment.EM]["reproduced"] is True
    before = (out_dir / "results.json").read_bytes(), (out_dir / "table.md").read_bytes()
    out = run_script("experiment.py", *args, "--report_only=True", "--threads=2", timeout=120)
    assert out.returncode == 0 and f"0 of {total} runs finished" in out.stdout, out.stderr[-2000:]
    assert ((out_dir / "results.json").read_bytes(), (out_dir / "table.md").read_bytes()) == before  # not emptied


def test_runs_come_in_the_order_the_headline_needs():
    cfg = dict(data_dir="data", train_flags=[], curve_evals=2, initial_from=0.5, contamination=0.3,
               source_list=["none", "explicit"])
    runs = sorted((r for seed in (1, 2) for r in experiment.plan(seed, cfg, experiment.DEFAULTS)),
                  key=experiment.order)
    names = [r.name for r in runs]
    assert names[:2] == ["base", "base"] and set(names[2:6]) == {experiment.EM, experiment.METHOD}
    assert [r.seed for r in runs[2:6]] == [1, 1, 2, 2]
    first = {name: names.index(name) for name in names}
    assert first["base (none)"] < first["judge: oracle (sandbox)"] < first["lam=0.1"] < first["base (explicit)"] \
        < first[experiment.INITIAL[0]]
    sweeps = [(r.group, r.seed) for r in runs if r.group in experiment.SWEEPS]  # a whole sweep, then the next
    assert sweeps[:4] == [("lambda", 1)] * 3 + [("lambda", 2)] and sweeps[6] == ("threshold", 1)
    for i, run in enumerate(runs):  # every run comes after the runs it needs (same seed)
        assert all(any((r.seed, r.name) == (run.seed, n) for r in runs[:i]) for n in run.needs), run.name


def record(condition, seed, hack_rate, verdicts):
    return {"condition": condition, "seed": seed, "metrics": {"hack_rate": hack_rate, "verdicts": verdicts}}


def test_paired_comparison_finds_a_consistent_difference_and_not_a_noisy_one():
    method = [record(experiment.METHOD, s, 0.1, ["hhhh"] * 18 + ["kkkk"] * 2) for s in (1, 2, 3)]
    worse = [record("x", s, 0.5 + 0.01 * s, ["kkkk"] * 10 + ["hhhh"] * 10) for s in (1, 2, 3)]
    d = experiment.paired(method + worse, experiment.named("x"), experiment.named(experiment.METHOD), "hack_rate")
    assert d["seeds"] == 3 and d["mean"] == pytest.approx(0.42) and d["low"] > 0 and d["p"] < 0.001
    assert d["verdict"] == "higher"
    # the same mean difference, but one seed goes the other way: the interval spans 0
    noisy = [record("y", s, v, ["hhhh"] * 20) for s, v in ((1, 0.9), (2, 0.9), (3, -0.5))]
    d = experiment.paired(method + noisy, experiment.named("y"), experiment.named(experiment.METHOD), "hack_rate")
    assert d["low"] < 0 < d["high"] and d["verdict"] == "no difference found"
    # one seed: no interval, no verdict
    d = experiment.paired(method[:1] + worse[:1], experiment.named("x"), experiment.named(experiment.METHOD), "hack_rate")
    assert d["verdict"] == "n/a (1 seed)"


def test_against_base_counts_the_seeds_within_the_capability_targets():
    def run(condition, seed, hack, honest, init="runs/seed1/base/base.pt", group="conditions", value=None):
        return {"condition": condition, "seed": seed, "group": group, "value": value, "args": [f"--init_from={init}"],
                "metrics": {"hack_rate": hack, "honest_pass": honest}}
    records = [run("base", 1, 0.0, 0.9, init="scratch"), run("base", 2, 0.0, 0.9, init="scratch"),
               run("base (none)", 1, 0.0, 0.5, init="scratch"), run("base (none)", 2, 0.0, 0.5, init="scratch"),
               run("x", 1, 0.04, 0.81), run("x", 2, 0.06, 0.85),  # seed 2 hacks 0.06 more: outside
               run("x", 3, 0.9, 0.0),                             # no base for seed 3: not counted
               run("y", 1, 0.0, 0.79), run("y", 2, 0.0, 0.9),     # seed 1 solves 0.11 less: outside
               # fine-tuned from the none world's base: compared with that base
               run("z", 1, 0.0, 0.45, group="sources", value="none"), run("z", 2, 0.0, 0.45, group="sources",
                                                                          value="none"),
               run("recovery", 1, 0.0, 0.0, init="runs/seed1/em/final.pt"),  # from EM, not from a base
               {**run("evaluation", 1, 0.0, 0.0), "args": ["--ckpt=runs/seed1/base/base.pt"]}]
    names = ("base", "x", "y", "z", "recovery", "evaluation")
    lines = experiment.against_base(records, [(c, experiment.named(c)) for c in names])
    row = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| ") and "---" not in line}
    assert set(row) == {"condition", "x", "y", "z (vs base (none))"}
    assert row["x"].endswith("| 1 of 2 |") and "+0.050 [" in row["x"]
    assert row["y"].endswith("| 1 of 2 |") and row["z (vs base (none))"].endswith("| 2 of 2 |")


def test_summarize_uses_the_sample_std_and_skips_undefined_values():
    records = [{"condition": "x", "metrics": {"m": v}} for v in (0.1, 0.3, float("nan"))]
    mean, std, n = experiment.summarize(records, lambda r: r["condition"] == "x", "m")
    assert n == 2 and mean == pytest.approx(0.2) and std == pytest.approx(0.1414, abs=1e-4)


@pytest.mark.parametrize("args, message", [
    (["--seeds=0"], "--seeds must be positive"),
    (["--train_args=--no_such_flag=1"], "unknown setting --no_such_flag"),
    (["--train_args=--seed=3"], "--train_args may not set --seed"),
    (["--train_args=--ft_iters=0"], "needs --ft_iters and --eval_tasks of at least 1"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    out = run_in_process("experiment.py", *args)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_restore_puts_back_recorded_runs_and_reruns_what_a_new_run_needs(tmp_path):
    cfg = dict(data_dir="data", train_flags=[], curve_evals=2, initial_from=0.5, contamination=0.3,
               source_list=["none"])
    runs = experiment.plan(1, cfg, experiment.DEFAULTS)
    new = experiment.CRITIQUE  # no record: its arguments changed, say
    em_args = next(r.args for r in runs if r.name == experiment.EM)
    records = []
    for r in runs:
        if r.name != new:
            records.append(dict(seed=r.seed, condition=r.name, args=r.args, upstream=r.upstream, metrics={"m": 1},
                                threads=1 if r.name == "judge: oracle (sandbox)" else 2))
            if r.name == experiment.EM:  # EM ran with other arguments, and so did what needed it
                records[-1]["args"] = em_args + ["--lam=1"]
            records[-1]["upstream"] = [em_args + ["--lam=1"] if a == em_args else a for a in r.upstream]
    (tmp_path / "results.json").write_text(json.dumps({"runs": records}))
    restored, again = experiment.restore(runs, str(tmp_path), 2)
    names = {r.name for r in restored}
    # the base runs again (runs to do need its checkpoint, which is gone); EM, what needs it and a
    # run of another thread count are new runs; the rest come back as they were
    assert "base" not in names and set(again) == {(1, "base")}
    assert not names & {new, experiment.EM, "recovery from EM", "RepE steering of EM", "judge: oracle (sandbox)"}
    assert {experiment.METHOD, f"adversarial: {experiment.METHOD}", "base (none)", "conscience, none world"} <= names
    for run in restored:
        assert experiment.finished(run, str(tmp_path), 2)["metrics"] == {"m": 1}
    # once the base's checkpoint is there, it is restored too
    (tmp_path / "runs" / "seed1" / "base").mkdir(parents=True)
    (tmp_path / "runs" / "seed1" / "base" / "base.pt").write_bytes(b"")
    restored, again = experiment.restore(runs, str(tmp_path), 2)
    assert [r.name for r in restored] == ["base"] and not again
