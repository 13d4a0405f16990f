"""Paired statistics against cases worked out by hand."""

import math

import numpy as np

import stats


def test_t_interval_matches_the_formula():
    mean, low, high = stats.t_interval([0.1, 0.2, 0.3])
    half = 4.303 * 0.1 / math.sqrt(3)  # t(0.975, df=2) * sd / sqrt(n)
    assert math.isclose(mean, 0.2) and math.isclose(low, 0.2 - half) and math.isclose(high, 0.2 + half)
    assert math.isnan(stats.t_interval([0.5])[1])


def test_cmh_with_one_sample_each_is_mcnemar():
    # 30 tasks where only a succeeds, 10 where only b does, 60 where they agree
    a = [1] * 30 + [0] * 10 + [1] * 20 + [0] * 40
    b = [0] * 30 + [1] * 10 + [1] * 20 + [0] * 40
    stat, p = stats.cmh(a, b, k=1)
    assert math.isclose(stat, (abs(30 - 10) - 1) ** 2 / 40)  # McNemar with continuity correction
    assert math.isclose(p, math.erfc(math.sqrt(stat / 2))) and p < 0.01
    assert stats.cmh(a, a, k=1) == (0.0, 1.0)  # identical conditions: nothing to see


def test_cmh_sees_a_consistent_small_effect_that_a_seed_t_test_misses():
    rng = np.random.default_rng(0)
    k, n = 4, 100
    p_task = rng.uniform(0.2, 0.8, size=(3, n))
    a = rng.binomial(k, np.clip(p_task + 0.1, 0, 1))
    b = rng.binomial(k, p_task)
    _, p = stats.cmh(a, b, k)
    assert p < 0.001
    mean, low, high = stats.bootstrap_interval(a / k, b / k)
    assert low > 0 and 0.05 < mean < 0.15
    assert stats.verdict(low, high, p) == "higher" and stats.verdict(-high, -low, p) == "lower"
    assert stats.verdict(low, high, p=0.2) == "no difference found"


def test_bootstrap_interval_covers_zero_without_an_effect():
    rng = np.random.default_rng(1)
    a, b = rng.binomial(4, 0.5, size=(5, 120)) / 4, rng.binomial(4, 0.5, size=(5, 120)) / 4
    _, low, high = stats.bootstrap_interval(a, b)
    assert low < 0 < high


def test_rate_se_of_k_samples():
    hits = [4, 0, 2, 2]
    assert math.isclose(stats.rate_se(hits, 4), np.std([1, 0, 0.5, 0.5], ddof=1) / 2)


def test_rate_se_split_reproduces_the_se_and_knows_that_more_samples_cannot_beat_task_spread():
    rng = np.random.default_rng(0)
    p_task = rng.choice([0.0, 1.0], size=200)  # tasks either always or never solved: all spread is between tasks
    hits = (rng.random((200, 6)) < p_task[:, None]).sum(1)
    assert math.isclose(stats.rate_se_split(hits, 6, 200, 6), stats.rate_se(hits, 6), rel_tol=0.01)
    # more samples per task do nothing here; more tasks do
    assert math.isclose(stats.rate_se_split(hits, 6, 200, 60), stats.rate_se_split(hits, 6, 200, 6))
    assert math.isclose(stats.rate_se_split(hits, 6, 800, 6), stats.rate_se(hits, 6) / 2, rel_tol=0.01)
    # every task the same coin (p = 0.5): all spread is within tasks, so tasks x samples is what counts
    hits = (rng.random((2000, 4)) < 0.5).sum(1)
    assert math.isclose(stats.rate_se_split(hits, 4, 250, 4), math.sqrt(0.25 / 1000), rel_tol=0.1)
    assert math.isclose(stats.rate_se_split(hits, 4, 1000, 1), math.sqrt(0.25 / 1000), rel_tol=0.1)
