"""Shared fixtures: one tiny model pretrained on the world, once per test session."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [os.path.join(ROOT, "config", "tiny.py")]  # train.py's settings of a tiny model, a config file


def run_script(script, *args, cwd=ROOT, timeout=240):
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A 2-layer model pretrained for a few hundred steps (about half a minute on 2 cores)."""
    folder = tmp_path_factory.mktemp("tiny")
    out = run_script("train.py", *TINY, "--max_iters=400", "--ft_iters=0", f"--out_dir={folder}/out",
                     f"--data_dir={folder}/data")
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.load(open(folder / "out" / "summary.json"))
    return dict(folder=folder, ckpt=str(folder / "out" / "base.pt"), summary=summary)
