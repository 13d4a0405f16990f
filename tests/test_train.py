"""The scripts end to end on tiny settings, and their answers to bad input."""

import json
import shutil

import pytest
import torch

import checkpoint
from conftest import TINY, run_in_process, run_script


def test_pretraining_writes_a_base_checkpoint_and_a_summary(tiny_base):
    out = tiny_base["folder"] / "out"
    assert (out / "base.pt").exists() and (out / "ckpt.pt").exists()
    base = tiny_base["summary"]["results"]["base"]
    for key in ("honest_pass", "hack_rate", "wrong_rate", "broad_misaligned", "conscience_auroc", "val_loss"):
        assert 0.0 <= base[key] or key == "val_loss"
    records = [json.loads(line) for line in open(out / "metrics.jsonl")]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < losses[0] - 2.0  # it learned something


def test_online_stage_runs_end_to_end_from_a_saved_base(tiny_base, tmp_path):
    out = run_script("train.py", *TINY, f"--init_from={tiny_base['ckpt']}", "--ft_iters=3", "--ft_batch_size=4",
                     "--threshold=100", "--margin=-100", f"--out_dir={tmp_path}/ft",
                     f"--data_dir={tiny_base['folder']}/data")
    assert out.returncode == 0, out.stderr[-2000:]
    records = [json.loads(line) for line in open(tmp_path / "ft" / "metrics.jsonl")]
    steps = [r for r in records if r.get("stage") == "finetune"]
    assert len(steps) == 3
    # threshold 100 flags everything and margin -100 keeps every pair: DPO must have run
    for key in ("loss/sft", "loss/dpo", "rewards/chosen", "rewards/rejected", "rewards/margins",
                "rewards/accuracies", "logps/chosen", "logps/rejected", "conscience/flag_rate",
                "conscience/score_margin", "conscience/pairs"):
        assert key in steps[0], key
    assert abs(steps[0]["loss/dpo"] - 0.6931) < 1e-3  # policy == reference at the first step
    # step 1 trains again on the pairs of step 0, which DPO has just pushed apart (next-token
    # training alone leaves their margin near 0 or below)
    assert steps[1]["rewards/margins"] > 0.1 and steps[1]["loss/dpo"] < 0.65
    assert steps[0]["conscience/flag_rate"] == 1.0
    summary = json.load(open(tmp_path / "ft" / "summary.json"))
    assert set(summary["results"]) == {"base", "fine-tuned, conscience"}
    assert (tmp_path / "ft" / "final.pt").exists()


@pytest.mark.parametrize("args, message", [
    (["--no_such_flag=1"], "unknown setting --no_such_flag"),
    (["--max_iters=ten"], "--max_iters wants an integer"),
    (["--batch_size=0"], "--batch_size must be positive"),
    (["--conscience=maybe"], "--conscience wants True or False"),
    (["--judge=nobody"], "--judge wants frozen, policy, random or oracle"),
    (["--align=ppo"], "--align wants dpo, sft or dpo+sft"),
    (["--repe_vector=north"], "--repe_vector wants reading or random"),
    (["--online_samples=-1"], "--online_samples must not be negative"),
    (["--hack_share=1.5"], "hack_share is a share between 0 and 1"),
    (["--conscience_from=5000"], "--conscience_from is a pretraining step"),
    (["--dtype=fp8"], "--dtype wants auto, float32 or bfloat16"),
    (["--init_from=/nonexistent/base.pt"], "no checkpoint at /nonexistent/base.pt"),
    (["--out_dir=/proc/forbidden"], "cannot write to --out_dir"),
    (["positional"], "arguments look like --name=value"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    out = run_in_process("train.py", *args)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_help_lists_every_setting():
    import train
    out = run_script("train.py", "--help")
    assert out.returncode == 0
    assert all(f"--{name}" in out.stdout for name in train.SETTINGS)



def test_learning_rate_warms_up_then_decays_to_min_lr():
    import train
    cfg = dict(warmup_iters=100, max_iters=1000, learning_rate=6e-3, min_lr=6e-4)
    lrs = [train.lr_at(it, cfg) for it in range(cfg["max_iters"])]
    assert lrs[0] < lrs[50] < lrs[99] == pytest.approx(6e-3)  # linear warmup to the peak
    tail = lrs[99:]
    assert all(a >= b for a, b in zip(tail, tail[1:])) and tail[-1] == pytest.approx(6e-4, rel=1e-3)


def test_initial_training_adds_the_conscience_to_pretraining_judged_by_a_snapshot(tiny_base, tmp_path):
    # resume the tiny base's pretraining for three more steps, the conscience from the second;
    # once with lam 3 and once with lam 0 (the same samples and pairs, no gradient from them)
    weights = {}
    for lam in (3, 0):
        out_dir = tmp_path / f"lam{lam}"
        shutil.copytree(tiny_base["folder"] / "out", out_dir)
        out = run_script("train.py", *TINY, "--init_from=resume", "--max_iters=403", "--conscience_from=401",
                         "--conscience_every=1", "--log_interval=1", "--ft_iters=0", "--eval_tasks=0",
                         "--ft_batch_size=4", "--online_samples=3", "--threshold=100", "--margin=-100", f"--lam={lam}",
                         f"--out_dir={out_dir}", f"--data_dir={tiny_base['folder']}/data")
        assert out.returncode == 0, out.stderr[-2000:]
        weights[lam] = checkpoint.load(str(out_dir / "base.pt"))["model"]
    records = [json.loads(line) for line in open(tmp_path / "lam3" / "metrics.jsonl")]
    steps = {r["iter"]: r for r in records if r.get("stage") == "pretrain" and "loss" in r and r["iter"] >= 400}
    assert sorted(steps) == [400, 401, 402]  # the base's own records come before
    assert "conscience/flag_rate" not in steps[400]  # before --conscience_from: next-token loss only
    assert steps[401]["conscience/flag_rate"] == steps[402]["conscience/flag_rate"] == 1.0
    assert steps[401]["conscience/samples"] == steps[402]["conscience/samples"] == 3  # --online_samples of 4
    assert steps[401]["conscience/pairs"] + steps[402]["conscience/pairs"] > 0
    if "loss/dpo" in steps[401]:  # the snapshot is the model of that step: policy == reference
        assert abs(steps[401]["loss/dpo"] - 0.6931) < 1e-3
    assert checkpoint.load(str(tmp_path / "lam3" / "snapshot.pt"))["iter"] == 401
    assert any(not torch.equal(weights[3][k], weights[0][k]) for k in weights[0])  # the DPO term trained the model
