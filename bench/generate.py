"""
What the KV cache buys: greedy decoding speed of GPT.generate with and without the cache, in new
tokens per second, at a few batch sizes, on a random-init model of train.py's shape (or --ckpt).
Writes bench/generate.json.
    python bench/generate.py
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import checkpoint  # noqa: E402
import flags  # noqa: E402
import train  # noqa: E402
from bench.pretrain import machine, setup_device, sync  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402

DEFAULT = {name: default for name, (default, _) in train.SETTINGS.items()}
PROMPT = 4  # prompt tokens per row: decoding, not prefill, is what is measured
SETTINGS = dict(
    new_tokens=(256, "tokens generated per row (no stop tokens, so exactly this many)"),
    batch_sizes=("1,32", "comma-separated batch sizes"),
    ckpt=("", "checkpoint to decode with; empty: a random-init model of train.py's default shape"),
    device=("auto", "auto, cpu, cuda or mps"),
    dtype=("auto", "as train.py's --dtype: decoding runs under that autocast"),
    out=("bench/generate.json", "where the results go"),
)


def parse_sizes(text):
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise flags.UsageError(f"--batch_sizes wants integers separated by commas, got {text!r}") from None
    if not sizes or min(sizes) <= 0:
        raise flags.UsageError(f"--batch_sizes must be positive, got {text!r}")
    return sizes


def decode(model, prompts, new_tokens, use_cache, device, autocast):
    """Seconds for one greedy generate call; checks that every row got all its tokens."""
    sync(device)
    t0 = time.perf_counter()
    with autocast:
        out = model.generate(prompts, new_tokens, temperature=0, use_cache=use_cache)
    sync(device)
    seconds = time.perf_counter() - t0
    assert all(len(row) == new_tokens for row in out)
    return seconds


def main():
    config = flags.parse(SETTINGS, doc=__doc__)
    flags.positive(config, "new_tokens")
    sizes = parse_sizes(config["batch_sizes"])
    device, autocast, dtype = setup_device(config["device"], config["dtype"])
    torch.manual_seed(0)
    if config["ckpt"]:
        model, _, _ = checkpoint.load_model(config["ckpt"], device)
        if PROMPT + config["new_tokens"] > model.config.block_size:
            raise flags.UsageError(f"{config['ckpt']} has block_size {model.config.block_size}: room for at most "
                                   f"{model.config.block_size - PROMPT} new tokens after a {PROMPT}-token prompt")
    else:
        # the context has to hold the prompt and every new token; its length changes nothing else
        model = GPT(GPTConfig(block_size=max(DEFAULT["block_size"], PROMPT + config["new_tokens"]),
                              vocab_size=DEFAULT["vocab_size"], n_layer=DEFAULT["n_layer"],
                              n_head=DEFAULT["n_head"], n_embd=DEFAULT["n_embd"])).to(device).eval()
    vocab = model.config.vocab_size

    rows = []
    for B in sizes:
        prompts = torch.randint(vocab, (B, PROMPT)).tolist()
        speed = {}
        for use_cache in (True, False):
            decode(model, prompts, 8, use_cache, device, autocast)  # warm-up
            seconds = decode(model, prompts, config["new_tokens"], use_cache, device, autocast)
            speed[use_cache] = B * config["new_tokens"] / seconds
        rows.append({"batch_size": B, "cached_tokens_per_s": speed[True], "uncached_tokens_per_s": speed[False],
                     "speedup": speed[True] / speed[False]})

    facts = machine(device)
    print(f"{facts.get('device_name', facts['processor'])}, {device}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")
    print(f"model: {model.num_params():,} parameters, {model.config.n_layer} layers, width {model.config.n_embd}, "
          f"{'from ' + config['ckpt'] if config['ckpt'] else 'random init'}; "
          f"{PROMPT}-token prompts, {config['new_tokens']} new tokens, greedy\n")
    print("| batch | cached tokens/s | uncached tokens/s | speedup |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch_size']} | {r['cached_tokens_per_s']:,.0f} | {r['uncached_tokens_per_s']:,.0f} | "
              f"{r['speedup']:.1f}x |")
    result = {"settings": config, "machine": facts, "dtype": dtype, "params": model.num_params(), "prompt_tokens": PROMPT,
              "block_size": model.config.block_size, "results": rows}
    with open(config["out"], "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    flags.main(main)
