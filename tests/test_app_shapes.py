"""The shapes of app users bring, and how they hand it to the library.

* an app built at import (no factory), named with ``flask_app`` or found as
  ``app.py``: its engines pointed at the test databases for the class, then
  restored, the engines it built at import never connected;
* no ``create_app`` at all: the tutorial's ``create_app(test_config=None)``
  found through ``FLASK_APP``, handed the test configuration;
* factories that take a config name or class (the Flask book's), through
  :func:`~transactional_testcase.config_class` and
  :func:`~transactional_testcase.registered_config`;
* the errors before any test: nothing found, a ``create_app`` that is an
  instance method, lacks ``@classmethod`` or takes no config, engines that
  ignore the URL handed over under a parallel runner or in memory. None of
  them shows a password.

The fixture apps are in ``tests/apps/shapes`` (see its README) and
``tests/apps/book.py``. The last part runs the shapes' own sample suites under
unittest, nose2, pytest and pytest-xdist in subprocesses, as
``tests/test_runners.py`` runs its sample suite.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import sys
import tempfile
import typing as t
import unittest
from collections import defaultdict
from pathlib import Path
from unittest import mock

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

import transactional_testcase as tt
from tests.admin import drop_database, server_databases
from tests.apps import book, plain_alembic
from tests.matrix import BACKENDS, OuterCase, bind_url, generate_per_backend, require, require_driver
from tests.running import run_case, run_command, transcript
from tests.test_runners import ROOT, TIMEOUT, parse_pytest, parse_unittest
from transactional_testcase import ConfigurationError, UnsafeDatabaseError, app_testcase
from transactional_testcase.provisioning import provisioner

SHAPES = ROOT / "tests" / "apps" / "shapes"
TUTORIAL, LEGACY = SHAPES / "tutorial", SHAPES / "legacy"
SECRET = "s3cr3t-pw"
LOGGER = "transactional_testcase"


def _import_legacy() -> t.Any:
    """The module-level app of ``shapes/legacy/app.py`` (imported under its own name, ``app``)."""
    if str(LEGACY) not in sys.path:
        sys.path.insert(0, str(LEGACY))
    return importlib.import_module("app")


def _environ(**values: str | None) -> mock._patch[t.Any]:
    """Patch the environment: None removes a variable."""
    env = {k: v for k, v in os.environ.items() if k not in values}
    env.update({k: v for k, v in values.items() if v is not None})
    return mock.patch.dict(os.environ, env, clear=True)


def inner(
    name: str, base: type = tt.TransactionalTestCase, **attributes: t.Any
) -> type[tt.TransactionalTestCase]:
    """An inner test case class with one passing test."""
    namespace = {"__module__": __name__, "__qualname__": name, "alembic_config": False, **attributes}
    namespace.setdefault("test_nothing", lambda self: None)
    return type(name, (base,), namespace)


def setup_error(test: unittest.TestCase, case: type[unittest.TestCase], error: type[BaseException]) -> str:
    """The message of the one error ``case``'s setUpClass raised (asserted to be ``error``)."""
    result = run_case(case)
    test.assertEqual((result.testsRun, len(result.raised)), (0, 1), transcript(result))
    raised = result.raised[0].exception
    test.assertIsInstance(raised, error, transcript(result))
    test.assertIsNone(raised.__cause__)
    return str(raised)


def with_password(url: str) -> str:
    """``url`` with a user and :data:`SECRET` as password (never reaching a server in these tests)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return url
    return parsed.set(username=parsed.username or "user", password=SECRET).render_as_string(
        hide_password=False
    )


# -- in one process: apps built at import ----------------------------------------------------------


class ModuleLevelApp:
    """An app built at import, named by ``flask_app``: every bind pointed at test databases, then restored."""

    backend: t.ClassVar[t.Any]

    def case(self, **attributes: t.Any) -> type[tt.TransactionalTestCase]:
        legacy = _import_legacy()
        url = self.backend.url or provisioner.default_sqlite_url()
        audit = bind_url(self.backend, "legacy_audit")

        def test_both_binds(case: tt.TransactionalTestCase) -> None:
            case.assertIs(case.app, legacy.app)
            case.assertTrue(case.app.config["TESTING"])
            case.assertEqual(case.app.config["SQLALCHEMY_DATABASE_URI"], url)
            response = case.client.post("/notes", json={"text": "x"})
            case.assertEqual(response.get_json(), {"notes": 1, "audit": 1})
            urls = {k: e.url.render_as_string(hide_password=False) for k, e in case.db.engines.items()}
            case.assertEqual(sa.make_url(urls[None]).database, sa.make_url(url).database)
            case.assertEqual(sa.make_url(urls["audit"]).database, sa.make_url(audit).database)

        def test_rolled_back(case: tt.TransactionalTestCase) -> None:
            case.assertEqual(legacy.count(legacy.Note), 0)
            case.assertEqual(legacy.count(legacy.AuditEntry), 0)

        return inner(
            f"Legacy_{self.backend.name}",
            database_url=url,
            binds={"audit": audit},
            test_both_binds=test_both_binds,
            test_rolled_back=test_rolled_back,
            **attributes,
        )

    def check(self: t.Any, case: type[tt.TransactionalTestCase]) -> list[str]:
        legacy = _import_legacy()
        with self.assertLogs(LOGGER, logging.INFO) as logs:
            result = run_case(case)
        self.assertEqual((result.testsRun, result.raised), (3, []), transcript(result))
        legacy.check_restored()  # own engines and config back, never connected
        self.assertNotIn("app", case.__dict__)
        return logs.output

    def test_flask_app_object(self: t.Any) -> None:
        legacy = _import_legacy()
        logs = self.check(self.case(flask_app=legacy.app))
        said = "\n".join(logs)
        self.assertIn("flask_app", said)
        self.assertIn("pointed at the test databases", said)

    def test_flask_app_import_path(self: t.Any) -> None:
        _import_legacy()
        logs = self.check(self.case(flask_app="app:app"))
        self.assertIn("the app app:app (Legacy_", "\n".join(logs))

    def test_test_engines_disposed(self: t.Any) -> None:
        """The engines made for the class are gone after it (or kept by the connection keeper)."""
        legacy = _import_legacy()
        made: list[sa.Engine] = []
        real = app_testcase.PointedEngines.__init__

        def spy(pointed: t.Any, *args: t.Any, **kwargs: t.Any) -> None:
            real(pointed, *args, **kwargs)
            made.extend(pointed.test.values())

        with mock.patch.object(app_testcase.PointedEngines, "__init__", spy):
            self.check(self.case(flask_app=legacy.app))
        self.assertEqual(len(made), 2)
        for engine in made:
            self.assertEqual(engine.pool.checkedout(), 0)


generate_per_backend(ModuleLevelApp, OuterCase)


# -- in one process: found as the flask command finds it -------------------------------------------


class TutorialDiscovery:
    """No create_app, no flask_app: ``FLASK_APP`` names the tutorial's package; its factory gets the config."""

    backend: t.ClassVar[t.Any]

    def test_found_through_flask_app(self: t.Any) -> None:
        url = self.backend.url or provisioner.default_sqlite_url()

        def test_factory_got_config(case: tt.TransactionalTestCase) -> None:
            case.assertEqual(case.app.name, "flaskr")
            case.assertEqual(case.db.engine.url.database, sa.make_url(url).database)  # handed over
            case.assertEqual(case.client.get("/posts/count").get_json(), {"count": 0})

        case = inner(
            f"Tutorial_{self.backend.name}", database_url=url, test_factory_got_config=test_factory_got_config
        )
        with _environ(FLASK_APP=str(TUTORIAL / "flaskr")), self.assertLogs(LOGGER, logging.INFO) as logs:
            result = run_case(case)
        self.assertEqual((result.testsRun, result.raised), (2, []), transcript(result))
        said = "\n".join(logs.output)
        self.assertIn("the factory flaskr:create_app(config), handed the test configuration", said)
        self.assertIn(f"FLASK_APP={TUTORIAL / 'flaskr'}", said)
        self.assertNotIn("pointed at the test databases", said)


generate_per_backend(TutorialDiscovery, OuterCase)


# -- in one process: factories that take a config name or class ------------------------------------


class BookFactories:
    """The Flask book's ``create_app('testing')``: the test configuration through the helpers."""

    backend: t.ClassVar[t.Any]

    def run_book(self: t.Any, create_app: t.Callable[..., Flask]) -> None:
        url = self.backend.url or provisioner.default_sqlite_url()

        def test_configured(case: tt.TransactionalTestCase) -> None:
            case.assertTrue(case.app.config["INIT_APP_CALLED"])  # the base class's init_app ran
            case.assertEqual(case.app.config["SECRET_KEY"], "book")
            case.assertEqual(sa.make_url(str(case.app.config["SQLALCHEMY_DATABASE_URI"])), sa.make_url(url))
            case.db.session.add(book.Reader(name="r"))
            case.db.session.commit()

        case = inner(
            f"Book_{self.backend.name}",
            database_url=url,
            create_app=classmethod(lambda cls, config: create_app(config)),
            test_configured=test_configured,
        )
        # TestingConfig read TEST_DATABASE_URL at import: the helpers override it.
        result = run_case(case)
        self.assertEqual((result.testsRun, result.raised), (2, []), transcript(result))

    def test_registered_config(self: t.Any) -> None:
        def create_app(config: dict[str, t.Any]) -> Flask:
            with tt.registered_config(book.config, "testing", config) as name:
                self.assertIn(name, book.config)
                return book.create_app(name)

        self.run_book(create_app)
        self.assertEqual(set(book.config), {"development", "testing", "default"})

    def test_config_class(self: t.Any) -> None:
        self.run_book(lambda config: book.create_app_from(tt.config_class(book.TestingConfig, config)))


generate_per_backend(BookFactories, OuterCase)


class ConfigHelpers(unittest.TestCase):
    def test_config_class(self) -> None:
        made = tt.config_class(
            book.TestingConfig, {"SQLALCHEMY_DATABASE_URI": "sqlite:///x_test.db", "lower": 1}
        )
        self.assertTrue(issubclass(made, book.TestingConfig))
        self.assertEqual(made.SQLALCHEMY_DATABASE_URI, "sqlite:///x_test.db")  # type: ignore[attr-defined]
        self.assertFalse(hasattr(made, "lower"))
        self.assertEqual(
            book.TestingConfig.SQLALCHEMY_DATABASE_URI, book.TestingConfig.SQLALCHEMY_DATABASE_URI
        )

    def test_registered_config_unknown_name(self) -> None:
        with self.assertRaises(ConfigurationError) as cm, tt.registered_config(book.config, "test", {}):
            pass
        self.assertIn("'testing'", str(cm.exception))

    def test_registered_config_removed_after_an_error(self) -> None:
        with contextlib.suppress(RuntimeError), tt.registered_config(book.config, "testing", {}):
            raise RuntimeError
        self.assertEqual(set(book.config), {"development", "testing", "default"})


# -- errors before any test --------------------------------------------------------------------------

_PG_URL = f"postgresql+psycopg2://user:{SECRET}@127.0.0.1:1/ap_shapes_test"


class SetupErrors(unittest.TestCase):
    """One ConfigurationError naming the fix, and never the password of the URL handed over."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        require_driver("psycopg2")  # the URL handed over names it (its server is never reached)

    def error(self, case: type[unittest.TestCase], error: type[BaseException] = ConfigurationError) -> str:
        message = setup_error(self, case, error)
        self.assertNotIn(SECRET, message)
        return message

    def test_nothing_found(self) -> None:
        folder = tempfile.mkdtemp(prefix="ap_shapes_")
        self.addCleanup(shutil.rmtree, folder, True)
        cwd = os.getcwd()
        self.addCleanup(os.chdir, cwd)
        os.chdir(folder)
        with _environ(FLASK_APP=None):
            message = self.error(inner("NoApp", database_url=_PG_URL))
        for expected in (
            "NoApp names no app",
            "FLASK_APP",
            "wsgi.py or app.py",
            folder,
            "flask_app = 'myapp:app'",
            "create_app(cls, config)",
        ):
            self.assertIn(expected, message)

    def test_flask_app_module_without_an_app(self) -> None:
        with _environ(FLASK_APP="tests.apps.book_nothing_here"):
            message = self.error(inner("Missing", database_url=_PG_URL))
        self.assertIn("no module named 'tests.apps.book_nothing_here'", message)
        message = self.error(
            inner("NoAppInModule", database_url=_PG_URL, flask_app="tests.apps.plain_alembic.own_engine")
        )
        self.assertTrue("no module named" in message or "has no app" in message, message)

    def test_instance_method(self) -> None:
        message = self.error(
            inner("FlaskTesting", database_url=_PG_URL, create_app=lambda self: book.create_app("testing"))
        )
        self.assertIn("create_app(self) is an instance method (Flask-Testing's form)", message)
        self.assertIn("@classmethod\n    def create_app(cls, config):", message)

    def test_missing_classmethod(self) -> None:
        def create_app(cls: t.Any, config: t.Any) -> Flask:
            return book.create_app_from(tt.config_class(book.TestingConfig, config))

        message = self.error(inner("NoDecorator", database_url=_PG_URL, create_app=create_app))
        self.assertIn("create_app(cls, config) is missing @classmethod", message)

    def test_classmethod_without_config(self) -> None:
        message = self.error(
            inner(
                "NoConfig",
                database_url=_PG_URL,
                create_app=classmethod(lambda cls: book.create_app("testing")),
            )
        )
        self.assertIn("create_app(cls) takes no config", message)
        self.assertIn("flask_app", message)

    def test_discovered_factory_that_takes_a_name(self) -> None:
        module = "tests.apps.book"
        message = self.error(inner("BookFound", database_url=_PG_URL, flask_app=f"{module}:create_app"))
        self.assertIn(
            "tests.apps.book:create_app(config) (found through BookFound.flask_app) raised TypeError", message
        )
        self.assertIn("registered_config()", message)

    def test_module_level_app_own_unsafe_url(self) -> None:
        """Without database_url or TEST_DATABASE_URL the app's own URL is used: refused, as any, without 'test'."""
        require("psycopg2")
        own = sa.make_url(BACKENDS["psycopg2"].url or "").set(
            database="ap_shapes_production", password=SECRET
        )
        app = Flask("unsafe_own")
        app.config["SQLALCHEMY_DATABASE_URI"] = own.render_as_string(hide_password=False)
        SQLAlchemy(app)
        with _environ(TEST_DATABASE_URL=None):
            message = self.error(inner("UnsafeOwn", flask_app=app), UnsafeDatabaseError)
        self.assertIn("the app's own SQLALCHEMY_DATABASE_URI (or set database_url", message)
        self.assertEqual(app.config["SQLALCHEMY_DATABASE_URI"], own.render_as_string(hide_password=False))


class ParallelRefusal:
    """Under a parallel runner, a factory that ignores the config handed over is refused before any test."""

    backend: t.ClassVar[t.Any]

    def test_refused(self: t.Any) -> None:
        handed = with_password(self.backend.url or provisioner.default_sqlite_url())
        own = with_password(bind_url(self.backend, "shapes_own"))

        def ignore(config: dict[str, t.Any]) -> Flask:
            return book.create_app_from(
                tt.config_class(book.TestingConfig, {**config, "SQLALCHEMY_DATABASE_URI": own})
            )

        case = inner(
            "IgnoresConfig", database_url=handed, create_app=classmethod(lambda cls, config: ignore(config))
        )
        with _environ(TRANSACTIONAL_TESTCASE_WORKER="gw7"):
            message = setup_error(self, case, ConfigurationError)
        self.assertNotIn(SECRET, message)
        self.assertIn("under a parallel runner (this is worker gw7)", message)
        self.assertIn("not the database handed over in config['SQLALCHEMY_DATABASE_URI']", message)
        self.assertIn("apply the config it is given before db.init_app(app)", message)

    def test_own_worker_name_is_accepted(self: t.Any) -> None:
        """A factory that names each worker's database itself is not refused."""
        require(self.backend.name)
        own = bind_url(self.backend, "shapes_gw7")

        def own_name(config: dict[str, t.Any]) -> Flask:
            return book.create_app_from(
                tt.config_class(book.TestingConfig, {**config, "SQLALCHEMY_DATABASE_URI": own})
            )

        case = inner("OwnWorkerName", create_app=classmethod(lambda cls, config: own_name(config)))
        with _environ(TRANSACTIONAL_TESTCASE_WORKER="gw7"), self.assertLogs(LOGGER, logging.INFO) as logs:
            result = run_case(case)
        self.assertEqual((result.testsRun, result.raised), (1, []), transcript(result))
        self.assertIn("not the database handed over", "\n".join(logs.output))


generate_per_backend(ParallelRefusal, unittest.TestCase)


class InMemoryRefusal(unittest.TestCase):
    """A factory that ignores the SQLite file handed over for ``sqlite://``: the fix is the factory, not env.py."""

    def test_refused(self) -> None:
        def memory(config: dict[str, t.Any]) -> Flask:
            return plain_alembic.create_app({**config, "SQLALCHEMY_DATABASE_URI": "sqlite://"})

        case = inner(
            "InMemory",
            alembic_config=plain_alembic.OWN_ENGINE_INI,
            create_app=classmethod(lambda cls, config: memory(config)),
        )
        message = setup_error(self, case, ConfigurationError)
        self.assertIn("the app's default engine is in-memory SQLite (sqlite://)", message)
        self.assertIn("apply the config it is given before db.init_app(app)", message)


# -- under the runners, in subprocesses ------------------------------------------------------------------

_PY = [sys.executable, "-m"]
_PYTEST = [*_PY, "pytest", "-p", "no:cacheprovider", "-rfE"]
RUNNERS: dict[str, tuple[list[str], t.Callable[[str], t.Any], bool]] = {
    "unittest": ([*_PY, "unittest", "discover", "-v", "-s", ".", "-p", "sample_*.py"], parse_unittest, False),
    "nose2": ([*_PY, "nose2", "--no-user-config", "-v", "-s", "."], parse_unittest, False),
    "pytest": (_PYTEST, parse_pytest, False),
    "xdist": (
        [*_PYTEST, "-p", "xdist.plugin", "-p", "transactional_testcase.pytest_plugin", "-n", "2"],
        parse_pytest,
        True,
    ),
}


class ShapeRuns(unittest.TestCase):
    """The tutorial's and the module-level app's sample suites, under each runner (one backend per class)."""

    backend: t.ClassVar[str]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        require(cls.backend)

    def run_shape(self, folder: Path, module: str, runner: str, env: dict[str, str]) -> None:
        argv, parse, parallel = RUNNERS[runner]
        if runner == "nose2":
            argv = [*argv, module]
        elif runner != "unittest":
            argv = [*argv, f"{module}.py"]
        work = tempfile.mkdtemp(prefix="ap_shapes_")
        self.addCleanup(shutil.rmtree, work, True)
        report = os.path.join(work, "report")
        full = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PYTEST_", "TRANSACTIONAL_TESTCASE_", "FLASK_"))
            and k not in ("TEST_DATABASE_URL", "DATABASE_URL")
        }
        full.update(
            PYTHONPATH=str(ROOT),
            TMPDIR=work,
            TRANSACTIONAL_TESTCASE_CACHE=os.path.join(work, "cache"),
            TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES="0",
            PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
            SHAPES_REPORT=report,
            **env,
        )
        code, output = run_command(argv, full, folder, TIMEOUT)
        context = f"\n--- {runner} in {folder.name} ---\n{output}"
        summary = parse(output)
        self.assertEqual((summary.ran, summary.passed, code), (4, 4, 0), context)
        used: dict[str, set[str]] = defaultdict(set)
        with open(report, encoding="utf-8") as f:
            for line in f.read().splitlines():
                pid, url = line.split(" ", 1)
                used[url].add(pid)
        pids = set().union(*used.values())
        for url, users in used.items():
            self.assertEqual(len(users), 1, f"{url} used by {users}" + context)
        self.assertEqual(len(pids), 2 if parallel else 1, context)
        for url in map(sa.make_url, used):
            if url.get_backend_name() == "sqlite":
                self.assertFalse(os.path.exists(url.database or ""), f"{url} left" + context)
            else:
                self.assertEqual(server_databases(url, url.database or ""), set(), f"{url} left" + context)

    def server_base(self, name: str) -> str | None:
        """A server URL for database ``name`` (dropped before and after), or None on SQLite."""
        url = BACKENDS[self.backend].url_for(name)
        if url is not None:
            parsed = sa.make_url(url)
            cleanup = functools_partial_drop(parsed)
            cleanup()
            self.addCleanup(cleanup)
        return url

    def check_tutorial(self, runner: str) -> None:
        env = {"FLASK_APP": "flaskr"}
        url = self.server_base(f"ap_shapes_{os.getpid()}_{runner}_flaskr_test")
        if url is not None:
            env["TEST_DATABASE_URL"] = url
        self.run_shape(TUTORIAL, "sample_flaskr", runner, env)

    def check_legacy(self, runner: str) -> None:
        base = f"ap_shapes_{os.getpid()}_{runner}_legacy"
        url = self.server_base(f"{base}_test")
        audit = self.server_base(f"{base}_audit_test")
        if url is None or audit is None:
            folder = tempfile.mkdtemp(prefix="ap_legacy_")
            self.addCleanup(shutil.rmtree, folder, True)
            url, audit = (f"sqlite:///{folder}/{n}_test.db" for n in ("legacy", "audit"))
        self.run_shape(LEGACY, "sample_legacy", runner, {"DATABASE_URL": url, "AUDIT_DATABASE_URL": audit})


def functools_partial_drop(url: sa.URL) -> t.Callable[[], None]:
    def drop() -> None:
        for name in server_databases(url, url.database or ""):
            assert "test" in name, name
            drop_database(url.set(database=name), force=True)

    return drop


def _add_runs(cls: type[ShapeRuns]) -> type[ShapeRuns]:
    for runner in RUNNERS:
        for shape in ("tutorial", "legacy"):

            def test(self: ShapeRuns, runner: str = runner, shape: str = shape) -> None:
                getattr(self, f"check_{shape}")(runner)

            test.__doc__ = (
                f"{runner}: the {shape} app's sample suite passes, each process on databases of its own."
            )
            setattr(cls, f"test_{shape}_{runner}", test)
    return cls


@_add_runs
class ShapeRunsOnSQLite(ShapeRuns):
    backend = "sqlite"


@_add_runs
class ShapeRunsOnPsycopg2(ShapeRuns):
    backend = "psycopg2"


@_add_runs
class ShapeRunsOnPyMySQL(ShapeRuns):
    backend = "pymysql"
