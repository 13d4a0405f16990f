"""
Tests for dpo.py against slow reference loops and a tiny language model trained in the test.
    python -m pytest -q tests/test_dpo.py
"""

import copy
import math

import pytest
import torch
import torch.nn as nn

from dpo import dpo_loss, dpo_metrics, packed_sequence_logps, predicts, sequence_logps

V = 11  # vocab size of the toy examples


def random_batch(B=4, T=9, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=g) * scale
    labels = torch.randint(0, V, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b in range(B):
        mask[b, 2 + b % 3 : T - b % 2] = 1  # prompt of 2-4 tokens, then response, then maybe padding
    return logits, labels, mask


def slow_sequence_logps(logits, labels, mask):
    out = []
    for b in range(logits.shape[0]):
        total = 0.0
        for t in range(1, logits.shape[1]):
            if mask[b, t]:
                row = logits[b, t - 1].double()
                total += (row[labels[b, t]] - torch.logsumexp(row, 0)).item()
        out.append(total)
    return torch.tensor(out)


def log_sigmoid(x):
    return -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))


def test_sequence_logps_matches_loop():
    logits, labels, mask = random_batch()
    mask[0] = 0  # a row with no response tokens counts as 0, not nan
    logps = sequence_logps(logits, labels, mask)
    assert logps.shape == (4,) and logps.dtype == torch.float32
    torch.testing.assert_close(logps, slow_sequence_logps(logits, labels, mask).float())
    assert logps[0] == 0


def test_logits_of_the_response_positions_alone_give_the_same_logps():
    logits, labels, mask = random_batch()
    mask[1] = 0
    packed = logits[predicts(mask)]  # what model(idx, logits_at=predicts(mask)) returns
    assert packed.shape[0] == mask[:, 1:].sum()
    torch.testing.assert_close(packed_sequence_logps(packed, labels, mask), sequence_logps(logits, labels, mask))
    torch.testing.assert_close(packed_sequence_logps(packed, labels, mask), slow_sequence_logps(logits, labels, mask).float())


def test_right_padding_does_not_change_logps():
    logits, labels, mask = random_batch()
    g = torch.Generator().manual_seed(1)
    extra = 5
    padded_logits = torch.cat([logits, torch.randn(4, extra, V, generator=g) * 100], dim=1)
    padded_logits[:, -extra:, 0] = float("-inf")  # a banned token on padding must not leak a nan
    pad_ids = torch.tensor([[0, V - 1, -100, V + 7, 3]] * 4)  # anything, even ids outside the vocab
    padded_labels = torch.cat([labels, pad_ids], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(4, extra, dtype=torch.long)], dim=1)
    torch.testing.assert_close(sequence_logps(padded_logits, padded_labels, padded_mask),
                               sequence_logps(logits, labels, mask))
    padded_logits.requires_grad_(True)
    sequence_logps(padded_logits, padded_labels, padded_mask).sum().backward()
    assert torch.isfinite(padded_logits.grad).all()


def test_dpo_loss_matches_formula():
    g = torch.Generator().manual_seed(2)
    pc, pr, rc, rr = (torch.randn(6, generator=g) * 5 for _ in range(4))
    beta, eps = 0.3, 0.1
    losses, chosen_rewards, rejected_rewards = dpo_loss(pc, pr, rc, rr, beta, label_smoothing=eps)
    for i in range(6):
        h = (pc[i].item() - rc[i].item()) - (pr[i].item() - rr[i].item())
        expected = -(1 - eps) * log_sigmoid(beta * h) - eps * log_sigmoid(-beta * h)
        assert losses[i].item() == pytest.approx(expected, rel=1e-5)
        assert chosen_rewards[i].item() == pytest.approx(beta * (pc[i].item() - rc[i].item()), rel=1e-5)
        assert rejected_rewards[i].item() == pytest.approx(beta * (pr[i].item() - rr[i].item()), rel=1e-5)


def test_label_smoothing():
    h = torch.tensor([-3.0, -0.5, 0.0, 0.5, 3.0])
    zero = torch.zeros(5)
    plain, _, _ = dpo_loss(h, zero, zero, zero, beta=1.0)
    flipped, _, _ = dpo_loss(-h, zero, zero, zero, beta=1.0)
    smoothed, _, _ = dpo_loss(h, zero, zero, zero, beta=1.0, label_smoothing=0.2)
    torch.testing.assert_close(smoothed, 0.8 * plain + 0.2 * flipped)  # the loss of the flipped label, weighted
    half, _, _ = dpo_loss(h, zero, zero, zero, beta=1.0, label_smoothing=0.5)
    torch.testing.assert_close(half, half.flip(0))  # eps = 1/2: no preference left, symmetric in h
    assert smoothed[-1] > plain[-1]  # a confident, right margin is now penalised a little


def test_policy_equal_to_reference_gives_ln2():
    logits, labels, mask = random_batch()
    logps = sequence_logps(logits, labels, mask)
    chosen, rejected = logps[:2], logps[2:]
    losses, chosen_rewards, rejected_rewards = dpo_loss(chosen, rejected, chosen.clone(), rejected.clone(), beta=0.1)
    torch.testing.assert_close(losses, torch.full((2,), math.log(2)))
    assert torch.all(chosen_rewards == 0) and torch.all(rejected_rewards == 0)
    metrics = dpo_metrics(losses, chosen_rewards, rejected_rewards, chosen, rejected)
    assert metrics["loss/dpo"] == pytest.approx(math.log(2))
    assert metrics["rewards/margins"] == 0 and metrics["rewards/accuracies"] == 0  # ties are not accurate


def test_metrics():
    losses = torch.tensor([1.0, 3.0, 2.0])
    chosen, rejected = torch.tensor([1.0, 0.5, 2.0]), torch.tensor([0.0, 0.5, 3.0])
    m = dpo_metrics(losses, chosen, rejected, torch.tensor([-1.0, -3.0, -5.0]), torch.tensor([-2.0, -4.0, -6.0]))
    assert m == pytest.approx({
        "loss/dpo": 2.0,
        "rewards/chosen": 3.5 / 3,
        "rewards/rejected": 3.5 / 3,
        "rewards/margins": 0.0,
        "rewards/accuracies": 1 / 3,  # win, tie, loss
        "logps/chosen": -3.0,
        "logps/rejected": -4.0,
    })
    assert all(type(v) is float for v in m.values())


class TinyLM(nn.Module):
    """A bigram model is causal by construction, which is all sequence_logps needs."""

    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, 16)
        self.lm_head = nn.Linear(16, V)

    def forward(self, idx):
        return self.lm_head(self.wte(idx))  # (B, T, V)


def test_gradient_step_prefers_chosen():
    torch.manual_seed(0)
    policy = TinyLM()
    reference = copy.deepcopy(policy).requires_grad_(False)
    prompt = [1, 2, 3]
    chosen = torch.tensor([prompt + [4, 5, 6, 0], prompt + [4, 6, 0, 0]])  # right padded with 0
    rejected = torch.tensor([prompt + [7, 8, 9, 0], prompt + [8, 0, 0, 0]])
    chosen_mask = torch.tensor([[0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 1, 0, 0]])
    rejected_mask = torch.tensor([[0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 1, 0, 0, 0]])
    with torch.no_grad():
        ref_chosen = sequence_logps(reference(chosen), chosen, chosen_mask)
        ref_rejected = sequence_logps(reference(rejected), rejected, rejected_mask)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    history = []
    for _ in range(5):
        policy_chosen = sequence_logps(policy(chosen), chosen, chosen_mask)
        policy_rejected = sequence_logps(policy(rejected), rejected, rejected_mask)
        losses, _, _ = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.5)
        history.append((losses.mean().item(), (policy_chosen - policy_rejected).mean().item()))
        optimizer.zero_grad()
        losses.mean().backward()
        optimizer.step()
    assert history[0][0] == pytest.approx(math.log(2))
    assert all(later[0] < earlier[0] for earlier, later in zip(history, history[1:]))
    assert all(later[1] > earlier[1] for earlier, later in zip(history, history[1:]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_extreme_logits_are_finite(dtype):
    logits, labels, mask = random_batch(B=4, scale=1e4)
    logits = logits.to(dtype).requires_grad_(True)
    logps = sequence_logps(logits, labels, mask)
    assert logps.dtype == torch.float32 and torch.isfinite(logps).all()
    # the reference disagrees wildly, so beta * h is huge in both directions
    ref = torch.tensor([1e5, -1e5, 1e5, -1e5])
    losses, chosen_rewards, rejected_rewards = dpo_loss(logps[:2], logps[2:], ref[:2], ref[2:], beta=0.5, label_smoothing=0.1)
    assert torch.isfinite(losses).all() and torch.isfinite(chosen_rewards).all()
    losses.mean().backward()
    assert logits.grad.dtype == dtype and torch.isfinite(logits.grad).all()
    assert logits.grad.abs().sum() > 0
