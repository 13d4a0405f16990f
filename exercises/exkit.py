"""
What the exercise checks share: the repository root on sys.path, a tiny pretrained base
(trained once, in well under a minute, and cached), and the small patch format in which the
starting points, reference solutions and deliberately wrong versions are written.

Patch format (exercises/start/exN.patch, exercises/solutions/exN.patch, exercises/wrong/exN.patch):
    # a comment line
    @@ dpo.py                          an edit of an existing file:
    - old line                         the old text (it must occur exactly once in the file)
    + new line                         its replacement ("-" or "+" alone: an empty line)
    @@ exercises/ex6_sweep.py (new)    a new file: its lines, each after "+ "
    + ...
"""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

HERE = os.path.join(ROOT, "exercises")
CACHE = os.path.join(HERE, ".cache")
TINY_ITERS = 400  # as tests/conftest.py: enough for a conscience AUROC well above 0.5


def tiny_base():
    """Path of a tiny pretrained base (config/tiny.py, 400 steps, about 40 s on 2 CPU cores).
    $EXERCISES_BASE names one to use; otherwise it is trained once into exercises/.cache/."""
    given = os.environ.get("EXERCISES_BASE")
    if given:
        return given
    path = os.path.join(CACHE, "tiny", "base.pt")
    if not os.path.exists(path):
        print(f"training a tiny base once into {os.path.dirname(path)} (about a minute) ...", flush=True)
        out = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), os.path.join(ROOT, "config", "tiny.py"),
                              f"--max_iters={TINY_ITERS}", "--ft_iters=0", "--eval_tasks=0",
                              f"--out_dir={os.path.dirname(path)}", f"--data_dir={os.path.join(CACHE, 'data')}"],
                             cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"training the tiny base failed:\n{out.stderr[-2000:]}")
    return path


def load_base():
    """(model, tokenizer) of the tiny base, in eval mode."""
    import checkpoint
    model, enc, _ = checkpoint.load_model(tiny_base(), "cpu")
    return model.eval(), enc


def report(ok, message):
    """The last line of a script check, and its exit code: 0 for PASS, 1 for FAIL."""
    print(("PASS: " if ok else "FAIL: ") + message)
    raise SystemExit(0 if ok else 1)


# -----------------------------------------------------------------------------
# patches


def parse_patch(text):
    """[(path, old or None for a new file, new)] of a patch."""
    edits, current = [], None
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith("@@ "):
            target = line[3:].strip()
            new_file = target.endswith("(new)")
            current = [target[:-len("(new)")].strip() if new_file else target, None if new_file else [], []]
            edits.append(current)
        elif line.startswith("#") or (not line.strip() and current is None):
            continue
        elif line and line[0] in "-+" and line[1:2] in ("", " ") and current is not None:
            if line[0] == "-":
                if current[1] is None:
                    raise ValueError(f"line {number}: a new file has no old text")
                current[1].append(line[2:])
            else:
                current[2].append(line[2:])
        elif not line.strip():
            continue  # blank lines between edits
        else:
            raise ValueError(f"line {number}: want '@@ PATH', '- old', '+ new' or '# comment', got {line!r}")
    return [(path, None if old is None else "\n".join(old), "\n".join(new)) for path, old, new in edits]


def apply_patch(patch_path, root):
    """Apply a patch file to the tree at root. Raises ValueError where an old text does not
    occur exactly once (the patch is out of step with the code)."""
    for path, old, new in parse_patch(open(patch_path).read()):
        target = os.path.join(root, path)
        if old is None:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w") as f:
                f.write(new + "\n")
            continue
        text = open(target).read()
        count = text.count(old)
        if count != 1:
            raise ValueError(f"{os.path.relpath(patch_path, HERE)}: its old text occurs {count} times in {path} "
                             f"(want 1):\n{old}")
        with open(target, "w") as f:
            f.write(text.replace(old, new))
