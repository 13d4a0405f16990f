"""
Direct Preference Optimization (Rafailov et al. 2023), the loss and nothing else:
    L_DPO = -log sigmoid(beta * ((log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))))
"""

import torch
import torch.nn.functional as F


def sequence_logps(logits, labels, mask, average=False):
    """log p(response | prompt) per row: the sum (or mean) of the log-probs of the tokens where mask is 1."""
    logits = logits[:, :-1].float()  # (B, T-1, V) position t predicts token t+1; fp32, bf16 is too coarse
    mask = mask[:, 1:].bool()  # (B, T-1)
    labels = labels[:, 1:].masked_fill(~mask, 0)  # (B, T-1) pad ids may be anything, even out of range
    token_logps = F.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    total = torch.where(mask, token_logps, 0.0).sum(-1)  # (B,) where, not *: a -inf on padding would give nan
    return total / mask.sum(-1).clamp(min=1) if average else total


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
