"""Every error the library raises when a class cannot be set up: its type, and never the password.

For each of ``TransactionalTestCase``, ``CommittingTestCase`` and
``MigrationsTestCase`` this builds a small subclass that cannot start, runs it
with a real runner (``unittest.TextTestRunner``, a
:class:`~tests.running.RecordingResult`) and checks what a user gets to read:

* the error is the library's own, of the expected type;
* the password of the URL it was given, ``s3cretpw``, appears nowhere: not in
  the exceptions' messages, not in their formatted tracebacks (chained causes
  included), not in the runner's report, not in anything printed meanwhile.

The cases, for every server backend under test (the URLs carry the password):

=====================  =====================================================  ============================
case                   how                                                    expected
=====================  =====================================================  ============================
unreachable            a closed port, ``127.0.0.1:1``                         DatabaseUnreachableError
bad credentials        a user that does not exist, on the live server         DatabaseUnreachableError
unsafe name            a database name without ``test``                       UnsafeDatabaseError
failing factory        ``create_app`` raises with the URL in its message      ConfigurationError
failing migration      a revision raises with the URL in its message          MigrationError
                       (``env.py``'s, and Flask-Alembic's)
missing driver         ``create_app`` raises ImportError of a driver module   MissingDriverError
                       (the URL in the message)
app's own ImportError  ``create_app`` raises ImportError of one of the app's  not MissingDriverError
                       modules (no URL: only the mapping is checked)
=====================  =====================================================  ============================

and, once per class, a URL naming a driver that is not installed
(``postgresql+pg8000``, ``mysql+mysqlconnector``; hidden with ``sys.modules``
when installed): ``MissingDriverError``.

Where ``MigrationsTestCase`` differs by design: its ``setUpClass`` builds the
app but connects to nothing, so an unreachable server or refused credentials
surface as ``DatabaseUnreachableError`` from each check that needs a database
(``test_single_head`` needs none and passes; ``tearDownClass``, dropping the
migrations databases, may report the same error); and a failing migration is what
its checks are for, so it is reported as the *failure* of the checks that
migrate (naming the revision), not as an error.

A failing migration needs a server that accepts the password: PostgreSQL
(trust authentication takes any). MariaDB's ``root`` has no password, and a
wrong one is refused before any migration runs, so the migration case runs on
the PostgreSQL drivers only; the credentials case covers MariaDB's refusal.

Every database name derives from the backend's ``TT_TEST_*_URL``
(:func:`tests.matrix.bind_url`); the only databases created (failing
migration) are dropped after each test.
"""

from __future__ import annotations

import contextlib
import io
import sys
import traceback
import typing as t
import unittest
from unittest import mock

import flask
import sqlalchemy as sa

import transactional_testcase as tt  # the classes by attribute: not collected as tests here
from tests.admin import drop_database
from tests.apps import bad_migrations, leaky_migrations
from tests.matrix import BACKENDS, bind_url, require, require_driver, selected_backends, unsafe_database_name
from tests.running import RecordingResult, run_with_runner
from transactional_testcase import (
    ConfigurationError,
    DatabaseUnreachableError,
    MigrationError,
    MissingDriverError,
    UnsafeDatabaseError,
)
from transactional_testcase.migration_checks import migrations_url

PASSWORD = "s3cretpw"
#: A module of the app's own that fails to import (not a driver).
APP_MODULE = "tt_no_such_app_module"
#: A user no server of the suite has.
NO_SUCH_USER = "nosuchuser_tt"
POSTGRES = ("psycopg2", "psycopg")
MYSQL = ("pymysql", "mysqlclient")
SERVERS = POSTGRES + MYSQL
#: Drivers SQLAlchemy knows that the suite does not install (hidden through ``sys.modules``
#: all the same), by the backend whose URL lends the rest (user, database name): (scheme, module).
UNINSTALLED_DRIVERS = {
    "psycopg2": ("postgresql+pg8000", "pg8000"),
    "pymysql": ("mysql+mysqlconnector", "mysql.connector"),
}
#: The checks of MigrationsTestCase that need a database (all but ``test_single_head``), sorted.
MIGRATIONS_DATABASE_CHECKS = (
    "test_models_match_migrations",
    "test_up_down_round_trip",
    "test_upgrade_from_base",
)

KINDS: dict[str, type[unittest.TestCase]] = {
    "Transactional": tt.TransactionalTestCase,
    "Committing": tt.CommittingTestCase,
    "Migrations": tt.MigrationsTestCase,
}


# -- URLs ------------------------------------------------------------------------------------------


def live_url(backend: str, purpose: str, **parts: t.Any) -> str:
    """A URL on ``backend``'s live server, database named after its main one, with the password."""
    url = sa.make_url(bind_url(BACKENDS[backend], f"errmsg_{purpose}"))
    return url.set(password=PASSWORD, **parts).render_as_string(hide_password=False)


def closed_port_url(backend: str, purpose: str, **parts: t.Any) -> str:
    """Like :func:`live_url`, on ``127.0.0.1:1``, where nothing listens."""
    return live_url(backend, purpose, host="127.0.0.1", port=1, **parts)


def migrations_database(url: str) -> str:
    """The database MigrationsTestCase makes of ``url`` (its name plus ``_migrations``)."""
    return migrations_url(url).render_as_string(hide_password=False)


# -- the classes under test ------------------------------------------------------------------------


def gadgets_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
    return bad_migrations.create_app(config)


def flask_alembic_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
    from tests.apps.greenhouse import leaky  # Flask-Alembic needs Flask 3: imported where used

    return leaky.create_app(config)


def failing_factory(cls: type, config: dict[str, t.Any]) -> flask.Flask:
    raise RuntimeError("cannot build app for " + config["SQLALCHEMY_DATABASE_URI"])


def driver_import_error(module: str) -> t.Callable[[type, dict[str, t.Any]], flask.Flask]:
    """A create_app whose import of driver ``module`` fails as a missing package's does, URL in the message."""

    def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
        raise ModuleNotFoundError(
            f"No module named {module!r} (needed for {config['SQLALCHEMY_DATABASE_URI']})", name=module
        )

    return create_app


def app_import_error(cls: type, config: dict[str, t.Any]) -> flask.Flask:
    """A create_app with a broken import of the app's own (no URL in it: the mapping is what is checked)."""
    raise ModuleNotFoundError(f"No module named {APP_MODULE!r}", name=APP_MODULE)


def make_case(kind: str, url: str, **attrs: t.Any) -> type[unittest.TestCase]:
    """A subclass of ``KINDS[kind]`` on ``url``; for the database test cases, one test that records running."""
    ran: list[str] = []
    namespace: dict[str, t.Any] = {
        "database_url": url,
        "alembic_config": bad_migrations.HERE,
        "create_app": classmethod(gadgets_app),
        "ran": ran,
        "__module__": "tests.test_error_messages_inner",  # no module fixtures of ours for the inner run
        **attrs,
    }
    if kind != "Migrations":

        def test_never_runs(self: unittest.TestCase) -> None:
            ran.append(self.id())

        namespace["test_never_runs"] = test_never_runs
    return type(f"{kind}Misconfigured", (KINDS[kind],), namespace)


# -- what the run showed ---------------------------------------------------------------------------


class Run(t.NamedTuple):
    result: RecordingResult
    #: Every text the run produced: messages, formatted tracebacks, the runner's report, stdout/stderr.
    transcript: str


def run(case: type[unittest.TestCase]) -> Run:
    """Run ``case`` with a runner; everything it printed is captured."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        result, output = run_with_runner(case, resultclass=RecordingResult, verbosity=2)
    texts = [output, printed.getvalue()]
    for raised in result.raised:
        texts.append(str(raised.exception))
        texts.append("".join(traceback.format_exception(raised.exception)))
    texts.extend(text for _, text in result.errors + result.failures + result.skipped)
    return Run(result, "\n".join(texts))


class ErrorMessages(unittest.TestCase if t.TYPE_CHECKING else object):
    """Mixin of the per-kind classes below (``<Kind>ErrorMessages``); their case tests are generated."""

    kind: t.ClassVar[str]

    def assert_no_password(self, done: Run) -> None:
        """No text of the run contains the password; the message quotes the lines that do."""
        leaks = sorted({line.strip() for line in done.transcript.splitlines() if PASSWORD in line})
        self.assertEqual(leaks, [], "the password shows in the run's output, tracebacks or messages")

    def check(self, case: type[unittest.TestCase], expected: type[BaseException]) -> BaseException:
        """``case`` stops in setUpClass with one ``expected`` error, and shows no password."""
        done = run(case)
        self.assert_no_password(done)
        self.assertEqual(case.ran, [], "no test may run after setUpClass failed")  # type: ignore[attr-defined]
        self.assertEqual(len(done.result.raised), 1, done.transcript)
        where, exc = done.result.raised[0].where, done.result.raised[0].exception
        self.assertEqual(where, f"setUpClass ({case.__module__}.{case.__qualname__})", done.transcript)
        self.assertIsInstance(exc, expected, done.transcript)
        self.assertEqual(done.result.testsRun, 0, done.transcript)
        self.assertFalse(flask.has_app_context(), "setUpClass left an app context pushed")
        return exc

    def check_database_errors(self, case: type[unittest.TestCase], expected: type[BaseException]) -> None:
        """MigrationsTestCase: ``expected`` from setUpClass, or from every check that needs a database."""
        done = run(case)
        self.assert_no_password(done)
        self.assertTrue(done.result.raised, "the run reported no error:\n" + done.transcript)
        for raised in done.result.raised:
            self.assertEqual(raised.kind, "error", done.transcript)
            self.assertIsInstance(raised.exception, expected, done.transcript)
        where = sorted(r.method for r in done.result.raised)
        if not any("setUpClass" in w for w in where):
            # Every check that needs a database reports it, and nothing else: no database was
            # made, so the class drops none afterwards (and does not meet the error again).
            self.assertEqual(where, list(MIGRATIONS_DATABASE_CHECKS), done.transcript)

    # -- the cases, per backend (``backend`` is a server backend's name) ------------------------

    def case_unreachable(self, backend: str) -> None:
        require_driver(backend)
        url = closed_port_url(backend, "unreachable")
        case = make_case(self.kind, url)
        if self.kind == "Migrations":
            self.check_database_errors(case, DatabaseUnreachableError)
        else:
            message = str(self.check(case, DatabaseUnreachableError))
            self.assertIn("127.0.0.1:1", message)

    def case_bad_credentials(self, backend: str) -> None:
        require(backend)
        url = live_url(backend, "credentials", username=NO_SUCH_USER)
        case = make_case(self.kind, url)
        if self.kind == "Migrations":
            self.check_database_errors(case, DatabaseUnreachableError)
        else:
            message = str(self.check(case, DatabaseUnreachableError))
            self.assertIn(NO_SUCH_USER, message)

    def case_unsafe_name(self, backend: str) -> None:
        require_driver(backend)
        name = unsafe_database_name(BACKENDS[backend], "errmsg_unsafe")
        url = closed_port_url(backend, "unsafe", database=name)
        message = str(self.check(make_case(self.kind, url), UnsafeDatabaseError))
        self.assertIn(name, message)

    def case_failing_factory(self, backend: str) -> None:
        require_driver(backend)
        url = closed_port_url(backend, "factory")
        case = make_case(self.kind, url, create_app=classmethod(failing_factory))
        message = str(self.check(case, ConfigurationError))
        self.assertIn("create_app", message)
        self.assertIn("cannot build app for", message)

    def case_failing_migration(self, backend: str) -> None:
        self.check_failing_migration(backend, "migration", alembic_config=leaky_migrations.HERE)

    def case_failing_flask_alembic_migration(self, backend: str) -> None:
        """The same revision, run by Flask-Alembic (found from the app: ``alembic_config`` None)."""
        self.check_failing_migration(
            backend, "flask_alembic", alembic_config=None, create_app=classmethod(flask_alembic_app)
        )

    def check_failing_migration(self, backend: str, purpose: str, **attrs: t.Any) -> None:
        """The leaking revision fails: named with its file and line, and no password shown."""
        require(backend)
        url = live_url(backend, purpose)
        self.addCleanup(drop_database, url, force=True)
        self.addCleanup(drop_database, migrations_database(url), force=True)
        case = make_case(self.kind, url, **attrs)
        where = f"(revision {leaky_migrations.LEAKING_REVISION}, "
        if self.kind != "Migrations":
            message = str(self.check(case, MigrationError))
            self.assertIn(where, message)
            self.assertIn(f"{leaky_migrations.LEAKING_REVISION}.py, line ", message)
            self.assertIn(leaky_migrations.MESSAGE, message)
            return
        done = run(case)
        self.assert_no_password(done)
        self.assertEqual(done.result.errors, [], done.transcript)
        failed = {r.method: r.exception for r in done.result.raised if r.kind == "failure"}
        self.assertEqual(sorted(failed), list(MIGRATIONS_DATABASE_CHECKS), done.transcript)
        for exc in failed.values():
            self.assertIsInstance(exc, AssertionError)
            self.assertIn(leaky_migrations.LEAKING_REVISION, str(exc))
            self.assertIn(leaky_migrations.MESSAGE, str(exc))

    def case_missing_driver(self, backend: str) -> None:
        require_driver(backend)
        url = closed_port_url(backend, "driver")
        module = sa.make_url(url).get_dialect().import_dbapi().__name__.split(".")[0]
        case = make_case(self.kind, url, create_app=classmethod(driver_import_error(module)))
        self.check(case, MissingDriverError)

    def case_app_import_error(self, backend: str) -> None:
        """An ImportError of the app's own is its bug, not a driver to install."""
        require_driver(backend)
        url = closed_port_url(backend, "import")
        case = make_case(self.kind, url, create_app=classmethod(app_import_error))
        done = run(case)
        self.assert_no_password(done)
        self.assertEqual(len(done.result.raised), 1, done.transcript)
        raised = done.result.raised[0]
        self.assertIn("setUpClass", raised.where)
        self.assertNotIsInstance(raised.exception, MissingDriverError, done.transcript)
        self.assertIn(APP_MODULE, done.transcript)

    # -- once per class: a URL naming a driver that is not installed -----------------------------

    def test_uninstalled_driver_in_the_url(self) -> None:
        for backend, (scheme, module) in UNINSTALLED_DRIVERS.items():
            with self.subTest(driver=scheme), mock.patch.dict(sys.modules, {module: None}):
                url = closed_port_url(backend, "uninstalled_driver", drivername=scheme)
                message = str(self.check(make_case(self.kind, url), MissingDriverError))
                self.assertIn("pip install", message)


CASES = (
    "unreachable",
    "bad_credentials",
    "unsafe_name",
    "failing_factory",
    "failing_migration",
    "missing_driver",
    "app_import_error",
)


def _test(case: str, backend: str) -> t.Callable[[ErrorMessages], None]:
    def test(self: ErrorMessages) -> None:
        getattr(self, f"case_{case}")(backend)

    test.__name__ = f"test_{case}_{backend}"
    test.__doc__ = getattr(ErrorMessages, f"case_{case}").__doc__
    return test


def generate(cases: t.Sequence[str], module: dict[str, t.Any]) -> None:
    """``<Kind>ErrorMessages`` classes in ``module`` (a module's globals), with a test per case and server.

    ``tests.test_flask_alembic`` generates its own case's: Flask-Alembic needs
    Flask 3, and the version matrix leaves that module out with Flask 2.3.
    """
    servers = [b.name for b in selected_backends() if b.name in SERVERS]
    for kind in KINDS:
        namespace: dict[str, t.Any] = {"kind": kind, "__module__": module["__name__"]}
        for case in cases:
            for backend in servers:
                if case.endswith("_migration") and backend not in POSTGRES:
                    continue  # see the module's docstring: MariaDB's root takes no password
                test = _test(case, backend)
                namespace[test.__name__] = test
        name = f"{kind}ErrorMessages"
        module[name] = type(name, (ErrorMessages, unittest.TestCase), namespace)


generate(CASES, globals())


if __name__ == "__main__":
    unittest.main()
