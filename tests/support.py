"""Backend matrix and independent checks for the project's own tests.

``@on_all_backends`` turns a mixin of test methods into one
``TransactionalTestCase`` subclass per backend driver (``Name_sqlite``,
``Name_psycopg2``, ``Name_psycopg``, ``Name_pymysql``, ``Name_mysqlclient``).

Backends are found at these URLs (override with the environment variables):

=============  ===========================  =================================================
backend        variable                     default
=============  ===========================  =================================================
sqlite         (always available)           a temporary file
psycopg2       TT_TEST_PSYCOPG2_URL         postgresql+psycopg2://postgres@127.0.0.1/tt_psycopg2_test
psycopg        TT_TEST_PSYCOPG_URL          postgresql+psycopg://postgres@127.0.0.1/tt_psycopg_test
pymysql        TT_TEST_PYMYSQL_URL          mysql+pymysql://root@127.0.0.1/tt_pymysql_test
mysqlclient    TT_TEST_MYSQLCLIENT_URL      mysql+mysqldb://root@127.0.0.1/tt_mysqlclient_test
=============  ===========================  =================================================

``TT_TEST_BACKENDS=sqlite,psycopg2`` limits the run to some of them. A backend
that cannot be reached is skipped with a reason saying how to enable it, except
when ``CI=true``: then it fails.
"""

from __future__ import annotations

import functools
import os
import sys
import typing as t
import unittest

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from transactional_testcase import TransactionalTestCase
from transactional_testcase.provisioning import provisioner


class Backend(t.NamedTuple):
    name: str
    env: str
    default_url: str | None
    title: str
    hint: str

    @property
    def url(self) -> str | None:
        return os.environ.get(self.env) or self.default_url

    def url_for(self, database: str) -> str | None:
        """This backend's URL with another database name (SQLite: None)."""
        if self.url is None:
            return None
        return sa.make_url(self.url).set(database=database).render_as_string(hide_password=False)


_PG_HINT = "start PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) or set {env}"
_MY_HINT = "start MariaDB/MySQL on 127.0.0.1:3306 (root, empty password) or set {env}"

BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in [
        Backend("sqlite", "TT_TEST_SQLITE_URL", None, "SQLite", ""),
        Backend(
            "psycopg2", "TT_TEST_PSYCOPG2_URL",
            "postgresql+psycopg2://postgres@127.0.0.1/tt_psycopg2_test",
            "PostgreSQL (psycopg2)", _PG_HINT + " (pip install psycopg2-binary)",
        ),
        Backend(
            "psycopg", "TT_TEST_PSYCOPG_URL",
            "postgresql+psycopg://postgres@127.0.0.1/tt_psycopg_test",
            "PostgreSQL (psycopg 3)", _PG_HINT + " (pip install 'psycopg[binary]')",
        ),
        Backend(
            "pymysql", "TT_TEST_PYMYSQL_URL",
            "mysql+pymysql://root@127.0.0.1/tt_pymysql_test",
            "MariaDB (PyMySQL)", _MY_HINT + " (pip install PyMySQL)",
        ),
        Backend(
            "mysqlclient", "TT_TEST_MYSQLCLIENT_URL",
            "mysql+mysqldb://root@127.0.0.1/tt_mysqlclient_test",
            "MariaDB (mysqlclient)", _MY_HINT + " (pip install mysqlclient; needs libmariadb-dev)",
        ),
    ]
}

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def selected_backends() -> list[Backend]:
    names = os.environ.get("TT_TEST_BACKENDS")
    if not names:
        return list(BACKENDS.values())
    return [BACKENDS[n.strip()] for n in names.split(",") if n.strip()]


@functools.cache
def unavailable(name: str) -> str | None:
    """Why backend ``name`` cannot be used here, or None when it can."""
    backend = BACKENDS[name]
    url = backend.url
    if url is None:
        return None
    parsed = sa.make_url(url)
    try:
        parsed.get_dialect().import_dbapi()
    except ImportError as exc:
        return f"{backend.title}: driver missing ({exc}); " + backend.hint.format(env=backend.env)
    admin = parsed.set(database="postgres") if parsed.get_backend_name() == "postgresql" else parsed._replace(database=None)
    engine = sa.create_engine(admin, poolclass=NullPool)
    try:
        with engine.connect():
            return None
    except Exception as exc:
        first = str(getattr(exc, "orig", exc)).splitlines()[0]
        return f"{backend.title} unreachable ({first}); " + backend.hint.format(env=backend.env)
    finally:
        engine.dispose()


def require(name: str) -> None:
    """Skip (or, in CI, fail) when backend ``name`` is unavailable."""
    reason = unavailable(name)
    if reason is None:
        return
    if IN_CI:
        raise AssertionError(f"CI=true and {reason}")
    raise unittest.SkipTest(reason)


def leftover_rows(url: str) -> dict[str, int]:
    """Rows in every table but alembic_version, seen through a connection of our own."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            counts = {}
            for table in sa.inspect(conn).get_table_names():
                if table == "alembic_version":
                    continue
                n = conn.execute(sa.text(f"SELECT COUNT(*) FROM {conn.dialect.identifier_preparer.quote(table)}")).scalar_one()
                if n:
                    counts[table] = n
            return counts
    finally:
        engine.dispose()


class BackendTestCase(TransactionalTestCase):
    """Base of the generated per-backend classes.

    After each class it checks, with a connection of its own, that no table of
    any of the class's databases holds a row: whatever the tests committed
    must have been rolled back.
    """

    backend: t.ClassVar[Backend]
    check_leftovers: t.ClassVar[bool] = True

    @classmethod
    def setUpClass(cls) -> None:
        require(cls.backend.name)
        super().setUpClass()
        cls._checked_urls = [
            e.url.render_as_string(hide_password=False)
            for e in cls._tt_state.engines.values()  # type: ignore[union-attr]
            if e.url.database and e.url.database != ":memory:"
        ]

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        if cls.check_leftovers:
            for url in cls._checked_urls:
                left = leftover_rows(url)
                if left:
                    raise AssertionError(f"{cls.__name__} left rows behind in {url}: {left}")

    @classmethod
    def get_database_url(cls) -> str:
        return cls.backend.url or provisioner.default_sqlite_url()

    @classmethod
    def bind_url(cls, name: str) -> str:
        """A second test database of this backend, for a bind called ``name``."""
        return bind_url(cls.backend, name)


def bind_url(backend: Backend, name: str) -> str:
    """URL of another test database of ``backend``, named after its main one and ``name``.

    Deriving it from the main URL keeps two runs with different ``TT_TEST_*_URL``
    settings apart.
    """
    if backend.url is not None:
        main = sa.make_url(backend.url).database or ""
        url = backend.url_for(f"{main}_{name}")
        assert url is not None
        return url
    folder = os.path.dirname(sa.make_url(provisioner.default_sqlite_url()).database or "")
    return "sqlite:///" + os.path.join(folder, f"{name}_test.db")


def on_all_backends(mixin: type) -> type:
    """Create ``<Mixin>_<backend>`` test classes in the mixin's module, one per backend."""
    module = sys.modules[mixin.__module__]
    for backend in selected_backends():
        name = f"{mixin.__name__}_{backend.name}"
        cls = type(name, (mixin, BackendTestCase), {"backend": backend, "__module__": mixin.__module__, "__qualname__": name})
        setattr(module, name, cls)
    return mixin
