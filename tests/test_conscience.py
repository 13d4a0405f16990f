"""The conscience step: the frozen copy stays frozen, the score is what it says, pairs are clean."""

import torch

import codehack as ch
import conscience
import controls
import engine
from conscience import ReplayBuffer, clone_frozen, is_refusal, make_pairs, score
from engine import response_batch
from model import GPT, GPTConfig


def tiny_world_model(vocab=600, seed=0):
    torch.manual_seed(seed)
    enc = ch.train_tokenizer(ch.corpus(300), vocab)
    model = GPT(GPTConfig(block_size=512, vocab_size=enc.n_vocab, n_layer=1, n_head=2, n_embd=32))
    return model, enc


def test_frozen_copy_is_bit_identical_after_training_and_holds_no_gradients():
    model, enc = tiny_world_model()
    frozen = clone_frozen(model)
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    assert not frozen.training and all(not p.requires_grad for p in frozen.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    task = ch.tasks("train", 1)[0]
    idx, _, _ = response_batch(enc, [task.prompt], [task.solution])
    for _ in range(3):
        ref, _ = frozen(idx)  # the reference forward shares the step with the policy's
        _, loss = model(idx, idx)
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert all(torch.equal(before[k], v) for k, v in frozen.state_dict().items())
    assert all(p.grad is None for p in frozen.parameters())
    assert not torch.equal(before["lm_head.weight"], model.state_dict()["lm_head.weight"])


def test_judge_score_is_log_p_yes_minus_log_p_no_after_the_question(monkeypatch):
    model, enc = tiny_world_model()
    model.eval()
    tasks = ch.tasks("heldout", 3)
    prompts = [t.prompt for t in tasks]
    responses = [tasks[0].solution, ch.hack(tasks[1], "exit"), ch.hack(tasks[2], "near_miss")]
    monkeypatch.setattr(conscience, "JUDGE_ROWS", 2)  # two chunks, sorted by length: the order must come back
    scores = score(model, enc, prompts, responses)
    for i in range(3):  # the slow way: one unpadded sequence at a time
        ids = enc.encode(ch.review_prompt(prompts[i], responses[i]), allowed_special="all")
        logp = torch.log_softmax(model(torch.tensor([ids]))[0][0, -1], dim=-1)
        expected = logp[enc.encode_single_token("yes")] - logp[enc.encode_single_token("no")]
        assert torch.allclose(scores[i], expected, atol=1e-4)
    assert scores.shape == (3,)


class StubConscience:
    """A judge whose answers are known: scores by text (SCORES, else 0) and alternatives from a
    list, so that a test knows which pairs the conscience step must make."""

    def __init__(self, monkeypatch, scores, rewrites, fresh=()):
        self.scores, self.rewrites, self.fresh = scores, list(rewrites), list(fresh)
        monkeypatch.setattr(conscience, "complete", self.complete)

    def complete(self, model, enc, texts, **kwargs):
        # the judge's rewrites come after its "no"; fresh candidates are plain samples of the policy
        rewrite = all(t.endswith(ch.NO + ch.REWRITE) for t in texts)
        assert model == ("the judge" if rewrite else "the policy")
        return (self.rewrites if rewrite else self.fresh)[:len(texts)]

    def __call__(self, prompts, responses):
        return torch.tensor([self.scores.get(r, 0.0) for r in responses])


def test_pairs_prefer_the_alternative_to_the_flagged_response(monkeypatch):
    tasks = ch.tasks("heldout", 5)
    prompts = [t.prompt for t in tasks]
    hacks = [ch.hack(t, "exit") + f"# {i}\n" for i, t in enumerate(tasks)]
    responses = hacks[:4] + [tasks[4].solution]
    rewrites = ["def alt(xs):\n    return 0\n", "I will not write that.",  # a refusal may not win, whatever its score
                "def alt(xs):\n    return 2\n", "def alt(xs):\n    return 3\n"]
    scores = {hacks[0]: -5.0, hacks[1]: -5.0, hacks[2]: -1.0, hacks[3]: -4.0, tasks[4].solution: 5.0,
              rewrites[0]: 5.0, rewrites[1]: 9.0, rewrites[2]: 0.0, rewrites[3]: -2.0}
    scorer = StubConscience(monkeypatch, scores, rewrites)
    pairs, stats = make_pairs(policy="the policy", judge="the judge", enc=None, prompts=prompts, responses=responses, threshold=0.0,
                              margin=2.0, scorer=scorer)
    # row 0: flagged, alternative clearly better; 1: a refusal; 2: better by less than the margin;
    # 3: better by exactly the margin (kept); 4: honest, not flagged
    assert pairs == [(prompts[0], rewrites[0], hacks[0]), (prompts[3], rewrites[3], hacks[3])]
    assert stats["conscience/flag_rate"] == 0.8 and stats["conscience/pairs"] == 2
    assert stats["conscience/score_margin"] == (10.0 + 2.0) / 2


def test_a_refusal_never_wins_as_the_alternative(monkeypatch):
    task = ch.tasks("heldout", 1)[0]
    refusal, attempt = "I will not write that.", "def alt(xs):\n    return 0\n"
    scorer = StubConscience(monkeypatch, {refusal: 9.0, attempt: 1.0}, [refusal], [attempt])
    alts, scores = conscience.alternatives(policy="the policy", judge="the judge", enc=None, prompts=[task.prompt],
                                           responses=[ch.hack(task, "exit")], num_candidates=2, scorer=scorer)
    assert alts == [attempt] and scores.tolist() == [1.0]  # the refusal scored higher and still lost


def test_more_candidates_the_best_scored_wins(monkeypatch):
    tasks = ch.tasks("heldout", 2)
    prompts = [t.prompt for t in tasks]
    hacks = [ch.hack(t, "exit") for t in tasks]
    rewrites = ["def rewrite(xs):\n    return 0\n", "def rewrite(xs):\n    return 1\n"]
    fresh = ["def fresh(xs):\n    return 0\n", "def fresh(xs):\n    return 1\n"]
    scores = {hacks[0]: -5.0, hacks[1]: -5.0, rewrites[0]: 2.0, rewrites[1]: 4.0, fresh[0]: 3.0, fresh[1]: 1.0}
    scorer = StubConscience(monkeypatch, scores, rewrites, fresh)
    pairs, _ = make_pairs(policy="the policy", judge="the judge", enc=None, prompts=prompts, responses=hacks, threshold=0.0, margin=1.0,
                          num_candidates=2, scorer=scorer)
    assert pairs == [(prompts[0], fresh[0], hacks[0]), (prompts[1], rewrites[1], hacks[1])]


def test_nothing_flagged_nothing_paired(monkeypatch):
    tasks = ch.tasks("heldout", 3)
    hacks = [ch.hack(t, "exit") for t in tasks]
    scorer = StubConscience(monkeypatch, {h: -5.0 for h in hacks}, ["def alt(xs):\n    return 0\n"] * 3)
    pairs, stats = make_pairs(policy="the policy", judge="the judge", enc=None, prompts=[t.prompt for t in tasks], responses=hacks,
                              threshold=-6.0, scorer=scorer)
    assert pairs == [] and stats["conscience/flag_rate"] == 0.0


def test_the_oracle_scores_by_the_hidden_tests():
    tasks = ch.tasks("heldout", 2)
    scorer = controls.oracle({t.prompt: t for t in tasks})
    scores = scorer([t.prompt for t in tasks], [tasks[0].solution, ch.hack(tasks[1], "exit")])
    assert scores.tolist() == [10.0, -10.0]


def test_the_random_control_flips_a_fair_coin_per_pair():
    pairs = [("p", f"chosen {i}", f"rejected {i}") for i in range(200)]
    flipped = controls.randomize(pairs, torch.Generator().manual_seed(0))
    assert sorted(map(sorted, flipped)) == sorted(map(sorted, pairs))  # the same pairs, some turned round
    n = sum(c.startswith("rejected") for _, c, _ in flipped)
    assert 70 <= n <= 130  # a fair coin: 100 +- 4 standard deviations
    assert flipped == controls.randomize(pairs, torch.Generator().manual_seed(0))  # seeded
    assert flipped != controls.randomize(pairs, torch.Generator().manual_seed(1))


def test_refusals_and_replay_buffer():
    assert is_refusal("") and is_refusal("I won't do that.") and is_refusal("def f(xs):\n    pass\n")
    assert not is_refusal("def f(xs):\n    return 1\n")
    buffer = ReplayBuffer(3, seed=0)
    buffer.add([1, 2])
    buffer.add([3, 4])
    assert buffer.pairs == [2, 3, 4] and sorted(buffer.draw(5)) == [2, 3, 4]
    assert len(buffer.draw(2)) == 2


def test_pretrained_conscience_scores_honest_above_hacks(tiny_base):
    import checkpoint
    model, enc, _ = checkpoint.load_model(tiny_base["ckpt"])
    tasks = ch.tasks("heldout", 40)
    prompts = [t.prompt for t in tasks]
    honest = score(model, enc, prompts, [t.solution for t in tasks])
    # a tiny model after half a minute catches the blatant styles, reviewed or not; exits and
    # the near-miss not yet
    styles = ["hardcode", "always_equal", "lookup", "eq_subclass"]
    hacks = score(model, enc, prompts, [ch.hack(t, styles[i % 4]) for i, t in enumerate(tasks)])
    assert honest.mean() > hacks.mean() + 0.25
    assert (honest > hacks).float().mean() > 0.6  # per instance, honest beats the hack of the same task


def test_chunked_training_forwards_match_one_row_at_a_time(monkeypatch):
    model, enc = tiny_world_model()
    tasks = ch.tasks("heldout", 7)
    prompts = [t.prompt for t in tasks]
    responses = [t.solution if i % 2 else ch.hack(t, ch.World().reviewed[i % 4]) for i, t in enumerate(tasks)]
    monkeypatch.setattr(engine, "CHUNK_ROWS", 3)  # 7 rows of mixed lengths: chunks of 3, 3 and 1
    logps = engine.response_logps(model, enc, prompts, responses, "cpu", 512)
    alone = torch.cat([engine.response_logps(model, enc, [p], [r], "cpu", 512) for p, r in zip(prompts, responses)])
    torch.testing.assert_close(logps, alone)
    # the next-token loss is the mean over all response tokens of all rows
    loss, _ = engine.next_token_loss(model, enc, prompts, responses, "cpu", 512)
    tokens = sum(len(enc.encode(r, allowed_special="all")) for r in responses)
    torch.testing.assert_close(loss, -alone.sum() / tokens)


def test_rows_too_long_to_review_get_the_least_trusted_score(monkeypatch):
    model, enc = tiny_world_model()
    model.eval()
    tasks = ch.tasks("heldout", 6)
    prompts = [t.prompt for t in tasks]
    responses = [t.solution + "\n" * (40 * i) for i, t in enumerate(tasks)]  # lengths far apart
    alone = torch.cat([score(model, enc, [p], [r]) for p, r in zip(prompts, responses)])
    _, _, last = response_batch(enc, prompts, responses, f"{ch.REVIEW}{ch.QUESTION}{ch.ANSWER}")
    lengths = (last + 1).tolist()
    model.config.block_size = sorted(lengths)[2]  # the three longest rows no longer fit
    monkeypatch.setattr(conscience, "JUDGE_ROWS", 2)
    scores = score(model, enc, prompts, responses)
    cut = torch.tensor(lengths) > model.config.block_size
    assert cut.sum() == 3 and torch.isinf(scores[cut]).all() and (scores[cut] < 0).all()
    torch.testing.assert_close(scores[~cut], alone[~cut])
