"""Every way setUpClass can be misconfigured ends in one clear error, without the password.

Each test builds a small TransactionalTestCase whose setUpClass must fail, runs
it with a real runner (``unittest.TextTestRunner``) and reads the error the
way a user would: the exception, its formatted traceback and the runner's
output. Every URL in these tests carries the password ``s3cret-pw``; it must
never show up in any of them.

Server URLs point at ``127.0.0.1:1`` (nothing listens there), except the
wrong-password case, which needs the real MariaDB. Unsafe database names are
only ever *named*: the destructive backend methods are wrapped in mocks that
must never be called, and the port is closed besides.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import sys
import tempfile
import traceback
import typing as t
import unittest
from unittest import mock

import flask
import sqlalchemy as sa

from tests.apps import shop
from tests.matrix import BACKENDS, bind_url, require, require_driver, selected_backends, unsafe_database_name
from tests.running import RecordingResult, run_with_runner
from transactional_testcase import (
    ConfigurationError,
    DatabaseUnreachableError,
    MissingDriverError,
    TransactionalTestCase,
    UnsafeDatabaseError,
    app_testcase,
    environment,
)
from transactional_testcase import backends as tt_backends

PASSWORD = "s3cret-pw"
SERVER_BACKENDS = ("psycopg2", "psycopg", "pymysql", "mysqlclient")
#: Module a simulated missing driver hides, and the extra the message must name.
KNOWN_DRIVERS = {
    "psycopg2": ("psycopg2", "psycopg2"),
    "psycopg": ("psycopg", "postgresql"),
    "pymysql": ("pymysql", "mysql"),
    "mysqlclient": ("MySQLdb", "mysqlclient"),
}
#: Drivers SQLAlchemy knows that this environment does not install: (URL scheme, module, pip package).
UNINSTALLED_DRIVERS = (
    ("postgresql+pg8000", "pg8000", "pg8000"),
    ("mysql+mysqlconnector", "mysql.connector", "mysql-connector-python"),
)
#: Methods that destroy or replace a database; an unsafe name must stop before any of them.
DESTRUCTIVE = ("recreate", "drop", "clone", "drop_templates", "save_template", "write_marker")
MAZE = ("During handling of the above exception", "The above exception was the direct cause")

#: Every transcript (message, traceback, runner output) a failing setUpClass produced.
TRANSCRIPTS: list[str] = []


def database_name(backend: str, purpose: str) -> str:
    """A test database name for ``purpose``, named after ``backend``'s main one (see ``bind_url``)."""
    return sa.make_url(bind_url(BACKENDS[backend], purpose)).database or ""


def server_url(backend: str, database: str, *, port: int | None = 1) -> str:
    """A URL for ``backend``'s driver with the test password, on a closed port by default."""
    url = BACKENDS[backend].url
    assert url is not None
    parsed = sa.make_url(url).set(
        username="tt_user", password=PASSWORD, host="127.0.0.1", port=port, database=database
    )
    return parsed.render_as_string(hide_password=False)


def selected_servers() -> list[str]:
    return [b.name for b in selected_backends() if b.name in SERVER_BACKENDS]


def shop_factory(cls: type, config: dict[str, t.Any]) -> flask.Flask:
    return shop.create_app(config)


def own_config_factory(own: dict[str, t.Any]) -> classmethod[t.Any, t.Any, t.Any]:
    """A create_app that ignores ``config`` and uses the app's own settings."""

    def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
        return shop.create_app({"TESTING": True, **own})

    return classmethod(create_app)


def make_case(name: str = "Misconfigured", **attrs: t.Any) -> type[TransactionalTestCase]:
    """A TransactionalTestCase with one test that records whether it ran."""
    ran: list[str] = []

    def test_never_runs(self: unittest.TestCase) -> None:
        ran.append(self.id())

    namespace: dict[str, t.Any] = {
        "alembic_config": False,
        "create_app": classmethod(shop_factory),
        "test_never_runs": test_never_runs,
        "ran": ran,
        **attrs,
    }
    return type(name, (TransactionalTestCase,), namespace)


@contextlib.contextmanager
def destructive_spies() -> t.Iterator[list[mock.MagicMock]]:
    """Wrap every backend's destructive methods (they still work if called)."""
    instances = {
        id(b): b
        for b in (
            tt_backends.backend_for(sa.make_url(u)) for u in ("sqlite://", "postgresql://h/x", "mysql://h/x")
        )
    }
    spies: list[mock.MagicMock] = []
    with contextlib.ExitStack() as stack:
        for backend in instances.values():
            for name in DESTRUCTIVE:
                if hasattr(backend, name):
                    spy = stack.enter_context(mock.patch.object(backend, name, wraps=getattr(backend, name)))
                    spy._tt_name = f"{type(backend).__name__}.{name}"
                    spies.append(spy)
        yield spies


class SetupErrorCase(unittest.TestCase):
    """Runs a misconfigured class and checks what the user gets to read."""

    def setup_error(
        self,
        case: type[TransactionalTestCase],
        expected: type[BaseException],
        *,
        secret_free_traceback: bool = True,
        plain: bool = True,
    ) -> str:
        """Run ``case``; return the message of the one error its setUpClass raised.

        ``plain``: the traceback has no chained exception ("no traceback maze").
        ``secret_free_traceback``: the password is absent from the whole
        transcript, not only from the library's own message.
        """
        with destructive_spies() as spies:
            result, output = run_with_runner(case, resultclass=RecordingResult)
        self.assertEqual(case.ran, [], "no test may run after setUpClass failed")  # type: ignore[attr-defined]
        self.assertEqual(result.failures, [])
        self.assertEqual(len(result.raised), 1, result.errors)
        where, exc = result.raised[0].where, result.raised[0].exception
        self.assertIn("setUpClass", where)
        message = str(exc)
        formatted = "".join(traceback.format_exception(exc))
        transcript = "\n".join([message, formatted, result.errors[0][1], output])
        TRANSCRIPTS.append(transcript)
        self.assertIsInstance(exc, expected, formatted)
        self.assertNotIn(PASSWORD, message)
        if secret_free_traceback:
            self.assertNotIn(PASSWORD, transcript)
        if plain:
            for phrase in MAZE:
                self.assertNotIn(phrase, formatted)
        if expected is not DatabaseUnreachableError:
            # Nothing was dropped, recreated or cloned on the way to a configuration error.
            self.assertEqual([s._tt_name for s in spies if s.called], [])
        self.assertFalse(flask.has_app_context(), "setUpClass left an app context pushed")
        return message


class ServerErrorTest(SetupErrorCase):
    def test_unreachable_server_is_named_and_password_masked(self) -> None:
        for backend in selected_servers():
            with self.subTest(backend=backend):
                require_driver(backend)
                name = database_name(backend, "unreachable")
                message = self.setup_error(
                    make_case(database_url=server_url(backend, name)), DatabaseUnreachableError
                )
                self.assertIn("127.0.0.1:1", message)
                self.assertIn(name, message)

    def test_unreachable_bind_server_is_named(self) -> None:
        for backend in selected_servers():
            with self.subTest(backend=backend):
                require_driver(backend)
                name = database_name(backend, "unreachable_audit")
                case = make_case(database_url="sqlite://", binds={"audit": server_url(backend, name)})
                message = self.setup_error(case, DatabaseUnreachableError)
                self.assertIn("127.0.0.1:1", message)
                self.assertIn(name, message)

    def test_rejected_password_is_masked(self) -> None:
        """A live MariaDB refuses root with a wrong password: the password stays out of it."""
        servers = [b for b in selected_servers() if b in ("pymysql", "mysqlclient")]
        if not servers:
            self.skipTest("needs a MySQL/MariaDB backend: include pymysql or mysqlclient in TT_TEST_BACKENDS")
        for backend in servers:
            with self.subTest(backend=backend):
                require(backend)
                live = sa.make_url(BACKENDS[backend].url or "")
                name = database_name(backend, "errors")
                url = live.set(password=PASSWORD, database=name).render_as_string(hide_password=False)
                message = self.setup_error(make_case(database_url=url), DatabaseUnreachableError)
                self.assertIn(name, message)
                self.assertRegex(message, r"(?i)access denied")


class MissingDriverTest(SetupErrorCase):
    def test_uninstalled_driver_names_the_pip_command(self) -> None:
        for scheme, module, package in UNINSTALLED_DRIVERS:
            url = f"{scheme}://tt_user:{PASSWORD}@127.0.0.1:1/{database_name('psycopg2', 'driver')}"
            sources = {
                "database_url": {"database_url": url},
                "binds": {"database_url": "sqlite://", "binds": {"audit": url}},
                "app's own config": {"create_app": own_config_factory({"SQLALCHEMY_DATABASE_URI": url})},
            }
            for source, attrs in sources.items():
                with self.subTest(driver=scheme, source=source):
                    with contextlib.suppress(ImportError):
                        __import__(module)
                        self.skipTest(f"{module} is installed here; uninstall it to run this case")
                    message = self.setup_error(make_case(**attrs), MissingDriverError)
                    self.assertRegex(message, rf"pip install\b[^.]*\b{re.escape(package)}\b")

    def test_missing_known_driver_names_the_extra(self) -> None:
        for backend in SERVER_BACKENDS:
            module, extra = KNOWN_DRIVERS[backend]
            url = server_url(backend, database_name(backend, "driver"))
            sources = {
                "database_url": {"database_url": url},
                "binds": {"database_url": "sqlite://", "binds": {"audit": url}},
                "app's own config": {"create_app": own_config_factory({"SQLALCHEMY_DATABASE_URI": url})},
            }
            for source, attrs in sources.items():
                with self.subTest(backend=backend, source=source):
                    with mock.patch.dict(sys.modules, {module: None}):
                        message = self.setup_error(make_case(**attrs), MissingDriverError)
                    self.assertRegex(message, rf"pip install\b.*transactional_testcase\[{extra}\]")


#: The factory tests' URL: PostgreSQL through psycopg2 (its driver must be installed: the
#: library checks drivers before it calls create_app), on a closed port.
FACTORY_DATABASE = database_name("psycopg2", "factory")
PW_URL = server_url("psycopg2", FACTORY_DATABASE)


class NeedsPsycopg2:
    """For cases on ``PW_URL``: skipped (in CI: failed) when psycopg2 is not installed."""

    def setUp(self) -> None:
        require_driver("psycopg2")
        super().setUp()  # type: ignore[misc]


class FactoryErrorTest(NeedsPsycopg2, SetupErrorCase):
    def test_app_without_flask_sqlalchemy(self) -> None:
        def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
            app = flask.Flask("bare")
            app.config.update(config)
            return app

        message = self.setup_error(
            make_case(database_url=PW_URL, create_app=classmethod(create_app)), ConfigurationError
        )
        self.assertIn("Flask-SQLAlchemy", message)
        self.assertIn("init_app", message)

    def test_factory_raising(self) -> None:
        def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
            raise RuntimeError("factory exploded")

        message = self.setup_error(
            make_case("Exploding", database_url=PW_URL, create_app=classmethod(create_app)),
            ConfigurationError,
            plain=False,  # the factory's own traceback is worth showing
        )
        self.assertIn("Exploding.create_app", message)
        self.assertIn("RuntimeError", message)
        self.assertIn("factory exploded", message)

    def test_factory_raising_with_the_url_in_its_message(self) -> None:
        """Apps do report the URL they failed on; the library's message masks it."""

        def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
            raise RuntimeError(f"cannot use {config['SQLALCHEMY_DATABASE_URI']}")

        message = self.setup_error(
            make_case(database_url=PW_URL, create_app=classmethod(create_app)),
            ConfigurationError,
            plain=False,
            secret_free_traceback=False,  # the app's own exception, chained, is the app's text
        )
        self.assertIn("cannot use", message)
        self.assertIn(FACTORY_DATABASE, message)

    def test_factory_returning_none(self) -> None:
        def create_app(cls: type, config: dict[str, t.Any]) -> None:
            shop.create_app(config)

        message = self.setup_error(
            make_case("ReturnsNone", database_url=PW_URL, create_app=classmethod(create_app)),
            ConfigurationError,
        )
        self.assertIn("ReturnsNone.create_app", message)
        self.assertIn("None", message)
        self.assertRegex(message, r"(?i)flask app")

    def test_create_app_not_defined(self) -> None:
        case = make_case("NoFactory", database_url=PW_URL)
        del case.create_app  # falls back to TransactionalTestCase.create_app
        message = self.setup_error(case, ConfigurationError)
        self.assertIn("NoFactory", message)
        self.assertIn("create_app", message)


class UnsafeNameTest(SetupErrorCase):
    """A database whose name lacks 'test' is refused before anything touches it."""

    def setUp(self) -> None:
        folder = tempfile.mkdtemp(prefix="tt_errors_test_")
        self.addCleanup(shutil.rmtree, folder, True)
        self.sqlite_path = os.path.join(folder, "production.db")
        engine = sa.create_engine(f"sqlite:///{self.sqlite_path}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE precious (id INTEGER PRIMARY KEY)")
            conn.exec_driver_sql("INSERT INTO precious VALUES (1)")
        engine.dispose()
        with open(self.sqlite_path, "rb") as f:
            self.sqlite_bytes = f.read()

    def unsafe_urls(self) -> dict[str, str]:
        urls = {"sqlite": f"sqlite:///{self.sqlite_path}"}
        for backend in selected_servers():
            urls[backend] = server_url(backend, unsafe_database_name(BACKENDS[backend], "production"))
        return urls

    def check_unsafe(self, attrs: dict[str, t.Any], setting: str, *, not_setting: str | None = None) -> None:
        for backend, url in self.unsafe_urls().items():
            with self.subTest(backend=backend):
                if backend != "sqlite":
                    require_driver(backend)
                case = make_case(**{k: (v(url) if callable(v) else v) for k, v in attrs.items()})
                message = self.setup_error(case, UnsafeDatabaseError)
                self.assertIn("production", message)
                self.assertIn(setting, message)
                if not_setting is not None:
                    self.assertNotIn(not_setting, message)
                with open(self.sqlite_path, "rb") as f:
                    self.assertEqual(f.read(), self.sqlite_bytes, "the unsafe SQLite file was touched")

    def test_database_url(self) -> None:
        self.check_unsafe({"database_url": lambda url: url}, "database_url")

    def test_test_database_url_environment_variable(self) -> None:
        for backend, url in self.unsafe_urls().items():
            with self.subTest(backend=backend), mock.patch.dict(os.environ, {"TEST_DATABASE_URL": url}):
                if backend != "sqlite":
                    require_driver(backend)
                message = self.setup_error(make_case(), UnsafeDatabaseError)
                self.assertIn("production", message)
                self.assertIn("TEST_DATABASE_URL", message)

    def test_binds(self) -> None:
        self.check_unsafe(
            {"database_url": "sqlite://", "binds": lambda url: {"audit": url}}, "binds['audit']"
        )

    def test_app_own_database_uri(self) -> None:
        self.check_unsafe(
            {"create_app": lambda url: own_config_factory({"SQLALCHEMY_DATABASE_URI": url})},
            "SQLALCHEMY_DATABASE_URI",
            not_setting="database_url",
        )

    def test_app_own_database_uri_while_database_url_is_set(self) -> None:
        """The app ignores database_url, so changing it would not help: name the app's setting."""
        self.check_unsafe(
            {
                "database_url": "sqlite://",
                "create_app": lambda url: own_config_factory({"SQLALCHEMY_DATABASE_URI": url}),
            },
            "SQLALCHEMY_DATABASE_URI",
            not_setting="database_url",
        )

    def test_app_own_bind(self) -> None:
        self.check_unsafe(
            {
                "create_app": lambda url: own_config_factory(
                    {"SQLALCHEMY_DATABASE_URI": "sqlite://", "SQLALCHEMY_BINDS": {"audit": url}}
                )
            },
            "SQLALCHEMY_BINDS['audit']",
        )

    def test_app_own_bind_while_binds_is_set(self) -> None:
        """The app ignores binds, so changing it would not help: name the app's setting."""
        self.check_unsafe(
            {
                "binds": {"audit": "sqlite://"},
                "create_app": lambda url: own_config_factory(
                    {"SQLALCHEMY_DATABASE_URI": "sqlite://", "SQLALCHEMY_BINDS": {"audit": url}}
                ),
            },
            "SQLALCHEMY_BINDS['audit']",
        )


class NameTooLongTest(SetupErrorCase):
    """A name the server would cut (PostgreSQL) or refuse (MariaDB) is refused before anything connects."""

    def test_long_names_and_long_worker_names(self) -> None:
        limits = {"psycopg2": "63", "psycopg": "63", "pymysql": "64", "mysqlclient": "64"}
        for backend in selected_servers():
            require_driver(backend)
            fits = "a" * (int(limits[backend]) - len("_test")) + "_test"
            for name, worker in ((fits + "x", None), (fits, "gw0")):
                with self.subTest(backend=backend, name=len(name), worker=worker):
                    with mock.patch.dict(os.environ):
                        for variable in (environment.WORKER, "PYTEST_XDIST_WORKER"):
                            os.environ.pop(variable, None)
                        if worker is not None:
                            os.environ[environment.WORKER] = worker
                        case = make_case(database_url=server_url(backend, name))
                        message = self.setup_error(case, ConfigurationError)
                    self.assertIn(f"{len(name) + (1 + len(worker) if worker else 0)} ", message)
                    self.assertIn(limits[backend], message)
                    self.assertIn("database_url", message)
            with self.subTest(backend=backend, name=len(fits)):
                backend_of = tt_backends.backend_for(sa.make_url(server_url(backend, fits)))
                self.assertIsNone(backend_of.name_limit(fits))


class UnconfiguredBindTest(NeedsPsycopg2, SetupErrorCase):
    def test_bind_the_app_does_not_configure(self) -> None:
        case = make_case(
            "IgnoresBinds",
            database_url=PW_URL,
            binds={"reports": server_url("psycopg2", database_name("psycopg2", "reports"))},
            create_app=own_config_factory({"SQLALCHEMY_DATABASE_URI": "sqlite://"}),
        )
        message = self.setup_error(case, ConfigurationError)
        self.assertIn("'reports'", message)
        self.assertIn("SQLALCHEMY_BINDS", message)


class PasswordNeverShownTest(unittest.TestCase):
    """Collects the transcripts of every error test above and searches them all."""

    def test_no_transcript_contains_the_password(self) -> None:
        loader = unittest.TestLoader()
        suite = unittest.TestSuite(
            loader.loadTestsFromTestCase(case)
            for case in (
                ServerErrorTest,
                MissingDriverTest,
                FactoryErrorTest,
                UnsafeNameTest,
                UnconfiguredBindTest,
            )
        )
        del TRANSCRIPTS[:]
        unittest.TextTestRunner(stream=io.StringIO()).run(suite)
        transcripts = list(TRANSCRIPTS)
        self.assertGreater(len(transcripts), 20)
        masked = [text for text in transcripts if "tt_user:***@" in text]
        self.assertGreater(len(masked), 10, "the URLs should appear, masked")
        leaking = [text for text in transcripts if PASSWORD in text]
        # The one case allowed to show it is the app's own exception text, chained
        # below the library's message; the library's own lines never contain it.
        for text in leaking:
            self.assertIn("cannot use", text)
            message = text.split("\n", 1)[0]
            self.assertNotIn(PASSWORD, message)


if __name__ == "__main__":
    unittest.main()


class SaidOncePerProcess(unittest.TestCase):
    """One cause that fails every class is explained in full once; later classes point to it."""

    def run_all(self, *cases: type[TransactionalTestCase]) -> list[tuple[str, BaseException]]:
        """Run ``cases`` as one run (one process's suite); the setUpClass errors, in order."""
        app_testcase.said.clear()
        loader = unittest.TestLoader()
        suite = unittest.TestSuite(loader.loadTestsFromTestCase(case) for case in cases)
        result = RecordingResult(io.StringIO(), descriptions=True, verbosity=0)
        suite.run(result)
        return [(r.where, r.exception) for r in result.raised]

    def test_the_same_cause_is_explained_once(self) -> None:
        folder = tempfile.mkdtemp(prefix="tt-said-")
        self.addCleanup(shutil.rmtree, folder)
        unsafe = f"sqlite:///{os.path.join(folder, 'production.db')}"
        cases = [make_case(f"Unsafe{i}", database_url=unsafe) for i in range(3)]
        other = make_case("OtherCause", database_url="sqlite://", binds={"audit": unsafe})
        raised = self.run_all(*cases[:2], other, cases[2])
        self.assertEqual(
            [type(e) for _, e in raised],
            [UnsafeDatabaseError] * 4,
        )
        first = str(raised[0][1])
        self.assertIn("database_url", first)  # the full explanation names the setting to change
        for where, exc in (raised[1], raised[3]):
            with self.subTest(where=where):
                message = str(exc)
                self.assertIn("the same error as Unsafe0.setUpClass", message)
                self.assertEqual(len(message.splitlines()), 1, message)
                self.assertEqual(message.split(" (the same error")[0], first.splitlines()[0])
        # Another cause (the same name, through another setting): said in full.
        self.assertNotIn("the same error as", str(raised[2][1]))
        self.assertIn("binds['audit']", str(raised[2][1]))
