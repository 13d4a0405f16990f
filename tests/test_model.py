"""
Behaviour tests for model.py on a tiny random GPT, CPU only: caching, masking, padding,
sampling, stop tokens, loss, parameter layout. Run: python -m pytest -q tests/test_model.py
"""
import copy

import pytest
import torch
import torch.nn.functional as F

from model import GPT, GPTConfig, KVCache

CONFIG = GPTConfig(block_size=32, vocab_size=64, n_layer=2, n_head=2, n_embd=16)
PROMPTS = [[5, 9, 2, 40, 11], [7], [3, 3, 60]]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return GPT(CONFIG).eval()


def test_cached_forward_matches_full_forward(model):
    idx = torch.randint(0, CONFIG.vocab_size, (2, 9))
    full, _ = model(idx)
    kv_cache = KVCache(CONFIG.n_layer, CONFIG.block_size)
    # a prefill, a chunk of two (mask offset by the cache), then single tokens
    chunks = [idx[:, :4], idx[:, 4:6]] + [idx[:, t:t + 1] for t in range(6, 9)]
    step_logits = [model(chunk, kv_cache=kv_cache)[0] for chunk in chunks]
    assert kv_cache.length == 9
    torch.testing.assert_close(torch.cat(step_logits, dim=1), full, atol=1e-5, rtol=0)


def test_cached_and_uncached_generate_agree(model):
    cached = model.generate(PROMPTS, 12, temperature=0, use_cache=True)
    uncached = model.generate(PROMPTS, 12, temperature=0, use_cache=False)
    assert cached == uncached
    assert [len(row) for row in cached] == [12, 12, 12]


def test_batched_generate_matches_one_prompt_at_a_time(model):
    batched = model.generate(PROMPTS, 10, temperature=0)
    alone = [model.generate([p], 10, temperature=0)[0] for p in PROMPTS]
    assert batched == alone


def test_later_tokens_do_not_change_earlier_logits(model):
    idx = torch.randint(0, CONFIG.vocab_size, (1, 12))
    changed = idx.clone()
    changed[0, 7:] = (changed[0, 7:] + 1) % CONFIG.vocab_size
    logits, _ = model(idx)
    logits_changed, _ = model(changed)
    torch.testing.assert_close(logits[:, :7], logits_changed[:, :7], atol=0, rtol=0)
    assert not torch.allclose(logits[:, 7:], logits_changed[:, 7:])


def test_right_padding_leaves_real_positions_alone(model):
    short, long = [4, 8, 15, 16], [23, 42, 1, 2, 3, 5, 8]
    batch = torch.zeros(2, len(long), dtype=torch.long)
    batch[0, :len(short)] = torch.tensor(short)
    batch[1] = torch.tensor(long)
    logits, _ = model(batch)
    alone, _ = model(torch.tensor([short]))
    torch.testing.assert_close(logits[0, :len(short)], alone[0], atol=1e-5, rtol=0)


def test_seeded_sampling_is_reproducible(model):
    def sample(seed):
        generator = torch.Generator().manual_seed(seed)
        return model.generate(PROMPTS, 15, temperature=1.0, top_k=20, generator=generator)
    assert sample(123) == sample(123)
    assert sample(123) != sample(124)


def test_stop_token_ends_its_row_and_is_excluded(model):
    full = model.generate(PROMPTS, 12, temperature=0)
    stop = full[0][3]  # row 0 must stop after at most 3 tokens
    out = model.generate(PROMPTS, 12, temperature=0, stop_tokens={stop})
    for row_full, row in zip(full, out):
        expected = row_full[:row_full.index(stop)] if stop in row_full else row_full
        assert row == expected
    assert stop not in out[0] and len(out[0]) <= 3
    # one row alone that stops: generation ends early with the stop token dropped
    assert model.generate([PROMPTS[0]], 12, temperature=0, stop_tokens=[stop]) == [out[0]]


def test_dropping_finished_rows_changes_no_row(model, monkeypatch):
    # rows that stop early leave the batch (and the KV cache) mid-generation; every row must
    # still get the tokens, and the random draws, it would get if the batch kept them all
    import model as model_module
    prompts = PROMPTS * 4  # 12 rows
    stop = set(range(1, 8))  # about one token in nine: the rows stop at different steps

    kept_rows = []  # the batch size after each drop from the KV cache
    keep = model_module.KVCache.keep
    monkeypatch.setattr(model_module.KVCache, "keep", lambda cache, rows: (kept_rows.append(len(rows)), keep(cache, rows)))

    def sample(drop_at, use_cache=True, temperature=1.0):
        monkeypatch.setattr(model_module, "DROP_FINISHED_AT", drop_at)
        generator = torch.Generator().manual_seed(5)
        return model.generate(prompts, 25, temperature=temperature, stop_tokens=stop, generator=generator,
                              use_cache=use_cache)
    kept = sample(1.0)  # never drops: the batch shrinks only when every row has finished
    assert kept_rows == []
    assert len({len(row) for row in kept}) >= 4 and max(map(len, kept)) > 10  # rows did finish at different steps
    for drop_at in (0.25, 0.01):  # a quarter of the batch finished, or any one row
        assert sample(drop_at) == kept
        assert kept_rows and kept_rows == sorted(kept_rows, reverse=True) and kept_rows[-1] < len(prompts)
        kept_rows.clear()
        assert sample(drop_at, use_cache=False) == kept
    greedy = sample(1.0, temperature=0)  # no random numbers at all
    assert sample(0.01, temperature=0) == greedy and kept_rows


def test_loss_ignores_minus_one_targets(model):
    idx = torch.randint(0, CONFIG.vocab_size, (2, 6))
    targets = torch.randint(0, CONFIG.vocab_size, (2, 6))
    targets[0, :2] = -1
    targets[1, 5] = -1
    logits, loss = model(idx, targets)
    keep = targets != -1
    manual = F.cross_entropy(logits[keep], targets[keep])
    torch.testing.assert_close(loss, manual)
    assert model(idx)[1] is None


def test_logits_at_computes_only_those_positions(model):
    idx = torch.randint(0, CONFIG.vocab_size, (3, 7))
    targets = torch.randint(0, CONFIG.vocab_size, (3, 7))
    at = torch.rand(3, 7, generator=torch.Generator().manual_seed(0)) < 0.4
    at[2] = False  # a row with none
    full, _ = model(idx)
    packed, loss = model(idx, targets, logits_at=at)
    assert packed.shape == (at.sum().item(), CONFIG.vocab_size)
    torch.testing.assert_close(packed, full[at])
    torch.testing.assert_close(loss, F.cross_entropy(full[at], targets[at]))


def test_state_dict_follows_gpt2_layout(model):
    expected = {'transformer.wte.weight', 'transformer.wpe.weight', 'lm_head.weight',
                'transformer.ln_f.weight', 'transformer.ln_f.bias'}
    for i in range(CONFIG.n_layer):
        for name in ['ln_1', 'attn.c_attn', 'attn.c_proj', 'ln_2', 'mlp.c_fc', 'mlp.c_proj']:
            expected |= {f'transformer.h.{i}.{name}.weight', f'transformer.h.{i}.{name}.bias'}
    state = model.state_dict()
    assert set(state) == expected
    assert model.lm_head.weight is model.transformer.wte.weight
    fresh = GPT(CONFIG)
    fresh.load_state_dict(state)  # strict: every key matches
    assert torch.equal(fresh.transformer.h[1].mlp.c_fc.weight, model.transformer.h[1].mlp.c_fc.weight)


def test_param_count_and_optimizer_groups(model):
    V, C, L, T = CONFIG.vocab_size, CONFIG.n_embd, CONFIG.n_layer, CONFIG.block_size
    per_block = 2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    assert model.num_params() == V * C + T * C + L * per_block + 2 * C  # wte counted once
    optimizer = model.configure_optimizers(0.1, 1e-3, (0.9, 0.95))
    decay, no_decay = optimizer.param_groups
    assert all(p.dim() >= 2 for p in decay['params']) and decay['weight_decay'] == 0.1
    assert all(p.dim() < 2 for p in no_decay['params']) and no_decay['weight_decay'] == 0.0
    assert sum(p.numel() for g in optimizer.param_groups for p in g['params']) == model.num_params()


def test_adamw_is_torchs_step_for_step_and_loads_its_state(tmp_path):
    """model.AdamW against torch.optim.AdamW's per-tensor path: the same weights and state to
    the last bit after steps with weight decay, a changing learning rate and a parameter
    without a gradient at first; each continues exactly from the other's state_dict, saved
    and loaded as a checkpoint is; a state of another model's shape is refused."""
    def steps(optimizer, net, lrs, seed, skip=None):
        g = torch.Generator().manual_seed(seed)
        for lr in lrs:
            for group in optimizer.param_groups:
                group['lr'] = lr
            x = torch.randint(0, CONFIG.vocab_size, (2, 8), generator=g)
            net(x, x)[1].backward()
            if skip is not None:  # its state starts a step later, in both
                skip(net).grad = None
                skip = None
            optimizer.step()
            optimizer.zero_grad()

    def same(a, b):
        return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))

    def same_state(a, b):
        a, b = a.state_dict()['state'], b.state_dict()['state']
        return a.keys() == b.keys() and all(torch.equal(a[i][k], b[i][k]) for i in a for k in a[i])

    def saved(optimizer, name):  # as a checkpoint keeps it
        torch.save(optimizer.state_dict(), tmp_path / name)
        return torch.load(tmp_path / name, weights_only=True)

    torch.manual_seed(0)
    ours = GPT(CONFIG)
    theirs, initial = copy.deepcopy(ours), copy.deepcopy(ours)
    ours_opt = ours.configure_optimizers(0.1, 1e-3, (0.9, 0.95))
    theirs_opt = torch.optim.AdamW(theirs.configure_optimizers(0.1, 1e-3, (0.9, 0.95)).param_groups,  # the same groups
                                   lr=1e-3, betas=(0.9, 0.95), foreach=False, fused=False)
    for optimizer, net in ((ours_opt, ours), (theirs_opt, theirs)):
        steps(optimizer, net, [1e-3, 3e-3, 2e-3], seed=1, skip=lambda m: m.transformer.ln_f.bias)
    assert same(ours, theirs) and same_state(ours_opt, theirs_opt) and not same(ours, initial)
    # swap the states: each optimizer continues from the other's
    ours_state, theirs_state = saved(ours_opt, 'ours.pt'), saved(theirs_opt, 'theirs.pt')
    ours_opt.load_state_dict(theirs_state)
    theirs_opt.load_state_dict(ours_state)
    for optimizer, net in ((ours_opt, ours), (theirs_opt, theirs)):
        steps(optimizer, net, [1e-3, 5e-4], seed=2)
    assert same(ours, theirs) and same_state(ours_opt, theirs_opt)
    narrower = GPT(GPTConfig(block_size=32, vocab_size=64, n_layer=2, n_head=2, n_embd=8))
    with pytest.raises(ValueError, match='another model'):
        narrower.configure_optimizers(0.1, 1e-3, (0.9, 0.95)).load_state_dict(ours_state)


def test_generate_refuses_to_run_past_block_size(model):
    with pytest.raises(ValueError, match='block_size'):
        model.generate([[1] * 20, [2]], max_new_tokens=13)
    assert len(model.generate([[1] * 20], max_new_tokens=12, temperature=0)[0]) == 12


def test_top_k_one_is_greedy(model):
    generator = torch.Generator().manual_seed(0)
    sampled = model.generate(PROMPTS, 10, temperature=1.0, top_k=1, generator=generator)
    assert sampled == model.generate(PROMPTS, 10, temperature=0)


def test_sampling_follows_the_distribution_and_never_picks_masked_tokens():
    from model import sample_next
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05, 0.0, 0.0])
    logits = probs.log().expand(20000, -1)  # (20000, 6)
    u = torch.rand(20000, 1, generator=torch.Generator().manual_seed(0))
    draws = sample_next(logits, 1.0, None, u)
    freq = torch.bincount(draws, minlength=6).float() / len(draws)
    assert torch.allclose(freq, probs, atol=0.015), freq
    top2 = sample_next(logits, 1.0, 2, u)
    assert set(top2.tolist()) == {0, 1}
