"""
Paired statistics for comparing two conditions run on the same bases and tasks: a rate's
standard error (and what it would be with the same samples spread over other numbers of
tasks), the paired difference over seeds with a t interval, a bootstrap interval over
seeds and tasks, and the Cochran-Mantel-Haenszel test over per-task verdicts.
Only numpy and the standard library.
"""

import math

import numpy as np

# two-sided 95% quantiles of Student's t by degrees of freedom (beyond 30: the normal's 1.96)
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
        29: 2.045, 30: 2.042}


def rate_se(hits, k):
    """Standard error of a pass@1 rate estimated from k samples on each of n tasks.
    hits: (n,) successes per task. Treats tasks as the sampling unit (it includes the
    spread between tasks, not only the binomial noise of the samples)."""
    per_task = np.asarray(hits, dtype=float) / k
    n = len(per_task)
    return float(per_task.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")


def rate_se_split(hits, k, tasks, samples):
    """The standard error the same rate would have with `tasks` tasks of `samples` samples
    each, from its variance components in one evaluation of n tasks with k samples each:
    between tasks (how much tasks differ) and within a task (Bernoulli noise of a sample),
        SE^2 = between / tasks + within / (tasks * samples).
    Only the within part shrinks with more samples per task. hits: (n,) successes per task."""
    p = np.asarray(hits, dtype=float) / k
    within = float(np.mean(p * (1 - p))) * k / (k - 1)  # unbiased per-sample variance within a task
    between = max(0.0, float(p.var(ddof=1)) - within / k)  # the spread of the task means, less their noise
    return math.sqrt(between / tasks + within / (tasks * samples))


def t_interval(diffs):
    """(mean, low, high): the 95% t interval of the mean of paired differences (one per seed)."""
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    if n < 2:
        return float(d.mean()) if n else float("nan"), float("nan"), float("nan")
    half = T975.get(n - 1, 1.96) * d.std(ddof=1) / math.sqrt(n)
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def bootstrap_interval(a, b, draws=2000, seed=0):
    """(mean, low, high): the 95% percentile interval of mean(a - b) when seeds, and tasks
    within each seed, are resampled with replacement. a, b: (seeds, tasks) per-task rates
    of two conditions on the same seeds' bases and the same tasks."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    d = a - b  # (S, N)
    rng = np.random.default_rng(seed)
    S, N = d.shape
    seeds = rng.integers(S, size=(draws, S))  # (draws, S)
    tasks = rng.integers(N, size=(draws, S, N))  # (draws, S, N)
    means = d[seeds[:, :, None], tasks].mean(axis=(1, 2))  # (draws,)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(d.mean()), float(low), float(high)


def cmh(a_hits, b_hits, k):
    """Cochran-Mantel-Haenszel test (with continuity correction) that two conditions have the
    same success odds, each stratum one (seed, task) with k samples per condition.
    a_hits, b_hits: successes per stratum. Returns (chi-square statistic, two-sided p)."""
    a, b = np.asarray(a_hits, dtype=float).ravel(), np.asarray(b_hits, dtype=float).ravel()
    n = 2.0 * k  # per stratum: k samples of each condition
    m1 = a + b  # successes in the stratum
    expected = k * m1 / n  # E[a] under no difference
    variance = k * k * m1 * (n - m1) / (n * n * (n - 1))
    keep = variance > 0  # strata where both conditions agree completely carry no information
    if not keep.any():
        return 0.0, 1.0
    stat = (max(0.0, abs((a - expected)[keep].sum()) - 0.5)) ** 2 / variance[keep].sum()
    return float(stat), float(math.erfc(math.sqrt(stat / 2)))  # chi-square with one degree of freedom


def verdict(low, high, p=None, alpha=0.05):
    """'higher', 'lower' or 'no difference found': an interval that excludes zero, confirmed
    by the stratified test when there is one."""
    if p is not None and p >= alpha:
        return "no difference found"
    if low > 0:
        return "higher"
    if high < 0:
        return "lower"
    return "no difference found"
