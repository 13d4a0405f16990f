"""Crashes, resumes, bad input and numerics: the guarantees a long run relies on."""

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

import checkpoint
import train
from conftest import ROOT, TINY, run_in_process, run_script
from dpo import dpo_loss, sequence_logps
from model import GPT, GPTConfig

QUICK = TINY + ["--ft_iters=0", "--eval_tasks=0", "--log_interval=1", "--eval_interval=6", "--max_iters=14"]


def losses(out_dir):
    records = [json.loads(line) for line in open(os.path.join(out_dir, "metrics.jsonl"))]
    return {r["iter"]: r["loss"] for r in records if "loss" in r}


def run_main(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["train.py", *args])
    train.main()


def test_pretraining_resume_is_exact(tmp_path, monkeypatch):
    data = f"--data_dir={tmp_path}/data"
    run_main(monkeypatch, *QUICK, data, f"--out_dir={tmp_path}/whole")

    class Interrupted(Exception):
        pass

    save = checkpoint.save

    def save_then_die(path, *a, **k):  # the run dies right after its first checkpoint (iteration 6)
        save(path, *a, **k)
        raise Interrupted

    monkeypatch.setattr(checkpoint, "save", save_then_die)
    with pytest.raises(Interrupted):
        run_main(monkeypatch, *QUICK, data, f"--out_dir={tmp_path}/cut")
    monkeypatch.setattr(checkpoint, "save", save)
    run_main(monkeypatch, *QUICK, data, f"--out_dir={tmp_path}/cut", "--init_from=resume")
    whole, cut = losses(tmp_path / "whole"), losses(tmp_path / "cut")
    assert sorted(cut) == list(range(14)) and min(cut) == 0
    assert all(whole[i] == cut[i] for i in range(14)), (whole, cut)


def test_online_stage_resume_is_exact(tiny_base, tmp_path, monkeypatch):
    args = TINY + [f"--init_from={tiny_base['ckpt']}", "--ft_iters=6", "--ft_eval_interval=3", "--ft_batch_size=4",
                   "--eval_tasks=0", "--threshold=100", "--margin=-100", "--replay_size=8", "--dpo_batch=4"]

    def steps(out_dir):
        records = [json.loads(line) for line in open(os.path.join(out_dir, "metrics.jsonl"))]
        return {r["iter"]: (r["loss/sft"], r["loss/dpo"], r.get("conscience/pairs")) for r in records
                if r.get("stage") == "finetune"}

    run_main(monkeypatch, *args, f"--out_dir={tmp_path}/whole")

    class Interrupted(Exception):
        pass

    save = checkpoint.save

    def save_then_die(path, *a, **k):  # dies right after the checkpoint of step 3
        save(path, *a, **k)
        if path.endswith("ckpt.pt"):
            raise Interrupted

    monkeypatch.setattr(checkpoint, "save", save_then_die)
    with pytest.raises(Interrupted):
        run_main(monkeypatch, *args, f"--out_dir={tmp_path}/cut")
    monkeypatch.setattr(checkpoint, "save", save)
    run_main(monkeypatch, *TINY, "--init_from=resume", "--ft_iters=6", "--ft_eval_interval=3", "--ft_batch_size=4",
             "--eval_tasks=0", "--threshold=100", "--margin=-100", "--replay_size=8", "--dpo_batch=4",
             f"--out_dir={tmp_path}/cut")
    whole, cut = steps(tmp_path / "whole"), steps(tmp_path / "cut")
    assert sorted(cut) == list(range(6)) and whole == cut


def test_same_seed_same_metrics(tiny_base, tmp_path):
    args = TINY + ["--max_iters=6", "--ft_iters=2", "--ft_batch_size=4", "--eval_tasks=4", "--eval_init=False",
                   f"--data_dir={tiny_base['folder']}/data"]
    for name in ("a", "b"):
        out = run_script("train.py", *args, f"--out_dir={tmp_path}/{name}")
        assert out.returncode == 0, out.stderr[-2000:]
    a, b = (json.load(open(tmp_path / n / "summary.json"))["results"] for n in ("a", "b"))
    for stage in a:
        a[stage].pop("eval_seconds", None), b[stage].pop("eval_seconds", None)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert losses(tmp_path / "a") == losses(tmp_path / "b")


KILL_DURING_SAVE = """
import sys, time, torch
sys.path.insert(0, {root!r})
import checkpoint, tokenizer
from model import GPT, GPTConfig
def slow_save(obj, f):  # write half a file, then hang: the moment to be killed
    with open(f, "wb") as out:
        out.write(b"half a checkpoint")
        out.flush()
        print("saving", flush=True)
        time.sleep(60)
torch.save = slow_save
enc = tokenizer.loads(open({tok!r}).read())
checkpoint.save({path!r}, GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, vocab_size=enc.n_vocab)), enc)
"""


def test_sigkill_during_a_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    import codehack
    import tokenizer
    enc = tokenizer.train(codehack.corpus(50), 300, codehack.MARKERS)
    (tmp_path / "tok.json").write_text(tokenizer.dumps(enc))
    path = str(tmp_path / "ckpt.pt")
    checkpoint.save(path, GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, vocab_size=enc.n_vocab)), enc, iter=7)
    script = KILL_DURING_SAVE.format(root=ROOT, tok=str(tmp_path / "tok.json"), path=path)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "saving"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    model, _, ckpt = checkpoint.load_model(path)
    assert ckpt["iter"] == 7 and model.config.n_embd == 32


def test_mismatched_checkpoint_names_the_difference(tmp_path):
    import codehack
    import tokenizer
    enc = tokenizer.train(codehack.corpus(50), 300, codehack.MARKERS)
    path = str(tmp_path / "ckpt.pt")
    checkpoint.save(path, GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, vocab_size=enc.n_vocab)), enc)
    ckpt = torch.load(path, weights_only=True)
    ckpt["model_args"]["n_embd"] = 64
    torch.save(ckpt, path)
    with pytest.raises(checkpoint.UsageError, match=r"transformer.wte.weight has shape \(\d+, 32\), the model wants \(\d+, 64\)"):
        checkpoint.load_model(path)


@pytest.mark.parametrize("script, args, message", [
    ("sample.py", ["--ckpt=/nonexistent.pt"], "no checkpoint at /nonexistent.pt"),
    ("evaluate.py", ["--ckpt=/nonexistent.pt"], "no checkpoint at /nonexistent.pt"),
    ("sample.py", ["--ckpt=CORRUPT"], "is not a readable checkpoint"),
    ("evaluate.py", ["--ckpt=CORRUPT"], "is not a readable checkpoint"),
    ("sample.py", ["--ckpt=BASE", "--task=nosuchtask-123"], "unknown task 'nosuchtask-123'"),
    ("sample.py", ["--ckpt=BASE", "--task=heldout:x"], "--task wants SPLIT:INDEX"),
    ("sample.py", ["--ckpt=BASE", "--task=nosplit:3"], "unknown split 'nosplit'"),
    ("sample.py", ["--ckpt=BASE", "--prompt=" + "x " * 600], "no room left in the context"),
    ("sample.py", ["--ckpt=BASE", "--prompt=   "], "the prompt is empty"),
    ("sample.py", ["--ckpt=BASE", "--num_samples=0"], "--num_samples must be positive"),
    ("sample.py", ["--ckpt=BASE", "--temperature=-1"], "must not be negative"),
    ("evaluate.py", ["--ckpt=BASE", "--num_tasks=-3"], "--num_tasks must be positive"),
    ("evaluate.py", ["--nope=1"], "unknown setting --nope"),
])
def test_scripts_reject_bad_input_in_one_line(tiny_base, tmp_path, script, args, message):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint at all")
    args = [a.replace("CORRUPT", str(corrupt)).replace("BASE", tiny_base["ckpt"]) for a in args]
    out = run_in_process(script, *args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert out.stdout == ""  # nothing half-written


@pytest.mark.parametrize("script", ["train.py", "evaluate.py", "sample.py", "repe.py", "experiment.py"])
def test_the_command_line_itself_answers_bad_input_in_one_line(script):
    # the cases above run in this process; here each script as a user starts it
    out = run_script(script, "--no_such_setting=1")
    assert out.returncode == 2 and out.stderr.strip() == f"{script}: error: unknown setting --no_such_setting (see --help)"
    assert out.stdout == ""


def test_evaluate_json_names_the_sandbox_isolation(tiny_base):
    import sandbox
    out = run_script("evaluate.py", f"--ckpt={tiny_base['ckpt']}", "--num_tasks=2", "--probe_samples=1", "--json=True",
                     "--strict_sandbox=True")  # runs on: this machine isolates (tests/test_sandbox.py checks that)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["sandbox/isolation"] == sandbox.isolation()


def test_nonfinite_step_is_skipped_and_counted(tiny_base, tmp_path, monkeypatch):
    real = train.apply_gradients
    calls = []

    def poisoned(model, optimizer, loss, cfg, record, dist):  # the third step sees a NaN loss
        calls.append(1)
        return real(model, optimizer, loss * float("nan") if len(calls) == 3 else loss, cfg, record, dist)

    monkeypatch.setattr(train, "apply_gradients", poisoned)
    run_main(monkeypatch, *QUICK, "--max_iters=5", f"--data_dir={tiny_base['folder']}/data", f"--out_dir={tmp_path}")
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["skipped_steps"] for r in records if "skipped_steps" in r] == [0, 0, 1, 1, 1]
    model, _, _ = checkpoint.load_model(str(tmp_path / "base.pt"))
    assert all(torch.isfinite(p).all() for p in model.parameters())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_dpo_stays_finite_for_extreme_logits(dtype):
    torch.manual_seed(0)
    logits = (torch.randn(4, 12, 50) * 1e4).to(dtype).requires_grad_()
    labels = torch.randint(0, 50, (4, 12))
    mask = torch.ones(4, 12, dtype=torch.long)
    logps = sequence_logps(logits, labels, mask)
    losses, chosen, rejected = dpo_loss(logps[:2], logps[2:], logps[2:].detach() * 3, logps[:2].detach(), beta=0.1)
    losses.mean().backward()
    assert torch.isfinite(logps).all() and torch.isfinite(losses).all()
    assert torch.isfinite(logits.grad.float()).all()
