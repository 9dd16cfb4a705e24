"""The backends under test: which drivers and servers the suite runs on, and per-backend classes.

``@on_all_backends`` turns a mixin of test methods into one
``TransactionalTestCase`` subclass per backend driver (``Name_sqlite``,
``Name_psycopg2``, ``Name_psycopg``, ``Name_pymysql``, ``Name_mysqlclient``).

Backends are found at these URLs (override with the environment variables):

=============  ===========================  =================================================
backend        variable                     default
=============  ===========================  =================================================
sqlite         TT_TEST_SQLITE_URL           a temporary file
psycopg2       TT_TEST_PSYCOPG2_URL         postgresql+psycopg2://postgres@127.0.0.1/tt_psycopg2_test
psycopg        TT_TEST_PSYCOPG_URL          postgresql+psycopg://postgres@127.0.0.1/tt_psycopg_test
pymysql        TT_TEST_PYMYSQL_URL          mysql+pymysql://root@127.0.0.1/tt_pymysql_test
mysqlclient    TT_TEST_MYSQLCLIENT_URL      mysql+mysqldb://root@127.0.0.1/tt_mysqlclient_test
=============  ===========================  =================================================

``TT_TEST_BACKENDS=sqlite,psycopg2`` limits the run to some of them. A backend
that cannot be used (driver missing, server unreachable) is skipped with a
reason saying how to enable it, except when ``CI=true``: then it fails. Tests
that only need a driver (a URL on a closed port, say) ask
:func:`require_driver`, with the same rule.

Every database a test uses is named after its backend's main one
(:func:`bind_url`), so two runs with different ``TT_TEST_*_URL`` settings never
meet.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import typing as t
import unittest

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.admin import admin_url, assert_no_leftover_rows
from transactional_testcase import TransactionalTestCase
from transactional_testcase.provisioning import provisioner


class BackendUnderTest(t.NamedTuple):
    """One entry of the suite's backend matrix: a driver, and where its server is found.

    Not the library's ``transactional_testcase.backends.Backend`` (what the
    library knows about a kind of server): this one says where the suite's own
    tests connect, and how to enable the entry when it cannot be used.
    """

    name: str
    env: str
    default_url: str | None
    title: str
    hint: str

    @property
    def url(self) -> str | None:
        return os.environ.get(self.env) or self.default_url

    def url_for(self, database: str) -> str | None:
        """This server backend's URL with another database name (SQLite: None, see :func:`bind_url`)."""
        if self.url is None or sa.make_url(self.url).get_backend_name() == "sqlite":
            return None
        return sa.make_url(self.url).set(database=database).render_as_string(hide_password=False)


_PG_HINT = "start PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth) or set {env}"
_MY_HINT = "start MariaDB/MySQL on 127.0.0.1:3306 (root, empty password) or set {env}"

BACKENDS: dict[str, BackendUnderTest] = {
    b.name: b
    for b in [
        BackendUnderTest("sqlite", "TT_TEST_SQLITE_URL", None, "SQLite", ""),
        BackendUnderTest(
            "psycopg2",
            "TT_TEST_PSYCOPG2_URL",
            "postgresql+psycopg2://postgres@127.0.0.1/tt_psycopg2_test",
            "PostgreSQL (psycopg2)",
            _PG_HINT + " (pip install psycopg2-binary)",
        ),
        BackendUnderTest(
            "psycopg",
            "TT_TEST_PSYCOPG_URL",
            "postgresql+psycopg://postgres@127.0.0.1/tt_psycopg_test",
            "PostgreSQL (psycopg 3)",
            _PG_HINT + " (pip install 'psycopg[binary]')",
        ),
        BackendUnderTest(
            "pymysql",
            "TT_TEST_PYMYSQL_URL",
            "mysql+pymysql://root@127.0.0.1/tt_pymysql_test",
            "MariaDB (PyMySQL)",
            _MY_HINT + " (pip install PyMySQL)",
        ),
        BackendUnderTest(
            "mysqlclient",
            "TT_TEST_MYSQLCLIENT_URL",
            "mysql+mysqldb://root@127.0.0.1/tt_mysqlclient_test",
            "MariaDB (mysqlclient)",
            _MY_HINT + " (pip install mysqlclient; needs libmariadb-dev)",
        ),
    ]
}

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def selected_backends() -> list[BackendUnderTest]:
    names = os.environ.get("TT_TEST_BACKENDS")
    if not names:
        return list(BACKENDS.values())
    return [BACKENDS[n.strip()] for n in names.split(",") if n.strip()]


def backends_named(*names: str) -> list[BackendUnderTest]:
    """The selected backends among ``names`` (every selected one when no names are given)."""
    return [b for b in selected_backends() if not names or b.name in names]


# -- what a test needs: skipped here, failed in CI -----------------------------------------------


def _skip_or_fail(reason: str | None) -> None:
    """Skip the test (or class) for ``reason``; with ``CI=true``, fail it instead. None: go on."""
    if reason is None:
        return
    if IN_CI:
        raise AssertionError(f"CI=true and {reason}")
    raise unittest.SkipTest(reason)


@functools.cache
def driver_missing(name: str) -> str | None:
    """Why backend ``name``'s driver cannot be imported here, or None when it can."""
    backend = BACKENDS[name]
    if backend.url is None:
        return None
    try:
        sa.make_url(backend.url).get_dialect().import_dbapi()
    except ImportError as exc:
        return f"{backend.title}: driver missing ({exc}); " + backend.hint.format(env=backend.env)
    return None


@functools.cache
def unavailable(name: str) -> str | None:
    """Why backend ``name`` cannot be used here (driver or server), or None when it can."""
    missing = driver_missing(name)
    if missing is not None:
        return missing
    backend = BACKENDS[name]
    if backend.url is None:
        return None
    engine = sa.create_engine(admin_url(backend.url), poolclass=NullPool)
    try:
        with engine.connect():
            return None
    except sa.exc.DBAPIError as exc:
        first = str(getattr(exc, "orig", exc)).splitlines()[0]
        return f"{backend.title} unreachable ({first}); " + backend.hint.format(env=backend.env)
    finally:
        engine.dispose()


def require(name: str) -> None:
    """Skip (or, in CI, fail) when backend ``name`` is unavailable: its driver or its server."""
    _skip_or_fail(unavailable(name))


def require_driver(name: str) -> None:
    """Skip (or, in CI, fail) when backend ``name``'s driver is not installed; its server may be down."""
    _skip_or_fail(driver_missing(name))


# -- test databases named after each backend's main one -------------------------------------------


def bind_url(backend: BackendUnderTest, name: str) -> str:
    """URL of another test database of ``backend``, named after its main one and ``name``.

    Deriving it from the main URL keeps two runs with different ``TT_TEST_*_URL``
    settings apart.
    """
    main = (sa.make_url(backend.url).database or "") if backend.url is not None else ""
    url = backend.url_for(f"{main}_{name}")
    if url is not None:
        return url
    if main:  # TT_TEST_SQLITE_URL: a file next to the main one, named after it
        stem, ext = os.path.splitext(main)
        return "sqlite:///" + f"{stem}_{name}{ext or '.db'}"
    folder = os.path.dirname(sa.make_url(provisioner.default_sqlite_url()).database or "")
    return "sqlite:///" + os.path.join(folder, f"{name}_test.db")


def unsafe_database_name(backend: BackendUnderTest, name: str) -> str:
    """A database name *without* 'test', named after ``backend``'s main one and ``name``.

    For the safety rails: the library must refuse it before anything touches it.
    """
    main = (
        os.path.splitext(os.path.basename(sa.make_url(backend.url).database or ""))[0]
        if backend.url
        else "tt"
    )
    unsafe = re.sub("test", "", f"{main}_{name}", flags=re.IGNORECASE)
    assert "test" not in unsafe.lower(), unsafe
    return unsafe


# -- per-backend test classes --------------------------------------------------------------------


class OuterCase(unittest.TestCase):
    """A plain per-backend case that runs inner TransactionalTestCase classes itself.

    Skips (in CI: fails) its whole class when ``backend`` cannot be used.
    """

    backend: t.ClassVar[BackendUnderTest]

    @classmethod
    def setUpClass(cls) -> None:
        require(cls.backend.name)
        super().setUpClass()


class BackendTestCase(TransactionalTestCase):
    """Base of the generated per-backend classes.

    After each class it checks, with a connection of its own, that no table of
    any of the class's databases holds a row: whatever the tests committed
    must have been rolled back.
    """

    backend: t.ClassVar[BackendUnderTest]
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
            assert_no_leftover_rows(cls.__name__, cls._checked_urls)

    @classmethod
    def get_database_url(cls) -> str:
        return cls.backend.url or provisioner.default_sqlite_url()

    @classmethod
    def bind_url(cls, name: str) -> str:
        """A second test database of this backend, for a bind called ``name``."""
        return bind_url(cls.backend, name)


def generate_per_backend(
    mixin: type, *bases: type, backends: t.Iterable[BackendUnderTest] | None = None, name: str | None = None
) -> type:
    """Create ``<name>_<backend>`` classes of ``(mixin, *bases)`` in the mixin's module.

    One per backend of ``backends`` (default: every selected one), each with a
    ``backend`` class attribute; ``name`` defaults to the mixin's. Returns the
    mixin, which is no TestCase itself, so only the generated classes are
    collected.
    """
    module = sys.modules[mixin.__module__]
    for backend in selected_backends() if backends is None else backends:
        qualname = f"{name or mixin.__name__}_{backend.name}"
        namespace = {"backend": backend, "__module__": mixin.__module__, "__qualname__": qualname}
        setattr(module, qualname, type(qualname, (mixin, *bases), namespace))
    return mixin


def on_all_backends(mixin: type) -> type:
    """Create ``<Mixin>_<backend>`` test classes in the mixin's module, one per backend."""
    return generate_per_backend(mixin, BackendTestCase)
