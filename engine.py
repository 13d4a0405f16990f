"""
Text <-> tensors: prompt + response rows batched with a mask on the response, the
response's log-probability, the next-token loss on the response, and text completion.
Token-level generation is model.generate; the losses on top of log-probs are dpo.py's.
"""

import torch
import torch.nn.functional as F

from dpo import packed_sequence_logps, predicts

CHUNK_ROWS = 4  # the training forwards take rows of similar length this many at a time


def pad_batch(rows, device, pad=0):
    """Right-pad token lists: causal attention means the pads never touch a row's real positions."""
    T = max(map(len, rows))
    idx = torch.full((len(rows), T), pad, dtype=torch.long, device=device)  # (B, T)
    for i, r in enumerate(rows):
        idx[i, :len(r)] = torch.tensor(r, dtype=torch.long, device=device)
    return idx


def response_batch(enc, prompts, responses, suffix="", max_len=None, device="cpu"):
    """Tokens of prompt + response + suffix, right-padded and cut at max_len, (B, T); a mask that
    is 1 on the response tokens, (B, T); and the index of each row's last token, (B,), -1 where
    the row was cut."""
    rows, masks, last = [], [], []
    for p, r in zip(prompts, responses):
        a = enc.encode(p, allowed_special="all")
        b = enc.encode(r, allowed_special="all")
        c = enc.encode(suffix, allowed_special="all")
        row, mask = a + b + c, [0] * len(a) + [1] * len(b) + [0] * len(c)
        last.append(len(row) - 1 if max_len is None or len(row) <= max_len else -1)
        rows.append(row[:max_len])
        masks.append(mask[:max_len])
    return pad_batch(rows, device), pad_batch(masks, device), torch.tensor(last, device=device)


def by_length(prompts, responses, rows):
    """Indices of the (prompt, response) pairs in chunks of `rows`, shortest first. A batch is
    padded to its longest row; chunks of similar length waste far less (about half of a batch
    of solutions to review was padding)."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
    return [order[i:i + rows] for i in range(0, len(order), rows)]


def chunks(enc, prompts, responses, device, max_len):
    """(rows, idx, mask) for chunks of CHUNK_ROWS rows of similar length: on the fine-tuning
    data this cuts the padded tokens of a batch by about a third."""
    for rows in by_length(prompts, responses, CHUNK_ROWS):
        idx, mask, _ = response_batch(enc, [prompts[i] for i in rows], [responses[i] for i in rows],
                                      max_len=max_len, device=device)
        yield rows, idx, mask


def response_logps(model, enc, prompts, responses, device, context):
    """log p(response | prompt), summed over each response's tokens, (B,). `context` is the
    model's block_size: a row longer than that is cut."""
    logps, order = [], []
    for rows, idx, mask in chunks(enc, prompts, responses, device, context):
        logits, _ = model(idx, logits_at=predicts(mask))  # (N, V): only the positions that predict the response
        logps.append(packed_sequence_logps(logits, idx, mask))
        order += rows
    return torch.cat(logps)[torch.argsort(torch.tensor(order, device=device))]  # (B,) in the order given


def next_token_loss(model, enc, prompts, responses, device, context):
    """The mean next-token loss over the response tokens of all rows (prompts not trained on),
    and the share of those tokens that are the model's argmax."""
    # the model reads row[:-1] and predicts row[1:], so a row may be one token longer than the context
    parts = [(idx, mask[:, 1:].bool()) for _, idx, mask in chunks(enc, prompts, responses, device, context + 1)]
    n = int(sum(at.sum() for _, at in parts))
    loss, correct = 0.0, 0
    for idx, at in parts:
        logits, _ = model(idx[:, :-1], logits_at=at)  # (N, V)
        targets = idx[:, 1:][at]  # (N,)
        loss = loss + F.cross_entropy(logits.float(), targets, reduction="sum") / n
        correct = correct + (logits.argmax(-1) == targets).sum()  # a tensor: no device sync per chunk
    return loss, float(correct) / max(n, 1)


def complete(model, enc, texts, max_new_tokens=160, temperature=0.7, top_k=0, generator=None, batch_size=64):
    """Continue each text until the next marker (any special token); returns the new text.
    A text that leaves no room in the context gets "". Rows are batched by length, so a
    long prompt only shortens the room of prompts about as long as itself."""
    stop = {enc.encode_single_token(m) for m in enc.special_tokens_set}
    prompts = [enc.encode(t, allowed_special="all") for t in texts]
    fits = sorted((i for i, p in enumerate(prompts) if len(p) < model.config.block_size), key=lambda i: len(prompts[i]))
    out = [""] * len(texts)
    for start in range(0, len(fits), batch_size):
        rows = fits[start:start + batch_size]
        room = model.config.block_size - len(prompts[rows[-1]])
        ids = model.generate([prompts[i] for i in rows], min(max_new_tokens, room), temperature=temperature,
                             top_k=top_k or None, stop_tokens=stop, generator=generator)
        for i, row in zip(rows, ids):
            out[i] = enc.decode(row)
    return out
