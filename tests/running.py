"""Running an inner test class programmatically, and reading what it did.

Many tests of the suite build a small ``TransactionalTestCase`` (or
``CommittingTestCase``, ``MigrationsTestCase``) inside a test method and run it
the way a user's runner would, class fixtures included: :func:`run_with_runner`
(its printed output captured), :func:`run_case` (quietly, with a
:class:`RecordingResult`) or :func:`run_into` (into any result). A
:class:`RecordingResult` keeps the exception objects the inner run raised, not
only their formatted tracebacks; :func:`outcome` and :func:`transcript`
summarise a result for assertions and their messages.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import typing as t
import unittest

from transactional_testcase import app_testcase

_R = t.TypeVar("_R", bound=unittest.TestResult)


def load_case(case: type[unittest.TestCase], names: t.Sequence[str] = ()) -> unittest.TestSuite:
    """The tests of ``case`` (only ``names`` if given), as a runner would collect them.

    A loader of our own: ``unittest.defaultTestLoader`` carries the outer
    runner's ``-k`` patterns, which would filter the inner class's tests.
    """
    # Each inner run is a run of its own: its setup errors are said in full.
    app_testcase.said.clear()
    if names:
        return unittest.TestSuite(case(name) for name in names)
    return unittest.TestLoader().loadTestsFromTestCase(case)


@t.overload
def run_into(case: type[unittest.TestCase], result: None = None) -> unittest.TestResult: ...
@t.overload
def run_into(case: type[unittest.TestCase], result: _R) -> _R: ...
def run_into(case: type[unittest.TestCase], result: unittest.TestResult | None = None) -> unittest.TestResult:
    """Run every test of ``case`` with its class fixtures into ``result`` (a fresh one by default)."""
    result = unittest.TestResult() if result is None else result
    load_case(case).run(result)
    return result


class RunnerRun(t.NamedTuple, t.Generic[_R]):
    """What :func:`run_with_runner` saw: the result, and the runner's printed output."""

    result: _R
    output: str


def run_with_runner(
    case: type[unittest.TestCase],
    *,
    resultclass: type[_R] = unittest.TextTestResult,  # type: ignore[assignment]
    verbosity: int = 1,
    names: t.Sequence[str] = (),
) -> RunnerRun[_R]:
    """Run ``case`` (only ``names`` if given) as a user's ``unittest.TextTestRunner`` would.

    Class fixtures included; the runner's output is captured, not printed.
    """
    stream = io.StringIO()
    runner = unittest.TextTestRunner(stream=stream, resultclass=resultclass, verbosity=verbosity)
    result = t.cast(_R, runner.run(load_case(case, names)))
    return RunnerRun(result, stream.getvalue())


def method_name(test: t.Any) -> str:
    """A test's method name, or the description of a class fixture (``setUpClass (...)``)."""
    return getattr(test, "_testMethodName", str(test))


def method_names(entries: t.Iterable[tuple[t.Any, t.Any]]) -> set[str]:
    """The :func:`method_name` of each test in a result's list (``errors``, ``failures``, ``skipped``)."""
    return {method_name(test) for test, _ in entries}


class Raised(t.NamedTuple):
    """One exception an inner run reported, as a :class:`RecordingResult` kept it."""

    #: ``str(test)``: ``test_x (module.Class.test_x)``, or ``setUpClass (module.Class)``
    #: for a class fixture.
    where: str
    #: :func:`method_name` of the test (a class fixture: its description, like ``where``).
    method: str
    #: ``"error"`` or ``"failure"``.
    kind: str
    exception: BaseException


class RecordingResult(unittest.TextTestResult):
    """Keeps the exception objects of errors and failures, not only their formatted tracebacks."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: Every error and failure, in the order reported (class fixtures included).
        self.raised: list[Raised] = []

    def addError(self, test: t.Any, err: t.Any) -> None:
        super().addError(test, err)
        self.raised.append(Raised(str(test), method_name(test), "error", err[1]))

    def addFailure(self, test: t.Any, err: t.Any) -> None:
        super().addFailure(test, err)
        self.raised.append(Raised(str(test), method_name(test), "failure", err[1]))

    def raised_by(self, method: str) -> BaseException:
        """The exception test ``method`` (or a class fixture's description) errored or failed with."""
        found = [r.exception for r in self.raised if r.method == method]
        if len(found) != 1:
            raise AssertionError(f"{method} raised {len(found)} exceptions, not one:\n{transcript(self)}")
        return found[0]


def run_case(case: type[unittest.TestCase]) -> RecordingResult:
    """Run ``case`` the way a runner does (class fixtures included), quietly."""
    return run_with_runner(case, resultclass=RecordingResult).result


def outcome(result: unittest.TestResult) -> dict[str, set[str]]:
    """Names of the tests that failed, errored and were skipped."""
    return {
        "failures": method_names(result.failures),
        "errors": method_names(result.errors),
        "skipped": method_names(result.skipped),
    }


def transcript(result: unittest.TestResult, *notes: str) -> str:
    """How many tests ran (and ``notes``), then every error and failure with its traceback."""
    lines = [", ".join([f"ran {result.testsRun}", *notes])]
    for test, traceback in result.errors + result.failures:
        lines.append(f"--- {test}\n{traceback}")
    return "\n".join(lines)


def run_command(
    argv: list[str], env: dict[str, str], cwd: str | os.PathLike[str], timeout: float
) -> tuple[int, str]:
    """Run ``argv`` in ``cwd``; its exit code and output. Its whole process group is killed on timeout."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        raise AssertionError(f"{' '.join(argv)} did not finish within {timeout:.0f} s:\n{output}") from None
    return proc.returncode, output
