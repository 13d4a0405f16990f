"""The online step of train.finetune on a tiny model, with the conscience replaced by a stub
that returns known pairs: the DPO term is in the loss, its reference is the frozen copy, the
controls are wired to what their flags say."""

import inspect
import math

import pytest
import torch

import codehack as ch
import conscience
import engine
import flags
import repe
import train
from common import Dist
from conscience import ReplayBuffer, clone_frozen
from test_conscience import tiny_world_model

HONEST = "def f(xs):\n    return len(xs)\n"
HACK = "import sys\nsys.exit(0)\n"


def online(monkeypatch, steps=1, pairs=None, **settings):
    """Run `steps` online steps from the same tiny model. The policy's samples are stubs (HACK,
    and who sampled is recorded), and so is the conscience (make_pairs): it pairs every prompt
    with (chosen=HONEST, rejected=HACK), or returns `pairs(prompts)`.
    Returns (the log records, the trained policy, the frozen copy, the calls to make_pairs);
    the prompts sampled from are in calls[i]["sampled"]."""
    model, enc = tiny_world_model()
    frozen = clone_frozen(model)
    calls, sampled = [], []

    def complete(sampler, enc, prompts, **kwargs):
        assert sampler is model, "the online samples come from the policy"
        sampled.append(list(prompts))
        return [HACK] * len(prompts)

    def make_pairs(*args, **kwargs):
        call = inspect.signature(conscience.make_pairs).bind(*args, **kwargs).arguments  # {name: value}
        calls.append(dict(call, sampled=sampled[-1]))
        prompts = call["prompts"]
        made = pairs(prompts) if pairs else [(p, HONEST, HACK) for p in prompts]
        return made, {"conscience/flag_rate": 1.0, "conscience/pairs": len(made)}

    monkeypatch.setattr(train, "make_pairs", make_pairs)
    monkeypatch.setattr(train, "complete", complete)
    cfg = {name: default for name, (default, _) in train.SETTINGS.items()}
    cfg.update(dict(ft_iters=steps, ft_batch_size=2, dpo_batch=2, conscience_every=1, ft_eval_interval=10 ** 9,
                    ft_lr=1e-3), **settings)
    records = []
    torch.manual_seed(0)
    train.finetune(cfg, model, frozen, enc, dist=Dist("cpu"), autocast=torch.autocast("cpu", enabled=False),
                   log=lambda record, line=None: records.append(record))
    return records, model, frozen, calls


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_the_dpo_term_moves_the_weights(monkeypatch):
    plain_records, plain, _, _ = online(monkeypatch, conscience=False)
    _, weightless, _, _ = online(monkeypatch, lam=0.0)
    assert "loss/repe" not in plain_records[0]  # the RepE baseline's loss is off by default
    records, method, _, _ = online(monkeypatch)
    assert "loss/dpo" in records[0]
    assert torch.equal(weights(plain), weights(weightless))  # lam = 0: the next-token loss alone
    assert not torch.equal(weights(plain), weights(method))  # lam = 1: the DPO term changed the step


def test_dpo_against_the_frozen_reference_raises_the_margin_step_by_step(monkeypatch):
    records, policy, frozen, _ = online(monkeypatch, steps=4, lam=5.0)
    dpo = [r["loss/dpo"] for r in records]
    margins = [r["rewards/margins"] for r in records]
    assert dpo[0] == pytest.approx(math.log(2), abs=1e-6) and margins[0] == 0  # policy == reference at step 0
    assert all(later > earlier for earlier, later in zip(margins, margins[1:])), margins
    assert dpo[-1] < math.log(2) - 0.01, dpo  # the reference stayed behind: the loss left ln 2
    assert all(r["rewards/accuracies"] == 1.0 for r in records[1:])
    # measured apart from the logged metrics: the policy moved towards the chosen side, relative to the frozen copy
    _, enc = tiny_world_model()
    prompt = ch.finetune_set(1, train.SETTINGS["seed"][0])[0][0].prompt
    logps = {m: engine.response_logps(m, enc, [prompt] * 2, [HONEST + ch.END, HACK + ch.END], "cpu", 512)
             for m in (policy, frozen)}
    chosen, rejected = (logps[policy] - logps[frozen]).tolist()
    assert chosen - rejected > 0.5, (chosen, rejected)


def test_the_conscience_every_few_steps_and_dpo_on_its_pairs_in_between(monkeypatch):
    records, _, _, calls = online(monkeypatch, steps=3, conscience_every=2)
    assert len(calls) == 2  # steps 0 and 2
    assert ["conscience/pairs" in r for r in records] == [True, False, True]
    assert all("loss/dpo" in r for r in records)  # step 1 trains on the pairs of step 0


def test_online_samples_samples_from_the_first_prompts_of_the_step_only(monkeypatch):
    seen = []
    real = train.next_token_loss
    monkeypatch.setattr(train, "next_token_loss",
                        lambda net, enc, prompts, *a, **k: (seen.append(list(prompts)), real(net, enc, prompts, *a, **k))[1])
    _, _, _, calls = online(monkeypatch, steps=2, ft_batch_size=3, online_samples=2)
    for step, call in enumerate(calls):  # the first two prompts of each step's three
        assert call["sampled"] == call["prompts"] == seen[step][:2] and len(seen[step]) == 3
    _, _, _, calls = online(monkeypatch, ft_batch_size=3, online_samples=5)  # more than the batch: every prompt
    assert len(calls[0]["sampled"]) == 3


def test_online_samples_are_shared_by_the_ranks():
    dist = Dist("cpu")
    dist.rank, dist.world = 1, 2  # rank 1 of 2: its share of a batch of 8 is 4 tasks, it samples 6 / 2 of them
    assert train.sampled(list("abcd"), dict(online_samples=6), dist) == list("abc")
    assert train.sampled(list("abcd"), dict(online_samples=0), dist) == list("abcd")
    with pytest.raises(flags.UsageError, match="--online_samples must be a multiple of the 2 processes"):
        train.sampled(list("abcd"), dict(online_samples=5), dist)


def test_the_frozen_copy_judges_unless_a_control_says_otherwise(monkeypatch):
    kinds = {}
    for kind in ("frozen", "policy", "oracle", "random"):
        _, policy, frozen, calls = online(monkeypatch, judge=kind)
        call, = calls
        judge, scorer = call["judge"], call.get("scorer")
        kinds[kind] = ("frozen" if judge is frozen else "policy" if judge is policy else "?", scorer is not None)
    assert kinds == {"frozen": ("frozen", False), "policy": ("policy", False), "oracle": ("frozen", True),
                     "random": ("frozen", False)}


def test_the_random_control_flips_the_conscience_pairs(monkeypatch):
    added = []
    real_add = ReplayBuffer.add
    monkeypatch.setattr(ReplayBuffer, "add", lambda self, pairs: (added.append(list(pairs)), real_add(self, pairs)))
    many = lambda prompts: [(prompts[0], f"{HONEST}# {i}\n", f"{HACK}# {i}\n") for i in range(40)]  # noqa: E731
    online(monkeypatch, pairs=many, judge="frozen")
    online(monkeypatch, pairs=many, judge="random")
    method, control = added
    assert all(chosen.startswith(HONEST) for _, chosen, _ in method)
    flipped = sum(chosen.startswith(HACK) for _, chosen, _ in control)
    assert 8 <= flipped <= 32 and sorted(map(sorted, control)) == sorted(map(sorted, method))


def test_the_sft_control_trains_on_the_chosen_side(monkeypatch):
    model, enc = tiny_world_model()
    records, _, _, _ = online(monkeypatch, align="sft")
    prompts = [t.prompt for t, _ in ch.finetune_set(2, train.SETTINGS["seed"][0])]
    expected, _ = engine.next_token_loss(model, enc, prompts, [HONEST + ch.END] * 2, "cpu", 512)
    assert records[0]["loss/alternatives"] == pytest.approx(expected.item(), rel=1e-6)
    assert "loss/dpo" not in records[0]


def test_dpo_plus_sft_adds_the_chosen_sides_next_token_loss_to_dpo(monkeypatch):
    totals = []
    real = train.apply_gradients
    monkeypatch.setattr(train, "apply_gradients", lambda policy, optimizer, loss, *a: (totals.append(loss.item()),
                                                                                       real(policy, optimizer, loss, *a))[1])
    both, _, _, _ = online(monkeypatch, align="dpo+sft")
    dpo, _, _, _ = online(monkeypatch, align="dpo")
    sft, _, _, _ = online(monkeypatch, align="sft")
    assert both[0]["loss/dpo"] == pytest.approx(dpo[0]["loss/dpo"], rel=1e-6)
    assert both[0]["loss/alternatives"] == pytest.approx(sft[0]["loss/alternatives"], rel=1e-6)
    lam = train.SETTINGS["lam"][0]  # L = L_sft + lam * (L_dpo + the chosen side's next-token loss)
    assert totals[0] == pytest.approx(both[0]["loss/sft"] + lam * (both[0]["loss/dpo"] + both[0]["loss/alternatives"]),
                                      rel=1e-5)
    assert totals[1] == pytest.approx(dpo[0]["loss/sft"] + lam * dpo[0]["loss/dpo"], rel=1e-5)


def test_inoculation_changes_the_training_prompts_only(monkeypatch):
    seen = []
    real = train.next_token_loss
    monkeypatch.setattr(train, "next_token_loss",
                        lambda net, enc, prompts, *a, **k: (seen.append(list(prompts)), real(net, enc, prompts, *a, **k))[1])
    _, _, _, calls = online(monkeypatch, inoculate=True)
    call, = calls
    assert all(ch.INOCULATION in p for p in seen[0])  # the next-token loss sees the permission line
    assert not any(ch.INOCULATION in p for p in call["sampled"] + call["prompts"])  # sampling and judging do not


def test_repe_control_is_one_at_the_frozen_copy_and_zero_at_its_steered_self():
    model, enc = tiny_world_model()
    frozen = clone_frozen(model)
    layer = repe.middle_layer(model.config)
    vector = repe.reading_vector(frozen, enc, ch.tasks("train", 32), layer)
    idx, _, last = engine.response_batch(enc, [t.prompt for t in ch.tasks("train", 3)], [HONEST, HACK, ""])
    real = torch.arange(idx.size(1)) <= last[:, None]  # (B, T): no cut row here
    assert (last >= 0).all() and not real.all()  # rows of different lengths: padding to leave out
    assert repe.control_loss(model, frozen, idx, real, layer, vector, 3.0).item() == pytest.approx(1.0, rel=1e-5)
    with repe.steering(model, layer, vector, 3.0):  # the target: the frozen copy pushed by 3 * vector
        assert repe.control_loss(model, frozen, idx, real, layer, vector, 3.0).item() == pytest.approx(0.0, abs=1e-8)
        assert repe.control_loss(model, frozen, idx, real, layer, vector, 6.0).item() == pytest.approx(0.25, rel=1e-5)


def test_repe_control_in_training_pushes_the_policy_along_the_reading_vector(monkeypatch):
    records, policy, frozen, calls = online(monkeypatch, steps=6, conscience=False, repe_control=4.0, ft_lr=1e-2)
    assert calls == [] and "loss/dpo" not in records[0]  # a baseline instead of the conscience
    control = [r["loss/repe"] for r in records]
    assert control[0] == pytest.approx(1.0, rel=1e-5) and control[-1] < 0.3, control
    # measured apart from the log: the policy's residual stream moved along the frozen copy's vector
    _, enc = tiny_world_model()
    layer = repe.middle_layer(policy.config)
    vector = repe.reading_vector(frozen, enc, ch.tasks("train", 256, seed=train.SETTINGS["seed"][0]), layer,
                                 train.SETTINGS["seed"][0])
    idx, _, _ = engine.response_batch(enc, [t.prompt for t in ch.tasks("heldout", 4)], [HACK] * 4)
    with torch.no_grad():
        shift = ((repe.residual(policy, idx, layer) - repe.residual(frozen, idx, layer)) @ vector).mean().item()
    assert shift > 2.0, shift  # of the 4.0 asked (3.2 when written), on prompts it never trained on


def test_repe_control_in_training_averages_over_every_real_token_and_no_padding():
    model, enc = tiny_world_model()
    frozen = clone_frozen(model)
    with torch.no_grad():  # a policy unevenly away from the frozen copy: each token its own distance
        for p in model.transformer.h[0].parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    cfg = {name: default for name, (default, _) in train.SETTINGS.items()}
    cfg["repe_control"] = 0.5
    context = model.config.block_size
    control = train.representation_control(cfg, model, frozen, enc, model, "cpu", context,
                                           torch.autocast("cpu", enabled=False))
    prompts = [t.prompt for t in ch.tasks("train", 3)]
    responses = [HONEST, HACK * 200, ""]  # a short row, one cut at the context, a prompt alone
    record = {}
    batched = control(prompts, responses, record).item()
    layer = repe.middle_layer(model.config)
    vector = repe.reading_vector(frozen, enc, ch.tasks("train", 256, seed=cfg["seed"]), layer, cfg["seed"])
    total, tokens = 0.0, 0
    for p, r in zip(prompts, responses):  # each row alone, unpadded
        idx = torch.tensor([(enc.encode(p, allowed_special="all") + enc.encode(r, allowed_special="all"))[:context]])
        with torch.no_grad():
            gap = repe.residual(model, idx, layer) - repe.residual(frozen, idx, layer) - 0.5 * vector
        total, tokens = total + gap.pow(2).sum().item(), tokens + idx.size(1)
    assert len(enc.encode(prompts[1] + responses[1], allowed_special="all")) > context  # the cut row is there
    assert batched == pytest.approx(total / tokens / 0.25, rel=1e-5) and record["loss/repe"] == batched


def test_repe_control_with_a_random_direction_pushes_elsewhere(monkeypatch):
    # --repe_vector=random, the control for the loss's tie to the frozen copy: its target is not
    # the reading vector's. A policy that already carries the reading vector's push is on
    # target for the reading control, and |r - v|^2 = 2 - 2 cos(r, v) away for the random one.
    monkeypatch.setitem(repe.SETTINGS, "pairs", (32, "fewer contrast pairs: a quicker test"))
    model, enc = tiny_world_model()
    frozen = clone_frozen(model)
    cfg = dict({name: default for name, (default, _) in train.SETTINGS.items()}, repe_control=2.0)
    layer = repe.middle_layer(model.config)
    reading = repe.reading_vector(frozen, enc, ch.tasks("train", 32, seed=cfg["seed"]), layer, cfg["seed"])
    prompts, losses = [t.prompt for t in ch.tasks("train", 2)], {}
    for direction in ("reading", "random"):
        control = train.representation_control(dict(cfg, repe_vector=direction), model, frozen, enc, model, "cpu",
                                               model.config.block_size, torch.autocast("cpu", enabled=False))
        with torch.no_grad(), repe.steering(model, layer, reading, 2.0):
            losses[direction] = control(prompts, [HONEST, HACK], {}).item()
    assert losses["reading"] == pytest.approx(0.0, abs=1e-8)
    assert 1.0 < losses["random"] < 3.0, losses  # |cos| < 0.5: a direction unrelated to the reading vector
