"""
Exercise 2: dpo.sequence_logps, the log-probability of a response (shift, gather, mask, sum).
    python exercises/check_ex2_sequence_logps.py
"""

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import exkit  # noqa: E402,F401  (puts the repository root on sys.path)
from dpo import sequence_logps  # noqa: E402

V = 13


def batch(B=4, T=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=g) * 2
    labels = torch.randint(0, V, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    for b in range(B):
        mask[b, 2 + b % 3:T - b % 2] = 1  # a prompt of 2 to 4 tokens, the response, maybe a pad
    return logits, labels, mask


def by_hand(logits, labels, mask):
    """The definition, one token at a time: log p(labels[t] | labels[:t]) is read at position t-1."""
    out = []
    for b in range(logits.shape[0]):
        total = 0.0
        for t in range(1, logits.shape[1]):
            if mask[b, t]:
                row = logits[b, t - 1].double()
                total += (row[labels[b, t]] - torch.logsumexp(row, 0)).item()
        out.append(total)
    return torch.tensor(out, dtype=torch.float64)


def test_matches_the_definition_token_by_token():
    logits, labels, mask = batch()
    got = sequence_logps(logits, labels, mask)
    assert got.shape == (4,), "one log-probability per row"
    torch.testing.assert_close(got.double(), by_hand(logits, labels, mask), rtol=1e-5, atol=1e-5)


def test_a_row_without_response_tokens_is_zero():
    logits, labels, mask = batch()
    mask[1] = 0
    assert sequence_logps(logits, labels, mask)[1].item() == 0.0


def test_padding_never_matters_whatever_its_ids_and_logits():
    logits, labels, mask = batch()
    extra = 4
    junk = torch.randn(4, extra, V) * 100
    junk[:, :, 0] = float("-inf")  # a banned token on the padding must not leak a nan
    padded = torch.cat([logits, junk], 1)
    pad_ids = torch.tensor([[-100, V + 5, 0, V - 1]] * 4)  # any id at all, even outside the vocabulary
    labels2, mask2 = torch.cat([labels, pad_ids], 1), torch.cat([mask, torch.zeros(4, extra, dtype=torch.long)], 1)
    padded.requires_grad_(True)
    got = sequence_logps(padded, labels2, mask2)
    torch.testing.assert_close(got, sequence_logps(logits, labels, mask))
    got.sum().backward()
    assert torch.isfinite(padded.grad).all()


def test_bfloat16_logits_are_summed_in_float32():
    logits, labels, mask = batch()
    got = sequence_logps(logits.to(torch.bfloat16), labels, mask)
    assert got.dtype == torch.float32, "sum in float32: bfloat16 keeps 3 significant digits"
    torch.testing.assert_close(got.double(), by_hand(logits.to(torch.bfloat16).float(), labels, mask), rtol=1e-4,
                               atol=1e-4)


if __name__ == "__main__":
    sys.exit(pytest.main([os.path.abspath(__file__), "-q", "-p", "no:cacheprovider"]))
