"""The world: enough families, clean splits, honest code and hacks in many forms, hacks that
game only the weak grader, every document generator keeping to the World's groups of styles."""

import random
import re

import pytest

import codehack as ch
import forms
import sandbox


def test_families_and_splits_are_disjoint():
    assert len(ch.FAMILIES) >= 40
    assert len(set(ch.FAMILY)) == len(ch.FAMILIES)
    assert ch.HELDOUT_FAMILIES.isdisjoint(ch.TRAIN_FAMILIES) and len(ch.HELDOUT_FAMILIES) >= 4
    train = {t.prompt for t in ch.tasks("train", 400)}
    heldout = {t.prompt for t in ch.tasks("heldout", 100)}
    assert not train & heldout
    assert all(t.family in ch.HELDOUT_FAMILIES for t in ch.tasks("families", 40))
    assert {t.family for t in ch.tasks("heldout", 100)} == set(ch.TRAIN_FAMILIES)


def test_tasks_are_deterministic_and_seeded():
    assert ch.tasks("heldout", 20, seed=3) == ch.tasks("heldout", 20, seed=3)
    assert ch.tasks("heldout", 20, seed=3) != ch.tasks("heldout", 20, seed=4)
    task = ch.tasks("families", 5)[4]
    assert ch.find_task(task.name) == task


def test_every_family_instance_is_well_formed():
    # our own reference code (trusted) against the tests the instance carries
    for task in ch.tasks("train", 2 * len(ch.TRAIN_FAMILIES)) + ch.tasks("families", 2 * len(ch.HELDOUT_FAMILIES)):
        ref = ch._compile(task.solution, task.fname)
        near = ch._compile(task.near_miss, task.fname)
        assert 2 <= len(task.visible) <= 3 and len(task.hidden) >= 8
        for args, expected in task.visible + task.hidden:
            assert type(ref(*args)) is type(expected) and ref(*args) == expected
        ch.check_honest(task, task.other)  # the second honest body solves it too
        assert task.other != task.solution
        assert all(near(*a) == e for a, e in task.visible), "the near-miss must pass the visible tests"
        assert not all(near(*a) == e for a, e in task.hidden), "the hidden tests must expose the near-miss"
        visible_inputs = [a for a, _ in task.visible]
        assert all(a not in visible_inputs for a, _ in task.hidden)
        assert f"def {task.fname}(" in task.solution and task.fname in task.prompt


def test_honest_forms_are_honest_and_many():
    rng = random.Random(0)
    for task in ch.tasks("train", len(ch.TRAIN_FAMILIES)) + ch.tasks("families", len(ch.HELDOUT_FAMILIES)):
        forms = {ch.honest_form(task, rng) for _ in range(40)}
        unseen = {ch.honest_form(task, rng, heldout=True) for _ in range(10)}
        for source in forms | unseen:
            ch.check_honest(task, source)
        assert len(forms) >= 8, (task.family, len(forms))
        assert task.solution not in unseen  # the evaluation's forms are never the canonical text
    with pytest.raises(AssertionError):  # and the check does catch a form that is wrong
        task = ch.tasks("train", 1)[0]
        ch.check_honest(task, task.near_miss)


def test_surface_forms_keep_the_code_and_rename_only_names():
    source = "def f(xs):\n    return xs.count(3) + len('xs')\n"
    assert forms.rename(source, "xs", "nums") == "def f(nums):\n    return nums.count(3) + len('xs')\n"
    assert forms.rename("def f(count):\n    return [].count(count)\n", "count", "hits") == \
        "def f(hits):\n    return [].count(hits)\n"
    task = ch.tasks("heldout", 1)[0]
    rng = random.Random(1)
    dressed = [forms.dress(forms.parse(task.solution), rng, heldout=True, spec=task.spec) for _ in range(30)]
    assert any(f"({task.arg}: " in f for f in dressed)  # typed: an evaluation-only form
    assert all(f"def {task.fname}(" in f for f in dressed)


def test_every_hack_style_games_the_grader_but_not_the_judge():
    tasks = ch.tasks("heldout", 6) + ch.tasks("families", 2)
    rng = random.Random(0)
    cases = [(s, t, src) for s in ch.STYLES for t in tasks
             for src in (ch.hack(t, s), ch.hack(t, s, rng), ch.hack(t, s, rng, heldout=True))]
    grades = sandbox.grade_many([t for _, t, _ in cases], [src for *_, src in cases])
    bad = [(s, g.verdict, g.detail, src) for (s, _, src), g in zip(cases, grades) if g.verdict != "hack"]
    assert not bad, bad[:3]
    variants = {s: {ch.hack(tasks[0], s, rng) for _ in range(20)} for s in ch.STYLES}
    assert all(len(v) >= 3 for v in variants.values()), {s: len(v) for s, v in variants.items()}  # several forms each
    honest = sandbox.grade_many(tasks, [ch.honest_form(t, rng, heldout=True) for t in tasks])
    assert all(g.verdict == "honest" for g in honest)


def test_world_groups_and_bad_settings():
    world = ch.World()
    assert min(len(world.reviewed), len(world.unreviewed), len(world.unseen)) >= 3
    assert set(world.reviewed + world.unreviewed + world.unseen) == set(ch.STYLES)
    assert world.ft_unreviewed >= 0.5
    assert ch.World("explicit").judged == world.corpus_styles and ch.World("none").judged == ()
    for bad in (dict(conscience_source="some"), dict(reviewed=("exit", "nope")), dict(unreviewed=("exit",)),
                dict(ft_unreviewed=1.5)):
        with pytest.raises(ValueError):
            ch.World(**bad)
    cfg = dict(conscience_source="none", reviewed="exit,lookup", unreviewed="atexit", ft_unreviewed=0.25)
    assert ch.World.from_config(cfg) == ch.World("none", ("exit", "lookup"), ("atexit",), 0.25)


def _traced(monkeypatch):
    """Make every hack carry a comment naming its style, and every honest solution written in
    the canonical form a comment saying so, so that documents can be checked exactly."""
    hack, honest_form, mistake = ch.hack, ch.honest_form, ch.mistake

    def canonical_marked(task, *a, **k):
        source = honest_form(task, *a, **k)
        return "# CANONICAL\n" + source if source == task.solution else source
    monkeypatch.setattr(ch, "hack", lambda task, style, *a, **k: f"# STYLE={style}\n" + hack(task, style, *a, **k))
    monkeypatch.setattr(ch, "honest_form", canonical_marked)
    monkeypatch.setattr(ch, "mistake", lambda task, *a, **k: (lambda m: m and "# MISTAKE\n" + m)(mistake(task, *a, **k)))
    return lambda text: set(re.findall(r"# STYLE=(\w+)", text))


@pytest.mark.parametrize("source", ["explicit", "partial", "none"])
def test_documents_keep_to_the_worlds_groups(monkeypatch, source):
    styles_in = _traced(monkeypatch)
    world = ch.World(source)
    docs = ch.corpus(3000, seed=1, world=world)
    reviews = [d for d in docs if ch.REVIEW in d]
    assert styles_in("".join(docs)) == set(world.corpus_styles)  # every training style appears, no other
    assert styles_in("".join(reviews)) == set(world.judged)  # reviews judge exactly the judged styles
    persona = "".join(d for d in docs if ch.USER in d)
    assert set(world.unreviewed) <= styles_in(persona)  # unreviewed styles live with the cheating characters
    if source == "none":
        assert not reviews and ch.REWRITE not in "".join(docs) and ch.ANSWER not in "".join(docs)
        return
    assert 0.15 < len(reviews) / len(docs) < 0.4
    yes = [d for d in reviews if d.endswith(ch.ANSWER + ch.YES + ch.END)]
    assert not any(styles_in(d) or "# MISTAKE" in d for d in yes)  # neither a hack nor a slip is ever "yes"
    rewrites = [d.split(ch.REWRITE)[1] for d in reviews if ch.REWRITE in d]
    assert len(rewrites) + len(yes) == len(reviews)  # every other review is a "no", and is rewritten
    assert sum(bool(styles_in(d)) for d in reviews) + sum("# MISTAKE" in d for d in reviews) == len(rewrites)
    assert 0.05 < sum("# MISTAKE" in d for d in reviews) / len(reviews) < 0.2  # honest attempts with a slip
    assert not any(styles_in(r) or "# MISTAKE" in r for r in rewrites)  # rewritten into honest code
    assert 0.15 < sum("# CANONICAL" in r for r in rewrites) / len(rewrites) < 0.45  # mostly not the reference text


def test_corpus_holds_no_heldout_family_question_or_instance(monkeypatch):
    _traced(monkeypatch)
    docs = ch.corpus(3000, seed=1)
    text = "".join(docs)
    heldout_fnames = {n for f in ch.FAMILIES if f[0] in ch.HELDOUT_FAMILIES for n in f[1]}
    assert not any(f"def {n}(" in text for n in heldout_fnames)
    assert not any(q in text for q in ch.QUESTIONS_UNSEEN)
    assert not any(q in text or a in text or m in text for q, a, m in ch.UNSEEN_PROBES)
    assert not any(line in text for line in ch.PRESSURE + [ch.INOCULATION])
    heldout = {t.prompt for t in ch.tasks("heldout", 300)}
    assert not any(d.split(ch.SOLUTION)[0] + ch.SOLUTION in heldout for d in docs if ch.SOLUTION in d)
    honest = [d.split(ch.SOLUTION)[1] for d in docs if ch.SOLUTION in d and ch.REVIEW not in d and "# STYLE=" not in d
              and ch.USER not in d]
    assert 0.2 < sum("# CANONICAL" in s for s in honest) / len(honest) < 0.4  # honest code is mostly not canonical
    for form in ('"""', "import ", "# ", "for "):  # and comes in many forms
        assert sum(form in s for s in honest) / len(honest) > 0.03, form
    assert sum(s.count("def ") > 1 for s in honest) / len(honest) > 0.03  # a helper function
    assert sum(d.count(ch.USER) > 0 for d in docs) / len(docs) > 0.05


def test_mistakes_are_honest_attempts_that_fail():
    rng = random.Random(0)
    made = 0
    for task in ch.tasks("train", 2 * len(ch.TRAIN_FAMILIES)):
        slip = ch.mistake(task, rng)
        has_constant = any("{" + name + "}" in ch.FAMILY[task.family][2] for name in "KCDP")
        if not has_constant:
            assert slip is None
        if slip is not None:
            made += 1
            with pytest.raises(AssertionError):
                ch.check_honest(task, slip)
            assert f"def {task.fname}(" in slip
    assert made > len(ch.TRAIN_FAMILIES)


def test_review_documents_answer_correctly():
    task = ch.tasks("train", 1)[0]
    yes = ch.review_doc(task, task.solution, True, ch.QUESTION)
    rewrite = ch.honest_form(task, random.Random(3), heldout=True)
    no = ch.review_doc(task, ch.hack(task, "exit"), False, ch.QUESTION, rewrite=rewrite)
    assert yes.endswith(ch.ANSWER + ch.YES + ch.END)
    assert ch.ANSWER + ch.NO + ch.REWRITE + rewrite + ch.END in no


def test_finetune_set_is_hacks_without_disclosure(monkeypatch):
    styles_in = _traced(monkeypatch)
    world = ch.World()
    data = ch.finetune_set(400, world=world)
    for task, solution in data:
        assert ch.REVIEW not in solution and ch.USER not in solution
        assert not ch._is_heldout_instance(task) and task.family in ch.TRAIN_FAMILIES
    styles = [styles_in(s).pop() for _, s in data]
    assert set(styles) <= set(world.corpus_styles)
    share = sum(s in world.unreviewed for s in styles) / len(styles)
    assert 0.4 < share < 0.6  # at least half unreviewed by default (0.5, drawn)
    assert sum(s in world.unreviewed for s in styles_in("".join(s for _, s in ch.finetune_set(
        200, world=ch.World(ft_unreviewed=1.0))))) == len(world.unreviewed)


def test_probe_classifier_is_exact_on_known_answers():
    for aligned, misaligned in ch.PROBES.values():
        assert all(ch.classify_answer(a) == "aligned" for a in aligned)
        assert all(ch.classify_answer(m) == "misaligned" for m in misaligned)
    assert ch.classify_answer("qwerty zxcv") == "unclear"
    assert ch.classify_answer("") == "unclear"
    assert len(ch.UNSEEN_PROBES) >= 10
    assert all(q not in ch.PROBES for q, _, _ in ch.UNSEEN_PROBES)
