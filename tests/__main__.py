"""Run the project's own test suite: ``python -m tests [unittest args]``.

Plain unittest discovery of ``tests/``, ending with one line of totals,
``N passed, M failed, K skipped``, that CI reads (printed once, last). Exits
non-zero on any failure or error.

The whole suite runs in two processes side by side: the modules that mostly
wait on child processes (runners' worker pools, pytest sessions) and the long
state machines in one (``SECOND``), everything else in the other. While they run, each prints a progress line at least every
``PROGRESS_SECONDS`` (tests run so far, failures, time), which this process
shows at once; their full reports follow when both are done, then the totals
of both. The second process gets database names of its own (``p2_`` before
each ``TT_TEST_*_URL``'s database) and its own temporary folder, so the two
never meet. ``TT_TEST_PROCESSES=1`` runs it all in one process; naming modules
(``python -m tests tests.test_isolation``) does too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import unittest

from transactional_testcase import app_testcase

#: Modules that spend their time waiting on processes of their own, and the
#: state machine: together about as long as all the others.
SECOND = (
    "tests.test_runners",
    "tests.test_runners_lite",
    "tests.test_state_machine",
    "tests.test_state_machine_lite",
    "tests.test_pytest_plugin",
    "tests.test_pytest_plugin_lite",
)
#: At most this long between two progress lines of a process.
PROGRESS_SECONDS = 20.0
#: Set for a child process of a split run: its name, shown on its lines.
CHILD_ENV = "TT_TEST_CHILD"

_TOTALS = re.compile(r"^\[[^]]+\] (\d+) passed, (\d+) failed, (\d+) skipped$", re.MULTILINE)


class _SuiteResult(unittest.TextTestResult):
    """Each of our tests is a run of its own: the library says its setup errors in full again."""

    #: The results made in this process (the progress lines read the last).
    made: t.ClassVar[list[unittest.TestResult]] = []

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.made.append(self)

    def startTest(self, test: unittest.TestCase) -> None:
        app_testcase.said.clear()
        super().startTest(test)


class _Progress:
    """Prints ``[name] progress: run/total tests, failed, seconds`` every ``PROGRESS_SECONDS``."""

    def __init__(self, name: str, total: int) -> None:
        self.name, self.total = name, total
        self.started = time.monotonic()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._report, name="tests-progress", daemon=True)

    def _report(self) -> None:
        while not self.done.wait(PROGRESS_SECONDS):
            result = _SuiteResult.made[-1] if _SuiteResult.made else unittest.TestResult()
            failed = len(result.failures) + len(result.errors)
            elapsed = time.monotonic() - self.started
            print(
                f"[{self.name}] progress: {result.testsRun}/{self.total} tests run, "
                f"{failed} failed, {elapsed:.0f} s",
                file=sys.__stdout__,
                flush=True,
            )

    def __enter__(self) -> _Progress:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.done.set()
        self.thread.join()


def run_here(names: list[str], argv: list[str]) -> int:
    """Run ``names`` (all of ``tests/`` if none) in this process."""
    verbosity = 2 if "-v" in argv else 1
    loader = unittest.defaultTestLoader
    suite = loader.loadTestsFromNames(names) if names else loader.discover("tests", top_level_dir=".")
    child = os.environ.get(CHILD_ENV)
    runner = unittest.TextTestRunner(verbosity=verbosity, failfast="-f" in argv, resultclass=_SuiteResult)
    with _Progress(child or "tests", suite.countTestCases()):
        result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped - len(result.expectedFailures)
    # A child's totals are marked with its name: only the parent's final line is the run's.
    print(f"{f'[{child}] ' if child else ''}{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 0 if failed == 0 and result.testsRun > 0 else 1


def second_environment(folder: str) -> dict[str, str]:
    """The environment of the second process: other database names, another temp folder."""
    import sqlalchemy as sa

    from tests.matrix import BACKENDS

    env = dict(os.environ, TMPDIR=folder, TRANSACTIONAL_TESTCASE_CACHE=os.path.join(folder, "cache"))
    for backend in BACKENDS.values():
        if backend.url is None:  # SQLite by default: a file in the (new) temporary folder
            continue
        url = sa.make_url(backend.url)
        if url.get_backend_name() == "sqlite":
            name = os.path.join(folder, os.path.basename(url.database or "") or "tt_test.db")
        else:
            name = f"p2_{url.database}"
        env[backend.env] = url.set(database=name).render_as_string(hide_password=False)
    return env


def _collect(process: subprocess.Popen[str], lines: list[str]) -> None:
    """Keep ``process``'s output for its report; show its progress lines at once."""
    assert process.stdout is not None
    for line in process.stdout:
        # A progress line may follow dots the test runner left on the line.
        start = line.find("[process ")
        if start >= 0 and "] progress: " in line[start:]:
            sys.stdout.write(line[start:])
            sys.stdout.flush()
            line = line[:start]
        if line:
            lines.append(line)


def run_split(argv: list[str]) -> int:
    """Run the suite as two child processes at once; progress while they run, then both reports and the totals."""
    here = os.path.dirname(os.path.abspath(__file__))
    modules = sorted(
        f"tests.{n[:-3]}" for n in os.listdir(here) if n.startswith("test") and n.endswith(".py")
    )
    parts = {"1": [m for m in modules if m not in SECOND], "2": [m for m in modules if m in SECOND]}
    flags = [a for a in argv if a.startswith("-")]
    print(
        f"Running {len(modules)} test modules in two processes; each prints progress at least every "
        f"{PROGRESS_SECONDS:.0f} s, and its full report at the end.",
        flush=True,
    )
    outputs: dict[str, list[str]] = {name: [] for name in parts}
    with tempfile.TemporaryDirectory(prefix="tt-suite-") as folder:
        environments = {"1": dict(os.environ), "2": second_environment(folder)}
        processes = {
            name: subprocess.Popen(
                [sys.executable, "-m", "tests", *flags, *names],
                env={**environments[name], CHILD_ENV: f"process {name}"},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for name, names in parts.items()
        }
        readers = [
            threading.Thread(target=_collect, args=(process, outputs[name]))
            for name, process in processes.items()
        ]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        codes = [process.wait() for process in processes.values()]
    totals = [0, 0, 0]
    for name, names in parts.items():
        output = "".join(outputs[name])
        print(f"\n== process {name}: {' '.join(names)}", flush=True)
        sys.stdout.write(output)
        found = _TOTALS.findall(output)
        if found:
            totals = [a + int(b) for a, b in zip(totals, found[-1], strict=True)]
        else:  # it died before its report: count it as a failure
            totals[1] += 1
    passed, failed, skipped = totals
    print(f"\n{passed} passed, {failed} failed, {skipped} skipped", flush=True)
    return 0 if failed == 0 and not any(codes) and passed > 0 else 1


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")]
    if names or os.environ.get("TT_TEST_PROCESSES", "2") == "1" or os.environ.get(CHILD_ENV):
        return run_here(names, argv)
    return run_split(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
