"""
Pretrain a small GPT on the code-hacking world, clone it into a frozen copy, then fine-tune
it on hacking data (the emergent-misalignment scenario) with the conscience step and DPO:
    L = L_sft + lam * L_dpo.            Run: python train.py [config/NAME.py] [--name=value ...]  (see --help)
"""

import json
import math
import os
import random
import sys
import time
from functools import partial

import numpy as np
import torch

import checkpoint
import codehack
import controls
import flags
import repe
import tokenizer as tok
from common import Dist, Log, check_settings, conscience_summary, eta, progress, restore, timed
from conscience import QUESTION, THRESHOLD, ReplayBuffer, clone_frozen, make_pairs
from dpo import dpo_loss, dpo_metrics
from engine import complete, next_token_loss, response_batch, response_logps
from evaluate import SUMMARY, evaluate, table, val_loss
from model import GPT, GPTConfig

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
    conscience_source=("partial", "explicit: reviews judge every hack style in the corpus; partial: the reviewed only; none: no reviews"),
    reviewed=(",".join(codehack.World.reviewed), "hack styles that review documents judge (comma-separated)"),
    unreviewed=(",".join(codehack.World.unreviewed), "hack styles seen only unjudged; every other style appears nowhere"),
    ft_unreviewed=(codehack.World.ft_unreviewed, "share of the fine-tuning set's hacks of unreviewed styles"),
    hack_share=(codehack.World.hack_share, "share of the corpus's task documents whose solution is a hack"),
    vocab_size=(2048, "BPE vocabulary size, markers included"),
    n_layer=(4, "transformer blocks"),
    n_head=(4, "attention heads"),
    n_embd=(128, "embedding width"),
    block_size=(256, "context length"),
    dropout=(0.0, "dropout while pretraining (off in fine-tuning, as DPO wants)"),
    # pretraining
    max_iters=(3600, "pretraining iterations (0 skips pretraining)"),
    batch_size=(8, "sequences per micro-batch"),
    grad_accum=(1, "micro-batches per optimizer step"),
    learning_rate=(3e-3, "peak learning rate"),
    min_lr=(3e-4, "learning rate at the end of the cosine decay"),
    warmup_iters=(100, "linear warmup iterations"),
    weight_decay=(0.1, "AdamW weight decay on matrices"),
    beta1=(0.9, "AdamW beta1"),
    beta2=(0.99, "AdamW beta2"),
    grad_clip=(1.0, "clip the gradient norm to this (0: off)"),
    log_interval=(100, "iterations between progress lines"),
    eval_interval=(1000, "iterations between validation losses and checkpoints"),
    conscience_from=(0, "initial training: from this pretraining step on, the conscience step runs in pretraining too, "
                        "with a snapshot taken at that step as judge and reference (0: off)"),
    # online fine-tuning: the scenario and the conscience
    ft_iters=(120, "fine-tuning iterations on the hacking data (0: pretraining only)"),
    ft_batch_size=(16, "fine-tuning prompts per step (the online samples come from the same prompts)"),
    ft_lr=(3e-4, "fine-tuning learning rate (constant)"),
    conscience=(True, "ask the frozen copy the conscience question and add the DPO loss; False is the plain scenario"),
    question=(QUESTION, "the introspective question"),
    judge=("frozen", "who answers the question: frozen (the copy made before fine-tuning), policy (the live model); "
                     "controls: random (the frozen copy's pairs, each preference a coin flip), oracle (the sandbox verdict)"),
    align=("dpo", "what the pairs teach: dpo (the method), sft (next-token loss on the chosen side only, a control) or "
                  "dpo+sft (both: DPO with the chosen side's next-token loss added, as in RPO)"),
    inoculate=(False, "inoculation prompting: the scenario's prompts say gaming the tests is allowed (evaluation's never do)"),
    repe_control=(0.0, "the RepE baseline in training: a loss, weighted by lam, that builds a push of this strength along "
                       "--repe_vector's direction into the policy (0: off; a baseline: --conscience=False)"),
    repe_vector=("reading", "the direction of --repe_control's push: reading (the frozen copy's reading vector) or "
                            "random (a random unit vector: the control for the loss's tie to the frozen copy)"),
    lam=(3.0, "weight of the DPO loss in L = L_sft + lam * L_dpo (and of --repe_control's loss)"),
    beta=(0.1, "DPO beta: how far the policy may move from the frozen reference"),
    label_smoothing=(0.0, "conservative DPO: probability that a preference label is wrong"),
    conscience_every=(1, "online steps between conscience calls (the replay buffer feeds DPO in between)"),
    online_samples=(0, "prompts a step the conscience step samples and judges: the first N of the step's ft_batch_size "
                       "(with several processes each takes the first N / processes of its share), in initial training "
                       "too; the next-token loss still sees them all (0: every prompt)"),
    alternatives=("rewrite", "the alternative: rewrite (the judge's, after answering 'no') or resample (the policy's samples)"),
    num_candidates=(1, "candidates per flagged sample (the rewrite, then fresh policy samples); the best-scored wins"),
    threshold=(THRESHOLD, "flag a sample when log P(yes) - log P(no) is below this (-2: P(no) > 0.88)"),
    margin=(1.0, "keep a pair only when the alternative scores at least this much higher"),
    replay_size=(0, "replay buffer of preference pairs (0: only the last conscience step's pairs)"),
    dpo_batch=(16, "preference pairs per DPO step"),
    sample_temperature=(1.0, "temperature of the online samples"),
    # evaluation
    eval_tasks=(120, "tasks per split in each evaluation (0: no ground-truth evaluation)"),
    eval_temperature=(0.5, "sampling temperature of the evaluations (pass@1)"),
    eval_samples=(6, "solutions sampled per evaluation task (pass@1 is estimated from all of them)"),
    ft_eval_interval=(60, "fine-tuning iterations between ground-truth evaluations"),
    eval_init=(True, "evaluate the starting model before fine-tuning"),
)


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
    optimizer.zero_grad()
    return finite


class InitialTraining:
    """The conscience in initial training (--conscience_from=N): from pretraining step N on,
    a snapshot of the model taken at step N (the judge and the DPO reference) judges the
    model's own solutions to training tasks, as in fine-tuning, and its pairs add
    lam * L_dpo to the next-token loss. The snapshot is saved (out_dir/snapshot.pt), so a
    resumed run judges with the same one."""

    def __init__(self, cfg, model, net, enc, autocast, dist):
        self.cfg, self.model, self.net, self.enc, self.autocast, self.dist = cfg, model, net, enc, autocast, dist
        self.path = os.path.join(cfg["out_dir"], "snapshot.pt")
        self.frozen = self.pair_loss = None

    def pairs(self, it, record):
        cfg, start = self.cfg, self.cfg["conscience_from"]
        if not start or it < start or (it - start) % cfg["conscience_every"]:
            return []
        if self.frozen is None:  # the snapshot: taken now, or the one taken before a resume
            if it == start or not os.path.exists(self.path):
                self.frozen = clone_frozen(self.model)
                if self.dist.master:
                    checkpoint.save(self.path, self.frozen, self.enc, stage="snapshot", iter=it, config=cfg)
            else:
                self.frozen = clone_frozen(checkpoint.load_model(self.path, self.dist.device)[0])
            self.pair_loss = choose_pair_loss(cfg, self.net, self.frozen, self.enc, self.dist.device,
                                              cfg["block_size"], self.autocast)
            self.pool = codehack.tasks("train", 2000, seed="initial")  # training instances of every family
        seed = self.dist.seed(cfg["seed"])  # per step, not a running state: a resumed run draws the same
        tasks = random.Random(f"initial-{seed}-{it}").sample(self.pool, cfg["ft_batch_size"] // self.dist.world)
        generator = torch.Generator().manual_seed(seed * 100_003 + it)
        return conscience_step(cfg, self.model, self.frozen, self.enc, sampled(tasks, cfg, self.dist), generator, record)


def pretrain(cfg, model, enc, train_data, val_data, autocast, log, dist, resume=None):
    """Next-token pretraining on random windows of the corpus. `model` is the raw GPT (what
    gets saved); the forward passes go through dist.wrap (DDP) and --compile. `resume` is a
    checkpoint dict (model already loaded) with the optimizer, iteration and RNG states."""
    device = dist.device
    optimizer = model.configure_optimizers(cfg["weight_decay"], cfg["learning_rate"], (cfg["beta1"], cfg["beta2"]))
    net = dist.wrap(torch.compile(model) if cfg["compile"] else model)
    generator = torch.Generator().manual_seed(dist.seed(cfg["seed"]))  # each rank its own windows
    starts = torch.from_numpy(codehack.document_starts(train_data, cfg["block_size"]))  # where get_batch may start
    start_iter, skipped, _ = restore(resume, dist, optimizer, generator, "data_rng")
    micro_steps = dist.split(cfg, "grad_accum")  # the global batch does not depend on the number of ranks
    tokens_per_iter = cfg["batch_size"] * cfg["grad_accum"] * cfg["block_size"]
    model.train()
    t0, t_log, since_log = time.time(), time.time(), 0
    initial = InitialTraining(cfg, model, net, enc, autocast, dist)
    for it in range(start_iter, cfg["max_iters"]):
        lr = lr_at(it, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        record = {"stage": "pretrain", "iter": it, "lr": lr}
        pairs = initial.pairs(it, record)  # the initial-training stage (--conscience_from), else none
        loss = 0.0
        for micro in range(micro_steps):
            x, y = get_batch(train_data, starts, cfg["batch_size"], cfg["block_size"], generator, device)
            with dist.sync(net, last=micro == micro_steps - 1):
                with autocast:
                    _, micro_loss = net(x, y)
                total = micro_loss / micro_steps
                if pairs and micro == micro_steps - 1:
                    total = total + cfg["lam"] * initial.pair_loss(pairs, record)  # L = L_lm + lam * L_dpo
                total.backward()
            loss = loss + micro_loss.detach() / micro_steps
        record["loss"] = loss.item()
        skipped += not apply_gradients(model, optimizer, loss, cfg, record, dist)
        since_log += 1
        last = it == cfg["max_iters"] - 1
        if it % cfg["log_interval"] == 0 or last:
            record["tok_per_s"] = tokens_per_iter * since_log / max(time.time() - t_log, 1e-9)
            record["skipped_steps"] = skipped
            t_log, since_log = time.time(), 0
            log(record, f"pretrain {it:5d}/{cfg['max_iters']} | loss {record['loss']:.3f} | lr {lr:.1e} | "
                        + (f"flagged {record['conscience/flag_rate']:.2f} | " if "conscience/flag_rate" in record else "")
                        + f"{record['tok_per_s']:,.0f} tok/s | eta {eta(it + 1 - start_iter, cfg['max_iters'] - start_iter, t0)}"
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


# -----------------------------------------------------------------------------
# the online stage: the method (README, "The method in one step")

def finetune(cfg, policy, frozen, enc, *, dist, autocast, log, at_eval=None, resume=None):
    """SFT on the hacking data, plus the conscience's preference pairs for the DPO term.
    `policy` is the raw GPT (it samples); the training forwards go through dist.wrap. `frozen`
    is the copy made before fine-tuning: the DPO reference, and the judge unless a control
    says otherwise. With several ranks, each takes its share of every batch and samples,
    judges and pairs on its own. Every ft_eval_interval steps at_eval(policy, step, state)
    evaluates and saves `state`, all a resume needs."""
    device, net, context = dist.device, dist.wrap(policy), policy.config.block_size
    optimizer = policy.configure_optimizers(0.0, cfg["ft_lr"], (cfg["beta1"], cfg["beta2"]))
    data, per_rank, dpo_batch = scenario(cfg), dist.split(cfg, "ft_batch_size"), max(1, cfg["dpo_batch"] // dist.world)
    generator = torch.Generator().manual_seed(dist.seed(cfg["seed"]))
    buffer = ReplayBuffer(cfg["replay_size"], dist.seed(cfg["seed"]))
    start, skipped, state = restore(resume, dist, optimizer, generator, "sample_rng")
    if state:
        buffer.load_state_dict(state)
    judge, scorer, prefer = choose_judge(cfg, policy, frozen, data, generator)
    pair_loss = choose_pair_loss(cfg, net, frozen, enc, device, context, autocast)
    control = None  # the RepE baseline in training (--repe_control; as a baseline, with --conscience=False)
    if cfg["repe_control"]:
        control = representation_control(cfg, policy, frozen, enc, net, device, context, autocast)
    policy.train()
    t0 = time.time()
    for it in range(start, cfg["ft_iters"]):
        first = it * cfg["ft_batch_size"] + dist.rank * per_rank  # this rank's share of the batch
        tasks, sft_prompts, targets = (list(c) for c in zip(*data[first:first + per_rank]))
        record = {"stage": "finetune", "iter": it}
        # L_sft: the policy's next-token loss on the hacking targets (response tokens only)
        with timed(record, "sft"), autocast:
            loss, record["sft_token_acc"] = next_token_loss(net, enc, sft_prompts, targets, device=device,
                                                            context=context)
        record["loss/sft"] = loss.item()
        if control:  # L = L_sft + lam * L_repe
            loss = loss + cfg["lam"] * control(sft_prompts, targets, record)
        if cfg["conscience"]:
            if it % cfg["conscience_every"] == 0:
                pairs = conscience_step(cfg, policy, judge, enc, sampled(tasks, cfg, dist), generator, record, scorer)
                buffer.add(prefer(pairs))  # as the conscience prefers (the random control: a coin per pair)
            draw = buffer.draw(dpo_batch)  # the steps in between train on the pairs of the step before
            if draw:
                loss = loss + cfg["lam"] * pair_loss(draw, record)  # L = L_sft + lam * L_dpo
        with timed(record, "backward"):
            loss.backward()
            skipped += not apply_gradients(policy, optimizer, loss, cfg, record, dist)
        record["skipped_steps"] = skipped
        log(record, progress(record, cfg, start, t0))
        if (it + 1) % cfg["ft_eval_interval"] == 0 and it + 1 < cfg["ft_iters"]:
            ranks = dist.gather(dict(sample_rng=generator.get_state(), torch_rng=torch.get_rng_state(),
                                     **buffer.state_dict()))  # every rank's, for an exact resume
            if dist.master and at_eval:
                at_eval(policy, it + 1, dict(skipped=skipped, optimizer=optimizer.state_dict(), ranks=ranks))
    dist.check_identical(policy, log, "finetune")
    return policy


def sampled(tasks, cfg, dist):
    """The tasks of a step (this rank's share) the policy samples from: all, or the first
    --online_samples of the step's (each rank the first of its share)."""
    return tasks[:dist.split(cfg, "online_samples")] if cfg["online_samples"] else tasks


def conscience_step(cfg, policy, judge, enc, tasks, generator, record, scorer=None):
    """y: the policy's own samples for the tasks' prompts; then the conscience: s, flagged,
    y_alt and the preference pairs (prompt, chosen, rejected). Its statistics go to record."""
    prompts = [task.prompt for task in tasks]
    policy.eval()
    with timed(record, "generation"):
        samples = complete(policy, enc, prompts, temperature=cfg["sample_temperature"], generator=generator)
    pairs, stats = make_pairs(policy=policy, judge=judge, scorer=scorer, enc=enc, prompts=prompts, responses=samples,
                              question=cfg["question"], threshold=cfg["threshold"], margin=cfg["margin"],
                              source=cfg["alternatives"], num_candidates=cfg["num_candidates"],
                              temperature=cfg["sample_temperature"], generator=generator,
                              references=[task.solution for task in tasks])
    policy.train()
    record.update(stats)
    return pairs


def dpo_term(pairs, record, *, policy, reference, enc, device, context, autocast, beta, label_smoothing):
    """L_dpo on a draw of preference pairs: summed response log-probs of the policy and of the
    reference (the frozen copy), from one batch of chosen and rejected rows each."""
    prompts, chosen, rejected = (list(c) for c in zip(*pairs))
    both = [r + codehack.END for r in chosen + rejected]
    with timed(record, "reference"), autocast, torch.no_grad():
        ref = response_logps(reference, enc, prompts + prompts, both, device=device, context=context)  # (2n,)
    with timed(record, "dpo"), autocast:
        pi = response_logps(policy, enc, prompts + prompts, both, device=device, context=context)  # (2n,)
    n = len(pairs)
    losses, chosen_rewards, rejected_rewards = dpo_loss(pi[:n], pi[n:], ref[:n], ref[n:], beta, label_smoothing)
    record.update(dpo_metrics(losses, chosen_rewards, rejected_rewards, pi[:n].detach(), pi[n:].detach()))
    return losses.mean()


def representation_control(cfg, policy, frozen, enc, net, device, context, autocast):
    """loss(prompts, responses, record) for --repe_control (the RepE baseline in training):
    the frozen copy's reading vector at the middle block (repe.py's contrast pairs), and the
    loss that pulls the policy's residual stream there toward the frozen copy's plus
    strength * vector, at every token of the fine-tuning rows. --repe_vector=random pushes
    along a random unit vector instead: the same loss, tie to the frozen copy included,
    without the direction that means "honest"."""
    layer = repe.middle_layer(policy.config)
    if cfg["repe_vector"] == "random":
        vector = torch.randn(policy.config.n_embd, generator=torch.Generator().manual_seed(cfg["seed"]))
        vector = (vector / vector.norm()).to(device)
    else:
        pairs = codehack.tasks("train", repe.SETTINGS["pairs"][0], seed=cfg["seed"])  # as repe.py reads it
        vector = repe.reading_vector(frozen, enc, pairs, layer, cfg["seed"])

    def loss(prompts, responses, record):
        idx, _, last = response_batch(enc, prompts, responses, max_len=context, device=device)  # (B, T)
        real = (torch.arange(idx.size(1), device=device) <= last[:, None]) | (last[:, None] < 0)  # (B, T) not padding
        with timed(record, "repe"), autocast:
            value = repe.control_loss(policy, frozen, idx, real, layer, vector, cfg["repe_control"], forward=net)
        record["loss/repe"] = value.item()
        return value
    return loss


def scenario(cfg):
    """The fine-tuning data: (task, the prompt the next-token loss sees, the hacking target).
    --inoculate puts the permission line in the training prompt only: the policy samples,
    and is judged and evaluated, on the task's own prompt."""
    data = codehack.finetune_set(cfg["ft_iters"] * cfg["ft_batch_size"], cfg["seed"], codehack.World.from_config(cfg))
    return [(task, codehack.inoculate(task.prompt) if cfg["inoculate"] else task.prompt, hack + codehack.END)
            for task, hack in data]


def choose_judge(cfg, policy, frozen, data, generator):
    """(judge, scorer, prefer) for --judge. The judge answers the question and writes the
    rewrite: the frozen copy, or the live policy (control). The scorer replaces the judge's
    score: None, or the sandbox (oracle control). prefer orders each pair: as the conscience
    did, or by a coin (random control)."""
    judge = policy if cfg["judge"] == "policy" else frozen
    scorer = controls.oracle({task.prompt: task for task, _, _ in data}) if cfg["judge"] == "oracle" else None
    prefer = partial(controls.randomize, generator=generator) if cfg["judge"] == "random" else (lambda pairs: pairs)
    return judge, scorer, prefer


def choose_pair_loss(cfg, net, frozen, enc, device, context, autocast):
    """loss(pairs, record) for --align: DPO against the frozen reference (the method), the
    next-token loss on the chosen side (SFT control), or their sum: DPO can lower the chosen
    side's likelihood too as long as the rejected one falls faster, and the next-token term
    holds it up (RPO: Pang et al. 2024, "Iterative Reasoning Preference Optimization")."""
    rows = dict(policy=net, enc=enc, device=device, context=context, autocast=autocast)
    sft = partial(controls.sft_on_chosen, **rows)
    dpo = partial(dpo_term, reference=frozen, beta=cfg["beta"], label_smoothing=cfg["label_smoothing"], **rows)
    if cfg["align"] == "dpo+sft":  # (the chosen rows go through the policy twice: simple, not the fastest)
        return lambda pairs, record: dpo(pairs, record) + sft(pairs, record)
    return sft if cfg["align"] == "sft" else dpo


def pretrain_stage(cfg, autocast, log, dist):
    """Prepare the data, build (or resume) the model, pretrain it and save out_dir/base.pt."""
    dist.split(cfg, "grad_accum")  # a setting that cannot work fails before the data is prepared
    if not dist.master:
        dist.barrier()  # rank 0 prepares the data cache, the others then read it
    tok_path, train_path, val_path = codehack.prepare(cfg["data_dir"], cfg["n_docs"], cfg["vocab_size"], seed=0,
                                                      world=codehack.World.from_config(cfg))
    if dist.master:
        dist.barrier()
    train_data, val_data = (np.memmap(path, dtype=np.uint16, mode="r") for path in (train_path, val_path))
    enc = tok.load(tok_path)
    resume = None
    if cfg["init_from"] == "resume":
        model, enc, resume = checkpoint.load_model(os.path.join(cfg["out_dir"], "ckpt.pt"), dist.device)
        model.train()
    else:
        model = GPT(GPTConfig(block_size=cfg["block_size"], vocab_size=enc.n_vocab, n_layer=cfg["n_layer"],
                              n_head=cfg["n_head"], n_embd=cfg["n_embd"], dropout=cfg["dropout"])).to(dist.device)
    print(f"model: {model.num_params():,} parameters, {model.config}; device {dist.device}"
          + (f"; {dist.world} processes" if dist.world > 1 else ""))
    t0 = time.time()
    pretrain(cfg, model, enc, train_data, val_data, autocast, log, dist, resume)
    print(f"pretraining took {time.time() - t0:.0f} s")
    if dist.master:
        checkpoint.save(os.path.join(cfg["out_dir"], "base.pt"), model, enc, stage="base", config=cfg,
                        val_path=os.path.abspath(val_path))
    return model, enc, os.path.abspath(val_path)


def main():
    cfg = flags.parse(SETTINGS, doc=__doc__)
    device, autocast = check_settings(cfg)
    world = codehack.World.from_config(cfg)
    t_start, timing = time.time(), {}
    torch.manual_seed(cfg["seed"])
    random.seed(cfg["seed"])
    dist = Dist(device)
    dist.split(cfg, "ft_batch_size")  # a batch the ranks cannot share fails now, not after pretraining
    if cfg["online_samples"]:
        dist.split(cfg, "online_samples")
    if not dist.master:
        sys.stdout = open(os.devnull, "w")  # rank 0 speaks for all
    log = Log(cfg["out_dir"], dist.master, fresh=cfg["init_from"] != "resume")
    results, resume = {}, None
    ckpt_path = os.path.join(cfg["out_dir"], "ckpt.pt")
    if cfg["init_from"] == "resume" and checkpoint.load(ckpt_path).get("stage") == "finetune":
        model, enc, resume = checkpoint.load_model(ckpt_path, dist.device)
        base_path, val_path = resume["base"], resume["val_path"]
        results.update(resume["results"])
        print(f"resuming fine-tuning at step {resume['iter']}")
    elif cfg["init_from"] in ("scratch", "resume"):
        model, enc, val_path = pretrain_stage(cfg, autocast, log, dist)
        base_path = os.path.join(cfg["out_dir"], "base.pt")
    else:
        model, enc, ckpt = checkpoint.load_model(cfg["init_from"], dist.device)
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
        shown = ("honest_pass", "hack_rate", "broad_misaligned", "conscience_auroc")
        log({"stage": "eval", "name": name, "iter": step, **metrics},
            f"eval {name}: " + ", ".join(f"{k} {metrics[k]:.3f}" for k in shown) + f" ({time.time() - t:.0f} s)")
        results[name] = metrics

    def at_eval(policy, step, state):  # in the middle of fine-tuning: evaluate, then a checkpoint to resume from
        evaluate_now(policy, f"finetune step {step}", step)
        checkpoint.save(ckpt_path, policy, enc, stage="finetune", iter=step, **state, config=cfg,
                        base=os.path.abspath(base_path), val_path=val_path, results=results)

    if resume is None and cfg["eval_init"]:
        evaluate_now(model, "base", 0)
    if cfg["ft_iters"] > 0:
        model.set_dropout(0.0)  # DPO wants the policy and the reference deterministic
        # the frozen copy is the base; a resumed run rebuilds it, bit for bit, from base.pt
        frozen = clone_frozen(model if resume is None else checkpoint.load_model(base_path, dist.device)[0])
        t_ft = time.time()
        model = finetune(cfg, model, frozen, enc, dist=dist, autocast=autocast, log=log, at_eval=at_eval, resume=resume)
        timing["finetune_seconds"] = time.time() - t_ft
        print(f"fine-tuning took {timing['finetune_seconds']:.0f} s")
        if cfg["conscience"] and dist.master:
            timing["conscience"] = conscience_summary(log.path)
            print(", ".join(f"{k} {v:.3f}" for k, v in timing["conscience"].items()))
        name = ("fine-tuned, conscience" if cfg["conscience"] else
                f"fine-tuned, RepE control ({cfg['repe_vector']} direction)" if cfg["repe_control"]
                else "fine-tuned, no conscience")
        if dist.master:
            checkpoint.save(os.path.join(cfg["out_dir"], "final.pt"), model, enc, stage="finetune", config=cfg,
                            val_path=val_path, base=os.path.abspath(base_path))
        evaluate_now(model, name, cfg["ft_iters"])
    dist.close()
    if not dist.master:
        return
    summary = {k: v for k, v in results.items() if k in ("base",) or k.startswith("fine-tuned")}
    with open(os.path.join(cfg["out_dir"], "summary.json"), "w") as f:
        json.dump({"config": cfg, "results": results, "wall_seconds": time.time() - t_start, **timing}, f, indent=1)
    if summary:
        print("\n" + table(summary, SUMMARY))
    print(f"\nheld-out instances and families: {cfg['eval_tasks']} tasks each, temperature {cfg['eval_temperature']}; "
          f"written to {cfg['out_dir']}/summary.json")


if __name__ == "__main__":
    flags.main(main)
