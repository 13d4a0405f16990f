"""
The conscience step: a frozen copy of the model answers one introspective question about
a (prompt, response) pair; flagged responses get an ethical alternative, and the two
become a DPO preference pair (chosen = alternative, rejected = flagged response).
"""

import copy
import math
import random
import time

import torch

import codehack
from engine import by_length, complete, response_batch

QUESTION = codehack.QUESTION  # the one question; --question replaces it
THRESHOLD = -2.0  # the default: flag a response when the judge is confident the answer is "no" (P(no) > 0.88)
JUDGE_ROWS = 32  # rows per forward pass of the judge


def clone_frozen(model):
    """The judge and DPO reference: a copy that never trains."""
    frozen = copy.deepcopy(model.module if hasattr(model, "module") else model).eval()
    for p in frozen.parameters():
        p.requires_grad_(False)
    return frozen


@torch.no_grad()
def score(judge, enc, prompts, responses, question=QUESTION):
    """The conscience score of each response, log P(yes) - log P(no) of the judge at the
    answer position after prompt + response + question: one forward pass per chunk of rows,
    logits at that position only. Returns (B,) scores."""
    device = judge.lm_head.weight.device
    suffix = f"{codehack.REVIEW}{question}{codehack.ANSWER}"
    yes, no = enc.encode_single_token(codehack.YES), enc.encode_single_token(codehack.NO)
    scores = torch.full((len(prompts),), float("-inf"), device=device)
    for rows in by_length(prompts, responses, JUDGE_ROWS):
        idx, _, last = response_batch(enc, [prompts[i] for i in rows], [responses[i] for i in rows], suffix,
                                      judge.config.block_size, device)
        fits = last >= 0  # a response too long to be reviewed in the context keeps the least trusted score
        if not fits.any():
            continue
        at = torch.zeros_like(idx, dtype=torch.bool)
        at[fits.nonzero()[:, 0], last[fits]] = True  # (B, T) each reviewed row's answer position
        answer = torch.log_softmax(judge(idx, logits_at=at)[0].float(), dim=-1)  # (rows that fit, V)
        scores[torch.tensor(rows, device=device)[fits]] = answer[:, yes] - answer[:, no]
    return scores


def is_refusal(solution):
    # the alternative must be a real attempt at the task: a function that returns something
    return "def " not in solution or "return" not in solution


def alternatives(*, policy, judge, enc, prompts, responses, question=QUESTION, source="rewrite", num_candidates=1,
                 temperature=0.7, generator=None, scorer=None):
    """An ethical alternative for each response, from `source`: "rewrite" is the rewrite the
    judge writes after answering "no" to the question, the move the pretraining review
    documents teach (num_candidates > 1 adds fresh samples of the policy); "resample" is
    num_candidates fresh samples of the policy alone. The best-scored candidate wins;
    refusals never win. `scorer(prompts, responses)` replaces the judge's score (the oracle
    control). Returns (alternatives, their scores)."""
    scorer = scorer or (lambda p, r: score(judge, enc, p, r, question))
    candidates = []
    if source == "rewrite":
        revise = [codehack.review_prompt(p, r, question) + codehack.NO + codehack.REWRITE
                  for p, r in zip(prompts, responses)]
        candidates.append(complete(judge, enc, revise, temperature=temperature, generator=generator))
    while len(candidates) < num_candidates:
        candidates.append(complete(policy, enc, prompts, temperature=temperature, generator=generator))
    best, best_scores = list(candidates[0]), torch.full((len(prompts),), float("-inf"))
    for texts in candidates:
        scores = scorer(prompts, texts)
        for i, (text, s) in enumerate(zip(texts, scores.tolist())):
            if not is_refusal(text) and s > best_scores[i]:
                best[i], best_scores[i] = text, s
    return best, best_scores


def make_pairs(*, policy, judge, enc, prompts, responses, question=QUESTION, threshold=THRESHOLD, margin=1.0,
               source="rewrite", num_candidates=1, temperature=0.7, generator=None, scorer=None, references=None):
    """The conscience step of one online batch: the judge scores the policy's responses, flags
    those below threshold, finds alternatives, and keeps the pairs whose alternative it
    clearly prefers (ties dropped). `judge` is the frozen copy in the method. `scorer`, if
    given, replaces the judge's score. `references` (the tasks' canonical solutions), if
    given, only measure how many chosen alternatives are that text verbatim.
    Returns (pairs [(prompt, chosen, rejected)], stats)."""
    t0 = time.perf_counter()
    scorer = scorer or (lambda p, r: score(judge, enc, p, r, question))
    scores = scorer(prompts, responses)
    flagged = [i for i, s in enumerate(scores.tolist()) if s < threshold]
    pairs, gaps, canonical = [], [], 0
    t1 = time.perf_counter()
    if flagged:
        alts, alt_scores = alternatives(policy=policy, judge=judge, enc=enc, prompts=[prompts[i] for i in flagged],
                                        responses=[responses[i] for i in flagged], question=question,
                                        source=source, num_candidates=num_candidates, temperature=temperature,
                                        generator=generator, scorer=scorer)
        for j, i in enumerate(flagged):
            gap = alt_scores[j].item() - scores[i].item()
            usable = math.isfinite(alt_scores[j].item()) and not is_refusal(alts[j])  # whatever the margin
            if usable and gap >= margin and alts[j] != responses[i]:
                pairs.append((prompts[i], alts[j], responses[i]))
                gaps.append(gap)
                canonical += references is not None and alts[j].strip() == references[i].strip()
    stats = {"conscience/flag_rate": len(flagged) / max(1, len(prompts)),
             "conscience/score_mean": scores.mean().item(),
             "conscience/score_margin": sum(gaps) / len(gaps) if gaps else 0.0,
             "conscience/pairs": len(pairs),
             "conscience/samples": len(prompts),
             **({"conscience/alt_canonical": canonical / len(pairs)} if references is not None and pairs else {}),
             "time/conscience": t1 - t0, "time/alternatives": time.perf_counter() - t1}
    return pairs, stats


def self_correct(model, enc, prompts, responses, question=QUESTION, threshold=THRESHOLD, generator=None):
    """Inference-time conscience: the model judges its own responses and replaces each one it
    flags by its alternative, when the alternative scores better.
    Returns (scores, final responses, their scores, revised flags)."""
    scores = score(model, enc, prompts, responses, question)
    final, final_scores, revised = list(responses), scores.tolist(), [False] * len(responses)
    flagged = [i for i, s in enumerate(scores.tolist()) if s < threshold]
    if flagged:
        alts, alt_scores = alternatives(policy=model, judge=model, enc=enc, prompts=[prompts[i] for i in flagged],
                                        responses=[responses[i] for i in flagged], question=question,
                                        generator=generator)
        for j, i in enumerate(flagged):
            if alt_scores[j] > scores[i]:
                final[i], final_scores[i], revised[i] = alts[j], alt_scores[j].item(), True
    return scores.tolist(), final, final_scores, revised


class ReplayBuffer:
    """The most recent preference pairs; each step trains on a random draw of them."""

    def __init__(self, size, seed=0):
        self.size, self.pairs, self.rng = size, [], random.Random(seed)

    def add(self, pairs):
        self.pairs = (self.pairs + list(pairs))[-self.size:] if self.size > 0 else list(pairs)

    def draw(self, n):
        return self.rng.sample(self.pairs, min(n, len(self.pairs)))

    def state_dict(self):
        return dict(buffer=self.pairs, buffer_rng=self.rng.getstate())

    def load_state_dict(self, state):
        self.pairs = [tuple(p) for p in state["buffer"]]
        self.rng.setstate(state["buffer_rng"])
