"""Shared fixtures: one tiny model pretrained on the world, once per test session."""

import contextlib
import io
import json
import os
import runpy
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [os.path.join(ROOT, "config", "tiny.py")]  # train.py's settings of a tiny model, a config file


def run_script(script, *args, cwd=ROOT, timeout=240):
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def run_in_process(script, *args):
    """`python script args` run in this process, from the repository root, as a subprocess
    result: for the many bad-input cases, which end before any work is done (a subprocess
    spends a second and a half importing torch). An exception that escapes the script's own
    error handling fails the test with its traceback."""
    out, err, argv, cwd, code = io.StringIO(), io.StringIO(), sys.argv, os.getcwd(), 0
    sys.argv = [script, *args]
    os.chdir(ROOT)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            runpy.run_path(os.path.join(ROOT, script), run_name="__main__")
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        sys.argv = argv
        os.chdir(cwd)
    return subprocess.CompletedProcess([script, *args], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A 2-layer model pretrained for a few hundred steps (about half a minute on 2 cores)."""
    folder = tmp_path_factory.mktemp("tiny")
    out = run_script("train.py", *TINY, "--max_iters=400", "--ft_iters=0", f"--out_dir={folder}/out",
                     f"--data_dir={folder}/data")
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.load(open(folder / "out" / "summary.json"))
    return dict(folder=folder, ckpt=str(folder / "out" / "base.pt"), summary=summary)
