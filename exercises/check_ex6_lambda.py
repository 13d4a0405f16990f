"""
Exercise 6: a lambda sweep, L = L_sft + lam * L_dpo.
    python exercises/check_ex6_lambda.py
exercises/ex6_sweep.py must define sweep(base, lams, out_dir, extra=()) -> {lam: margin gain}:
one fine-tuning run of train.py from the checkpoint `base` per lambda (extra: more train.py
flags, appended), and for each, the mean over the conscience steps 2k of
rewards/margins(step 2k+1) - rewards/margins(step 2k): how far one step of training moved the
margin of the pairs the conscience had just made. The check sweeps lam = 0, 1, 10 on the tiny
base (12 steps each, every sample flagged, every pair kept) and passes when the gain at
lam = 0 is near 0 and both others are clearly above it.
"""

import importlib
import math
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exkit import report, tiny_base  # noqa: E402

LAMS = [0.0, 1.0, 10.0]
EXTRA = ["--ft_iters=12", "--ft_batch_size=8", "--dpo_batch=8", "--threshold=100", "--margin=-100",
         "--eval_tasks=0", "--eval_init=False"]
NEAR_ZERO, CLEAR = 0.1, 0.1


def main():
    try:
        mine = importlib.import_module("ex6_sweep")
    except ImportError as e:
        report(False, f"write exercises/ex6_sweep.py first ({e})")
    base = tiny_base()
    t0 = time.time()
    with tempfile.TemporaryDirectory() as out_dir:
        try:
            gains = mine.sweep(base, LAMS, out_dir, EXTRA)
        except Exception as e:
            report(False, f"sweep() raised {type(e).__name__}: {str(e)[-1500:]}")
    print(f"sweep of {len(LAMS)} runs took {time.time() - t0:.0f} s")
    if not isinstance(gains, dict) or set(gains) != set(LAMS):
        report(False, f"sweep() must return {{lam: gain}} for lam in {LAMS}, got {gains!r}")
    if not all(isinstance(v, float) and math.isfinite(v) for v in gains.values()):
        report(False, f"every gain must be a finite float, got {gains}")
    for lam in LAMS:
        print(f"  lam {lam:5g}: one step moves the margin of its pairs by {gains[lam]:+.3f}")
    if abs(gains[0.0]) > NEAR_ZERO:
        report(False, f"at lam = 0 no gradient comes from the pairs, yet their margin moved by {gains[0.0]:+.3f} "
                      f"(want within {NEAR_ZERO}): is --lam reaching train.py?")
    if min(gains[1.0], gains[10.0]) < gains[0.0] + CLEAR:
        report(False, f"the DPO term did not raise the margin clearly above lam = 0 (by {CLEAR}): {gains}")
    report(True, "the margin of the pairs moves only when lam > 0")


if __name__ == "__main__":
    main()
