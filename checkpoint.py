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


def load_model(path, device="cpu"):
    """(model in eval mode, tokenizer, the raw checkpoint dict)."""
    ckpt = load(path)
    try:
        model = GPT(GPTConfig(**ckpt["model_args"]))
        model.load_state_dict(ckpt["model"])
        enc = tok.loads(ckpt["tokenizer"])
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"{path} does not match this model: {first}") from None
    return model.to(device).eval(), enc, ckpt
