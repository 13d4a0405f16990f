"""
Behaviour tests for sandbox.py: verdicts on honest solutions and on every hack style; hostile
programs that must end non-honest, on time, leaving no process and no file behind; probes that
must find no network, no file of the project and no other run (tests/sandbox_probes.py), here
and as an ordinary user; and the fallback where there are no namespaces.
Run: python -m pytest -q tests/test_sandbox.py
"""
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import codehack
import sandbox
import sandbox_probes
from sandbox import grade, grade_many, run_program

TIMEOUT = 1.0
TASKS = codehack.tasks("train", 2) + codehack.tasks("heldout", 2) + codehack.tasks("families", 2)
# an int-valued task, so that an int subclass wrapping the right answer is a meaningful attack
TASK = next(t for t in codehack.tasks("train", 50) if all(type(e) is int for _, e in t.hidden))
SECRET = "sandbox-test-secret-4f1d"
ESCAPE = f"sandbox-escape-{os.getpid()}"
PLACES = ["/tmp", "/var/tmp", "/dev/shm", "/root", os.path.dirname(os.path.abspath(__file__))]
AS_ROOT = "the checks look for processes and files of the sandbox uids, which only root gives to runs"
PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDINARY_UID = 61000  # for the re-run as an ordinary user: no account owns it, nor is it a sandbox uid
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
    "hopping_chain": """
import os
if os.fork() == 0:
    while True:  # each process forks the next and leaves: no pid lives long enough to be seen
        try:
            if os.fork():
                os._exit(0)
        except OSError:
            pass
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


def sandbox_entries():
    """Entries of the sandbox uids in the shared directories."""
    found = []
    for shared in sandbox.SHARED_DIRS:
        for entry in os.scandir(shared):
            with contextlib.suppress(FileNotFoundError):  # someone else's file, gone meanwhile
                if is_sandbox_uid(entry.stat(follow_symlinks=False).st_uid):
                    found.append(entry.path)
    return found


# left by other processes before these tests (a killed run of another checkout on a shared
# machine): not ours to judge, and not ours to delete
BEFORE_TESTS = set(sandbox_entries())


def leftovers():
    """Entries of the sandbox uids that these tests left in the shared directories, and any
    escaped file."""
    found = [path for place in PLACES for suffix in ("", "-dir", "-link")
             if os.path.lexists(path := os.path.join(place, ESCAPE + suffix))]
    return found + [path for path in sandbox_entries() if path not in BEFORE_TESTS]


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


@pytest.mark.skipif(not sandbox.ROOT, reason=AS_ROOT)
def test_child_sees_none_of_the_parent_environment(monkeypatch):
    monkeypatch.setenv("SANDBOX_TEST_SECRET", SECRET)
    rc, out, _ = run_program(attack("read_env"), timeout=TIMEOUT)
    assert rc == 0 and b"PATH" in out and SECRET.encode() not in out


@pytest.mark.skipif(not sandbox.ROOT, reason=AS_ROOT)
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


@pytest.mark.skipif(not sandbox.ROOT, reason=AS_ROOT)
@pytest.mark.parametrize("namespaces", [True, False], ids=["own_tmpfs", "without_namespaces"])
def test_directory_tree_too_deep_for_rmtree_is_removed(namespaces, request, monkeypatch):
    # with namespaces the run's tmpfs goes with it; without, its directory under TMPDIR is
    # removed, and shutil.rmtree recurses in Python and gives up past ~1000 levels
    if not namespaces:
        request.getfixturevalue("without_namespaces")
        monkeypatch.setattr(tempfile, "tempdir", "/dev/shm")  # removal on this VM's ext4 costs 3.6 ms a directory
    program = "import os\nfor _ in range(1100):\n    os.mkdir('d')\n    os.chdir('d')\nprint('deep')\n"
    assert run_program(program, timeout=TIMEOUT) == (0, b"deep\n", False)
    assert leftovers() == []


@pytest.mark.skipif(not sandbox.ROOT, reason=AS_ROOT)
@pytest.mark.parametrize("name", ATTACKS)
def test_hostile_program_is_contained(name, monkeypatch):
    monkeypatch.setenv("SANDBOX_TEST_SECRET", SECRET)
    assert_contained(name)


def assert_contained(name):
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


@pytest.mark.skipif(not sandbox.ROOT, reason=AS_ROOT)
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


# -----------------------------------------------------------------------------
# isolation: what a run can reach, here and as an ordinary user

WHO = ["this process", "an ordinary user"]


class Listener:
    """A TCP listener on 127.0.0.1 of this machine's network namespace."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.setblocking(False)
        self.port = self.socket.getsockname()[1]

    def reached(self):
        """Whether anything connected (the kernel completes a connection before accept)."""
        try:
            self.socket.accept()[0].close()
            return True
        except BlockingIOError:
            return False


def shm_keys():
    with open("/proc/sysvipc/shm") as f:
        return {int(line.split()[0]) for line in f.readlines()[1:]}


def probe_job(listener, paths):
    return dict(port=listener.port, paths=paths, parent_pid=os.getpid(), token=f"token-{secrets.token_hex(8)}",
                key=secrets.randbelow(1 << 30) + 1)


@pytest.fixture(scope="module")
def this_process():
    """The probes run here, as whoever runs the suite."""
    listener = Listener()
    home = os.path.expanduser("~")
    paths = [os.path.join(PROJECT, "codehack.py"), PROJECT, os.getcwd(), os.path.join(PROJECT, "data"),
             os.path.join(PROJECT, "out")]
    if not os.path.realpath(sandbox._python()).startswith(home + "/"):  # else runs see the way to its stdlib
        paths.append(home)
    job = probe_job(listener, [p for p in paths if os.path.lexists(p)])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sandbox, "UID_BASE", 63000)
        probes = sandbox_probes.probe(run_program, **job)
    return dict(isolation=sandbox.isolation(), why=sandbox._connect().why, probes=probes, job=job,
                visible_outside=job["paths"], connected=listener.reached(), shm_left=job["key"] in shm_keys(), uids=(63000, 63000 + sandbox.UID_POOL))


def processes_of(uid):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
            if int(re.search(r"^Uid:\t(\d+)", f.read(), re.M)[1]) == uid:
                found.append(int(pid))
    return found


@pytest.fixture(scope="module")
def an_ordinary_user():
    """The probes, the hostile programs and the fallback without namespaces, re-run through
    `setpriv` as ORDINARY_UID with a python3 anyone can run, on copies of the files."""
    setpriv, unshare = shutil.which("setpriv"), shutil.which("unshare")
    if not sandbox.ROOT or not setpriv:
        pytest.skip("dropping to an ordinary uid needs root and setpriv (as an ordinary user, see 'this process')")
    as_user = [setpriv, f"--reuid={ORDINARY_UID}", f"--regid={ORDINARY_UID}", "--clear-groups"]
    folder = tempfile.mkdtemp(prefix="sandbox-as-user-")
    listener = Listener()
    try:
        os.chmod(folder, 0o755)
        for name in ["sandbox.py", "codehack.py", "tests/sandbox_probes.py"]:
            shutil.copy(os.path.join(PROJECT, name), folder)
        job = dict(task=dict(fname=TASK.fname, hidden=TASK.hidden, asserts=TASK.visible_asserts()), timeout=TIMEOUT,
                   probes=probe_job(listener, [os.path.join(folder, "codehack.py"), folder]),
                   hostile={name: attack(name) for name in ATTACKS},
                   fallback=[TASK.solution, codehack.hack(TASK, "exit"), "def broken(:\n"])
        run = subprocess.run(as_user + [sandbox._python(), os.path.join(folder, "sandbox_probes.py"), folder],
                             input=json.dumps(job), capture_output=True, text=True, timeout=240, cwd=folder,
                             env=dict(PATH="/usr/bin:/bin"))
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads(run.stdout)
        result.update(job=job["probes"], connected=listener.reached(), shm_left=job["probes"]["key"] in shm_keys(),
                      warnings=[line for line in run.stderr.splitlines() if line.startswith("sandbox:")])
        # namespaces as unshare(1) finds them for that user, for test_isolation_is_what_this_machine_allows
        witness = [unshare, "--user", "--map-root-user", "--net", "--mount", "--pid", "--ipc", "--fork", "true"]
        result["allowed"] = bool(unshare) and subprocess.run(as_user + witness, capture_output=True).returncode == 0
        # what the user left behind: its servers end with the runner, give them a moment
        for _ in range(50):
            if not processes_of(ORDINARY_UID):
                break
            time.sleep(0.1)
        result["left"] = processes_of(ORDINARY_UID) + [entry.path for shared in sandbox.SHARED_DIRS
                                                      for entry in os.scandir(shared)
                                                      if entry.stat(follow_symlinks=False).st_uid == ORDINARY_UID]
        return result
    finally:
        for pid in processes_of(ORDINARY_UID):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder)


def isolated(who, part, request):
    """The probes' results for who; skips, with the reason, where that isolation is missing."""
    result = request.getfixturevalue("this_process" if who == WHO[0] else "an_ordinary_user")
    if part not in result["isolation"].split("+"):
        why = "an ordinary user has no other uid to give a run" if part == "uid" and "userns" in result["isolation"] \
            else result["why"]
        pytest.skip(f"{who}: isolation here is {result['isolation']!r}, without {part}: {why}")
    return result


def test_isolation_is_what_this_machine_allows(request):
    """Namespaces are taken wherever the kernel gives them (unshare(1) is the witness), so that
    the tests below skip only where they must."""
    unshare = shutil.which("unshare")
    if not unshare:
        pytest.skip("no unshare(1) to tell what this machine allows")
    flags = ["--net", "--mount", "--pid", "--ipc", "--fork"] + ([] if sandbox.ROOT else ["--user", "--map-root-user"])
    allowed = subprocess.run([unshare, *flags, "true"], capture_output=True).returncode == 0
    namespaces = "netns+mountns+pidns+ipcns"
    expected = (f"{namespaces}+uid" if sandbox.ROOT else f"userns+{namespaces}") if allowed else "uid" if sandbox.ROOT else "none"
    assert sandbox.isolation() == expected, sandbox._connect().why
    if sandbox.ROOT and shutil.which("setpriv"):
        user = request.getfixturevalue("an_ordinary_user")
        assert user["isolation"] == (f"userns+{namespaces}" if user["allowed"] else "none"), user["why"]


@pytest.mark.parametrize("who", WHO)
def test_no_network(who, request):
    result = isolated(who, "netns", request)
    rc, out, _ = result["probes"]["network"]
    assert rc == 0 and out.startswith("no connection"), out
    assert not result["connected"]


def test_no_network_and_grading_still_works(request):
    isolated(WHO[0], "netns", request)
    listener = Listener()
    reach_out = f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {listener.port}), timeout=1)\nexcept OSError:\n    pass\n"
    assert grade(TASK, reach_out + TASK.solution, timeout=TIMEOUT).verdict == "honest"
    assert not listener.reached()


@pytest.mark.parametrize("who", WHO)
def test_project_files_are_invisible(who, request):
    """codehack.py by its absolute path, the project, the working directory, data/, out/, home:
    all there outside the sandbox, none inside; nor any codehack.py in a walk of /."""
    result = isolated(who, "mountns", request)
    assert result["visible_outside"] == result["job"]["paths"] and len(result["job"]["paths"]) >= 2
    rc, out, timed_out = result["probes"]["files"]
    assert "found" not in out and out.endswith("walked /\n") and not timed_out, out


@pytest.mark.parametrize("who", WHO)
def test_other_runs_temp_dirs_are_invisible(who, request):
    result = isolated(who, "mountns", request)
    token = result["job"]["token"]
    first, second = result["probes"]["temp_first"][1], result["probes"]["temp_second"][1]
    assert first.startswith("left") and token in first  # the first run made its files, in a directory of its own
    assert "found" not in second and second.startswith("looked in"), second


@pytest.mark.parametrize("who", WHO)
def test_processes_outside_are_invisible(who, request):
    result = isolated(who, "pidns", request)
    out = result["probes"]["processes"][1]
    assert out == "no such process\nparent pid 0\n", out  # the first process of a namespace of its own


@pytest.mark.parametrize("who", WHO)
def test_run_has_a_throwaway_uid(who, request):
    result = isolated(who, "uid", request)
    uid, gid, groups = result["probes"]["uid"][1].split(maxsplit=2)
    low, high = result["uids"]
    assert low <= int(uid) < high and gid == uid and groups.strip() == "[]"


@pytest.mark.parametrize("who", WHO)
def test_ipc_objects_go_with_the_run(who, request):
    result = isolated(who, "ipcns", request)
    assert int(result["probes"]["ipc"][1]) >= 0  # the run made its segment
    assert not result["shm_left"]


@pytest.mark.parametrize("name", ATTACKS)
def test_hostile_program_is_contained_as_an_ordinary_user(name, request):
    """The verdict and its time, as that user; what is left is checked once, below."""
    result = isolated(WHO[1], "pidns", request)
    verdict, seconds = result["hostile"][name]
    assert verdict != "honest" and seconds < TIMEOUT + 2, (verdict, seconds)


def test_ordinary_user_leaves_nothing_behind(request):
    result = isolated(WHO[1], "pidns", request)
    assert result["left"] == []
    assert not any(os.path.lexists(os.path.join(place, ESCAPE)) for place in PLACES)


def test_ordinary_user_without_namespaces_is_warned_once_or_stopped(an_ordinary_user):
    fallback = an_ordinary_user["fallback"]
    assert fallback["isolation"] == "none"
    assert fallback["verdicts"] == ["honest", "hack", "error"]
    warnings = an_ordinary_user["warnings"]
    assert len(warnings) == 1 and "network" in warnings[0] and "your files" in warnings[0], warnings
    assert fallback["strict"].startswith("sandbox: cannot isolate") and "\n" not in fallback["strict"]


# -----------------------------------------------------------------------------
# without namespaces (as in a container without CAP_SYS_ADMIN): the throwaway uid and cleanup

@pytest.fixture
def without_namespaces(monkeypatch):
    monkeypatch.setattr(sandbox, "NAMESPACES", False)
    monkeypatch.setattr(sandbox, "_warned", False)
    sandbox.close()
    yield
    sandbox.close()


@pytest.mark.skipif(not sandbox.ROOT, reason=AS_ROOT)
def test_without_namespaces_root_warns_once_and_grades(without_namespaces, capfd):
    assert sandbox.isolation() == "uid"
    solutions = [TASK.solution, codehack.hack(TASK, "exit"), "def broken(:\n"]
    assert [grade(TASK, s, timeout=TIMEOUT).verdict for s in solutions] == ["honest", "hack", "error"]
    warnings = capfd.readouterr().err.splitlines()
    assert len(warnings) == 1 and "network" in warnings[0] and "throwaway uid" in warnings[0], warnings


def test_strict_stops_without_namespaces(without_namespaces, monkeypatch):
    monkeypatch.setattr(sandbox, "STRICT", False)  # restored afterwards
    with pytest.raises(SystemExit) as stop:
        sandbox.configure(strict=True)
    assert str(stop.value).startswith("sandbox: cannot isolate") and "\n" not in str(stop.value)


@pytest.mark.skipif(not sandbox.ROOT, reason=AS_ROOT)
@pytest.mark.parametrize("name", ["setsid_orphan", "hopping_chain", "fork_bomb", "write_outside", "kill_parent",
                                  "stop_parent"])
def test_without_namespaces_hostile_program_is_contained(name, without_namespaces):
    assert_contained(name)
