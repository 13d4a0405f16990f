"""
A GPT-2 language model in one file: pre-LayerNorm transformer, learned positions, tied lm_head,
a KV cache and batched generation over prompts of different lengths; and AdamW, written out.
Parameter names follow the GPT-2 layout, so GPT-2-layout state dicts load without renaming.
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass
class GPTConfig:
    block_size: int = 256  # longest sequence the model sees, prompt and generated tokens together
    vocab_size: int = 2048
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # bias in Linear and LayerNorm layers, as in GPT-2


class KVCache:
    """Keys and values of the positions seen so far, for every layer; buffers are allocated on first use."""

    def __init__(self, n_layer, max_len):
        self.n_layer, self.max_len = n_layer, max_len
        self.reset()

    def reset(self):
        self.k = self.v = None
        self.length = 0  # positions already stored

    def append(self, layer, k, v):
        # k, v: (B, nh, T, hs) for the new positions; returns keys and values of all positions so far
        if self.k is None:
            B, nh, _, hs = k.shape
            self.k = k.new_zeros(self.n_layer, B, nh, self.max_len, hs)  # (L, B, nh, max_len, hs)
            self.v = v.new_zeros(self.n_layer, B, nh, self.max_len, hs)
        end = self.length + k.size(2)
        self.k[layer, :, :, self.length:end] = k
        self.v[layer, :, :, self.length:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]  # (B, nh, length+T, hs)

    def keep(self, rows):
        # rows (n,): the batch rows to keep, in this order; the others are dropped
        self.k, self.v = self.k[:, rows], self.v[:, rows]

    def advance(self, T):
        # called once per forward, after every layer has appended its T new positions
        self.length += T


class CausalSelfAttention(nn.Module):

    def __init__(self, config, layer_idx):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v for all heads at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head, self.n_embd, self.dropout = config.n_head, config.n_embd, config.dropout
        self.layer_idx = layer_idx  # which slot of the KV cache is ours

    def forward(self, x, kv_cache=None, attn_mask=None):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        if kv_cache is not None:
            k, v = kv_cache.append(self.layer_idx, k, v)  # (B, nh, Tk, hs), Tk = cached + T
        # attn_mask (True = may attend) when given, else plain causal attention over T positions
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=attn_mask is None,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C), heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate='tanh')  # the approximation GPT-2 was trained with
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):

    def __init__(self, config, layer_idx):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer_idx)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, kv_cache=None, attn_mask=None):
        x = x + self.attn(self.ln_1(x), kv_cache, attn_mask)
        x = x + self.mlp(self.ln_2(x))
        return x


def sample_next(logits, temperature, top_k, u):
    # logits: (B, V) for the last position; u: (B, 1) uniform numbers in [0, 1), one per row
    # (unused at temperature 0, greedy); returns (B,) token ids
    if temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float('-inf'))
    cdf = F.softmax(logits.float(), dim=-1).cumsum(dim=-1)  # (B, V)
    # inverse-CDF sampling: one uniform number per row, where torch.multinomial draws one per
    # vocabulary entry. u stays strictly below the row's total, so the first entry whose CDF
    # exceeds it always has mass.
    u = u.to(cdf.device) * cdf[:, -1:]  # (B, 1)
    return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp(max=cdf.size(-1) - 1)


# generate drops its finished rows from the batch once this share of the batch has finished:
# each drop copies the KV cache, and dropping at every finished row measured slower than this
DROP_FINISHED_AT = 0.25


class GPT(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config, i) for i in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied: one matrix reads tokens in and scores them out
        self.apply(self._init_weights)
        # GPT-2 scales the projections that write into the residual stream, so its variance
        # does not grow with depth: each block adds two of them
        for name, p in self.named_parameters():
            if name.endswith('c_proj.weight'):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self):
        return sum(p.numel() for p in self.parameters())  # parameters() yields the tied matrix once

    def estimate_flops_per_token(self, seq_len=None):
        """
        Training FLOPs per token (forward + backward), as in the PaLM paper appendix B:
        6N for the weight matmuls (2 per weight forward, 4 backward), N without wpe since a lookup
        is no matmul (the tied wte is counted once, for lm_head), plus 12*L*d*T for attention:
        scores q.k and the weighted sum of v each cost 2*T*d per token and layer forward, x3 with backward.
        """
        cfg = self.config
        T = seq_len or cfg.block_size
        N = self.num_params() - self.transformer.wpe.weight.numel()
        return 6 * N + 12 * cfg.n_layer * cfg.n_embd * T

    def forward(self, idx, targets=None, kv_cache=None, pos=None, attn_mask=None, logits_at=None):
        """
        idx (B, T) token ids. targets (B, T), -1 where no loss is wanted. kv_cache: positions before idx.
        pos (T,) or (B, T) position ids, default counting on from the cache. attn_mask (B or 1, 1, T, Tk)
        booleans, True = may attend; default causal. Returns logits (B, T, V) and the mean loss or None.
        logits_at (B, T) booleans: only the logits of these positions, packed in row order, (N, V)
        (and the loss over them). At this size lm_head is the largest matmul, and most positions
        of a prompt + response batch need no logits.
        """
        B, T = idx.size()
        start = kv_cache.length if kv_cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens exceeds block_size {self.config.block_size}")
        if pos is None:
            pos = torch.arange(start, start + T, device=idx.device)  # (T,)
        if attn_mask is None and start > 0:
            # SDPA's is_causal aligns the triangle top-left, wrong once the queries start mid-sequence
            q_pos = torch.arange(start, start + T, device=idx.device)
            attn_mask = torch.arange(start + T, device=idx.device)[None, :] <= q_pos[:, None]  # (T, Tk)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block in self.transformer.h:
            x = block(x, kv_cache, attn_mask)
        if logits_at is not None:
            x = x[logits_at]  # (N, C)
            targets = targets[logits_at] if targets is not None else None  # (N,)
        logits = self.lm_head(self.transformer.ln_f(x))  # (B, T, V), or (N, V)
        if kv_cache is not None:
            kv_cache.advance(T)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def set_dropout(self, p):
        """The dropout probability of every layer (fine-tuning sets 0: DPO wants determinism)."""
        self.config.dropout = p
        for module in self.modules():
            if isinstance(module, nn.Dropout):
                module.p = p
            elif isinstance(module, CausalSelfAttention):  # its attention dropout is a number
                module.dropout = p

    def configure_optimizers(self, weight_decay, learning_rate, betas):
        # matrices (Linear weights, embeddings) decay; biases and LayerNorm gains do not
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {'params': [p for p in params if p.dim() >= 2], 'weight_decay': weight_decay},
            {'params': [p for p in params if p.dim() < 2], 'weight_decay': 0.0},
        ]
        return AdamW(groups, lr=learning_rate, betas=betas)

    @torch.no_grad()
    def generate(self, prompts, max_new_tokens, temperature=1.0, top_k=None, stop_tokens=None,
                 generator=None, use_cache=True):
        """
        prompts: list of token-id lists, lengths may differ. Returns, per row, the new token ids;
        a row ends at its first token in stop_tokens (not returned). temperature 0 is greedy.
        """
        lengths = [len(p) for p in prompts]
        if min(lengths) == 0:
            raise ValueError("every prompt needs at least one token")
        if temperature < 0:
            raise ValueError(f"temperature must be 0 (greedy) or positive, got {temperature}")
        P = max(lengths)
        if P + max_new_tokens > self.config.block_size:
            raise ValueError(f"longest prompt ({P} tokens) + max_new_tokens ({max_new_tokens}) "
                             f"exceeds block_size ({self.config.block_size}); lower max_new_tokens")
        device = self.lm_head.weight.device
        B, S = len(prompts), P + max_new_tokens
        # left-pad, so every row's next token lands in the same (last) column
        pad = torch.tensor([P - n for n in lengths], device=device)  # (B,)
        seq = torch.zeros(B, P, dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            seq[i, P - len(p):] = torch.tensor(p, dtype=torch.long, device=device)
        col = torch.arange(S, device=device)
        pos = (col[None, :] - pad[:, None]).clamp(min=0)  # (B, S), 0 at each row's first real token
        real = col[None, :] >= pad[:, None]  # (B, S)
        causal = col[None, :] <= col[:, None]  # (S, S), query row, key column
        # pad queries attend to themselves, so no mask row is all False (some SDPA backends return NaN there)
        mask = (causal & real[:, None, :]) | torch.eye(S, dtype=torch.bool, device=device)  # (B, S, S)
        mask = mask[:, None]  # (B, 1, S, S), same for every head

        stop = set(stop_tokens or ())
        kv_cache = KVCache(self.config.n_layer, S) if use_cache else None
        out = [[] for _ in prompts]
        rows = torch.arange(B, device=device)  # the rows still computed, by their index in prompts
        done = set()  # positions within `rows` (not prompt indices) of the rows that have finished
        for _ in range(max_new_tokens):
            T = seq.size(1)
            start = kv_cache.length if use_cache else 0  # the whole prompt first, then one token a step
            last = torch.zeros(len(rows), T - start, dtype=torch.bool, device=device)
            last[:, -1] = True  # only the last column's logits are needed
            logits, _ = self(seq[:, start:], kv_cache=kv_cache, pos=pos[rows, start:T],
                             attn_mask=mask[rows, :, start:T, :T], logits_at=last)  # (n, V)
            # one uniform number for every row of the batch, finished or not: a row's draws do
            # not depend on when the others finish (a seeded CPU generator serves any device)
            u = None
            if temperature > 0:
                u = torch.rand(B, 1, generator=generator, device=generator.device if generator else device)
                u = u[rows.to(u.device)]  # (n, 1)
            next_id = sample_next(logits, temperature, top_k, u)  # (n,)
            for j, (i, t) in enumerate(zip(rows.tolist(), next_id.tolist())):
                if j in done:
                    continue
                if t in stop:
                    done.add(j)
                else:
                    out[i].append(t)
            if len(done) == len(rows):
                break
            seq = torch.cat((seq, next_id[:, None]), dim=1)
            # finished rows keep computing alongside the others (their tokens are not kept) until
            # enough of them have finished to be worth dropping from the batch
            if len(done) >= max(1, DROP_FINISHED_AT * len(rows)):
                keep = torch.tensor([j for j in range(len(rows)) if j not in done], device=device)
                rows, seq, done = rows[keep], seq[keep], set()
                if use_cache:
                    kv_cache.keep(keep)
        return out


class AdamW:
    """Adam with decoupled weight decay (Loshchilov and Hutter, 2019), written out: per
    parameter, a running mean m and mean square v of its gradient, and a step of
    lr * m_hat / (sqrt(v_hat) + eps) after shrinking the weight by lr * weight_decay. The
    arithmetic is that of torch.optim.AdamW's per-tensor path, operation for operation
    (tests/test_model.py checks the weights stay bit-identical), and so is the state_dict,
    so either loads the other's. It exists because constructing a torch.optim optimizer
    imports torch._dynamo: 1.2 to 2 s of every process that trains, most of a test's short
    run. It takes configure_optimizers' groups (each with its weight_decay), one lr for all."""

    def __init__(self, groups, lr, betas=(0.9, 0.999), eps=1e-8):
        self.param_groups = [dict(group, lr=lr, betas=tuple(betas), eps=eps) for group in groups]
        self.state = {}  # parameter -> its step count and moments

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, (beta1, beta2), eps, decay = group['lr'], group['betas'], group['eps'], group['weight_decay']
            for p in group['params']:
                if p.grad is None:
                    continue
                if p not in self.state:
                    self.state[p] = dict(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p))
                state = self.state[p]
                m, v, g = state['exp_avg'], state['exp_avg_sq'], p.grad
                state['step'] += 1
                if decay != 0:
                    p.mul_(1 - lr * decay)
                m.lerp_(g, 1 - beta1)  # m = beta1 m + (1 - beta1) g
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # v = beta2 v + (1 - beta2) g^2
                bias1, bias2 = 1 - beta1 ** state['step'], 1 - beta2 ** state['step']  # m and v start at 0
                denom = (v.sqrt() / bias2 ** 0.5).add_(eps)
                p.addcdiv_(m, denom, value=-(lr / bias1))  # p -= lr m_hat / (sqrt(v_hat) + eps)

    def zero_grad(self):  # None, not zeros: the next backward writes the gradient instead of adding to it
        for group in self.param_groups:
            for p in group['params']:
                p.grad = None

    def state_dict(self):
        """torch.optim's layout: states and groups name parameters by their place in the groups."""
        index = {p: i for i, p in enumerate(p for group in self.param_groups for p in group['params'])}
        return {
            'state': {index[p]: dict(s, step=torch.tensor(float(s['step']))) for p, s in self.state.items()},
            'param_groups': [{**{k: v for k, v in group.items() if k != 'params'},
                              'params': [index[p] for p in group['params']]} for group in self.param_groups],
        }

    def load_state_dict(self, saved):
        params = [p for group in self.param_groups for p in group['params']]
        layout = [len(group['params']) for group in self.param_groups]
        if [len(old['params']) for old in saved['param_groups']] != layout or any(
                s['exp_avg'].shape != params[i].shape for i, s in saved['state'].items()):
            raise ValueError("the saved optimizer state is of another model: its groups or shapes differ")
        for group, old in zip(self.param_groups, saved['param_groups']):
            group.update(lr=old['lr'], betas=tuple(old['betas']), eps=old['eps'], weight_decay=old['weight_decay'])
        self.state = {params[i]: dict(step=int(s['step']), exp_avg=s['exp_avg'].to(params[i]),
                                      exp_avg_sq=s['exp_avg_sq'].to(params[i])) for i, s in saved['state'].items()}
