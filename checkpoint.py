"""
Checkpoints: one self-contained file per model (weights, model args, tokenizer, and
whatever a resume needs), written atomically and loaded with weights_only=True.
"""

import os

import torch

import tokenizer as tok
from flags import UsageError
from model import GPT, GPTConfig


def save(path, model, enc, **extra):
    """Write to a temporary file, then rename: a crash mid-save leaves the old file intact."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    raw = model.module if hasattr(model, "module") else model  # unwrap DDP
    payload = dict(model_args=vars(raw.config).copy(), model=raw.state_dict(), tokenizer=tok.dumps(enc), **extra)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load(path):
    if not os.path.isfile(path):
        raise UsageError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise UsageError(f"{path} is not a readable checkpoint ({type(e).__name__})") from None


def mismatch(model, state):
    """The first difference between a model's parameters and a state dict, or None."""
    expected = model.state_dict()
    for name, tensor in expected.items():
        if name not in state:
            return f"missing {name}"
        if tuple(state[name].shape) != tuple(tensor.shape):
            return f"{name} has shape {tuple(state[name].shape)}, the model wants {tuple(tensor.shape)}"
    extra = sorted(set(state) - set(expected))
    return f"unexpected {extra[0]}" if extra else None


def load_model(path, device="cpu"):
    """(model in eval mode, tokenizer, the raw checkpoint dict)."""
    ckpt = load(path)
    try:
        model = GPT(GPTConfig(**ckpt["model_args"]))
        problem = mismatch(model, ckpt["model"])
        if problem:
            raise ValueError(problem)
        model.load_state_dict(ckpt["model"])
        enc = tok.loads(ckpt["tokenizer"])
    except (KeyError, TypeError, RuntimeError, ValueError, AttributeError) as e:
        raise UsageError(f"{path} does not match this model: {str(e).strip() or type(e).__name__}") from None
    if enc.n_vocab > model.config.vocab_size:
        raise UsageError(f"{path}: tokenizer has {enc.n_vocab} tokens, the model only {model.config.vocab_size}")
    return model.to(device).eval(), enc, ckpt
