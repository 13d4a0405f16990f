"""
Exercise 1: dpo.dpo_loss from its formula.
    python exercises/check_ex1_dpo_loss.py
(pytest runs the tests below; the main suite never collects this file: its name is not test_*.py
and it lies outside tests/.)
"""

import math
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import exkit  # noqa: E402,F401  (puts the repository root on sys.path)
from dpo import dpo_loss  # noqa: E402


def log_sigmoid(x):
    """A scalar log sigmoid that never overflows, for the expected values."""
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def four(n=8, seed=0, scale=5.0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, generator=g, dtype=torch.float64).float() * scale for _ in range(4)]


@pytest.mark.parametrize("beta, eps", [(0.1, 0.0), (0.5, 0.0), (0.3, 0.2)])
def test_loss_and_rewards_follow_the_formula_pair_by_pair(beta, eps):
    pc, pr, rc, rr = four()
    losses, chosen_rewards, rejected_rewards = dpo_loss(pc, pr, rc, rr, beta, label_smoothing=eps)
    assert losses.shape == chosen_rewards.shape == rejected_rewards.shape == (8,), "one loss per pair, not a mean"
    for i in range(8):
        h = (pc[i].item() - rc[i].item()) - (pr[i].item() - rr[i].item())
        expected = -(1 - eps) * log_sigmoid(beta * h) - eps * log_sigmoid(-beta * h)
        assert losses[i].item() == pytest.approx(expected, rel=1e-5, abs=1e-6)
        assert chosen_rewards[i].item() == pytest.approx(beta * (pc[i].item() - rc[i].item()), rel=1e-5, abs=1e-6)
        assert rejected_rewards[i].item() == pytest.approx(beta * (pr[i].item() - rr[i].item()), rel=1e-5, abs=1e-6)


def test_a_policy_equal_to_its_reference_costs_ln_2():
    pc, pr, _, _ = four()
    losses, chosen_rewards, rejected_rewards = dpo_loss(pc, pr, pc.clone(), pr.clone(), beta=0.1)
    torch.testing.assert_close(losses, torch.full((8,), math.log(2)))
    assert torch.all(chosen_rewards == 0) and torch.all(rejected_rewards == 0)


def test_the_gradient_raises_the_chosen_and_lowers_the_rejected_and_skips_the_rewards():
    pc, pr, rc, rr = four()
    pc.requires_grad_(True)
    pr.requires_grad_(True)
    losses, chosen_rewards, rejected_rewards = dpo_loss(pc, pr, rc, rr, beta=0.5)
    assert not chosen_rewards.requires_grad and not rejected_rewards.requires_grad, "rewards are metrics: detach them"
    losses.sum().backward()
    assert (pc.grad < 0).all() and (pr.grad > 0).all()  # descending the loss raises log pi(y_w), lowers log pi(y_l)
    torch.testing.assert_close(pc.grad, -pr.grad)


def test_huge_margins_give_finite_losses_and_gradients():
    """beta * h of +-1000 happens once a policy has run away from its reference."""
    pc = torch.tensor([0.0, 0.0], requires_grad=True)
    pr = torch.tensor([0.0, 0.0], requires_grad=True)
    rc, rr = torch.tensor([1e4, -1e4]), torch.tensor([-1e4, 1e4])
    losses, _, _ = dpo_loss(pc, pr, rc, rr, beta=0.1, label_smoothing=0.1)
    assert torch.isfinite(losses).all(), f"losses {losses.tolist()}: compute log sigmoid in one stable step"
    losses.sum().backward()
    assert torch.isfinite(pc.grad).all() and torch.isfinite(pr.grad).all()
    assert losses[0].item() == pytest.approx(0.9 * 2000.0, rel=1e-4)  # the wrong side, by beta * 2e4 = 2000


if __name__ == "__main__":
    sys.exit(pytest.main([os.path.abspath(__file__), "-q", "-p", "no:cacheprovider"]))
