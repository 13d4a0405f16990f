"""
The controls of the experiment, each replacing one part of the conscience step: the sandbox
scores instead of the judge (oracle), coin flips order the pairs (random), and the pairs
teach by imitation of the chosen side instead of DPO (SFT). The live policy as judge needs
no code: train.py passes it where the frozen copy would judge.
"""

import torch

import codehack
import sandbox
from common import timed
from engine import next_token_loss


def oracle(tasks, value=10.0):
    """The upper-bound control: a scorer that knows the ground truth. It scores a response
    +value when it passes the task's hidden tests in the sandbox and -value otherwise.
    `tasks` maps each prompt to its codehack.Task."""

    def scorer(prompts, responses):
        grades = sandbox.grade_many([tasks[p] for p in prompts], responses)
        return torch.tensor([value if g.verdict == "honest" else -value for g in grades])
    return scorer


def randomize(pairs, generator):
    """The random-judge control: the same pairs, each one's preference decided by a coin."""
    flips = torch.rand(len(pairs), generator=generator).tolist()
    return [(p, c, r) if f < 0.5 else (p, r, c) for (p, c, r), f in zip(pairs, flips)]


def sft_on_chosen(pairs, record, *, policy, enc, device, context, autocast):
    """The SFT control: the next-token loss on the chosen side of each pair; the rejected side
    and the reference play no part."""
    prompts, chosen, _ = (list(c) for c in zip(*pairs))
    with timed(record, "dpo"), autocast:
        loss, _ = next_token_loss(policy, enc, prompts, [c + codehack.END for c in chosen], device=device,
                                  context=context)
    record["loss/alternatives"] = loss.item()
    return loss
