"""Run the project's own test suite: ``python -m tests [unittest args]``.

Plain unittest discovery of ``tests/``, ending with one line of totals,
``N passed, M failed, K skipped``, that CI reads. Exits non-zero on any
failure or error.

The whole suite runs in two processes side by side: the modules that mostly
wait on child processes (runners' worker pools, provisioners racing for a
template) and the long state machine in one (``SECOND``), everything else in
the other, each printing its own report; the totals line adds both up. The second process gets database
names of its own (``p2_`` before each ``TT_TEST_*_URL``'s database) and its own
temporary folder, so the two never meet. ``TT_TEST_PROCESSES=1`` runs it all in
one process; naming modules (``python -m tests tests.test_isolation``) does too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import unittest

from transactional_testcase import app_testcase

#: Modules that spend their time waiting on processes of their own, and the
#: state machine: together about as long as all the others.
SECOND = ("tests.test_runners", "tests.test_provisioning", "tests.test_state_machine")

_TOTALS = re.compile(r"^(\d+) passed, (\d+) failed, (\d+) skipped$", re.MULTILINE)


class _FreshErrors(unittest.TextTestResult):
    """Each of our tests is a run of its own: the library says its setup errors in full again."""

    def startTest(self, test: unittest.TestCase) -> None:
        app_testcase.said.clear()
        super().startTest(test)


def run_here(names: list[str], argv: list[str]) -> int:
    """Run ``names`` (all of ``tests/`` if none) in this process."""
    verbosity = 2 if "-v" in argv else 1
    loader = unittest.defaultTestLoader
    suite = loader.loadTestsFromNames(names) if names else loader.discover("tests", top_level_dir=".")
    runner = unittest.TextTestRunner(verbosity=verbosity, failfast="-f" in argv, resultclass=_FreshErrors)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped - len(result.expectedFailures)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
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


def run_split(argv: list[str]) -> int:
    """Run the suite as two child processes at once; print both reports, then the totals.

    The first child's report streams as it runs; the second's follows it.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    modules = sorted(
        f"tests.{n[:-3]}" for n in os.listdir(here) if n.startswith("test") and n.endswith(".py")
    )
    first = [m for m in modules if m not in SECOND]
    second = [m for m in modules if m in SECOND]
    flags = [a for a in argv if a.startswith("-")]
    with (
        tempfile.TemporaryDirectory(prefix="tt-suite-") as folder,
        open(os.path.join(folder, "second.log"), "w+") as log,
    ):
        other = subprocess.Popen(
            [sys.executable, "-m", "tests", *flags, *second],
            env=second_environment(folder),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        main = subprocess.Popen(
            [sys.executable, "-m", "tests", *flags, *first],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        print(f"== {' '.join(first)}", flush=True)
        assert main.stdout is not None
        lines = []
        for line in main.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            lines.append(line)
        codes = [main.wait(), other.wait()]
        log.seek(0)
        outputs = ["".join(lines), log.read()]
        print(f"== {' '.join(second)}", flush=True)
        sys.stdout.write(outputs[1])
    totals = [0, 0, 0]
    for output in outputs:
        found = _TOTALS.findall(output)
        if found:
            totals = [a + int(b) for a, b in zip(totals, found[-1], strict=False)]
        else:  # it died before its report: count it as a failure
            totals[1] += 1
    passed, failed, skipped = totals
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0 if failed == 0 and not any(codes) and passed > 0 else 1


def main(argv: list[str]) -> int:
    names = [a for a in argv if not a.startswith("-")]
    if names or os.environ.get("TT_TEST_PROCESSES", "2") == "1":
        return run_here(names, argv)
    return run_split(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
