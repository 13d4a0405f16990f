"""
Generate from a checkpoint: a free prompt, or solutions to a task of the world, each shown
with its sandbox verdict; `--conscience=True` adds the inference-time conscience step.
    python sample.py --ckpt=out/base.pt --task=heldout:0 --num_samples=4
"""

import torch

import checkpoint
import codehack
import conscience
import flags
import sandbox
from engine import complete

SETTINGS = dict(
    ckpt=("out/base.pt", "checkpoint to sample from"),
    prompt=("", "free text prompt (markers such as <|task|> allowed); empty: use --task"),
    task=("heldout:0", "a task: SPLIT:INDEX (split train, heldout or families) or a task name"),
    num_samples=(3, "how many samples"),
    max_new_tokens=(160, "most tokens per sample"),
    temperature=(0.5, "sampling temperature; 0 is greedy"),
    top_k=(0, "keep only the k most likely tokens; 0 keeps all"),
    seed=(1337, "random seed"),
    conscience=(False, "ask the conscience about each sample and revise it when the answer is no"),
    question=(codehack.QUESTION, "the introspective question"),
    threshold=(conscience.THRESHOLD, "conscience flags a sample whose score log P(yes) - log P(no) is below this"),
    strict_sandbox=(False, "stop, rather than warn, where the sandbox cannot keep generated code off the network and the files"),
)


def parse_task(spec, seed=0):
    if ":" in spec:
        split, _, index = spec.partition(":")
        if not index.isdigit():
            raise flags.UsageError(f"--task wants SPLIT:INDEX, got {spec!r}")
        try:
            return codehack.tasks(split, int(index) + 1, seed)[int(index)]
        except ValueError as e:
            raise flags.UsageError(str(e)) from None
    try:
        return codehack.find_task(spec)
    except KeyError:
        raise flags.UsageError(f"unknown task {spec!r} (use SPLIT:INDEX, e.g. heldout:3)") from None


def main():
    config = flags.parse(SETTINGS, doc=__doc__)
    flags.positive(config, "num_samples", "max_new_tokens")
    if config["temperature"] < 0 or config["top_k"] < 0:
        raise flags.UsageError("--temperature and --top_k must not be negative")
    if config["prompt"] and not config["prompt"].strip():
        raise flags.UsageError("the prompt is empty")
    model, enc, _ = checkpoint.load_model(config["ckpt"])
    generator = torch.Generator().manual_seed(config["seed"])
    task = None if config["prompt"] else parse_task(config["task"])
    if task is not None:
        sandbox.configure(strict=config["strict_sandbox"])
    prompt = config["prompt"] or task.prompt
    n_tokens = len(enc.encode(prompt, allowed_special="all"))
    if n_tokens >= model.config.block_size:
        raise flags.UsageError(f"the prompt has {n_tokens} tokens: no room left in the context of {model.config.block_size}")
    if task is not None:
        print(prompt.replace(codehack.BOS, ""))
    samples = complete(model, enc, [prompt] * config["num_samples"], config["max_new_tokens"],
                       config["temperature"], config["top_k"], generator)
    for i, text in enumerate(samples):
        print(f"--- sample {i + 1}" + describe(task, text))
        print(text)
        if config["conscience"]:
            scores, final, final_scores, revised = conscience.self_correct(
                model, enc, [prompt], [text], config["question"], config["threshold"], generator)
            verdict = "no" if scores[0] < config["threshold"] else "yes"
            print(f"--- conscience: score {scores[0]:+.2f} ({verdict})"
                  + (f"; revised, new score {final_scores[0]:+.2f}" + describe(task, final[0]) if revised[0] else ""))
            if revised[0]:
                print(final[0])


def describe(task, text):
    if task is None:
        return ""
    grade = sandbox.grade(task, text)
    return f": {grade.verdict} ({grade.detail})"


if __name__ == "__main__":
    flags.main(main)
