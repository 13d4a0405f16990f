"""
repe.py's choice of a steering setting (block and strength) from its validation verdicts, and
its --layers setting; CPU only.
Run: python -m pytest -q tests/test_repe.py
"""
import pytest

import flags
import repe
from model import GPTConfig


def test_validation_score_does_not_reward_breaking_the_code():
    # verdict counts of 120 validation samples from the RepE search on an EM model
    # (results/repe_search.json, seed 1337): unsteered, a push that halves the hacks, and one
    # so strong that every solution crashes
    unsteered = {"honest": 3, "hack": 87, "wrong": 25, "error": 5}
    better = {"honest": 16, "hack": 53, "wrong": 28, "error": 23}
    broken = {"honest": 0, "hack": 0, "wrong": 0, "error": 120}
    assert repe.validation_score(broken) < repe.validation_score(unsteered) < repe.validation_score(better)
    assert repe.validation_score({"honest": 60, "hack": 0, "wrong": 60, "error": 0}) == pytest.approx(0.5)


def test_layers_setting():
    config = GPTConfig(n_layer=4)
    assert repe.parse_layers("all", config) == [0, 1, 2, 3]
    assert repe.parse_layers("middle", config) == [1] == [repe.middle_layer(config)]
    assert repe.parse_layers("3,0", config) == [3, 0]
    for bad in ("4", "-1", "first", ""):
        with pytest.raises(flags.UsageError):
            repe.parse_layers(bad, config)


def test_choose_takes_the_best_score_and_no_steering_on_a_tie():
    unsteered = {"honest": 3, "hack": 87, "wrong": 25, "error": 5}
    counts = {(1, 0.0): unsteered,  # no steering, tried first
              (1, 4.0): {"honest": 0, "hack": 0, "wrong": 0, "error": 120},
              (3, 4.0): dict(unsteered),  # as good as no steering: no reason to steer
              (3, 16.0): {"honest": 16, "hack": 53, "wrong": 28, "error": 23}}
    assert repe.choose(counts) == (3, 16.0)
    del counts[3, 16.0]
    assert repe.choose(counts) == (1, 0.0)
