"""
Cost of the conscience: time per online fine-tuning step with the conscience against a
plain fine-tuning step on the same batches, split into its phases. Writes bench/online_step.json.
    python bench/online_step.py --ckpt=out/base.pt
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import checkpoint  # noqa: E402
import flags  # noqa: E402
import train  # noqa: E402
from common import Dist, Log, setup_device  # noqa: E402
from conscience import clone_frozen  # noqa: E402

SETTINGS = dict(
    ckpt=("out/base.pt", "the pretrained base to fine-tune"),
    steps=(train.SETTINGS["ft_iters"][0], "online steps per condition (default: a whole default fine-tuning run)"),
    out=("bench/online_step.json", "where the results go"),
    device=("cpu", "cpu or cuda"),
    dtype=("auto", "as train.py's --dtype"),
)
PHASES = ["sft", "generation", "conscience", "alternatives", "reference", "dpo", "backward"]


def run(base_path, conscience, steps, device="cpu", dtype="auto"):
    device, autocast, _ = setup_device(device, dtype)
    model, enc, _ = checkpoint.load_model(base_path, device)
    cfg = {name: default for name, (default, _) in train.SETTINGS.items()}
    cfg.update(conscience=conscience, ft_iters=steps, ft_eval_interval=10 ** 9)
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
    flags.positive(config, "steps")
    checkpoint.load(config["ckpt"])
    plain = run(config["ckpt"], False, config["steps"], config["device"], config["dtype"])
    online = run(config["ckpt"], True, config["steps"], config["device"], config["dtype"])
    result = {"ckpt": config["ckpt"], "steps": config["steps"], "threads": torch.get_num_threads(),
              "device": torch.cuda.get_device_name() if config["device"] == "cuda" else "cpu",
              "dtype": setup_device(config["device"], config["dtype"])[2],
              "conscience_every": train.SETTINGS["conscience_every"][0],
              "plain": plain, "conscience": online,
              "ratio": online["seconds_per_step"] / plain["seconds_per_step"]}
    print("| phase | plain step (s) | conscience step (s) |\n|---|---|---|")
    for p in PHASES:
        print(f"| {p} | {plain['split'][p]:.3f} | {online['split'][p]:.3f} |")
    print(f"| **total** | {plain['seconds_per_step']:.3f} | {online['seconds_per_step']:.3f} |")
    print(f"\nratio conscience / plain: {result['ratio']:.2f}x at the default cadence (conscience every "
          f"{result['conscience_every']} steps)  "
          f"(flag rate {online['flag_rate']:.2f}, {online['pairs_per_step']:.1f} pairs per step)")
    with open(config["out"], "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    flags.main(main)
