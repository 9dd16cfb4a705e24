"""The pytest plugin: free until used, and its fixtures for function-style tests.

The fixtures are run the way users run them, in pytest subprocesses over
``tests/pytest_suite/sample_functions.py`` (see its docstring), on SQLite,
PostgreSQL (psycopg2) and MariaDB (PyMySQL), with plain pytest and with
``pytest -n 2``; each run is checked as ``test_runners`` checks the class
runs: the summary, the exit code, one set of databases per process, and
nothing left once the run has ended.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import typing as t
import unittest
from collections import defaultdict

import sqlalchemy as sa

from tests.admin import server_databases
from tests.matrix import BACKENDS, require, selected_backends
from tests.pytest_suite import configure, sample_functions
from tests.runner_suite import sample_cases
from tests.running import run_command
from tests.test_runners import ROOT, TIMEOUT, drop_server_databases, parse_pytest, template_prefixes

PLUGIN = "transactional_testcase.pytest_plugin"
SAMPLE_PATH = os.path.relpath(sample_functions.__file__, ROOT)
#: Tests in the sample module.
EXPECTED = sum(1 for name in vars(sample_functions) if name.startswith("test_"))
_PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfE", "-p", PLUGIN]
#: The class named by the ini option, as a user without a conftest.py would.
_INI = ["-o", f"transactional_testcase_class={sample_functions.__name__}:FunctionsBase"]
#: The class named by a fixture, as in a conftest.py.
_CONFTEST = ["-p", configure.__name__]
_XDIST = ["-p", "xdist.plugin", "-n", "2"]


_Base = unittest.TestCase if t.TYPE_CHECKING else object  # a mixin: not collected by itself


def _clean_env(*paths: str, **extra: str) -> dict[str, str]:
    """This environment without the runners' and the library's variables, ``paths`` and the project first on the path."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "TT_PYTEST_SUITE_", "TRANSACTIONAL_TESTCASE_"))
        and k != "TEST_DATABASE_URL"
    }
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in (*paths, str(ROOT), env.get("PYTHONPATH")) if p),
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        **extra,
    )
    return env


class ImportCostTest(unittest.TestCase):
    """Loading the plugin, as pytest does in every run, imports nothing heavy."""

    def test_importing_the_plugin_imports_nothing_heavy(self) -> None:
        code = (
            "import sys, transactional_testcase.pytest_plugin\n"
            "heavy = ('flask', 'sqlalchemy', 'alembic', 'werkzeug', 'transactional_testcase.testcase',"
            " 'transactional_testcase.provisioning', 'transactional_testcase.pytest_fixtures')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, check=True
        )
        self.assertEqual(out.stdout.strip(), "[]", out.stderr)

    def test_the_package_still_exports_its_names(self) -> None:
        code = (
            "import transactional_testcase as tt\n"
            "print(tt.TransactionalTestCase.__module__, tt.IsolationError.__module__,"
            " tt.provisioning.__name__, 'TransactionalTestCase' in dir(tt))\n"
            "from transactional_testcase import CommittingTestCase, MigrationsTestCase\n"
            "try:\n    tt.no_such_name\nexcept AttributeError as e:\n    print(e)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=_clean_env(), capture_output=True, text=True, check=True
        )
        self.assertEqual(
            out.stdout.splitlines(),
            [
                "transactional_testcase.testcase transactional_testcase.errors "
                "transactional_testcase.provisioning True",
                "module 'transactional_testcase' has no attribute 'no_such_name'",
            ],
        )

    def test_every_public_name_is_listed_once_for_each_reader(self) -> None:
        """``__all__`` (star imports, docs), ``_EXPORTS`` (the lazy import) and the type checkers' imports agree.

        The three are lists of one set of names because a static checker reads
        only a literal ``__all__`` and plain imports: this keeps them one.
        """
        import ast

        import transactional_testcase as tt

        with open(tt.__file__) as f:
            tree = ast.parse(f.read())
        checked: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and ast.unparse(node.test) == "t.TYPE_CHECKING":
                for statement in node.body:
                    assert isinstance(statement, ast.ImportFrom)
                    checked.update({alias.name: statement.module or "" for alias in statement.names})
        self.assertEqual(sorted(tt.__all__), sorted(tt._EXPORTS))
        self.assertEqual(checked, tt._EXPORTS)
        for name in tt.__all__:
            self.assertEqual(getattr(tt, name).__module__.rsplit(".", 1)[-1], tt._EXPORTS[name], name)

    def test_a_run_without_the_library_never_imports_it(self) -> None:
        """A session that used no fixture and no class ends without importing the library."""
        folder = tempfile.mkdtemp(prefix="tt_plugin_")
        self.addCleanup(shutil.rmtree, folder, True)
        with open(os.path.join(folder, "test_plain.py"), "w", encoding="utf-8") as f:
            f.write("def test_plain():\n    assert True\n")
        with open(os.path.join(folder, "report_modules.py"), "w", encoding="utf-8") as f:
            f.write(
                textwrap.dedent(
                    """
                    import sys

                    def pytest_unconfigure(config):
                        names = ("flask", "sqlalchemy", "transactional_testcase.provisioning")
                        print("IMPORTED:", sorted(m for m in names if m in sys.modules))
                    """
                )
            )
        env = _clean_env(folder)
        argv = [*_PYTEST, "-p", "report_modules", "-s", "test_plain.py"]
        out = subprocess.run(argv, env=env, cwd=folder, capture_output=True, text=True, check=False)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("IMPORTED: []", out.stdout)

    def test_fixtures_without_a_class_say_how_to_configure_one(self) -> None:
        argv = [*_PYTEST, f"{SAMPLE_PATH}::test_app"]
        returncode, output = run_command(argv, _clean_env(), ROOT, TIMEOUT)
        self.assertNotEqual(returncode, 0, output)
        self.assertIn("define the session fixture transactional_testcase_class in conftest.py", output)
        self.assertIn("1 error", output)


class FixtureRuns(_Base):
    """Base of the per-backend classes: the sample functions under pytest and pytest-xdist."""

    backend: t.ClassVar[str]
    #: ``lite``: the shop app's Flask-SQLAlchemy-Lite twin.
    extension: t.ClassVar[str] = ""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        if cls.backend not in {b.name for b in selected_backends()}:
            raise unittest.SkipTest(f"{cls.backend} is not in TT_TEST_BACKENDS")
        require(cls.backend)

    def run_sample(
        self, name: str, argv: list[str], *, fail: bool = False
    ) -> tuple[str, dict[str, set[int]]]:
        """Run pytest over the sample module; its output and, per database URL, the pids that used it."""
        base = f"tt_fixtures_{os.getpid()}_{name}{self.extension}_{self.backend}_test"
        server_url = BACKENDS[self.backend].url_for(base)
        url = None if server_url is None else sa.make_url(server_url)
        work = tempfile.mkdtemp(prefix="tt_fixtures_")
        self.addCleanup(shutil.rmtree, work, True)
        tmp, report = os.path.join(work, "tmp"), os.path.join(work, "report")
        os.mkdir(tmp)
        env = _clean_env(
            TMPDIR=tmp,
            TRANSACTIONAL_TESTCASE_CACHE=os.path.join(work, "cache"),
            TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES="0",
            **{sample_functions.REPORT_ENV: report},
        )
        if fail:
            env[sample_functions.FAIL_ENV] = "1"
        if self.extension:
            env[sample_functions.EXTENSION_ENV] = self.extension
        if url is not None:
            env["TEST_DATABASE_URL"] = url.render_as_string(hide_password=False)
            ours = [base, *template_prefixes(url)]
            drop_server_databases(url, *ours)
            self.addCleanup(drop_server_databases, url, *ours)
        returncode, output = run_command([*_PYTEST, *argv, SAMPLE_PATH], env, ROOT, TIMEOUT)
        context = f"\n--- pytest {' '.join(argv)} ---\n{output}"
        summary = parse_pytest(output)
        used: dict[str, set[int]] = defaultdict(set)
        with open(report, encoding="utf-8") as f:
            for line in f.read().splitlines():
                pid, used_url = line.split(" ", 1)
                used[used_url].add(int(pid))
        self.assertEqual(summary.errored, [], context)
        if fail:
            self.assertEqual(summary.failed, [f"{SAMPLE_PATH}.test_a_deliberate_failure"], context)
            self.assertIn(sample_functions.FAILURE_MESSAGE, output)
            self.assertNotEqual(returncode, 0, context)
        else:
            self.assertEqual(summary.failed, [], context)
            self.assertEqual(returncode, 0, context)
        self.assertEqual((summary.ran, summary.passed), (EXPECTED, EXPECTED - fail), context)
        # One set of databases per process (the default one and the audit bind's), none left.
        for used_url, users in used.items():
            self.assertEqual(len(users), 1, f"{used_url} was used by {users}" + context)
        pids = set().union(*used.values())
        self.assertEqual(len(used), 2 * len(pids), context)
        if url is None:
            left = {u for u in used if os.path.exists(sa.make_url(u).database or "")}
            left |= {n for n in os.listdir(tmp) if n.startswith("transactional_testcase")}
        else:
            left = server_databases(url, base)
        self.assertEqual(left, set(), "databases left after the run" + context)
        return output, used

    def test_pytest(self) -> None:
        """Plain pytest, the class named in a conftest-style fixture: isolation, session data, client, counting."""
        _, used = self.run_sample("plain", _CONFTEST)
        self.assertEqual(len(set().union(*used.values())), 1)

    def test_pytest_reports_one_failure(self) -> None:
        """A test that commits and fails is reported as the one failure; the next test is isolated."""
        self.run_sample("fail", _INI, fail=True)

    def test_xdist(self) -> None:
        """pytest -n 2, the class named by the ini option: each worker its own databases, all dropped."""
        output, used = self.run_sample("xdist", [*_XDIST, "--dist", "load", *_INI])
        self.assertGreaterEqual(len(set().union(*used.values())), 2, output)
        names = {sa.make_url(u).database or "" for u in used}
        if self.backend != "sqlite":
            self.assertTrue(all(n.endswith(("_gw0", "_gw1")) for n in names), names)


class FixturesOnSQLite(FixtureRuns, unittest.TestCase):
    backend = "sqlite"


class FixturesOnPsycopg2(FixtureRuns, unittest.TestCase):
    backend = "psycopg2"


class FixturesOnPyMySQL(FixtureRuns, unittest.TestCase):
    backend = "pymysql"


class MixedSessionTest(unittest.TestCase):
    """Function tests and unittest classes of the same ``db`` in one session, in either order."""

    def test_unittest_classes_before_and_after_function_tests(self) -> None:
        cases = os.path.relpath(sample_cases.__file__, ROOT)
        expected = EXPECTED + unittest.TestLoader().loadTestsFromModule(sample_cases).countTestCases()
        for order in ([SAMPLE_PATH, cases], [cases, SAMPLE_PATH]):
            work = tempfile.mkdtemp(prefix="tt_mixed_")
            self.addCleanup(shutil.rmtree, work, True)
            env = _clean_env(TMPDIR=work, TRANSACTIONAL_TESTCASE_CACHE=os.path.join(work, "cache"))
            returncode, output = run_command([*_PYTEST, *_CONFTEST, *order], env, ROOT, TIMEOUT)
            summary = parse_pytest(output)
            # Without the class stepping aside, the unittest classes' redirect lands on the
            # fixtures' and their tests fail.
            self.assertEqual((summary.ran, summary.passed, returncode), (expected, expected, 0), output)
            self.assertEqual([n for n in os.listdir(work) if n.startswith("transactional_testcase")], [])
