"""
Exercise 8: conscience.self_correct, the inference-time conscience, and evaluate.py --self_correct.
    python exercises/check_ex8_self_correct.py
First with a stub conscience whose scores and alternatives are known, then on the tiny base
through evaluate.code_metrics (what evaluate.py --self_correct=True runs).
"""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import exkit  # noqa: E402
import conscience  # noqa: E402

SCORES = {"good": 5.0, "bad": -1.0, "worse": -3.0, "borderline": 0.5, "fixed": 2.0, "lesser": -4.0,
          "refusal": float("-inf")}


class Stub:
    """score() reads SCORES by text; alternatives() rewrites each response as ALTS says."""

    ALTS = {"bad": "fixed", "worse": "lesser", "borderline": "fixed"}

    def __init__(self, monkeypatch, alts=None):
        self.alts, self.calls, self.questions = alts or self.ALTS, [], []
        monkeypatch.setattr(conscience, "score", self.score)
        monkeypatch.setattr(conscience, "alternatives", self.alternatives)

    def score(self, judge, enc, prompts, responses, question=conscience.QUESTION):
        self.questions.append(question)
        return torch.tensor([SCORES[r] for r in responses])

    def alternatives(self, *, policy, judge, enc, prompts, responses, question=conscience.QUESTION, **kwargs):
        self.calls.append(dict(policy=policy, judge=judge, prompts=list(prompts), responses=list(responses)))
        self.questions.append(question)
        texts = [self.alts[r] for r in responses]
        return texts, torch.tensor([SCORES[t] for t in texts])


def run(responses, threshold=0.0, question="Q?"):
    prompts = [f"p{i}" for i in range(len(responses))]
    return conscience.self_correct("the model", None, prompts, responses, question, threshold)


def test_only_flagged_responses_are_revised_and_only_when_the_alternative_scores_higher(monkeypatch):
    stub = Stub(monkeypatch)
    scores, final, final_scores, revised = run(["good", "bad", "worse"])
    assert list(scores) == [5.0, -1.0, -3.0]
    assert final == ["good", "fixed", "worse"], "keep a flagged response whose alternative scores lower"
    assert list(final_scores) == [5.0, 2.0, -3.0]
    assert list(revised) == [False, True, False]
    assert len(stub.calls) == 1 and stub.calls[0]["responses"] == ["bad", "worse"], "alternatives for the flagged only"
    assert stub.calls[0]["prompts"] == ["p1", "p2"]
    assert stub.calls[0]["policy"] == stub.calls[0]["judge"] == "the model", "the model is its own judge and writer"


def test_the_threshold_decides_what_is_flagged(monkeypatch):
    Stub(monkeypatch)
    assert list(run(["borderline"], threshold=0.0)[3]) == [False]  # 0.5 is not below 0
    assert list(run(["borderline"], threshold=2.0)[3]) == [True]  # below 2: flagged, and "fixed" scores 2.0 > 0.5


def test_nothing_flagged_asks_for_no_alternative(monkeypatch):
    stub = Stub(monkeypatch)
    scores, final, final_scores, revised = run(["good", "good"])
    assert final == ["good", "good"] and not any(revised) and stub.calls == []


def test_a_refusal_never_replaces_a_response(monkeypatch):
    Stub(monkeypatch, alts={"bad": "refusal"})
    _, final, final_scores, revised = run(["bad"])
    assert final == ["bad"] and list(final_scores) == [-1.0] and list(revised) == [False]


def test_the_question_is_the_one_given(monkeypatch):
    stub = Stub(monkeypatch)
    run(["good", "bad"], question="Is this fair?")
    assert stub.questions and set(stub.questions) == {"Is this fair?"}


def test_evaluate_self_correct_on_the_tiny_base():
    """What evaluate.py --self_correct=True does, on 8 held-out tasks: a threshold below every
    score revises nothing; one above every score asks about every solution."""
    import codehack as ch
    import evaluate
    model, enc = exkit.load_base()
    tasks = ch.tasks("heldout", 8)
    rates = {}
    for threshold in (-1e9, 1e9):
        metrics, solutions, verdicts = evaluate.code_metrics(
            model, enc, tasks, 0.5, torch.Generator().manual_seed(0), self_correct=(conscience.QUESTION, threshold))
        assert len(solutions) == len(verdicts) == 8
        rates[threshold] = metrics["revised_rate"]
    assert rates[-1e9] == 0.0 and 0.0 <= rates[1e9] <= 1.0
    print(f"revised with every solution flagged: {rates[1e9]:.2f}")


if __name__ == "__main__":
    sys.exit(pytest.main([os.path.abspath(__file__), "-q", "-p", "no:cacheprovider"]))
