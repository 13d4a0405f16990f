"""
Programs that try to reach out of the sandbox, for tests/test_sandbox.py, and the runner that
re-runs them (and the hostile programs) as an ordinary user, where there is no pytest:
    setpriv --reuid=UID ... python3 tests/sandbox_probes.py DIR < job.json   (DIR holds sandbox.py)
Standard library only.
"""

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

# stdin: a port of 127.0.0.1 where the test listens
NETWORK = """
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", int(sys.stdin.read())), timeout=2) as connection:
        connection.sendall(b"escaped")
    print("connected")
except OSError as e:
    print(f"no connection: {e}")
"""

# stdin: JSON list of paths to look for; then a walk of / for codehack.py
FILES = """
import collections, json, os, sys
for path in json.loads(sys.stdin.read()):
    if os.path.lexists(path):
        print("found", path, os.listdir(path) if os.path.isdir(path) else "", flush=True)
queue = collections.deque(["/"])  # breadth first: where the project is visible, it turns up early
while queue:
    try:
        entries = list(os.scandir(queue.popleft()))
    except OSError:
        continue
    for entry in entries:
        if entry.name == "codehack.py":
            print("found", entry.path, flush=True)
        if entry.is_dir(follow_symlinks=False) and entry.path not in ("/proc", "/sys"):
            queue.append(entry.path)
print("walked /")
"""

# stdin: a token. The first run leaves files named after it in its temp dir and stays a while;
# the second, started meanwhile, looks for them and for any other run's directory
TEMP_FIRST = """
import os, sys, time
token = sys.stdin.read()
open(token, "w").write("first run")
os.mkdir(token + "-dir")
print("left", os.listdir("."), "in", os.getcwd(), flush=True)
time.sleep(2)
"""
TEMP_SECOND = """
import os, sys
token, here = sys.stdin.read(), os.getcwd()
for place in sorted({here, os.path.dirname(here), "/tmp", "/var/tmp", "/dev/shm"}):
    try:
        names = os.listdir(place)
    except OSError:
        continue
    for name in names:
        if token in name or (name.startswith("sandbox-") and os.path.join(place, name) != here):
            print("found", os.path.join(place, name), flush=True)
print("looked in", here)
"""

# stdin: the grading process's pid
PROCESSES = """
import os, sys
parent = int(sys.stdin.read())
try:
    os.kill(parent, 0)
    print("found", parent, "and may signal it")
except ProcessLookupError:
    print("no such process")
except PermissionError:
    print("found", parent, "but may not signal it")
print("parent pid", os.getppid())
"""

UID = "import os\nprint(os.getuid(), os.getgid(), os.getgroups())\n"

# stdin: a key; makes a System V shared memory segment with it
IPC = """
import ctypes, sys
print(ctypes.CDLL(None).shmget(int(sys.stdin.read()), 4096, 0o1000 | 0o600))  # IPC_CREAT
"""


def probe(run_program, port, paths, parent_pid, token, key, timeout=10.0):
    """Every probe at once, each in a thread (the second temp-dir probe half a second after
    the first). Returns {name: [returncode, stdout text, timed_out]}."""
    runs = dict(network=(NETWORK, port), files=(FILES, json.dumps(paths)), temp_first=(TEMP_FIRST, token),
                temp_second=(TEMP_SECOND, token), processes=(PROCESSES, parent_pid), uid=(UID, ""), ipc=(IPC, key))
    results = {}

    def run(name):
        time.sleep(0.5 if name == "temp_second" else 0)
        source, stdin = runs[name]
        rc, out, timed_out = run_program(source, str(stdin).encode(), timeout)
        results[name] = [rc, out.decode(errors="replace"), timed_out]

    threads = [threading.Thread(target=run, args=(name,)) for name in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def grade_timed(grade, task, solutions, timeout):
    """{name: [verdict, seconds]} for {name: solution}, two at a time."""
    def one(name):
        start = time.monotonic()
        verdict = grade(task, solutions[name], timeout=timeout).verdict
        return name, [verdict, time.monotonic() - start]

    with ThreadPoolExecutor(2) as pool:
        return dict(pool.map(one, solutions))


class Task:
    """What sandbox.grade needs of a codehack task, from JSON."""

    def __init__(self, fname, hidden, asserts):
        self.fname, self.hidden, self.asserts = fname, hidden, asserts

    def visible_asserts(self):
        return self.asserts


def main():
    """The job (JSON on stdin): the probes, the hostile programs, then the same without
    namespaces (the fallback: verdicts, the warning, strict mode). Prints JSON."""
    job = json.load(sys.stdin)
    sys.path.insert(0, sys.argv[1])
    import sandbox

    task = Task(**job["task"])
    result = dict(isolation=sandbox.isolation(), why=sandbox._connect().why)
    result["visible_outside"] = [p for p in job["probes"]["paths"] if os.path.lexists(p)]
    result["probes"] = probe(sandbox.run_program, **job["probes"])
    result["hostile"] = grade_timed(sandbox.grade, task, job["hostile"], job["timeout"])
    sandbox.close()
    sandbox.NAMESPACES = False
    fallback = dict(isolation=sandbox.isolation())
    fallback["verdicts"] = [sandbox.grade(task, s, timeout=job["timeout"]).verdict for s in job["fallback"]]
    try:
        sandbox.configure(strict=True)
        fallback["strict"] = "went on"
    except SystemExit as e:
        fallback["strict"] = str(e)
    result["fallback"] = fallback
    sandbox.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
