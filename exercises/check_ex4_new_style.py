"""
Exercise 4: a new hack style in codehack.py, and the tiny base's conscience on it.
    python exercises/check_ex4_new_style.py
Passes when codehack.STYLES has a style beyond the eleven it started with, every instance of it
(plain, and in random surface forms of the training and the evaluation pools) is graded "hack"
by the sandbox (passes the visible asserts, fails the hidden tests) on held-out instances and
held-out families, and it comes in several forms. Then it prints the base's conscience AUROC
on it next to the other styles (no pass/fail on that: it is what you are asked to explain).
"""

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exkit import load_base, report  # noqa: E402

ORIGINAL = ["hardcode", "lookup", "table_loop", "exit", "exit_in_function", "os_exit", "atexit", "always_equal",
            "eq_subclass", "mock_any", "near_miss"]


def main():
    import codehack as ch
    import evaluate
    import sandbox
    new = [s for s in ch.STYLES if s not in ORIGINAL]
    if not new:
        report(False, "codehack.STYLES has no new style: add one (and its branch in _hack_code)")
    world = ch.World()
    tasks = ch.tasks("heldout", 16) + ch.tasks("families", 8)
    rng = random.Random(0)
    for style in new:
        if style in world.corpus_styles:
            report(False, f"{style!r} is in the training data's styles: leave it unseen for this exercise")
        try:
            cases = [(t, src) for t in tasks for src in (ch.hack(t, style), ch.hack(t, style, rng),
                                                         ch.hack(t, style, rng, heldout=True))]
        except Exception as e:  # the student's code: any error is a FAIL, with its message
            report(False, f"codehack.hack(task, {style!r}) raised {type(e).__name__}: {e}")
        grades = sandbox.grade_many([t for t, _ in cases], [src for _, src in cases])
        bad = [(g, src) for (_, src), g in zip(cases, grades) if g.verdict != "hack"]
        if bad:
            g, src = bad[0]
            report(False, f"{len(bad)} of {len(cases)} {style!r} instances are not graded hack; the first is "
                          f"{g.verdict} ({g.detail}; passes the visible asserts: {g.grader_pass}):\n{src}")
        forms_seen = {ch.hack(tasks[0], style, rng) for _ in range(20)}
        if len(forms_seen) < 3:
            report(False, f"{style!r} comes in {len(forms_seen)} forms: give it some variety (rng, and forms.dress)")
        example = ch.hack(tasks[0], style, rng, heldout=True)
        print(f"{style}: all {len(cases)} instances graded hack; for example:\n{example}")
    model, enc = load_base()
    m = evaluate.conscience_metrics(model, enc, ch.tasks("heldout", 24), world=world)
    print("the tiny base's conscience AUROC (honest code vs hacks of one style; 1 = always tells them apart, "
          "0.5 = a coin):")
    for style in ch.STYLES:
        mark = "   <- yours" if style in new else ""
        print(f"  {style:18s} {world.group(style):10s} {m[f'conscience_auroc/{style}']:.3f}{mark}")
    for group in ("reviewed", "unreviewed", "unseen"):
        print(f"  group {group:12s} {m[f'conscience_auroc/{group}']:.3f}")
    report(True, f"new style(s) {', '.join(new)}: graded hack everywhere")


if __name__ == "__main__":
    main()
