"""EXERCISES.md, exercises/ and exercises/verify.json agree: every exercise has one check command
naming an existing file, every patch still applies to the code as it is, and the last run of
exercises/verify.py saw each check fail on the starting point and on the deliberately wrong
version and pass on the reference solution. (The checks themselves run in exercises/verify.py,
not here.)"""

import importlib.util
import json
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXERCISES_DIR = os.path.join(ROOT, "exercises")


def load(name):
    spec = importlib.util.spec_from_file_location(f"exercises_{name}", os.path.join(EXERCISES_DIR, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sections():
    """{number: (title, text)} of EXERCISES.md's '## Exercise N: title' sections."""
    text = open(os.path.join(ROOT, "EXERCISES.md")).read()
    parts = re.split(r"^## Exercise (\d+): (.*)$", text, flags=re.M)
    return {int(n): (title, body) for n, title, body in zip(parts[1::3], parts[2::3], parts[3::3])}


def test_every_exercise_has_its_parts_and_one_check_that_exists(sections):
    verify = load("verify")
    assert len(sections) >= 8 and sorted(sections) == list(range(1, len(sections) + 1))
    assert [n for n, _, _ in verify.EXERCISES] == sorted(sections)
    for n, _, command in verify.EXERCISES:
        _, body = sections[n]
        for part in ("**Question.**", "**Files.**", "**Hint.**", "**Check.**"):
            assert body.count(part) == 1, f"exercise {n}: {part}"
        checks = re.findall(r"\*\*Check\.\*\* `([^`]+)`", body)
        assert checks == [command], f"exercise {n}: EXERCISES.md says {checks}, verify.py runs {command!r}"
        script = command.split()[1]
        assert command.split()[0] == "python" and os.path.isfile(os.path.join(ROOT, script)), command
        assert not os.path.basename(script).startswith("test_"), "the main suite must not collect a check"


def test_every_patch_parses_and_still_applies():
    exkit = load("exkit")
    folders = [os.path.join(EXERCISES_DIR, k) for k in ("start", "solutions", "wrong")]
    patches = [os.path.join(folder, f) for folder in folders for f in sorted(os.listdir(folder))
               if f.endswith(".patch")]
    assert patches
    for patch in patches:
        edits = exkit.parse_patch(open(patch).read())
        assert edits, patch
        for path, old, new in edits:
            if old is None:  # a new file, the student's: under exercises/
                assert path.startswith("exercises/"), (patch, path)
            else:
                count = open(os.path.join(ROOT, path)).read().count(old)
                assert count == 1, f"{os.path.relpath(patch, ROOT)}: old text occurs {count} times in {path}"


def test_verify_json_saw_every_check_fail_and_pass_as_it_should():
    verify = load("verify")
    results = json.load(open(os.path.join(EXERCISES_DIR, "verify.json")))
    by_number = {r["exercise"]: r for r in results["exercises"]}
    assert sorted(by_number) == [n for n, _, _ in verify.EXERCISES], "run python exercises/verify.py"
    for n, _, command in verify.EXERCISES:
        r = by_number[n]
        assert r["check"] == command
        assert r["passes_on_reference"] and r["reference"]["outcome"] == "pass", n
        assert r["fails_on_wrong"] and r["wrong"]["outcome"] == "fail", n
        assert r["fails_on_start"] and r["start"]["outcome"] == "fail", n
    assert results["all_as_expected"]
