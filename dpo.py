"""
Direct Preference Optimization (Rafailov et al. 2023): the log-probability of a response,
the loss and the metrics the common DPO tools log.
    L_DPO = -log sigmoid(beta * ((log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))))
"""

import torch
import torch.nn.functional as F


def sequence_logps(logits, labels, mask):
    """log p(response | prompt) per row, (B,): shift, gather, mask, sum. logits (B, T, V) at
    every position; labels (B, T) the tokens; mask (B, T) 1 on the response tokens."""
    logits = logits[:, :-1].float()  # (B, T-1, V) position t predicts token t+1; fp32: bf16 is too coarse here
    labels, mask = labels[:, 1:], mask[:, 1:].bool()  # (B, T-1)
    labels = labels.masked_fill(~mask, 0)  # padding may hold any id; its log-prob is dropped below
    token_logps = F.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    return token_logps.masked_fill(~mask, 0.0).sum(-1)  # (B,)


def predicts(mask):
    """(B, T) bool: the positions whose next token is a response token (mask 1 there)."""
    return F.pad(mask[:, 1:].bool(), (0, 1))


def packed_sequence_logps(logits, labels, mask):
    """sequence_logps from the logits of the positions that predict a response token only,
    (N, V) packed in row order, as model(idx, logits_at=predicts(mask)) returns them: the
    output layer is the largest matmul at this size, and most positions need no logits.
    (index_add sums each row in order on the CPU; on CUDA it adds atomically, in no fixed order.)"""
    at = predicts(mask)  # (B, T)
    targets = labels[:, 1:][mask[:, 1:].bool()]  # (N,) the response tokens, in the same order
    token_logps = F.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (N,)
    return token_logps.new_zeros(len(at)).index_add(0, at.nonzero()[:, 0], token_logps)  # (B,) per-row sums


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
