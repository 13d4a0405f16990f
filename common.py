"""
What train.py needs besides the method: the device and precision, the processes of a
torchrun job, the log, timers, progress estimates and the checks of its settings.
"""

import gc
import hashlib
import json
import os
import time
from contextlib import contextmanager, nullcontext

import torch
import torch.distributed
from torch.nn.parallel import DistributedDataParallel

import checkpoint
import codehack
import flags
import sandbox


def setup_device(name, dtype="auto"):
    """(device, autocast context, dtype name) for --device and --dtype."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    if name not in ("cpu", "cuda", "mps"):
        raise flags.UsageError(f"--device wants auto, cpu, cuda or mps, got {name!r}")
    if dtype == "auto":
        dtype = "bfloat16" if name == "cuda" else "float32"
    if dtype not in ("float32", "bfloat16"):
        raise flags.UsageError(f"--dtype wants auto, float32 or bfloat16, got {dtype!r}")
    autocast = torch.autocast(name, dtype=torch.bfloat16) if dtype == "bfloat16" else nullcontext()
    return name, autocast, dtype


def check_settings(cfg):
    """One-line errors for train.py settings that cannot work, before anything is written.
    Returns setup_device's device and autocast context (and sets cfg["dtype"])."""
    flags.positive(cfg, "n_docs", "vocab_size", "n_layer", "n_head", "n_embd", "block_size", "batch_size",
                   "grad_accum", "ft_batch_size", "log_interval", "eval_interval", "conscience_every",
                   "num_candidates", "dpo_batch", "ft_eval_interval", "eval_samples")
    if cfg["online_samples"] < 0:
        raise flags.UsageError("--online_samples must not be negative (0: every prompt of the step)")
    if cfg["eval_tasks"] < 0:
        raise flags.UsageError("--eval_tasks must not be negative")
    if cfg["n_embd"] % cfg["n_head"]:
        raise flags.UsageError("--n_embd must be a multiple of --n_head")
    if cfg["judge"] not in ("frozen", "policy", "random", "oracle"):
        raise flags.UsageError(f"--judge wants frozen, policy, random or oracle, got {cfg['judge']!r}")
    if cfg["alternatives"] not in ("rewrite", "resample"):
        raise flags.UsageError(f"--alternatives wants rewrite or resample, got {cfg['alternatives']!r}")
    if cfg["align"] not in ("dpo", "sft", "dpo+sft"):
        raise flags.UsageError(f"--align wants dpo, sft or dpo+sft, got {cfg['align']!r}")
    if cfg["repe_control"] < 0:
        raise flags.UsageError("--repe_control is a strength: 0 (off) or positive")
    if cfg["repe_vector"] not in ("reading", "random"):
        raise flags.UsageError(f"--repe_vector wants reading or random, got {cfg['repe_vector']!r}")
    if not 0 <= cfg["conscience_from"] < max(1, cfg["max_iters"]):
        raise flags.UsageError("--conscience_from is a pretraining step: 0 (off) or below --max_iters")
    if cfg["max_iters"] < 0 or cfg["ft_iters"] < 0:
        raise flags.UsageError("--max_iters and --ft_iters must not be negative")
    try:
        codehack.World.from_config(cfg)
    except ValueError as e:
        raise flags.UsageError(str(e)) from None
    device, autocast, cfg["dtype"] = setup_device(cfg["device"], cfg["dtype"])
    sandbox.configure(strict=cfg["strict_sandbox"])
    if cfg["init_from"] not in ("scratch", "resume"):
        checkpoint.load(cfg["init_from"])  # a missing or corrupt checkpoint fails before anything is written
    try:
        os.makedirs(cfg["out_dir"], exist_ok=True)
        probe = os.path.join(cfg["out_dir"], f".write-test{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as e:
        raise flags.UsageError(f"cannot write to --out_dir {cfg['out_dir']}: {e.strerror}") from None
    return device, autocast


class Dist:
    """This process's place in a `torchrun` job; without torchrun, rank 0 of 1. Every rank
    trains on its own data and samples; DDP averages the gradients, so the weights stay
    identical; rank 0 alone evaluates, logs and writes files."""

    def __init__(self, device):
        self.rank, self.world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        self.device = device
        if self.world > 1:
            if device == "cuda":
                self.device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
                torch.cuda.set_device(self.device)
            torch.distributed.init_process_group("nccl" if device == "cuda" else "gloo")

    @property
    def master(self):
        return self.rank == 0

    def split(self, cfg, name):
        """Each rank's share of the setting `name` (a batch), which must divide evenly."""
        if cfg[name] % self.world:
            raise flags.UsageError(f"--{name} must be a multiple of the {self.world} processes "
                                   f"(each rank takes {name} / {self.world})")
        return cfg[name] // self.world

    def seed(self, seed):
        """Rank 0 uses the seed itself; the others are far from it, so rank 1 of seed s does not
        replay the streams of rank 0 of seed s + 1."""
        return seed + 1_000_003 * self.rank

    def state(self, resume):
        """This rank's RNG states (and buffer) from a checkpoint written by the same number of ranks."""
        if "ranks" not in resume:
            raise flags.UsageError("the checkpoint was written by an older version of train.py: it cannot be resumed")
        if len(resume["ranks"]) != self.world:
            raise flags.UsageError(f"the checkpoint was written by {len(resume['ranks'])} process(es): resume it with as many")
        return resume["ranks"][self.rank]

    def wrap(self, model):
        """The module to call for training: DDP when there are several processes."""
        if self.world == 1:
            return model
        # no buffers to broadcast (GPT has none), and ranks may run different numbers of forwards
        # per step (each its own DPO pairs): broadcast_buffers would make every forward a collective
        return DistributedDataParallel(model, device_ids=[self.device] if self.device.startswith("cuda") else None,
                                       broadcast_buffers=False)

    def sync(self, net, last):
        """Gradient averaging happens on the last micro-batch only."""
        return net.no_sync() if self.world > 1 and not last else nullcontext()

    def all(self, flag):
        """True when flag is true on every rank (so that all ranks take or skip a step together)."""
        if self.world == 1:
            return flag
        t = torch.tensor(float(flag), device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN)
        return bool(t.item())

    def gather(self, obj):
        """Every rank's obj, in rank order."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def barrier(self):
        if self.world > 1:
            torch.distributed.barrier()

    def check_identical(self, model, log, stage):
        """Gather a hash of every rank's weights; they must be one and the same."""
        if self.world == 1:
            return
        digest = hashlib.sha1(b"".join(p.detach().cpu().numpy().tobytes() for p in model.parameters())).hexdigest()
        digests = self.gather(digest)
        if self.master:
            log({"stage": stage, "rank_weights_sha1": digests}, f"{stage}: weights of the {self.world} ranks "
                + ("identical" if len(set(digests)) == 1 else f"DIFFER: {digests}"))
        if len(set(digests)) != 1:
            raise RuntimeError(f"{stage}: the ranks' weights differ")

    def close(self):
        if self.world > 1:
            # the DDP wrappers sit in reference cycles: collect them while the interpreter is
            # whole, not at exit, where freeing their communication state can abort the process
            gc.collect()
            torch.distributed.barrier()  # leave together: a rank that exits early aborts the others
            torch.distributed.destroy_process_group()


class Log:
    """Prints a line and appends the same numbers to out_dir/metrics.jsonl (rank 0 only)."""

    def __init__(self, out_dir, master=True, fresh=True):
        self.path, self.master = os.path.join(out_dir, "metrics.jsonl"), master
        if fresh and master:  # a new run starts a new file; a resumed one adds to its own
            open(self.path, "w").close()

    def __call__(self, record, line=None):
        if not self.master:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if line:
            print(line, flush=True)


@contextmanager
def timed(record, name):
    """Add the seconds spent in the block to record['time/<name>'] (on a GPU, once its queued work is done)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() and torch.cuda.is_initialized() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    yield
    sync()
    record[f"time/{name}"] = record.get(f"time/{name}", 0.0) + time.perf_counter() - t0


def eta(done, total, t0):
    if done == 0:
        return "?"
    left = (time.time() - t0) / done * (total - done)
    return f"{int(left // 60)}m{int(left % 60):02d}s"


def restore(resume, dist, optimizer, generator, rng_name):
    """What a resume takes from its checkpoint: the optimizer, this rank's RNG states. Returns
    (first iteration, steps skipped so far, this rank's saved state; None without resume)."""
    if resume is None:
        return 0, 0, None
    optimizer.load_state_dict(resume["optimizer"])
    state = dist.state(resume)
    generator.set_state(state[rng_name])
    torch.set_rng_state(state["torch_rng"])
    return resume["iter"], resume["skipped"], state


def conscience_summary(metrics_path):
    """The online stage's conscience in a few numbers, from metrics.jsonl: the mean share of
    samples flagged, the pairs made, and the share of chosen alternatives that are the
    task's canonical reference verbatim (a judge that only knows that text would make 1.0)."""
    steps = {r["iter"]: r for r in map(json.loads, open(metrics_path))  # a resumed step: its last record
             if r.get("stage") == "finetune" and "conscience/pairs" in r}.values()
    pairs = sum(r["conscience/pairs"] for r in steps)
    canonical = sum(r.get("conscience/alt_canonical", 0.0) * r["conscience/pairs"] for r in steps)
    return {"conscience/flag_rate": sum(r["conscience/flag_rate"] for r in steps) / max(1, len(steps)),
            "conscience/pairs": pairs, "conscience/alt_canonical": canonical / pairs if pairs else float("nan")}


def progress(record, cfg, start, t0):
    """The line train.py prints for an online step."""
    return (f"finetune {record['iter']:4d}/{cfg['ft_iters']} | sft {record['loss/sft']:.3f}"
            + (f" | repe {record['loss/repe']:.3f}" if "loss/repe" in record else "")
            + (f" | dpo {record['loss/dpo']:.3f} | margin {record['rewards/margins']:+.3f}" if "loss/dpo" in record else "")
            + (f" | flagged {record['conscience/flag_rate']:.2f} | pairs {record['conscience/pairs']}"
               if "conscience/pairs" in record else "")
            + f" | eta {eta(record['iter'] + 1 - start, cfg['ft_iters'] - start, t0)}")
