"""The backend registry: each SQLAlchemy backend name finds its vendor's strategy.

No server is needed: looking a backend up only parses the URL.
"""

from __future__ import annotations

import subprocess
import sys
import unittest
from unittest import mock

import sqlalchemy as sa

from tests.matrix import BACKENDS, require
from transactional_testcase import ConfigurationError
from transactional_testcase import backends as tt_backends
from transactional_testcase.backends import (
    Backend,
    MySQLBackend,
    PostgreSQLBackend,
    SQLiteBackend,
    backend_for,
    register,
)
from transactional_testcase.backends.drivers import unreachable

#: URLs (any driver) and the strategy each must get.
EXPECTED: tuple[tuple[str, type[Backend]], ...] = (
    ("sqlite://", SQLiteBackend),
    ("sqlite:////tmp/app_test.db", SQLiteBackend),
    ("postgresql://u:s3cret@h/app_test", PostgreSQLBackend),
    ("postgresql+psycopg2://u@h/app_test", PostgreSQLBackend),
    ("postgresql+psycopg://u@h/app_test", PostgreSQLBackend),
    ("mysql://u@h/app_test", MySQLBackend),
    ("mysql+pymysql://u@h/app_test", MySQLBackend),
    ("mysql+mysqldb://u@h/app_test", MySQLBackend),
    ("mariadb://u@h/app_test", MySQLBackend),
    ("mariadb+pymysql://u@h/app_test", MySQLBackend),
)


class RegistryTest(unittest.TestCase):
    def test_each_backend_name_finds_its_vendor(self) -> None:
        for url, expected in EXPECTED:
            with self.subTest(url=url):
                self.assertIs(type(backend_for(sa.make_url(url))), expected)

    def test_one_instance_per_name(self) -> None:
        # Tests patch methods on the instance backend_for returns: it must be the same every time.
        for url, _ in EXPECTED:
            with self.subTest(url=url):
                self.assertIs(backend_for(sa.make_url(url)), backend_for(sa.make_url(url)))

    def test_unknown_backend_is_a_clear_error(self) -> None:
        url = sa.make_url("oracle+oracledb://scott:s3cret-pw@db.example/app_test")
        with self.assertRaises(ConfigurationError) as caught:
            backend_for(url)
        message = str(caught.exception)
        self.assertIn("the 'oracle' backend is not supported", message)
        self.assertIn("use SQLite, PostgreSQL or MySQL/MariaDB", message)
        self.assertIn("db.example", message)
        self.assertNotIn("s3cret-pw", message)

    def test_register_adds_a_backend_name(self) -> None:
        with mock.patch.dict(tt_backends._BACKENDS):

            @register("tt_fake", "tt_fake_too")
            class FakeBackend(Backend):
                title = "Fake"

            for name in ("tt_fake", "tt_fake_too"):
                self.assertIs(type(backend_for(sa.make_url(f"{name}://h/x_test"))), FakeBackend)
        with self.assertRaises(ConfigurationError):
            backend_for(sa.make_url("tt_fake://h/x_test"))

    def test_importable_without_fcntl(self) -> None:
        # fcntl is POSIX only: only SQLite's file lock may need it, when it is taken.
        code = "import sys; sys.modules['fcntl'] = None; import transactional_testcase.backends"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        self.assertEqual(done.returncode, 0, done.stderr)


if __name__ == "__main__":
    unittest.main()


class ConnectFailures(unittest.TestCase):
    """Why a server refused: down, bad credentials, no such database, no permission; each its own fix."""

    SERVERS = ("psycopg2", "psycopg", "pymysql", "mysqlclient")

    def failure(self, url: str) -> tuple[str, str]:
        """The kind the backend finds, and the library's message, for connecting to ``url``."""
        parsed = sa.make_url(url)
        engine = sa.create_engine(parsed)
        self.addCleanup(engine.dispose)
        with self.assertRaises(sa.exc.OperationalError) as caught:
            engine.connect().close()
        backend = backend_for(parsed)
        message = str(unreachable(parsed, caught.exception, backend))
        self.assertNotIn("s3cretpw", message)
        return backend.connect_failure(caught.exception), message

    def test_each_cause_on_the_servers(self) -> None:
        for name in self.SERVERS:
            with self.subTest(driver=name):
                require(name)
                server = sa.make_url(BACKENDS[name].url or "")
                cases = {
                    "unreachable": (server.set(port=1, password="s3cretpw"), "Start the server"),
                    "auth": (
                        server.set(username="tt_nosuchuser", password="s3cretpw"),
                        "refused the user or password",
                    ),
                    "missing": (server.set(database="tt_no_such_database_test"), "has no such database"),
                }
                for kind, (url, fix) in cases.items():
                    found, message = self.failure(url.render_as_string(hide_password=False))
                    self.assertEqual(found, kind, message)
                    self.assertIn(fix, message)
                    if kind != "unreachable":
                        self.assertNotIn("Start the server", message)

    def test_codes_and_words_without_a_server(self) -> None:
        class PgError(Exception):
            def __init__(self, message: str, sqlstate: str | None) -> None:
                super().__init__(message)
                self.sqlstate = sqlstate

        class MyError(Exception):
            pass

        pg, my = PostgreSQLBackend(), MySQLBackend()
        cases = [
            (pg, PgError("FATAL: permission denied for database", "42501"), "permission"),
            (pg, PgError('FATAL:  password authentication failed for user "x"', "28P01"), "auth"),
            (pg, PgError('FATAL:  database "x_test" does not exist', None), "missing"),
            (pg, PgError("connection timeout expired", None), "unreachable"),
            (my, MyError(1044, "Access denied for user 'u'@'%' to database 'x_test'"), "permission"),
            (my, MyError(1045, "Access denied for user 'u'@'h'"), "auth"),
            (my, MyError(1049, "Unknown database 'x_test'"), "missing"),
            (my, MyError(2003, "Can't connect to MySQL server"), "unreachable"),
        ]
        for backend, error, kind in cases:
            with self.subTest(error=str(error)):
                self.assertEqual(backend.connect_failure(sa.exc.OperationalError("connect", {}, error)), kind)
        url = sa.make_url("mysql+pymysql://u:s3cretpw@h/x_test")
        message = str(unreachable(url, MyError(1044, "denied"), my))
        self.assertIn("grant it the privileges", message)
        self.assertNotIn("s3cretpw", message)
