"""The backend registry: each SQLAlchemy backend name finds its vendor's strategy.

No server is needed: looking a backend up only parses the URL.
"""

from __future__ import annotations

import subprocess
import sys
import unittest
from unittest import mock

import sqlalchemy as sa

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
