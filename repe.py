"""
Representation engineering (Zou et al. 2023), the baseline the paper compares against: a
reading vector for "honest code vs hack" read from contrast pairs at a block of the model,
and control by adding it to the residual stream while the model writes; the block and the
strength are chosen on validation tasks. The same control in training, a loss that builds
the push into the weights, is train.py's --repe_control.
    python repe.py --ckpt=out/no_conscience/final.pt      # choose a block and strength, then evaluate
"""

import contextlib
import json
import random

import torch

import checkpoint
import codehack
import evaluate
import flags
import sandbox
from engine import complete

SETTINGS = dict(
    ckpt=("out/base.pt", "checkpoint to read and steer"),
    layers=("all", "blocks to read and steer after, each tried with every strength on the validation tasks: all, "
                   "middle (n_layer // 2 - 1, at least 0) or comma-separated block indices"),
    pairs=(256, "contrast pairs (honest form vs hack) from training-split tasks"),
    strengths=("0,2,4,8,16,32", "comma-separated strengths to try at every block of --layers on the validation tasks "
                                "(0, no steering, is tried once)"),
    val_tasks=(60, "validation tasks (training split, never the held-out ones) that choose the block and strength"),
    num_tasks=(120, "held-out tasks per split for the final evaluation"),
    samples=(6, "solutions per task in the final evaluation"),
    temperature=(0.5, "sampling temperature of the validation and the evaluation"),
    question=(codehack.QUESTION, "the question of the evaluation's conscience metrics"),
    threshold=(evaluate.THRESHOLD, "the evaluation's conscience threshold (conscience_false_flag)"),
    seed=(1337, "seed of the contrast pairs, the validation tasks and the evaluation"),
    json=(False, "print one JSON object instead of a table"),
)


def middle_layer(config):
    """The block whose output is read and steered by default: n_layer // 2 - 1, at least 0."""
    return max(0, config.n_layer // 2 - 1)


def residual(model, idx, layer, forward=None):
    """The residual stream after block `layer` at every position of idx, (B, T, C); `forward`
    (default: the model) runs the pass, e.g. a DDP wrapper of the model."""
    captured = []
    handle = model.transformer.h[layer].register_forward_hook(lambda module, args, output: captured.append(output))
    try:
        (forward or model)(idx, logits_at=torch.zeros_like(idx, dtype=torch.bool))  # no logits needed
    finally:
        handle.remove()
    return captured[0]


@torch.no_grad()
def last_hidden(model, enc, texts, layer, rows=32):
    """The residual stream after block `layer` at each text's last token, (B, C)."""
    out, device = [], model.lm_head.weight.device
    for i in range(0, len(texts), rows):
        ids = [enc.encode(t, allowed_special="all")[-model.config.block_size:] for t in texts[i:i + rows]]
        idx = torch.zeros(len(ids), max(map(len, ids)), dtype=torch.long, device=device)  # right-padded
        for j, row in enumerate(ids):
            idx[j, :len(row)] = torch.tensor(row, device=device)
        last = torch.tensor([len(r) - 1 for r in ids], device=device)
        out.append(residual(model, idx, layer)[torch.arange(len(ids), device=device), last])  # (rows, C)
    return torch.cat(out)


def reading_vector(model, enc, tasks, layer, seed=0):
    """Unit vector from the mean hack representation to the mean honest one: each task once
    with honest code in a random form and once with a hack of a training style."""
    rng = random.Random(f"repe-{seed}")
    world = codehack.World()
    honest = [codehack.task_doc(t, codehack.honest_form(t, rng)) for t in tasks]
    hacks = [codehack.task_doc(t, codehack.hack(t, rng.choice(world.corpus_styles), rng)) for t in tasks]
    direction = last_hidden(model, enc, honest, layer).mean(0) - last_hidden(model, enc, hacks, layer).mean(0)  # (C,)
    return direction / direction.norm()


@contextlib.contextmanager
def steering(model, layer, vector, strength):
    """Inside the block, every forward adds strength * vector to the residual stream after
    block `layer`, at every position (prompt and generated tokens alike)."""
    handle = model.transformer.h[layer].register_forward_hook(
        lambda module, args, output: output + strength * vector.to(output.dtype))
    try:
        yield
    finally:
        handle.remove()


def control_loss(model, frozen, idx, real, layer, vector, strength, forward=None):
    """Representation control in training, in the spirit of the RepE paper's LoRRA (without
    its low-rank adapters): the mean over the real positions (B, T) of the squared distance
    between the model's residual stream after block `layer` and the frozen copy's plus
    strength * vector, divided by strength^2: 1 where training starts (the model is the
    frozen copy), 0 once the steering is built into the weights."""
    with torch.no_grad():
        target = residual(frozen, idx, layer) + strength * vector.to(frozen.lm_head.weight.dtype)  # (B, T, C)
    h = residual(model, idx, layer, forward)  # (B, T, C)
    return (h - target)[real].float().pow(2).sum(-1).mean() / strength ** 2


def validation_score(counts):
    """How good a steering setting is on the validation samples, from their verdict counts:
    the share honest minus the share hacking minus the share that crashes. Code broken by a
    push is no better than a hack, so an error counts against it as a hack does (scored on
    honest minus hack alone, the strongest push always won by turning hacks into crashes);
    a push that trades hacks for crashes one for one still scores as well as no push."""
    return (counts["honest"] - counts["hack"] - counts["error"]) / sum(counts.values())


def choose(counts):
    """The (block, strength) whose validation verdicts score best; of equal scores the one
    tried first, so no steering, tried first, wins a tie."""
    return max(counts, key=lambda setting: validation_score(counts[setting]))


def parse_layers(text, config):
    """--layers: all, middle or comma-separated block indices -> a list of blocks."""
    if text in ("all", "middle"):
        return list(range(config.n_layer)) if text == "all" else [middle_layer(config)]
    try:
        layers = [int(x) for x in text.split(",")]
    except ValueError:
        raise flags.UsageError("--layers wants all, middle or comma-separated block indices") from None
    if not all(0 <= layer < config.n_layer for layer in layers):
        raise flags.UsageError(f"--layers must be blocks of the model: 0 to {config.n_layer - 1}")
    return layers


def main():
    cfg = flags.parse(SETTINGS, doc=__doc__)
    flags.positive(cfg, "pairs", "val_tasks", "num_tasks", "samples")
    try:
        strengths = [float(s) for s in cfg["strengths"].split(",")]
    except ValueError:
        raise flags.UsageError("--strengths wants comma-separated numbers") from None
    model, enc, ckpt = checkpoint.load_model(cfg["ckpt"])
    layers = parse_layers(cfg["layers"], model.config)
    train_tasks = codehack.tasks("train", cfg["pairs"] + cfg["val_tasks"], seed=cfg["seed"])
    vectors = {layer: reading_vector(model, enc, train_tasks[:cfg["pairs"]], layer, cfg["seed"]) for layer in layers}
    val = train_tasks[cfg["pairs"]:]
    # the block and strength are chosen on validation tasks, never on the held-out ones; strength
    # 0 (no steering) is the same at every block, so it is tried once
    settings = [(layers[0], 0.0)] if 0.0 in strengths else []
    settings += [(layer, s) for layer in layers for s in strengths if s != 0]
    counts = {}  # (layer, strength) -> the validation samples' verdict counts
    for layer, s in settings:
        with steering(model, layer, vectors[layer], s):
            g = torch.Generator().manual_seed(cfg["seed"])
            solutions = complete(model, enc, [t.prompt for t in val] * 2, temperature=cfg["temperature"], generator=g)
        verdicts = [x.verdict for x in sandbox.grade_many(val * 2, solutions)]
        counts[layer, s] = {v: verdicts.count(v) for v in evaluate.VERDICT_LETTER}
    layer, chosen = choose(counts)
    world = codehack.World.from_config(ckpt.get("config", {}))
    with steering(model, layer, vectors[layer], chosen):
        metrics = evaluate.evaluate(model, enc, cfg["num_tasks"], seed=cfg["seed"], samples=cfg["samples"], world=world,
                                    temperature=cfg["temperature"], question=cfg["question"], threshold=cfg["threshold"])
    metrics.update({"repe/layer": layer, "repe/strength": chosen,
                    **{f"repe/val_score@{l}/{s:g}": validation_score(c) for (l, s), c in counts.items()},
                    **{f"repe/val_verdicts@{l}/{s:g}": c for (l, s), c in counts.items()}})
    if cfg["json"]:
        print(json.dumps(metrics))
    else:
        name = lambda l, s: f"block {l}, strength {s:g}" if s else "no steering"  # noqa: E731
        print(f"chosen: {name(layer, chosen)}; validation score (honest - hack - error) of each:")
        for (l, s), c in counts.items():
            print(f"  {name(l, s)}: {validation_score(c):+.3f} (" + ", ".join(f"{n} {v}" for v, n in c.items()) + ")")
        print(evaluate.table({cfg["ckpt"]: metrics}))


if __name__ == "__main__":
    flags.main(main)
