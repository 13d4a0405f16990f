"""
Apply an exercise's patch to your working tree (commit or stash your work first):
    python exercises/apply.py start 1       the starting point: the function to write, emptied
    python exercises/apply.py solution 3    the reference solution (when you are stuck, or to compare)
    python exercises/apply.py wrong 4       the deliberately wrong version its check must catch
Exercises without a start patch start from the code as it is (you add something new).
`git checkout -- FILE` (or `git stash`) undoes it.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from exkit import HERE, ROOT, apply_patch  # noqa: E402

FOLDERS = dict(start="start", solution="solutions", wrong="wrong")


def main(argv):
    if len(argv) != 2 or argv[0] not in FOLDERS or not argv[1].isdigit():
        raise SystemExit(__doc__.strip())
    path = os.path.join(HERE, FOLDERS[argv[0]], f"ex{argv[1]}.patch")
    if not os.path.exists(path):
        raise SystemExit(f"exercise {argv[1]} has no {argv[0]} patch ({os.path.relpath(path, ROOT)})")
    try:
        apply_patch(path, ROOT)
    except ValueError as e:
        raise SystemExit(f"not applied: {e}")
    print(f"applied {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
