"""The SQLite template lock: with :mod:`fcntl` (its file removed on release), and without it (Windows).

``PosixLockTest``: processes that take the lock over and over never overlap,
although each holder removes the file before it lets go, and no file is left.

Windows cannot be run here: each process below is made to look like it. It
sets ``sys.modules["fcntl"] = None`` (so ``import fcntl`` fails, as on
Windows) and installs a stand-in ``msvcrt`` whose ``locking`` has Windows'
behaviour on top of POSIX record locks (``os.lockf``, which, like
``msvcrt.locking``, locks a byte range from the file's position, between
processes): ``LK_LOCK`` tries ten times, then raises :class:`OSError`. Two such
processes then take the library's lock in turn; what is tested is the
library's fallback (its calls, its waiting), not Windows' own locking.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Run as ``python -c SCRIPT role lock_path log_path``.
SCRIPT = textwrap.dedent(
    """
    import os, sys, time, types

    sys.modules["fcntl"] = None  # import fcntl fails, as on Windows

    import transactional_testcase.testcase  # the whole package imports without fcntl
    from transactional_testcase.backends.sqlite import _file_lock

    # Only now: the standard library takes a module named msvcrt for Windows (subprocess does).
    calls = []

    def locking(fd, mode, nbytes):
        calls.append((mode, os.lseek(fd, 0, os.SEEK_CUR), nbytes))
        if mode == msvcrt.LK_UNLCK:
            os.lockf(fd, os.F_ULOCK, nbytes)
            return
        for _ in range(10):  # LK_LOCK: ten tries, then OSError (Windows waits a second between them)
            try:
                os.lockf(fd, os.F_TLOCK, nbytes)
                return
            except OSError:
                time.sleep(0.02)
        open(path + ".refused", "a").close()  # A holds the lock until it sees this
        raise OSError(36, "Resource deadlock avoided")

    msvcrt = types.ModuleType("msvcrt")
    msvcrt.LK_LOCK, msvcrt.LK_UNLCK = 1, 0
    msvcrt.locking = locking
    sys.modules["msvcrt"] = msvcrt

    role, path, log = sys.argv[1:4]

    def note(what):
        with open(log, "a") as f:
            f.write(f"{role} {what}\\n")

    if role == "B":
        while not os.path.exists(log):
            time.sleep(0.01)
    with _file_lock(path):
        note("acquired")
        if role == "A":  # held until B's LK_LOCK gave up once (whatever the machine's load): B must try again
            deadline = time.monotonic() + 30
            while not os.path.exists(path + ".refused") and time.monotonic() < deadline:
                time.sleep(0.01)
        note("released")
    tries = sum(1 for mode, _, _ in calls if mode == msvcrt.LK_LOCK)
    print(role, "calls", sorted({(mode, pos, n) for mode, pos, n in calls}), "tries", tries)
    """
)


def start(script: str, *argv: str) -> subprocess.Popen[str]:
    """``python -c script *argv``, this checkout first on its path; its output in ``stdout``."""
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    )
    return subprocess.Popen(
        [sys.executable, "-c", script, *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def lock_and_log(case: unittest.TestCase) -> tuple[str, str, str]:
    """A folder of ``case``'s own (removed after it), the lock's path in it and a log's."""
    folder = tempfile.mkdtemp(prefix="tt_lock_")
    case.addCleanup(shutil.rmtree, folder, True)
    return folder, os.path.join(folder, "template.lock"), os.path.join(folder, "log")


class WithoutFcntlTest(unittest.TestCase):
    def test_the_msvcrt_fallback_excludes_another_process(self) -> None:
        _, path, log = lock_and_log(self)
        procs = {role: start(SCRIPT, role, path, log) for role in ("A", "B")}
        outputs = {role: proc.communicate(timeout=60)[0] for role, proc in procs.items()}
        for role, proc in procs.items():
            self.assertEqual(proc.returncode, 0, outputs[role])
        with open(log, encoding="utf-8") as f:
            self.assertEqual(
                f.read().split("\n")[:-1], ["A acquired", "A released", "B acquired", "B released"]
            )
        # Both lock and unlock the first byte; B's first LK_LOCK gave up and was tried again.
        for role in ("A", "B"):
            self.assertIn("calls [(0, 0, 1), (1, 0, 1)]", outputs[role])
        tries = int(outputs["B"].split("tries")[1])
        self.assertGreater(tries, 1, outputs["B"])


#: Run as ``python -c CONTENDER lock_path log_path rounds``: takes the lock ``rounds`` times.
CONTENDER = textwrap.dedent(
    """
    import os, sys, time

    from transactional_testcase.backends.sqlite import _file_lock

    path, log, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for _ in range(rounds):
        with _file_lock(path):
            with open(log, "a") as f:
                f.write(f"in {os.getpid()}\\n")
            time.sleep(0.002)
            with open(log, "a") as f:
                f.write(f"out {os.getpid()}\\n")
    """
)


@unittest.skipIf(os.name != "posix", "fcntl's flock: POSIX")
class PosixLockTest(unittest.TestCase):
    def test_processes_never_overlap_and_no_lock_file_is_left(self) -> None:
        folder, path, log = lock_and_log(self)
        procs = [start(CONTENDER, path, log, "40") for _ in range(4)]
        for proc in procs:
            output = proc.communicate(timeout=120)[0]
            self.assertEqual(proc.returncode, 0, output)
        with open(log, encoding="utf-8") as f:
            lines = f.read().split("\n")[:-1]
        self.assertEqual(len(lines), 4 * 40 * 2)
        for entered, left in zip(lines[::2], lines[1::2], strict=True):
            self.assertEqual((entered.split()[0], left.split()[0]), ("in", "out"), lines)
            self.assertEqual(entered.split()[1], left.split()[1], "two processes held the lock at once")
        self.assertEqual(sorted(os.listdir(folder)), ["log"], "the lock file was left")
