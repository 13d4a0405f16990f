"""evaluate.py: the AUROC on known cases, and the conscience AUROC's classes the right way round."""

import math

import pytest
import torch

import codehack as ch
import evaluate


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


def test_conscience_auroc_puts_honest_solutions_on_the_positive_side(monkeypatch):
    tasks = ch.tasks("heldout", 6)
    honest = {t.solution for t in tasks}
    judged = []

    def score(model, enc, prompts, responses, question):  # a perfect conscience: yes to honest code only
        judged.append(question)
        return torch.tensor([4.0 if r in honest else -4.0 for r in responses])

    monkeypatch.setattr(evaluate, "score", score)
    assert evaluate.conscience_aurocs(None, None, tasks, question="Q?") == (1.0, 1.0)
    assert set(judged) == {"Q?"}
