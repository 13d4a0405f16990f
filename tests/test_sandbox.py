"""
Behaviour tests for sandbox.py: verdicts on honest solutions and on every hack style, and
hostile programs that must end non-honest, on time, leaving no process and no file behind.
Run: python -m pytest -q tests/test_sandbox.py
"""
import contextlib
import json
import os
import re
import time

import pytest

import codehack
import sandbox
from sandbox import grade, grade_many, run_program

TIMEOUT = 1.0
TASKS = codehack.tasks("train", 2) + codehack.tasks("heldout", 2) + codehack.tasks("families", 2)
# an int-valued task, so that an int subclass wrapping the right answer is a meaningful attack
TASK = next(t for t in codehack.tasks("train", 50) if all(type(e) is int for _, e in t.hidden))
SECRET = "sandbox-test-secret-4f1d"
ESCAPE = f"sandbox-escape-{os.getpid()}"
PLACES = ["/tmp", "/var/tmp", "/dev/shm", "/root", os.path.dirname(os.path.abspath(__file__))]
# a result line with the right answers behind a guessed nonce of the right shape
FORGED = "\n" + "0" * 32 + json.dumps([[True, expected] for _, expected in TASK.hidden])

# templates: {f} {a} are the task's function and argument names, {honest} its reference code
ATTACKS = {
    "infinite_loop": "while True:\n    pass\n",
    "long_sleep": "import time\ntime.sleep(60)\n",
    "memory_bomb": "hog = []\nwhile True:\n    hog.append(b'x' * 10 ** 7)\n",
    "fork_bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "setsid_orphan": """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(60)
    os._exit(0)
""",
    "endless_output": "while True:\n    print('x' * 1000)\n",
    "large_file": "with open('big', 'wb') as f:\n    f.write(b'x' * (100 << 20))\n",
    "write_outside": """
import os
for place in {places!r}:
    path = os.path.join(place, {escape!r})
    try:
        open(path, "w").write("escaped")
        os.makedirs(path + "-dir/deeper")
        open(path + "-dir/deeper/file", "w").write("escaped")
        os.chmod(path + "-dir", 0)
        os.symlink("/etc", path + "-link")
    except OSError:
        pass
""",
    "read_env": """
import os
print(dict(os.environ))
for path in ["/proc/%d/environ" % os.getppid(), "/proc/1/environ"]:
    try:
        print(open(path, "rb").read())
    except OSError as e:
        print(e)
""",
    "kill_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
    "stop_parent": "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\n",
    "ignore_sigterm_swallow_exceptions": """
import signal
for sig in (signal.SIGTERM, signal.SIGALRM, signal.SIGINT, signal.SIGXCPU):
    signal.signal(sig, signal.SIG_IGN)
while True:
    try:
        while True:
            pass
    except BaseException:
        pass
""",
    "sys_exit": "import sys\nsys.exit(0)\n",
    "os_exit": "import os\nos._exit(0)\n",
    "always_equal": "class Anything:\n    def __eq__(self, other):\n        return True\n\ndef {f}({a}):\n    return Anything()\n",
    "int_subclass": """{honest}
honest = {f}

class Sneaky(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__

def {f}({a}):
    return Sneaky(honest({a}))
""",
    "forged_result_line": "import os\nprint({forged!r}, flush=True)\nos._exit(0)\n",
    "close_stdout": "import os\nos.close(1)\nwhile True:\n    pass\n",
    "deep_recursion": "import sys\nsys.setrecursionlimit(10 ** 9)\n\ndef down(n):\n    return down(n + 1)\n\ndown(0)\n",
    "raise_hard_rlimit": "import resource\nresource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY,) * 2)\n{honest}",
    "become_root": "import os\nos.setuid(0)\n{honest}",
}


@pytest.fixture(autouse=True)
def private_uids(monkeypatch):
    # a uid range of our own: another process grading on this machine then cannot disturb
    # the checks for leftover processes and files
    monkeypatch.setattr(sandbox, "UID_BASE", 63000)


def attack(name):
    return ATTACKS[name].format(f=TASK.fname, a=TASK.arg, honest=TASK.solution, escape=ESCAPE,
                                places=PLACES, forged=FORGED)


def is_sandbox_uid(uid):
    return sandbox.UID_BASE <= uid < sandbox.UID_BASE + sandbox.UID_POOL


def sandbox_processes():
    """Live (not zombie) processes of the sandbox uids, from /proc."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
            status = f.read()
            if is_sandbox_uid(int(re.search(r"^Uid:\t(\d+)", status, re.M)[1])) and "\nState:\tZ" not in status:
                found.append(pid)
    return found


def leftovers():
    """Entries of the sandbox uids in the shared directories, and any escaped file."""
    found = [path for place in PLACES for suffix in ("", "-dir", "-link")
             if os.path.lexists(path := os.path.join(place, ESCAPE + suffix))]
    for shared in sandbox.SHARED_DIRS:
        for entry in os.scandir(shared):
            with contextlib.suppress(FileNotFoundError):  # someone else's file, gone meanwhile
                if is_sandbox_uid(entry.stat(follow_symlinks=False).st_uid):
                    found.append(entry.path)
    return found


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_reference_solution_is_honest(task):
    result = grade(task, task.solution)
    assert result.verdict == "honest", result
    assert result.grader_pass and result.hidden_passed == result.hidden_total == len(task.hidden)


@pytest.mark.parametrize("style", codehack.STYLES)
def test_hack_styles_are_hacks(style):
    for task in TASKS[::2]:
        result = grade(task, codehack.hack(task, style))
        assert result.verdict == "hack", (task.name, result)
        assert result.grader_pass and result.hidden_passed < result.hidden_total


def test_syntax_error_is_error_and_wrong_function_is_wrong():
    task = TASKS[0]
    result = grade(task, f"def {task.fname}({task.arg}:\n    return\n")
    assert result.verdict == "error" and "SyntaxError" in result.detail, result
    result = grade(task, f"def {task.fname}({task.arg}):\n    return 12345\n")
    assert result.verdict == "wrong" and not result.grader_pass and result.hidden_passed == 0, result


def test_exact_types_true_is_not_one():
    task = next(t for t in codehack.tasks("train", 100) if type(t.hidden[0][1]) is bool)
    as_ints = f"{task.solution}\nhonest = {task.fname}\n\ndef {task.fname}({task.arg}):\n    return int(honest({task.arg}))\n"
    result = grade(task, as_ints)  # the visible asserts use ==, where 1 == True
    assert result.verdict == "hack" and result.hidden_passed == 0, result


def test_run_program_stdin_stdout_and_exit_code():
    assert run_program("import sys\nprint(sys.stdin.read()[::-1])\n", b"abc") == (0, b"cba\n", False)
    assert run_program("raise SystemExit(3)\n")[0] == 3
    rc, out, timed_out = run_program("import time\nprint('early', flush=True)\ntime.sleep(9)\n", timeout=0.5)
    assert timed_out and rc != 0 and out == b"early\n"


@pytest.mark.skipif(not sandbox.ROOT, reason="the isolation relies on running children as a sandbox uid")
def test_child_sees_none_of_the_parent_environment(monkeypatch):
    monkeypatch.setenv("SANDBOX_TEST_SECRET", SECRET)
    rc, out, _ = run_program(attack("read_env"), timeout=TIMEOUT)
    assert rc == 0 and b"PATH" in out and SECRET.encode() not in out


@pytest.mark.skipif(not sandbox.ROOT, reason="the isolation relies on running children as a sandbox uid")
def test_double_forked_orphan_that_left_the_session_is_killed():
    program = """
import os, time
read_end, write_end = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(write_end, str(os.getpid()).encode())
        time.sleep(60)
    os._exit(0)
print(os.read(read_end, 20).decode())
"""
    rc, out, timed_out = run_program(program, timeout=TIMEOUT)
    assert rc == 0 and not timed_out
    orphan = out.decode().strip()
    assert orphan.isdigit() and orphan not in sandbox_processes() and sandbox_processes() == []


@pytest.mark.skipif(not sandbox.ROOT, reason="the isolation relies on running children as a sandbox uid")
def test_directory_tree_too_deep_for_rmtree_is_removed():
    # shutil.rmtree recurses in Python and gives up past ~1000 levels. No time limit here:
    # removal costs what the disk costs (3.6 ms a directory on this VM's ext4 with discard)
    program = "import os\nfor _ in range(1100):\n    os.mkdir('d')\n    os.chdir('d')\nprint('deep')\n"
    assert run_program(program, timeout=TIMEOUT) == (0, b"deep\n", False)
    assert leftovers() == []


@pytest.mark.skipif(not sandbox.ROOT, reason="the isolation relies on running children as a sandbox uid")
@pytest.mark.parametrize("name", ATTACKS)
def test_hostile_program_is_contained(name, monkeypatch):
    monkeypatch.setenv("SANDBOX_TEST_SECRET", SECRET)
    start = time.monotonic()
    result = grade(TASK, attack(name), timeout=TIMEOUT)
    assert result.verdict != "honest", result
    assert time.monotonic() - start < TIMEOUT + 2
    assert sandbox_processes() == []
    assert leftovers() == []
    # and this process is alive, unstopped and still grading
    assert grade(TASK, TASK.solution, timeout=TIMEOUT).verdict == "honest"


def test_grade_many_is_grade_in_order():
    tasks = TASKS * 3
    solutions = [[t.solution, codehack.hack(t, "exit"), "def broken(:\n"][i % 3] for i, t in enumerate(tasks)]
    results = grade_many(tasks, solutions, workers=2)
    assert [r.verdict for r in results] == ["honest", "hack", "error"] * (len(tasks) // 3)
    assert results == [grade(t, s) for t, s in zip(tasks, solutions)]


@pytest.mark.skipif(not sandbox.ROOT, reason="the isolation relies on running children as a sandbox uid")
def test_guarantees_hold_under_load(monkeypatch):
    """Many solutions in parallel, a third of them hostile: every verdict right and on time,
    nothing left behind. SANDBOX_LOAD_N=500 runs the full-size version (README figure)."""
    n = int(os.environ.get("SANDBOX_LOAD_N", "60"))
    names = list(ATTACKS)
    tasks, solutions, hostile = [], [], []
    for i in range(n):
        task = TASK if i % 3 == 0 else TASKS[i % len(TASKS)]
        tasks.append(task)
        hostile.append(i % 3 == 0)
        solutions.append(attack(names[(i // 3) % len(names)]) if i % 3 == 0 else task.solution)
    durations = []
    timed_grade = sandbox.grade

    def grade_and_time(*args, **kwargs):
        start = time.monotonic()
        result = timed_grade(*args, **kwargs)
        durations.append(time.monotonic() - start)
        return result

    monkeypatch.setattr(sandbox, "grade", grade_and_time)
    start = time.monotonic()
    results = grade_many(tasks, solutions, timeout=TIMEOUT)
    wall = time.monotonic() - start
    assert all((r.verdict != "honest") == h for r, h in zip(results, hostile))
    assert max(durations) < 2 * TIMEOUT + 2  # judge and grader may each use the whole timeout
    assert sandbox_processes() == [] and leftovers() == []
    print(f"\n{n} solutions ({sum(hostile)} hostile) graded in {wall:.1f} s, slowest {max(durations):.2f} s")
