"""The sample suite in ``tests/runner_suite`` under every supported test runner.

Each test runs ``tests/runner_suite/sample_cases.py`` in a subprocess under one
runner (unittest, nose2, nose2's mp plugin, pytest, pytest-xdist,
unittest-parallel) against one backend (every runner on SQLite, psycopg2 and
PyMySQL; the parallel ones on psycopg 3 and mysqlclient too), and checks what a
user would: the exit code, the runner's own summary
(every test passed, none errored), that a failing test is reported as exactly
one failure, and, with a connection of our own, that the databases the run
used are gone once it has ended.

The sample module is named ``sample_cases.py`` so that no runner's default
pattern (``test*.py``, ``test_*.py``) collects it from the project's own
discovery; every run here names it explicitly.

Parallel runners (nose2's mp plugin, pytest-xdist) run on every backend: all
workers of a run get the same ``TEST_DATABASE_URL``, and the library's
per-worker database names (issue #3: ``PYTEST_XDIST_WORKER`` / the
multiprocessing worker's name appended, ``myapp_test_gw0``, ``myapp_test_p1``)
keep two workers from dropping each other's database on PostgreSQL and MariaDB.
The checks hold them to it: no database is used by two processes, and none
is left once the run has ended. (Before that naming existed, only SQLite could
run in parallel: there each process gets its own temporary file anyway.)
"""

from __future__ import annotations

import _thread
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import typing as t
import unittest
from collections import defaultdict
from multiprocessing.connection import Connection
from pathlib import Path

import sqlalchemy as sa

from tests.admin import drop_database, server_databases
from tests.matrix import BACKENDS, require, selected_backends
from tests.runner_suite import exit_after_session, sample_cases
from tests.running import run_command
from transactional_testcase import provisioning

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_MODULE = sample_cases.__name__
SAMPLE_PATH = Path(sample_cases.__file__).resolve().relative_to(ROOT).as_posix()
TIMEOUT = 120.0


class Summary(t.NamedTuple):
    """What a runner's output says about a run."""

    ran: int
    passed: int
    counts: dict[str, int]  # failures, errors, skipped... as the runner names them
    failed: list[str]  # ``Class.method`` of each failed test
    errored: list[str]  # whatever the runner names each error after


# -- runners -----------------------------------------------------------------------------


class Runner(t.NamedTuple):
    """A command line that runs the sample suite, and how to read its output."""

    name: str
    argv: list[str]
    parallel: bool
    parse: t.Callable[[str], Summary]
    env: tuple[tuple[str, str], ...] = ()  # extra environment variables


def parse_unittest(output: str) -> Summary:
    """Read unittest's (and nose2's) ``Ran N tests`` / ``OK`` / ``FAILED (...)`` lines."""
    ran = re.findall(r"^Ran (\d+) tests? in [\d.]+s$", output, re.MULTILINE)
    status = re.findall(r"^(OK|FAILED)(?: \(([^)]*)\))?$", output, re.MULTILINE)
    if len(ran) != 1 or not status:
        raise AssertionError(f"no unittest summary in the output:\n{output}")
    counts = {k.strip(): int(v) for k, v in re.findall(r"([\w ]+)=(\d+)", status[-1][1])}
    total = int(ran[0])
    not_passed = sum(
        counts.get(k, 0)
        for k in ("failures", "errors", "skipped", "expected failures", "unexpected successes")
    )
    failed = [
        ".".join(m.split(".")[-2:]) for m in re.findall(r"^FAIL: \w+ \(([\w.]+)\)", output, re.MULTILINE)
    ]
    errored = re.findall(r"^ERROR: (.+)$", output, re.MULTILINE)
    return Summary(total, max(total - not_passed, 0), counts, failed, errored)


def parse_unittest_parallel(output: str) -> Summary:
    """unittest-parallel prints unittest's summary, but its failure headers lack ``FAIL:``."""
    summary = parse_unittest(output)
    headers = re.findall(r"^=+\n(?:(FAIL|ERROR): )?\w+ \(([\w.]+)\)", output, re.MULTILINE)
    if summary.counts.get("errors"):
        return summary
    failed = [".".join(name.split(".")[-2:]) for kind, name in headers if kind != "ERROR"]
    return summary._replace(failed=failed)


def parse_pytest(output: str) -> Summary:
    """Read pytest's final ``== N passed, M failed in Xs ==`` line and its ``-rfE`` summary."""
    lines = re.findall(r"^=+ (.+) in [\d.]+s(?: \([^)]*\))? =+$", output, re.MULTILINE)
    if not lines:
        raise AssertionError(f"no pytest summary in the output:\n{output}")
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", lines[-1])}
    counts["errors"] = counts.pop("error", 0) + counts.pop("errors", 0)
    passed = counts.get("passed", 0)
    ran = passed + counts.get("failed", 0) + counts.get("skipped", 0)
    failed = [".".join(m.split("::")[-2:]) for m in re.findall(r"^FAILED (\S+)", output, re.MULTILINE)]
    errored = re.findall(r"^ERROR (\S+)", output, re.MULTILINE)
    return Summary(ran, passed, counts, failed, errored)


_PY = [sys.executable, "-m"]
_WORKERS = str(sample_cases.PARALLEL_WORKERS)
_NOSE2 = [*_PY, "nose2", "--no-user-config", "-v", "-t", ".", SAMPLE_MODULE]
_PYTEST = [*_PY, "pytest", "-p", "no:cacheprovider", "-rfE", SAMPLE_PATH]
# Autoloading every installed plugin (hypothesis, Faker, pytest-benchmark here)
# doubles pytest's start-up and has nothing to do with the library: load only
# the plugin a run needs.
_PYTEST_ENV = (("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1"),)
PLUGIN = "transactional_testcase.pytest_plugin"
#: A plugin of the sample suite's: the process ends with ``os._exit`` once the
#: session has ended, as a worker killed at its exit deadline would.
EXIT_AFTER_SESSION = exit_after_session.__name__

RUNNERS: dict[str, Runner] = {
    r.name: r
    for r in [
        # unittest's own discovery, pointed at the folder with a pattern of its own.
        Runner(
            "unittest",
            [*_PY, "unittest", "discover", "-v", "-s", "tests/runner_suite", "-t", ".", "-p", "sample_*.py"],
            False,
            parse_unittest,
        ),
        Runner("nose2", _NOSE2, False, parse_unittest),
        Runner("nose2mp", [*_NOSE2, "--plugin", "nose2.plugins.mp", "-N", _WORKERS], True, parse_unittest),
        # pytest collects a file named on its command line whatever python_files says.
        Runner("pytest", _PYTEST, False, parse_pytest, _PYTEST_ENV),
        # The library's plugin, as pytest's autoload would bring it: workers drop
        # their databases at the session's end, before xdist's 10 s exit deadline.
        Runner(
            "xdist",
            [*_PYTEST, "-p", "xdist.plugin", "-p", PLUGIN, "-n", _WORKERS],
            True,
            parse_pytest,
            _PYTEST_ENV,
        ),
        # unittest-parallel hands out whole modules by default: one module here,
        # so split by class to keep both workers busy.
        Runner(
            "unittest_parallel",
            [
                *_PY,
                "unittest_parallel",
                "-j",
                _WORKERS,
                "--level",
                "class",
                "-v",
                "-s",
                "tests/runner_suite",
                "-t",
                ".",
                "-p",
                "sample_*.py",
            ],
            True,
            parse_unittest_parallel,
        ),
    ]
}


def expected_tests() -> int:
    """How many tests the sample module holds, counted by unittest's loader."""
    # A loader of our own: the default one carries the outer runner's -k patterns.
    count = unittest.TestLoader().loadTestsFromName(SAMPLE_MODULE).countTestCases()
    assert count > 1, f"{SAMPLE_MODULE} holds {count} tests"
    return count


# -- databases, seen with connections of our own -------------------------------------------


def drop_server_databases(url: sa.URL, *prefixes: str) -> None:
    """Drop every database whose name starts with one of ``prefixes`` (ours: test databases)."""
    names = {n for p in prefixes for n in server_databases(url, p)}
    assert all("test" in n for n in names), names
    for name in names:
        drop_database(url.set(database=name), force=True)


def template_prefixes(url: sa.URL) -> list[str]:
    """Name prefixes of the templates the library builds for a run's two databases.

    Only for cleaning up: a worker that never drops its databases at exit
    leaves its templates behind too. The naming is the library's own (private)
    business; without it there is nothing to clean here.
    """
    prefix = getattr(provisioning, "_template_prefix", None)
    if prefix is None:
        return []
    audit = url.set(database=f"{url.database}{sample_cases.AUDIT_SUFFIX}")
    # The sample suite builds with create_all() (alembic_config = False).
    return [prefix(url, None, "create_all"), prefix(audit, "audit", "create_all")]


# -- one run ---------------------------------------------------------------------------------


class Run(t.NamedTuple):
    """One finished run of the sample suite, and where its databases were."""

    runner: Runner
    returncode: int
    output: str
    summary: Summary
    used: dict[str, set[int]]  # database URL -> pids of the processes that used it
    url: sa.URL | None  # TEST_DATABASE_URL given to the run (None: SQLite)
    base: str  # every server database of the run starts with this name
    tmp: str  # the run's TMPDIR, where SQLite databases go

    @property
    def context(self) -> str:
        return f"\n--- {self.runner.name} output ---\n{self.output}"


class RunnerMatrix(unittest.TestCase):
    """Base of the per-backend classes; test methods are added by :func:`_add_tests`."""

    backend: t.ClassVar[str]
    expected: t.ClassVar[int]
    #: ``TT_RUNNER_SUITE_APP`` for the sample suite ("": the Flask-SQLAlchemy shop),
    #: and a short tag of it for database names.
    app: t.ClassVar[str] = ""
    app_tag: t.ClassVar[str] = ""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        if cls.backend not in {b.name for b in selected_backends()}:
            raise unittest.SkipTest(
                f"{cls.backend} is not in TT_TEST_BACKENDS={os.environ.get('TT_TEST_BACKENDS')}; "
                "add it (or unset the variable) to run these tests"
            )
        require(cls.backend)
        cls.expected = expected_tests()

    def check_passes(self, runner: Runner) -> None:
        run = self.run_sample(runner, fail=False)
        self.assertEqual(run.summary.errored, [], run.context)
        self.assertEqual(run.summary.failed, [], run.context)
        self.assertEqual((run.summary.ran, run.summary.passed), (self.expected, self.expected), run.context)
        self.assertEqual(run.returncode, 0, run.context)
        self.check_databases(run)

    def check_reports_one_failure(self, runner: Runner) -> None:
        run = self.run_sample(runner, fail=True)
        self.assertEqual(run.summary.errored, [], run.context)
        self.assertEqual(run.summary.failed, [sample_cases.DELIBERATE_FAILURE], run.context)
        self.assertIn(sample_cases.FAILURE_MESSAGE, run.output)
        self.assertEqual(
            (run.summary.ran, run.summary.passed), (self.expected, self.expected - 1), run.context
        )
        self.assertNotEqual(run.returncode, 0, run.context)
        self.check_databases(run)

    def run_sample(self, runner: Runner, *, fail: bool) -> Run:
        """Run the sample suite under ``runner``, in an environment of its own."""
        # The pid keeps two runs of this module (two sessions, or a parallel
        # runner running it) off each other's databases.
        # MySQL takes names of 64 characters at most: with a 7-digit pid,
        # unittest_parallel, mysqlclient and "_audit_p2", this is 63.
        kind = f"{'fail' if fail else 'pass'}{self.app_tag and '_' + self.app_tag}"
        base = f"tt_run_{os.getpid()}_{runner.name}_{kind}_{self.backend}_test"
        server_url = BACKENDS[self.backend].url_for(base)
        url = None if server_url is None else sa.make_url(server_url)
        work = tempfile.mkdtemp(prefix="tt_runner_")
        self.addCleanup(shutil.rmtree, work, True)
        tmp, cache, report = (os.path.join(work, n) for n in ("tmp", "cache", "report"))
        os.mkdir(tmp)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTEST_", "TT_RUNNER_SUITE_", "TRANSACTIONAL_TESTCASE_"))
            and k != "TEST_DATABASE_URL"
        }
        env.update(
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
            TMPDIR=tmp,  # SQLite databases land here: checked for leftovers
            TRANSACTIONAL_TESTCASE_CACHE=cache,  # SQLite templates too, not in ~/.cache
            TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES="0",  # leave no template on the servers
            **{sample_cases.REPORT_ENV: report},
            **dict(runner.env),
        )
        if runner.parallel:
            workers = os.path.join(work, "workers")
            os.mkdir(workers)
            env[sample_cases.WORKERS_ENV] = workers
        if fail:
            env[sample_cases.FAIL_ENV] = "1"
        if self.app:
            env[sample_cases.APP_ENV] = self.app
        if url is not None:
            env["TEST_DATABASE_URL"] = url.render_as_string(hide_password=False)
            ours = [base, *template_prefixes(url)]
            drop_server_databases(url, *ours)  # leftovers of a killed run with our pid
            self.addCleanup(drop_server_databases, url, *ours)

        returncode, output = run_command(runner.argv, env, ROOT, TIMEOUT)
        used: dict[str, set[int]] = defaultdict(set)
        if os.path.exists(report):
            with open(report, encoding="utf-8") as f:
                for line in f.read().splitlines():
                    pid, used_url = line.split(" ", 1)
                    used[used_url].add(int(pid))
        return Run(runner, returncode, output, runner.parse(output), dict(used), url, base, tmp)

    def check_databases(self, run: Run) -> None:
        """Each process had databases of its own, and none is left now that the run ended."""
        self.assertTrue(run.used, "the sample classes reported no database" + run.context)
        pids = set().union(*run.used.values())
        for used_url, users in run.used.items():
            self.assertEqual(len(users), 1, f"{used_url} was used by processes {users}" + run.context)
        for pid in pids:  # the default database and the audit bind's
            self.assertEqual(sum(pid in users for users in run.used.values()), 2, run.context)
        if run.runner.parallel:
            self.assertGreaterEqual(len(pids), 2, "the tests did not run in two workers" + run.context)
        else:
            self.assertEqual(len(pids), 1, run.context)
        names = sorted(u.database or "" for u in map(sa.make_url, run.used))
        left = self.leftovers(run)
        self.assertEqual(left, set(), f"databases left after the run (it used {names})" + run.context)

    def leftovers(self, run: Run) -> set[str]:
        """The run's databases (SQLite files and temporary folders) that still exist."""
        used = [sa.make_url(u) for u in run.used]
        if run.url is None:
            for url in used:
                path = url.database or ""
                self.assertEqual(url.get_backend_name(), "sqlite")
                self.assertTrue(path.startswith(run.tmp + os.sep), f"{path} is outside {run.tmp}")
            files = {u.database or "" for u in used if os.path.exists(u.database or "")}
            return files | {n for n in os.listdir(run.tmp) if n.startswith("transactional_testcase")}
        for url in used:
            self.assertEqual(url.drivername, run.url.drivername)
            self.assertEqual((url.host, url.port), (run.url.host, run.url.port))
            self.assertTrue((url.database or "").startswith(run.base), url.database)
        return server_databases(run.url, run.base)


_MatrixBase = RunnerMatrix if t.TYPE_CHECKING else object  # a mixin: not collected by itself


def _add_tests(
    cls: type[RunnerMatrix] | None = None, *, parallel_passes_only: bool = False, passes_only: bool = False
) -> t.Any:
    """Add a test per runner (passing run and deliberate failure) to a per-backend class.

    ``parallel_passes_only``: the parallel runners' passing runs alone (worker
    names and dropping, for the other drivers of a server); ``passes_only``:
    every runner's passing run alone.
    """

    def add(cls: type[RunnerMatrix]) -> type[RunnerMatrix]:
        for runner in RUNNERS.values():
            if parallel_passes_only and not runner.parallel:
                continue

            def passes(self: RunnerMatrix, runner: Runner = runner) -> None:
                self.check_passes(runner)

            passes.__doc__ = f"{runner.name}: every sample test passes, exit code 0, databases dropped."
            setattr(cls, f"test_{runner.name}_passes", passes)
            if parallel_passes_only or passes_only:
                continue

            def reports_one_failure(self: RunnerMatrix, runner: Runner = runner) -> None:
                self.check_reports_one_failure(runner)

            reports_one_failure.__doc__ = (
                f"{runner.name}: the deliberate failure is the one failure reported."
            )
            setattr(cls, f"test_{runner.name}_reports_one_failure", reports_one_failure)
        return cls

    return add if cls is None else add(cls)


class PytestPluginChecks(_MatrixBase):
    """The library's pytest plugin drops the databases when the session ends, not at exit."""

    def run_dying_after_session(self, *plugins: str) -> Run:
        """Run the sample suite under pytest, the process ending with ``os._exit`` after the session."""
        argv = [*_PYTEST, *(a for p in plugins for a in ("-p", p)), "-p", EXIT_AFTER_SESSION]
        run = self.run_sample(Runner("pytest_dying", argv, False, parse_pytest, _PYTEST_ENV), fail=False)
        self.assertEqual((run.summary.ran, run.summary.passed), (self.expected, self.expected), run.context)
        self.assertIn(exit_after_session.MESSAGE, run.output)
        return run

    def test_pytest_plugin_drops_before_exit(self) -> None:
        """A pytest process that dies right after its session leaves nothing, with the plugin."""
        # No exit handler runs after os._exit: what the plugin dropped is all that is gone.
        self.check_databases(self.run_dying_after_session(PLUGIN))

    def test_without_the_plugin_such_a_process_leaves_its_databases(self) -> None:
        """Control: without the plugin the same death leaves the databases (dropped at exit only)."""
        run = self.run_dying_after_session()
        self.assertTrue(run.used, "the sample classes reported no database" + run.context)
        self.assertNotEqual(self.leftovers(run), set(), run.context)  # run_sample's cleanup drops them


@_add_tests
class RunnersOnSQLite(PytestPluginChecks, RunnerMatrix):
    backend = "sqlite"


@_add_tests
class RunnersOnPsycopg2(PytestPluginChecks, RunnerMatrix):
    backend = "psycopg2"


@_add_tests
class RunnersOnPyMySQL(PytestPluginChecks, RunnerMatrix):
    backend = "pymysql"


@_add_tests(parallel_passes_only=True)
class ParallelRunnersOnPsycopg(RunnerMatrix):
    backend = "psycopg"


@_add_tests(parallel_passes_only=True)
class ParallelRunnersOnMysqlclient(RunnerMatrix):
    backend = "mysqlclient"


# -- a SIGTERM whose handler never ran -------------------------------------------------------


def _worker_with_lost_sigterm(report: Connection) -> None:
    """A pool worker's last moments, with the one-run-in-twenty timing made certain.

    It has something to drop at exit (a temporary folder), then waits for a
    lock no one releases, as an idle pool worker waits for the queue lock that
    ``Pool.terminate()`` keeps. ``interrupt_main`` leaves SIGTERM's handler
    pending without interrupting that wait, as a real SIGTERM does when it
    lands just before the wait begins.
    """
    folder = os.path.dirname(sa.make_url(provisioning.provisioner.default_sqlite_url()).database or "")
    pid = os.fork()
    if pid == 0:  # a fork of the worker inherits neither its handler nor its wakeup fd
        fresh = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and signal.set_wakeup_fd(-1) == -1
        os._exit(0 if fresh else 1)
    report.send((folder, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])))
    report.close()
    lock = multiprocessing.get_context("spawn").Lock()
    lock.acquire()

    def terminate() -> None:
        time.sleep(0.5)  # the main thread waits for the lock by now
        _thread.interrupt_main(signal.SIGTERM)

    threading.Thread(target=terminate, daemon=True).start()
    lock.acquire()  # for ever, unless SIGTERM interrupts the wait


class LostSigtermTest(unittest.TestCase):
    """unittest-parallel's hang at pool shutdown: a terminated worker that never handled SIGTERM."""

    def test_worker_exits_and_drops(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        reader, writer = ctx.Pipe(duplex=False)
        worker = ctx.Process(target=_worker_with_lost_sigterm, args=(writer,))
        worker.start()
        self.addCleanup(worker.kill)
        writer.close()
        self.assertTrue(reader.poll(TIMEOUT), "the worker never reported")
        folder, forked = reader.recv()
        self.addCleanup(shutil.rmtree, folder, True)
        worker.join(TIMEOUT / 4)
        self.assertIsNotNone(worker.exitcode, "the worker still waits: its SIGTERM was never handled")
        self.assertEqual(worker.exitcode, 128 + signal.SIGTERM)  # the handler's SystemExit
        self.assertFalse(os.path.exists(folder), f"{folder} was not removed at exit")
        self.assertEqual(forked, 0, "a fork of the worker inherited its SIGTERM handling")
