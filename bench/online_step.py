"""
Cost of the conscience: time per online fine-tuning step with the conscience against a
plain fine-tuning step on the same batches, split into its phases, at train.py's defaults and
at other --online_samples (prompts a step the policy samples from), each against the same plain
step. After a short warm-up run (not counted) the conditions run in turn, --repeats rounds:
each ratio is the median over the rounds of that round's time over the same round's plain
step (a plain step's time alone moves by a quarter between runs on a shared machine), and
each condition's phases are those of its median run (the upper one for an even count).
Writes bench/online_step.json.
    python bench/online_step.py --ckpt=out/base.pt [--online_samples=8,4] [--repeats=3]
"""

import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import checkpoint  # noqa: E402
import flags  # noqa: E402
import train  # noqa: E402
from common import Dist, Log, eta, setup_device  # noqa: E402
from conscience import clone_frozen  # noqa: E402

SETTINGS = dict(
    ckpt=("out/base.pt", "the pretrained base to fine-tune"),
    steps=(train.SETTINGS["ft_iters"][0], "online steps per condition (default: a whole default fine-tuning run)"),
    out=("bench/online_step.json", "where the results go"),
    device=("cpu", "cpu or cuda"),
    dtype=("auto", "as train.py's --dtype"),
    online_samples=("", "comma-separated values of train.py's --online_samples to time besides the default (every prompt)"),
    repeats=(1, "rounds of all the conditions in turn; each reported by its median run"),
)
PHASES = ["sft", "generation", "conscience", "alternatives", "reference", "dpo", "backward"]


def run(base_path, conscience, steps, device="cpu", dtype="auto", **settings):
    """One fine-tuning run of `steps` online steps from the base: seconds a step, and their split."""
    device, autocast, _ = setup_device(device, dtype)
    model, enc, _ = checkpoint.load_model(base_path, device)
    cfg = {name: default for name, (default, _) in train.SETTINGS.items()}
    cfg.update(conscience=conscience, ft_iters=steps, ft_eval_interval=10 ** 9, **settings)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        log = Log(tmp)
        torch.manual_seed(cfg["seed"])
        t0 = time.perf_counter()
        cfg["out_dir"] = tmp
        train.finetune(cfg, model, clone_frozen(model), enc, dist=Dist(device), autocast=autocast,
                       log=lambda record, line=None: (records.append(record), log(record)))
        total = time.perf_counter() - t0
    split = {p: sum(r.get(f"time/{p}", 0.0) for r in records) / steps for p in PHASES}
    return {"seconds_per_step": total / steps, "split": split,
            "pairs_per_step": sum(r.get("conscience/pairs", 0) for r in records) / steps,
            "flag_rate": sum(r.get("conscience/flag_rate", 0) for r in records) / steps}


def main():
    config = flags.parse(SETTINGS, doc=__doc__)
    flags.positive(config, "steps", "repeats")
    try:
        fewer = [int(v) for v in config["online_samples"].split(",") if v.strip()]
    except ValueError:
        raise flags.UsageError(f"--online_samples wants comma-separated integers, got {config['online_samples']!r}")
    batch = train.SETTINGS["ft_batch_size"][0]
    if any(not 0 < n < batch for n in fewer) or len(set(fewer)) < len(fewer):
        raise flags.UsageError(f"--online_samples wants distinct values from 1 to {batch - 1} (every prompt, "
                               f"{batch}, is always timed)")
    checkpoint.load(config["ckpt"])
    conditions = [("plain", dict(conscience=False)), ("conscience", dict(conscience=True))]
    conditions += [(n, dict(conscience=True, online_samples=n)) for n in fewer]
    run(config["ckpt"], False, min(10, config["steps"]), config["device"], config["dtype"])  # warm-up, not counted
    runs, t0 = {name: [] for name, _ in conditions}, time.time()
    for i in range(config["repeats"] * len(conditions)):  # round by round, so drift hits every condition alike
        name, settings = conditions[i % len(conditions)]
        runs[name].append(run(config["ckpt"], steps=config["steps"], device=config["device"], dtype=config["dtype"],
                              **settings))
        print(f"[{i + 1}/{config['repeats'] * len(conditions)}] {name}: {runs[name][-1]['seconds_per_step']:.3f} s a "
              f"step | eta {eta(i + 1, config['repeats'] * len(conditions), t0)}", flush=True)
    median = {name: dict(sorted(r, key=lambda x: x["seconds_per_step"])[len(r) // 2],
                         all_seconds_per_step=[x["seconds_per_step"] for x in r]) for name, r in runs.items()}

    def ratio(name):  # paired by round: each round's time over that round's plain step
        return statistics.median_high([a["seconds_per_step"] / b["seconds_per_step"]
                                       for a, b in zip(runs[name], runs["plain"])])
    plain, online = median["plain"], median["conscience"]
    result = {"ckpt": config["ckpt"], "steps": config["steps"], "repeats": config["repeats"],
              "threads": torch.get_num_threads(),
              "device": torch.cuda.get_device_name() if config["device"] == "cuda" else "cpu",
              "dtype": setup_device(config["device"], config["dtype"])[2],
              "conscience_every": train.SETTINGS["conscience_every"][0],
              "plain": plain, "conscience": online,
              "ratio": ratio("conscience"), "online_samples": {str(n): dict(median[n], ratio=ratio(n)) for n in fewer}}
    print("| phase | plain step (s) | conscience step (s) |\n|---|---|---|")
    for p in PHASES:
        print(f"| {p} | {plain['split'][p]:.3f} | {online['split'][p]:.3f} |")
    print(f"| **total** | {plain['seconds_per_step']:.3f} | {online['seconds_per_step']:.3f} |")
    print(f"\nratio conscience / plain: {result['ratio']:.2f}x at the default cadence (conscience every "
          f"{result['conscience_every']} steps)  "
          f"(flag rate {online['flag_rate']:.2f}, {online['pairs_per_step']:.1f} pairs per step)")
    for n, timed in result["online_samples"].items():
        print(f"--online_samples={n}: {timed['seconds_per_step']:.3f} s a step, ratio {timed['ratio']:.2f}x "
              f"(generation {timed['split']['generation']:.3f} s, {timed['pairs_per_step']:.1f} pairs per step)")
    with open(config["out"], "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    flags.main(main)
