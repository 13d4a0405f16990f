"""flags.py: --name=value, bare boolean flags and config files, applied in order; every bad
input a one-line error."""

import pytest

import flags
import train
from conftest import ROOT, TINY, run_in_process

SETTINGS = dict(n_layer=(4, ""), lr=(6e-3, ""), name=("x", ""), compile=(False, ""))


def config(tmp_path, text):
    path = tmp_path / "cfg.py"
    path.write_bytes(text.encode(errors="surrogateescape"))  # \udcff: a byte that is not UTF-8
    return str(path)


def test_flags_and_config_files_apply_in_order(tmp_path):
    path = config(tmp_path, '"""a docstring"""\nn_layer = 12\nlr = 1  # an int will do for a float\nname = "gpt"\n')
    assert flags.parse(SETTINGS, [path]) == dict(n_layer=12, lr=1.0, name="gpt", compile=False)
    assert flags.parse(SETTINGS, [path, "--n_layer=2", "--compile"])["n_layer"] == 2  # a flag after the file wins
    assert flags.parse(SETTINGS, ["--n_layer=2", path])["n_layer"] == 12  # ... and one before it loses
    assert type(flags.parse(SETTINGS, [path])["lr"]) is float


@pytest.mark.parametrize("text, message", [
    ("n_layers = 12\n", "cfg.py:1: unknown setting n_layers"),
    ("import os\n", "cfg.py:1: a config file holds `name = value` lines only"),
    ("n_layer = 2 * 6\n", "cfg.py:1: the value of n_layer is not a literal"),
    ("n_layer = '12'\n", "cfg.py:1: n_layer wants int, got '12'"),
    ("compile = 1\n", "cfg.py:1: compile wants bool, got 1"),
    ("n_layer = \n", "cfg.py:1: not Python"),
    ("n_layer = 1\0\n", "cfg.py: not Python"),
    ("n_layer = '\udcff'\n", "cfg.py: not a Python text file"),
])
def test_a_bad_config_file_is_a_usage_error(tmp_path, text, message):
    with pytest.raises(flags.UsageError, match=message):
        flags.parse(SETTINGS, [config(tmp_path, text)])


def test_the_repository_config_files_hold_train_settings_only():
    for name in ("tiny.py", "gpt2_small.py"):
        cfg = flags.parse(train.SETTINGS, [f"{ROOT}/config/{name}"])
        assert cfg != flags.parse(train.SETTINGS, [])
    assert flags.parse(train.SETTINGS, TINY)["n_layer"] == 2


@pytest.mark.parametrize("args, message", [
    (["/nonexistent/cfg.py"], "cannot read config file /nonexistent/cfg.py"),
    (["config/tiny.py", "--n_layer=x"], "--n_layer wants an integer"),
])
def test_train_py_reports_config_errors_in_one_line(args, message):
    out = run_in_process("train.py", *args)
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1
