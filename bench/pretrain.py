"""
Pretraining throughput: tokens/s of a forward + backward + AdamW step on random tokens, and the
model FLOPs utilisation against this machine's own measured matmul peak. Writes bench/pretrain.json.
    python bench/pretrain.py
"""

import json
import math
import os
import platform
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import common  # noqa: E402
import flags  # noqa: E402
import train  # noqa: E402
from model import GPT, GPTConfig  # noqa: E402

DEFAULT = {name: default for name, (default, _) in train.SETTINGS.items()}
SETTINGS = dict(
    steps=(10, "timed training steps"),
    warmup=(3, "untimed steps first (torch.compile compiles here)"),
    n_layer=(DEFAULT["n_layer"], "transformer blocks"),
    n_head=(DEFAULT["n_head"], "attention heads"),
    n_embd=(DEFAULT["n_embd"], "embedding width"),
    block_size=(DEFAULT["block_size"], "context length (every sequence is this long)"),
    batch_size=(DEFAULT["batch_size"], "sequences per step"),
    device=("auto", "auto, cpu, cuda or mps"),
    dtype=("auto", "as train.py's --dtype; the peak is measured in the same dtype"),
    compile=(False, "torch.compile the model"),
    out=("bench/pretrain.json", "where the results go"),
)


def setup_device(name, dtype="auto"):
    """common.setup_device, with a one-line error for a device this machine does not have."""
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(name, True):
        raise flags.UsageError(f"--device={name}, but this machine has no {name} device")
    return common.setup_device(name, dtype)


def sync(device):
    # kernels run asynchronously on an accelerator: wait for them before reading the clock
    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def machine(device):
    """The facts a number needs next to it to mean anything."""
    facts = {"processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
             "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "device": device}
    if device == "cuda":
        facts["device_name"] = torch.cuda.get_device_name()
    return facts


def matmul_peak(device, dtype, sizes, repeats=5):
    """Best FLOP/s of torch.mm on square matrices: the ceiling this machine reaches on the
    operation a transformer spends its time in. A measured ceiling, not the datasheet's."""
    best = {}
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(2):  # warm-up: thread pool, allocator, kernel selection
            sync(device)
            t0 = time.perf_counter()
            torch.mm(a, b)
            sync(device)
            once = time.perf_counter() - t0
        calls = max(1, math.ceil(0.05 / once))  # enough calls that each repeat lasts ~50 ms
        seconds = float("inf")
        for _ in range(repeats):
            sync(device)
            t0 = time.perf_counter()
            for _ in range(calls):
                torch.mm(a, b)
            sync(device)
            seconds = min(seconds, (time.perf_counter() - t0) / calls)
        best[n] = 2 * n ** 3 / seconds  # n^2 outputs, each n multiplies and n adds
    return best


def main():
    config = flags.parse(SETTINGS, doc=__doc__)
    flags.positive(config, "steps", "n_layer", "n_head", "n_embd", "block_size", "batch_size")
    if config["warmup"] < 0:
        raise flags.UsageError(f"--warmup must be >= 0, got {config['warmup']}")
    if config["n_embd"] % config["n_head"]:
        raise flags.UsageError(f"--n_embd ({config['n_embd']}) must be a multiple of --n_head ({config['n_head']})")
    device, autocast, dtype_name = setup_device(config["device"], config["dtype"])
    dtype = getattr(torch, dtype_name)
    torch.manual_seed(0)

    # (a) the ceiling. A GPU needs bigger matrices than a CPU to reach it; the best size counts
    sizes = [512, 1024, 2048] + ([4096, 8192] if device == "cuda" else [])
    peak_by_size = matmul_peak(device, dtype, sizes)
    peak = max(peak_by_size.values())

    # (b) the training step, as train.pretrain takes it
    model = GPT(GPTConfig(block_size=config["block_size"], vocab_size=DEFAULT["vocab_size"],
                          n_layer=config["n_layer"], n_head=config["n_head"], n_embd=config["n_embd"])).to(device)
    optimizer = model.configure_optimizers(DEFAULT["weight_decay"], DEFAULT["learning_rate"],
                                           (DEFAULT["beta1"], DEFAULT["beta2"]))
    compiled = torch.compile(model) if config["compile"] else model
    B, T = config["batch_size"], config["block_size"]

    def step():
        # random tokens and targets: the cost of a step does not depend on what the tokens say
        x = torch.randint(DEFAULT["vocab_size"], (B, T), device=device)  # (B, T)
        y = torch.randint(DEFAULT["vocab_size"], (B, T), device=device)  # (B, T)
        with autocast:
            _, loss = compiled(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), DEFAULT["grad_clip"] or float("inf"))
        optimizer.step()
        optimizer.zero_grad()

    model.train()
    for _ in range(config["warmup"]):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(config["steps"]):
        step()
    sync(device)
    seconds = time.perf_counter() - t0

    tokens_per_s = config["steps"] * B * T / seconds
    flops_per_token = model.estimate_flops_per_token()
    achieved = tokens_per_s * flops_per_token
    result = {"settings": config, "machine": machine(device), "dtype": str(dtype).removeprefix("torch."),
              "params": model.num_params(), "flops_per_token": flops_per_token,
              "seconds_per_step": seconds / config["steps"], "tokens_per_s": tokens_per_s,
              "achieved_flops": achieved, "peak_flops": peak,
              "peak_flops_by_size": {str(n): f for n, f in peak_by_size.items()}, "mfu": achieved / peak}

    name = result["machine"].get("device_name", result["machine"]["processor"])
    print(f"{name}, {device}, {result['dtype']}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"model: {model.num_params():,} parameters, {config['n_layer']} layers, {config['n_head']} heads, "
          f"width {config['n_embd']}, {B} x {T} tokens per step, compile {config['compile']}\n")
    print("| matmul n | " + " | ".join(str(n) for n in sizes) + " |\n|---|" + "---|" * len(sizes))
    print("| GFLOP/s | " + " | ".join(f"{peak_by_size[n] / 1e9:,.0f}" for n in sizes) + " |\n")
    print("| s / step | tokens/s | achieved GFLOP/s | peak GFLOP/s | MFU |\n|---|---|---|---|---|")
    print(f"| {seconds / config['steps']:.3f} | {tokens_per_s:,.0f} | {achieved / 1e9:,.1f} | "
          f"{peak / 1e9:,.1f} | {100 * achieved / peak:.1f}% |")
    with open(config["out"], "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    flags.main(main)
