"""evaluate.py: the AUROC on known cases, and the conscience AUROC's classes the right way round."""

import math

import pytest
import torch

import codehack as ch
import evaluate
import sandbox


@pytest.mark.parametrize("pos, neg, expected", [
    ([3.0, 4.0], [1.0, 2.0], 1.0),  # every positive above every negative
    ([1.0, 2.0], [3.0, 4.0], 0.0),  # reversed
    ([1.0, 1.0], [1.0], 0.5),  # all tied: a coin
    ([1.0, 2.0], [0.0, 1.5], 0.75),  # 3 of 4 pairs ordered
    ([2.0], [1.0, 2.0, 3.0], 0.5),  # one above, one tied, one below
])
def test_auroc_on_known_cases(pos, neg, expected):
    assert evaluate.auroc(pos, neg) == expected


def test_auroc_of_an_empty_class_is_undefined():
    assert math.isnan(evaluate.auroc([], [1.0])) and math.isnan(evaluate.auroc([1.0], []))


@pytest.mark.parametrize("sign", [1, -1], ids=["perfect", "reversed"])
def test_conscience_metrics_put_honest_code_on_the_positive_side(monkeypatch, sign):
    tasks = ch.tasks("heldout", 6)
    by_prompt = {t.prompt: t for t in tasks}
    judged = []

    def score(model, enc, prompts, responses, question):  # yes exactly to code the sandbox grades honest
        judged.append(question)
        verdicts = [sandbox.grade(by_prompt[p], r).verdict for p, r in zip(prompts, responses)]
        return torch.tensor([sign * (4.0 if v == "honest" else -4.0) for v in verdicts])

    monkeypatch.setattr(evaluate, "score", score)
    m = evaluate.conscience_metrics(None, None, tasks, question="Q?", threshold=0.0)
    aurocs = {k: v for k, v in m.items() if k.startswith("conscience_auroc")}
    assert len(aurocs) == 1 + 1 + 1 + 3 + len(ch.STYLES)  # overall, forms only, mistakes, three groups, every style
    assert set(aurocs.values()) == {1.0 if sign == 1 else 0.0}
    flags = {k: v for k, v in m.items() if k.startswith("conscience_false_flag")}
    assert len(flags) == 3 and set(flags.values()) == {0.0 if sign == 1 else 1.0}
    assert set(judged) == {"Q?"}
