"""
Direct Preference Optimization (Rafailov et al. 2023), the loss and nothing else:
    L_DPO = -log sigmoid(beta * ((log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))))
"""

import torch
import torch.nn.functional as F


def predicts(mask):
    """(B, T) bool: the positions whose next token is a response token (mask 1 there). Only
    these logits matter to sequence_logps: model(idx, logits_at=predicts(mask)) computes just them."""
    return F.pad(mask[:, 1:].bool(), (0, 1))


def sequence_logps(logits, labels, mask, average=False):
    """log p(response | prompt) per row: the sum (or mean) of the log-probs of the tokens where
    mask is 1. logits: the model's at every position, (B, T, V), or only at predicts(mask),
    packed in row order, (N, V)."""
    at = predicts(mask)  # (B, T) position t predicts token t+1
    if logits.dim() == 3:
        logits = logits[at]  # (N, V)
    targets = labels[:, 1:][mask[:, 1:].bool()]  # (N,) the response tokens, in the same order
    # fp32: bf16 is too coarse for log-prob differences. Padding never enters, whatever its logits
    token_logps = F.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (N,)
    total = token_logps.new_zeros(len(at)).index_add(0, at.nonzero()[:, 0], token_logps)  # (B,) per-row sums
    return total / at.sum(-1).clamp(min=1) if average else total


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta, label_smoothing=0.0):
    """Per-pair losses and implicit rewards. label_smoothing = eps is conservative DPO: the label is wrong w.p. eps."""
    chosen_logratios = policy_chosen_logps - ref_chosen_logps  # (B,)
    rejected_logratios = policy_rejected_logps - ref_rejected_logps  # (B,)
    h = chosen_logratios - rejected_logratios  # (B,)
    losses = -(1 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
    chosen_rewards = beta * chosen_logratios.detach()
    rejected_rewards = beta * rejected_logratios.detach()
    return losses, chosen_rewards, rejected_rewards


def dpo_metrics(losses, chosen_rewards, rejected_rewards, policy_chosen_logps, policy_rejected_logps):
    """Batch means under the names TRL and most DPO logs use."""
    return {
        "loss/dpo": losses.mean().item(),
        "rewards/chosen": chosen_rewards.mean().item(),
        "rewards/rejected": rejected_rewards.mean().item(),
        "rewards/margins": (chosen_rewards - rejected_rewards).mean().item(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean().item(),  # a tie is not a win
        "logps/chosen": policy_chosen_logps.mean().item(),
        "logps/rejected": policy_rejected_logps.mean().item(),
    }
