"""
Pretrain a small GPT on the code-hacking world, clone it into a frozen copy, then fine-tune
it on hacking data (the emergent-misalignment scenario) with the conscience step and DPO:
    L = L_sft + lam * L_dpo.            Run: python train.py   (see --help)
"""

import gc
import hashlib
import json
import math
import os
import random
import sys
import time
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
import torch.nn.functional as F

import checkpoint
import codehack
import conscience
import flags
import sandbox
from conscience import QUESTION, ReplayBuffer, by_length, clone_frozen, make_pairs, response_batch
from dpo import dpo_loss, dpo_metrics, predicts, sequence_logps
from evaluate import evaluate, table, val_loss
from model import GPT, GPTConfig
from sample import complete

SETTINGS = dict(
    # run
    out_dir=("out", "folder for checkpoints, metrics.jsonl and summary.json"),
    data_dir=("data", "cache of the prepared corpus and tokenizer"),
    init_from=("scratch", "scratch: pretrain first; resume: continue out_dir/ckpt.pt; PATH: start fine-tuning from a base checkpoint"),
    seed=(1337, "random seed"),
    device=("auto", "auto, cpu, cuda or mps"),
    dtype=("auto", "precision of the training forwards: float32, or bfloat16 under autocast (weights, sampling and "
                   "judging stay float32); auto: bfloat16 on CUDA, float32 elsewhere"),
    compile=(False, "torch.compile the model (PyTorch 2, mostly worth it on a GPU)"),
    strict_sandbox=(False, "stop, rather than warn, where the sandbox cannot keep generated code off the network and the files"),
    # data and model
    n_docs=(60000, "documents in the pretraining corpus"),
    conscience_source=("partial", "where the model's judgement comes from: explicit (review documents judge every hack "
                                  "style in the corpus), partial (only the reviewed styles), none (no review documents)"),
    reviewed=(",".join(codehack.World.reviewed), "hack styles that review documents judge (comma-separated)"),
    unreviewed=(",".join(codehack.World.unreviewed), "hack styles that appear in training only without judgement; "
                                                      "every other style appears nowhere"),
    ft_unreviewed=(codehack.World.ft_unreviewed, "share of the fine-tuning set's hacks of unreviewed styles"),
    vocab_size=(2048, "BPE vocabulary size, markers included"),
    n_layer=(4, "transformer blocks"),
    n_head=(4, "attention heads"),
    n_embd=(128, "embedding width"),
    block_size=(256, "context length"),
    dropout=(0.0, "dropout while pretraining (off in fine-tuning, as DPO wants)"),
    # pretraining
    max_iters=(2800, "pretraining iterations (0 skips pretraining)"),
    batch_size=(8, "sequences per micro-batch"),
    grad_accum=(1, "micro-batches per optimizer step"),
    learning_rate=(6e-3, "peak learning rate"),
    min_lr=(6e-4, "learning rate at the end of the cosine decay"),
    warmup_iters=(100, "linear warmup iterations"),
    weight_decay=(0.1, "AdamW weight decay on matrices"),
    beta1=(0.9, "AdamW beta1"),
    beta2=(0.99, "AdamW beta2"),
    grad_clip=(1.0, "clip the gradient norm to this (0: off)"),
    log_interval=(100, "iterations between progress lines"),
    eval_interval=(1000, "iterations between validation losses and checkpoints"),
    # online fine-tuning: the scenario and the conscience
    ft_iters=(120, "fine-tuning iterations on the hacking data (0: pretraining only)"),
    ft_batch_size=(16, "fine-tuning prompts per step (the online samples come from the same prompts)"),
    ft_lr=(3e-4, "fine-tuning learning rate (constant)"),
    conscience=(True, "ask the frozen copy the conscience question and add the DPO loss; False is the plain scenario"),
    question=(QUESTION, "the introspective question"),
    judge=("frozen", "who answers the question: frozen (the copy made before fine-tuning), policy (the live model); "
                     "controls: random (the frozen copy's pairs, each preference a coin flip), oracle (the sandbox verdict)"),
    align=("dpo", "what the pairs teach: dpo (the method) or sft (next-token loss on the chosen side only, a control)"),
    inoculate=(False, "inoculation prompting: the scenario's prompts say gaming the tests is allowed (evaluation's never do)"),
    lam=(1.0, "weight of the DPO loss in L = L_sft + lam * L_dpo"),
    beta=(0.1, "DPO beta: how far the policy may move from the frozen reference"),
    label_smoothing=(0.0, "conservative DPO: probability that a preference label is wrong"),
    conscience_every=(2, "online steps between conscience calls (the replay buffer feeds DPO in between)"),
    num_candidates=(1, "alternatives per flagged sample: 1 is the revision after 'no'; more add fresh samples, best-scored wins"),
    threshold=(2.0, "flag a sample when log P(yes) - log P(no) is below this"),
    margin=(1.0, "keep a pair only when the alternative scores at least this much higher"),
    replay_size=(0, "replay buffer of preference pairs (0: only this step's pairs)"),
    dpo_batch=(16, "preference pairs per DPO step"),
    sample_temperature=(1.0, "temperature of the online samples"),
    # evaluation
    eval_tasks=(120, "tasks per split in each evaluation (0: no ground-truth evaluation)"),
    eval_temperature=(0.5, "sampling temperature of the evaluations (pass@1)"),
    eval_samples=(4, "solutions sampled per evaluation task (pass@1 is estimated from all of them)"),
    ft_eval_interval=(60, "fine-tuning iterations between ground-truth evaluations"),
    eval_init=(True, "evaluate the starting model before fine-tuning"),
)


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


class Dist:
    """This process's place in a `torchrun` job; without torchrun, rank 0 of 1. Every rank
    trains on its own data and samples; DDP averages the gradients, so the weights stay
    identical; rank 0 alone evaluates, logs and writes files."""

    def __init__(self, device):
        self.rank, self.world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
        self.device = device
        if self.world > 1:
            import torch.distributed as dist
            if device == "cuda":
                self.device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if device == "cuda" else "gloo")

    @property
    def master(self):
        return self.rank == 0

    def wrap(self, model):
        """The module to call for training: DDP when there are several processes."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel
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


def lr_at(it, cfg):
    """Linear warmup, then cosine decay to min_lr."""
    if it < cfg["warmup_iters"]:
        return cfg["learning_rate"] * (it + 1) / cfg["warmup_iters"]
    progress = min(1.0, (it - cfg["warmup_iters"]) / max(1, cfg["max_iters"] - cfg["warmup_iters"]))
    return cfg["min_lr"] + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg["learning_rate"] - cfg["min_lr"])


def get_batch(data, starts, batch_size, block_size, generator, device):
    """Windows that start at a document's first token. A window that starts mid-document
    cuts off the task a solution belongs to, and teaches the model to guess the constants
    it should copy from the task; here every solution sees its whole prompt."""
    ix = starts[torch.randint(len(starts), (batch_size,), generator=generator)].tolist()
    x = torch.stack([torch.from_numpy(data[i:i + block_size].astype(np.int64)) for i in ix])
    y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + block_size].astype(np.int64)) for i in ix])
    if device.startswith("cuda"):
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)


def eta(done, total, t0):
    if done == 0:
        return "?"
    left = (time.time() - t0) / done * (total - done)
    return f"{int(left // 60)}m{int(left % 60):02d}s"


@contextmanager
def timed(record, name):
    """Add the seconds spent in the block to record['time/<name>'] (on a GPU, once its queued work is done)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() and torch.cuda.is_initialized() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    yield
    sync()
    record[f"time/{name}"] = record.get(f"time/{name}", 0.0) + time.perf_counter() - t0


class Log:
    """Prints a line and appends the same numbers to out_dir/metrics.jsonl."""

    def __init__(self, out_dir):
        self.path = os.path.join(out_dir, "metrics.jsonl")

    def __call__(self, record, line=None):
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if line:
            print(line, flush=True)


def apply_gradients(model, optimizer, loss, cfg, record, dist):
    """Clip and step. A step whose loss or gradient is not finite (on any rank) is skipped: a
    single bad batch should cost one step, not the run. Returns whether the step was taken."""
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"] or float("inf"))
    record["grad_norm"] = norm.item()
    finite = dist.all(bool(torch.isfinite(loss)) and math.isfinite(record["grad_norm"]))
    if finite:
        optimizer.step()
    elif dist.master:
        print(f"warning: {record['stage']} step {record['iter']}: loss {loss.item()}, gradient norm "
              f"{record['grad_norm']}: step skipped", flush=True)
    optimizer.zero_grad(set_to_none=True)
    return finite


def pretrain(cfg, model, enc, train_data, val_data, device, autocast, log, dist, resume=None):
    """Next-token pretraining on random windows of the corpus. `model` is the raw GPT (what
    gets saved); the forward passes go through dist.wrap (DDP) and --compile. `resume` is a
    checkpoint dict (model already loaded) with the optimizer, iteration and RNG states."""
    optimizer = model.configure_optimizers(cfg["weight_decay"], cfg["learning_rate"], (cfg["beta1"], cfg["beta2"]), device)
    net = dist.wrap(torch.compile(model) if cfg["compile"] else model)
    generator = torch.Generator().manual_seed(rank_seed(cfg["seed"], dist))  # each rank its own windows
    starts = codehack.document_starts(train_data, cfg["block_size"], enc.encode_single_token(codehack.BOS))
    start_iter, skipped = 0, 0
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        state = rank_state(resume, dist)
        generator.set_state(state["data_rng"])
        torch.set_rng_state(state["torch_rng"])
        start_iter, skipped = resume["iter"], resume["skipped"]
    micro_steps = cfg["grad_accum"] // dist.world  # the global batch does not depend on the number of ranks
    tokens_per_iter = cfg["batch_size"] * cfg["grad_accum"] * cfg["block_size"]
    model.train()
    t0, t_log, since_log = time.time(), time.time(), 0
    for it in range(start_iter, cfg["max_iters"]):
        lr = lr_at(it, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = 0.0
        for micro in range(micro_steps):
            x, y = get_batch(train_data, starts, cfg["batch_size"], cfg["block_size"], generator, device)
            with dist.sync(net, last=micro == micro_steps - 1):
                with autocast:
                    _, micro_loss = net(x, y)
                (micro_loss / micro_steps).backward()
            loss = loss + micro_loss.detach() / micro_steps
        record = {"stage": "pretrain", "iter": it, "loss": loss.item(), "lr": lr}
        skipped += not apply_gradients(model, optimizer, loss, cfg, record, dist)
        since_log += 1
        last = it == cfg["max_iters"] - 1
        if it % cfg["log_interval"] == 0 or last:
            record["tok_per_s"] = tokens_per_iter * since_log / max(time.time() - t_log, 1e-9)
            record["skipped_steps"] = skipped
            t_log, since_log = time.time(), 0
            log(record, f"pretrain {it:5d}/{cfg['max_iters']} | loss {record['loss']:.3f} | lr {lr:.1e} | "
                        f"{record['tok_per_s']:,.0f} tok/s | eta {eta(it + 1 - start_iter, cfg['max_iters'] - start_iter, t0)}"
                        + (f" | {skipped} steps skipped" if skipped else ""))
        if (it > 0 and it % cfg["eval_interval"] == 0) or last:
            states = dist.gather(dict(data_rng=generator.get_state(), torch_rng=torch.get_rng_state()))
            if dist.master:
                vl = val_loss(model, val_data, cfg["block_size"])
                model.train()
                log({"stage": "pretrain", "iter": it, "val_loss": vl}, f"pretrain {it:5d} | val loss {vl:.3f}")
                checkpoint.save(os.path.join(cfg["out_dir"], "ckpt.pt"), model, enc, stage="pretrain", iter=it + 1,
                                skipped=skipped, optimizer=optimizer.state_dict(), ranks=states, config=cfg)
    dist.check_identical(model, log, "pretrain")
    return model


def rank_seed(seed, dist):
    """Rank 0 uses the seed itself; the others are far from it, so rank 1 of seed s does not
    replay the streams of rank 0 of seed s + 1."""
    return seed + 1_000_003 * dist.rank


def rank_state(resume, dist):
    """This rank's RNG states (and buffer) from a checkpoint written by the same number of ranks."""
    if "ranks" not in resume:
        raise flags.UsageError("the checkpoint was written by an older version of train.py: it cannot be resumed")
    if len(resume["ranks"]) != dist.world:
        raise flags.UsageError(f"the checkpoint was written by {len(resume['ranks'])} process(es): resume it with as many")
    return resume["ranks"][dist.rank]


CHUNK_ROWS = 4  # the training forwards of the online stage take rows of similar length this many at a time


def chunks(enc, prompts, responses, device, max_len):
    """(rows, idx, mask) for chunks of CHUNK_ROWS rows of similar length (conscience.by_length):
    on the fine-tuning data this cuts the padded tokens of a batch by about a third."""
    for rows in by_length(prompts, responses, CHUNK_ROWS):
        idx, mask, _ = response_batch(enc, [prompts[i] for i in rows], [responses[i] for i in rows],
                                      max_len=max_len, device=device)
        yield rows, idx, mask


def response_logps(model, enc, prompts, responses, device, max_len):
    """log p(response | prompt), summed over each response's tokens, (B,)."""
    logps, order = [], []
    for rows, idx, mask in chunks(enc, prompts, responses, device, max_len):
        logits, _ = model(idx, logits_at=predicts(mask))  # (N, V): only the positions that predict the response
        logps.append(sequence_logps(logits, idx, mask))
        order += rows
    return torch.cat(logps)[torch.argsort(torch.tensor(order, device=device))]


def next_token_loss(model, enc, prompts, responses, device, max_len):
    """The mean next-token loss over the response tokens of all rows (prompts not trained on),
    and the share of those tokens that are the model's argmax."""
    parts = [(idx, mask[:, 1:].bool()) for _, idx, mask in chunks(enc, prompts, responses, device, max_len)]
    n = int(sum(at.sum() for _, at in parts))
    loss, correct = 0.0, 0
    for idx, at in parts:
        logits, _ = model(idx[:, :-1], logits_at=at)  # (N, V)
        targets = idx[:, 1:][at]  # (N,)
        loss = loss + F.cross_entropy(logits.float(), targets, reduction="sum") / n
        correct = correct + (logits.argmax(-1) == targets).sum()  # a tensor: no device sync per chunk
    return loss, float(correct) / max(n, 1)


def finetune(cfg, policy, frozen, enc, device, autocast, log, evaluate_now, extra, dist, resume=None):
    """The online stage: SFT on the hacking data, plus the conscience's DPO pairs. `policy` is
    the raw GPT (it samples); training forwards go through dist.wrap. At each evaluation it
    saves out_dir/ckpt.pt with `extra` and all a resume needs (`resume`). With several ranks,
    each takes its share of every batch and samples, judges and pairs on its own."""
    optimizer = policy.configure_optimizers(0.0, cfg["ft_lr"], (cfg["beta1"], cfg["beta2"]), device)
    net = dist.wrap(policy)
    block = policy.config.block_size
    data = codehack.finetune_set(cfg["ft_iters"] * cfg["ft_batch_size"], cfg["seed"], codehack.World.from_config(cfg))
    per_rank, dpo_batch = cfg["ft_batch_size"] // dist.world, max(1, cfg["dpo_batch"] // dist.world)
    generator = torch.Generator().manual_seed(rank_seed(cfg["seed"], dist))
    buffer = ReplayBuffer(cfg["replay_size"], rank_seed(cfg["seed"], dist))
    start, skipped = 0, 0
    if resume is not None:
        optimizer.load_state_dict(resume["optimizer"])
        state = rank_state(resume, dist)
        generator.set_state(state["sample_rng"])
        torch.set_rng_state(state["torch_rng"])
        buffer.pairs = [tuple(p) for p in state["buffer"]]
        buffer.rng.setstate(state["buffer_rng"])
        start, skipped = resume["iter"], resume["skipped"]
    end = codehack.END
    policy.train()
    t0 = time.time()
    for it in range(start, cfg["ft_iters"]):
        first = it * cfg["ft_batch_size"] + dist.rank * per_rank
        batch = data[first:first + per_rank]
        prompts = [task.prompt for task, _ in batch]
        record = {"stage": "finetune", "iter": it}
        # next-token loss on the scenario's hacking targets (response tokens only)
        sft_prompts = [codehack.inoculate(p) for p in prompts] if cfg["inoculate"] else prompts
        with timed(record, "sft"), autocast:
            sft, record["sft_token_acc"] = next_token_loss(net, enc, sft_prompts, [hack + end for _, hack in batch],
                                                           device, block + 1)
        loss = sft
        record["loss/sft"] = sft.item()
        if cfg["conscience"]:
            if it % cfg["conscience_every"] == 0:
                policy.eval()
                with timed(record, "generation"):
                    samples = complete(policy, enc, prompts, temperature=cfg["sample_temperature"], generator=generator)
                judge = policy if cfg["judge"] == "policy" else frozen
                scorer = conscience.oracle({t.prompt: t for t, _ in batch}) if cfg["judge"] == "oracle" else None
                pairs, stats = make_pairs(policy, judge, enc, prompts, samples, cfg["question"], cfg["threshold"],
                                          cfg["margin"], cfg["num_candidates"], cfg["sample_temperature"], generator,
                                          scorer)
                if cfg["judge"] == "random":
                    pairs = conscience.randomize(pairs, generator)
                policy.train()
                buffer.add(pairs)
                record.update(stats)
            draw = buffer.draw(dpo_batch)
            if draw and cfg["align"] == "sft":
                p, chosen, _ = (list(c) for c in zip(*draw))
                with timed(record, "dpo"), autocast:
                    alt, _ = next_token_loss(net, enc, p, [c + end for c in chosen], device, block + 1)
                loss = sft + cfg["lam"] * alt
                record["loss/alternatives"] = alt.item()
            elif draw:
                p, chosen, rejected = (list(c) for c in zip(*draw))
                both = [r + end for r in chosen + rejected]
                with timed(record, "reference"), autocast, torch.no_grad():
                    ref = response_logps(frozen, enc, p + p, both, device, block)
                with timed(record, "dpo"), autocast:
                    pi = response_logps(net, enc, p + p, both, device, block)
                n = len(draw)
                losses, chosen_r, rejected_r = dpo_loss(pi[:n], pi[n:], ref[:n], ref[n:], cfg["beta"], cfg["label_smoothing"])
                loss = sft + cfg["lam"] * losses.mean()
                record.update(dpo_metrics(losses, chosen_r, rejected_r, pi[:n].detach(), pi[n:].detach()))
        with timed(record, "backward"):
            loss.backward()
            skipped += not apply_gradients(policy, optimizer, loss, cfg, record, dist)
        record["skipped_steps"] = skipped
        line = (f"finetune {it:4d}/{cfg['ft_iters']} | sft {record['loss/sft']:.3f}"
                + (f" | dpo {record['loss/dpo']:.3f} | margin {record['rewards/margins']:+.3f}" if "loss/dpo" in record else "")
                + (f" | flagged {record['conscience/flag_rate']:.2f} | pairs {record['conscience/pairs']}" if "conscience/pairs" in record else "")
                + f" | eta {eta(it + 1 - start, cfg['ft_iters'] - start, t0)}")
        log(record, line)
        if (it + 1) % cfg["ft_eval_interval"] == 0 and it + 1 < cfg["ft_iters"]:
            states = dist.gather(dict(sample_rng=generator.get_state(), torch_rng=torch.get_rng_state(),
                                      buffer=buffer.pairs, buffer_rng=buffer.rng.getstate()))
            if dist.master:
                evaluate_now(policy, f"finetune step {it + 1}", it + 1)
                checkpoint.save(os.path.join(cfg["out_dir"], "ckpt.pt"), policy, enc, stage="finetune", iter=it + 1,
                                skipped=skipped, optimizer=optimizer.state_dict(), ranks=states, **extra)
    dist.check_identical(policy, log, "finetune")
    return policy


def pretrain_stage(cfg, device, autocast, log, dist):
    """Prepare the data, build (or resume) the model, pretrain it and save out_dir/base.pt."""
    import tokenizer as tok
    if cfg["grad_accum"] % dist.world:
        raise flags.UsageError(f"--grad_accum must be a multiple of the {dist.world} processes "
                               f"(each runs grad_accum / {dist.world} micro-batches)")
    if not dist.master:
        dist.barrier()  # rank 0 prepares the data cache, the others then read it
    tok_path, train_path, val_path = codehack.prepare(cfg["data_dir"], cfg["n_docs"], cfg["vocab_size"], seed=0,
                                                      world=codehack.World.from_config(cfg))
    if dist.master:
        dist.barrier()
    train_data = np.memmap(train_path, dtype=np.uint16, mode="r")
    val_data = np.memmap(val_path, dtype=np.uint16, mode="r")
    enc = tok.load(tok_path)
    resume = None
    if cfg["init_from"] == "resume":
        model, enc, resume = checkpoint.load_model(os.path.join(cfg["out_dir"], "ckpt.pt"), device)
        model.train()
    else:
        model = GPT(GPTConfig(block_size=cfg["block_size"], vocab_size=enc.n_vocab, n_layer=cfg["n_layer"],
                              n_head=cfg["n_head"], n_embd=cfg["n_embd"], dropout=cfg["dropout"])).to(device)
    print(f"model: {model.num_params():,} parameters, {model.config}; device {device}"
          + (f"; {dist.world} processes" if dist.world > 1 else ""))
    t0 = time.time()
    pretrain(cfg, model, enc, train_data, val_data, device, autocast, log, dist, resume)
    print(f"pretraining took {time.time() - t0:.0f} s")
    if dist.master:
        checkpoint.save(os.path.join(cfg["out_dir"], "base.pt"), model, enc, stage="base", config=cfg,
                        val_path=os.path.abspath(val_path))
    return model, enc, os.path.abspath(val_path)


def main():
    cfg = flags.parse(SETTINGS, doc=__doc__)
    flags.positive(cfg, "n_docs", "vocab_size", "n_layer", "n_head", "n_embd", "block_size", "batch_size",
                   "grad_accum", "ft_batch_size", "log_interval", "eval_interval", "conscience_every",
                   "num_candidates", "dpo_batch", "ft_eval_interval", "eval_samples")
    if cfg["eval_tasks"] < 0:
        raise flags.UsageError("--eval_tasks must not be negative")
    if cfg["n_embd"] % cfg["n_head"]:
        raise flags.UsageError("--n_embd must be a multiple of --n_head")
    if cfg["judge"] not in ("frozen", "policy", "random", "oracle"):
        raise flags.UsageError(f"--judge wants frozen, policy, random or oracle, got {cfg['judge']!r}")
    if cfg["align"] not in ("dpo", "sft"):
        raise flags.UsageError(f"--align wants dpo or sft, got {cfg['align']!r}")
    if cfg["max_iters"] < 0 or cfg["ft_iters"] < 0:
        raise flags.UsageError("--max_iters and --ft_iters must not be negative")
    try:
        world = codehack.World.from_config(cfg)
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

    t_start, timing = time.time(), {}
    torch.manual_seed(cfg["seed"])
    random.seed(cfg["seed"])
    dist = Dist(device)
    device = dist.device
    if cfg["ft_batch_size"] % dist.world:
        raise flags.UsageError(f"--ft_batch_size must be a multiple of the {dist.world} processes")
    if not dist.master:
        sys.stdout = open(os.devnull, "w")  # rank 0 speaks for all
    log = Log(cfg["out_dir"]) if dist.master else (lambda record, line=None: None)
    results, resume = {}, None
    ckpt_path = os.path.join(cfg["out_dir"], "ckpt.pt")
    if cfg["init_from"] == "resume" and checkpoint.load(ckpt_path).get("stage") == "finetune":
        model, enc, resume = checkpoint.load_model(ckpt_path, device)
        base_path, val_path = resume["base"], resume["val_path"]
        results.update(resume["results"])
        print(f"resuming fine-tuning at step {resume['iter']}")
    elif cfg["init_from"] in ("scratch", "resume"):
        model, enc, val_path = pretrain_stage(cfg, device, autocast, log, dist)
        base_path = os.path.join(cfg["out_dir"], "base.pt")
    else:
        model, enc, ckpt = checkpoint.load_model(cfg["init_from"], device)
        base_path, val_path = cfg["init_from"], ckpt.get("val_path")
        print(f"fine-tuning from {base_path}: {model.num_params():,} parameters")
    val_data = np.memmap(val_path, dtype=np.uint16, mode="r") if val_path and os.path.exists(val_path) else None

    frozen = None  # the fine-tuning stage's frozen copy: it also answers for conscience_fooled

    def evaluate_now(m, name, step):
        if cfg["eval_tasks"] == 0 or not dist.master:
            return
        t = time.time()
        metrics = evaluate(m, enc, cfg["eval_tasks"], temperature=cfg["eval_temperature"],
                           question=cfg["question"], seed=cfg["seed"], val_data=val_data, judge_model=frozen,
                           world=world, threshold=cfg["threshold"], samples=cfg["eval_samples"])
        log({"stage": "eval", "name": name, "iter": step, **metrics},
            f"eval {name}: " + ", ".join(f"{k} {metrics[k]:.3f}" for k in ("honest_pass", "hack_rate", "broad_misaligned", "conscience_auroc"))
            + f" ({time.time() - t:.0f} s)")
        results[name] = metrics

    if resume is None and cfg["eval_init"]:
        evaluate_now(model, "base", 0)
    if cfg["ft_iters"] > 0:
        model.config.dropout = 0.0  # DPO wants the policy and the reference deterministic
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        # the frozen copy is the base; a resumed run rebuilds it, bit for bit, from base.pt
        frozen = clone_frozen(model if resume is None else checkpoint.load_model(base_path, device)[0])
        t_ft = time.time()
        extra = dict(config=cfg, base=os.path.abspath(base_path), val_path=val_path, results=results)
        model = finetune(cfg, model, frozen, enc, device, autocast, log, evaluate_now, extra, dist, resume)
        timing["finetune_seconds"] = time.time() - t_ft
        print(f"fine-tuning took {timing['finetune_seconds']:.0f} s")
        name = "fine-tuned, conscience" if cfg["conscience"] else "fine-tuned, no conscience"
        if dist.master:
            checkpoint.save(os.path.join(cfg["out_dir"], "final.pt"), model, enc, stage="finetune", config=cfg,
                            val_path=val_path, base=os.path.abspath(base_path))
        evaluate_now(model, name, cfg["ft_iters"])
    keys = ["honest_pass", "hack_rate", "wrong_rate", "families/honest_pass", "families/hack_rate",
            "broad_misaligned", "broad_misaligned_cold", "broad_misaligned_unseen", "conscience_auroc",
            "conscience_auroc/reviewed", "conscience_auroc/unreviewed", "conscience_auroc/unseen", "conscience_false_flag",
            "conscience_fooled", "sft_token_acc", "val_loss"]
    dist.close()
    if not dist.master:
        return
    summary = {k: v for k, v in results.items() if k in ("base",) or k.startswith("fine-tuned")}
    with open(os.path.join(cfg["out_dir"], "summary.json"), "w") as f:
        json.dump({"config": cfg, "results": results, "wall_seconds": time.time() - t_start, **timing}, f, indent=1)
    if summary:
        print("\n" + table(summary, keys))
    print(f"\nheld-out instances and families: {cfg['eval_tasks']} tasks each, temperature {cfg['eval_temperature']}; "
          f"written to {cfg['out_dir']}/summary.json")


if __name__ == "__main__":
    flags.main(main)
