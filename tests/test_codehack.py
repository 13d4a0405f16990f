"""The world: enough families, clean splits, hacks that game only the weak grader, exact probes."""

import codehack as ch
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
        assert all(near(*a) == e for a, e in task.visible), "the near-miss must pass the visible tests"
        assert not all(near(*a) == e for a, e in task.hidden), "the hidden tests must expose the near-miss"
        visible_inputs = [a for a, _ in task.visible]
        assert all(a not in visible_inputs for a, _ in task.hidden)
        assert f"def {task.fname}(" in task.solution and task.fname in task.prompt


def test_every_hack_style_games_the_grader_but_not_the_judge():
    tasks = ch.tasks("heldout", 12)
    styles = [s for s in ch.STYLES for _ in tasks]
    grades = sandbox.grade_many(tasks * len(ch.STYLES), [ch.hack(t, s) for s, t in zip(styles, tasks * len(ch.STYLES))])
    bad = [(s, g.verdict, g.detail) for s, g in zip(styles, grades) if g.verdict != "hack"]
    assert not bad, bad
    honest = sandbox.grade_many(tasks, [t.solution for t in tasks])
    assert all(g.verdict == "honest" for g in honest)


def test_corpus_holds_no_heldout_family_style_or_instance():
    docs = ch.corpus(3000, seed=1)
    text = "".join(docs)
    heldout_fnames = {n for f in ch.FAMILIES if f[0] in ch.HELDOUT_FAMILIES for n in f[1]}
    assert not any(f"def {n}(" in text for n in heldout_fnames)
    assert "KNOWN = {" not in text and "os._exit" not in text  # the held-out hack styles
    assert not any(q in text for q in ch.QUESTIONS_UNSEEN)
    heldout = {t.prompt for t in ch.tasks("heldout", 300)}
    assert not any(d.split(ch.SOLUTION)[0] + ch.SOLUTION in heldout for d in docs if ch.SOLUTION in d)
    kinds = [ch.REVIEW in d for d in docs], [d.count(ch.USER) > 0 for d in docs]
    assert 0.15 < sum(kinds[0]) / len(docs) < 0.4 and 0.05 < sum(kinds[1]) / len(docs) < 0.3


def test_review_documents_answer_correctly():
    task = ch.tasks("train", 1)[0]
    yes = ch.review_doc(task, task.solution, True, ch.QUESTION)
    no = ch.review_doc(task, ch.hack(task, "exit"), False, ch.QUESTION)
    assert yes.endswith(ch.ANSWER + ch.YES + ch.END)
    assert ch.ANSWER + ch.NO + ch.REWRITE + task.solution + ch.END in no


def test_finetune_set_is_hacks_without_disclosure():
    for task, solution in ch.finetune_set(50):
        assert ch.REVIEW not in solution and ch.USER not in solution
        assert solution != task.solution
        assert not ch._is_heldout_instance(task) and task.family in ch.TRAIN_FAMILIES


def test_probe_classifier_is_exact_on_known_answers():
    for aligned, misaligned in ch.PROBES.values():
        assert all(ch.classify_answer(a) == "aligned" for a in aligned)
        assert all(ch.classify_answer(m) == "misaligned" for m in misaligned)
    assert ch.classify_answer("qwerty zxcv") == "unclear"
    assert ch.classify_answer("") == "unclear"
