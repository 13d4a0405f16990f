"""Two CPU processes under torchrun (DDP over gloo): both stages run and the ranks end with
the same weights, those of the saved checkpoint."""

import hashlib
import json
import os
import subprocess
import sys

import checkpoint
from conftest import ROOT, TINY


def torchrun(*args, timeout=240):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           os.path.join(ROOT, "train.py"), *TINY, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def weights_sha1(path):
    model, _, _ = checkpoint.load_model(path)
    return hashlib.sha1(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest()


def rank_digests(out_dir, stage):
    records = [json.loads(line) for line in open(os.path.join(out_dir, "metrics.jsonl"))]
    return [r["rank_weights_sha1"] for r in records if r.get("stage") == stage and "rank_weights_sha1" in r]


def test_pretraining_on_two_processes_keeps_the_ranks_identical(tiny_base, tmp_path):
    out = torchrun("--max_iters=12", "--grad_accum=2", "--batch_size=4", "--ft_iters=0", "--eval_tasks=0",
                   f"--data_dir={tiny_base['folder']}/data", f"--out_dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    [digests] = rank_digests(tmp_path, "pretrain")
    assert len(digests) == 2 and digests[0] == digests[1] == weights_sha1(str(tmp_path / "base.pt"))
    records = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["iter"] for r in records if "loss" in r][-1] == 11


def test_online_stage_on_two_processes_keeps_the_ranks_identical(tiny_base, tmp_path):
    # threshold 100 flags every sample and margin -100 keeps every pair: DPO runs on both ranks;
    # 6 rows a rank make two chunks (train.CHUNK_ROWS), so each step has several forwards
    out = torchrun(f"--init_from={tiny_base['ckpt']}", "--ft_iters=4", "--ft_batch_size=12", "--dpo_batch=12",
                   "--threshold=100", "--margin=-100", "--eval_tasks=0", f"--out_dir={tmp_path}")
    assert out.returncode == 0, out.stderr[-3000:]
    [digests] = rank_digests(tmp_path, "finetune")
    assert len(digests) == 2 and digests[0] == digests[1] == weights_sha1(str(tmp_path / "final.pt"))
    assert digests[0] != weights_sha1(tiny_base["ckpt"])  # it trained
    steps = [r for r in map(json.loads, open(tmp_path / "metrics.jsonl")) if r.get("stage") == "finetune" and "iter" in r]
    assert all("loss/dpo" in r for r in steps)
    assert steps[1]["rewards/margins"] > 0.1  # rank 0's pairs of step 0, pushed apart by DPO at step 0


def test_batch_that_does_not_split_over_the_ranks_is_a_usage_error(tmp_path):
    out = torchrun("--ft_batch_size=3", f"--out_dir={tmp_path}")
    assert out.returncode != 0
    assert "--ft_batch_size must be a multiple of the 2 processes" in out.stderr
    out = torchrun("--grad_accum=3", f"--out_dir={tmp_path}")
    assert out.returncode != 0
    assert "--grad_accum must be a multiple of the 2 processes" in out.stderr
