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

Also shared by the test modules: databases seen through connections of our own
(``own_connection``, ``admin_connection``, ``database_exists``, ``drop_database``,
``server_databases``, ``leftover_rows``...), ``generate_per_backend`` and
``OuterCase`` for plain per-backend cases, and ``run_into`` / ``run_with_runner``
to run an inner test class programmatically, with ``transcript`` to report it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
import typing as t
import unittest

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from transactional_testcase import TransactionalTestCase
from transactional_testcase.connections import keeper
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
            "psycopg2",
            "TT_TEST_PSYCOPG2_URL",
            "postgresql+psycopg2://postgres@127.0.0.1/tt_psycopg2_test",
            "PostgreSQL (psycopg2)",
            _PG_HINT + " (pip install psycopg2-binary)",
        ),
        Backend(
            "psycopg",
            "TT_TEST_PSYCOPG_URL",
            "postgresql+psycopg://postgres@127.0.0.1/tt_psycopg_test",
            "PostgreSQL (psycopg 3)",
            _PG_HINT + " (pip install 'psycopg[binary]')",
        ),
        Backend(
            "pymysql",
            "TT_TEST_PYMYSQL_URL",
            "mysql+pymysql://root@127.0.0.1/tt_pymysql_test",
            "MariaDB (PyMySQL)",
            _MY_HINT + " (pip install PyMySQL)",
        ),
        Backend(
            "mysqlclient",
            "TT_TEST_MYSQLCLIENT_URL",
            "mysql+mysqldb://root@127.0.0.1/tt_mysqlclient_test",
            "MariaDB (mysqlclient)",
            _MY_HINT + " (pip install mysqlclient; needs libmariadb-dev)",
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
    engine = sa.create_engine(admin_url(parsed), poolclass=NullPool)
    try:
        with engine.connect():
            return None
    except sa.exc.DBAPIError as exc:
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


class OuterCase(unittest.TestCase):
    """A plain per-backend case that runs inner TransactionalTestCase classes itself.

    Skips (in CI: fails) its whole class when ``backend`` cannot be used.
    """

    backend: t.ClassVar[Backend]

    @classmethod
    def setUpClass(cls) -> None:
        require(cls.backend.name)
        super().setUpClass()


# -- databases, seen through connections of our own -------------------------------------------


def admin_url(url: str | sa.URL) -> sa.URL:
    """``url``'s server, without its database (PostgreSQL: the ``postgres`` database)."""
    parsed = sa.make_url(url)
    return (
        parsed.set(database="postgres")
        if parsed.get_backend_name() == "postgresql"
        else parsed._replace(database=None)
    )


@contextlib.contextmanager
def _connection(url: sa.URL, *, begin: bool = False, **engine_options: t.Any) -> t.Iterator[sa.Connection]:
    engine = sa.create_engine(url, poolclass=NullPool, **engine_options)
    try:
        with engine.begin() if begin else engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def own_connection(url: str | sa.URL, *, begin: bool = False) -> t.ContextManager[sa.Connection]:
    """A connection of our own to ``url``, not the app's engines: what is seen is what is committed.

    No pool, and its engine is disposed of afterwards: nothing stays connected.
    ``begin``: in a transaction committed at the end of the block.
    """
    return _connection(sa.make_url(url), begin=begin)


def admin_connection(url: str | sa.URL) -> t.ContextManager[sa.Connection]:
    """An AUTOCOMMIT connection to ``url``'s server, for CREATE/DROP DATABASE and catalog queries."""
    return _connection(admin_url(url), isolation_level="AUTOCOMMIT")


def database_exists(url: str | sa.URL) -> bool:
    """Whether the database ``url`` names exists (SQLite: its file), asked through the server."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return os.path.exists(parsed.database or "")
    query = (
        "SELECT 1 FROM pg_database WHERE datname = :name"
        if parsed.get_backend_name() == "postgresql"
        else "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :name"
    )
    with admin_connection(parsed) as conn:
        return conn.execute(sa.text(query), {"name": parsed.database}).first() is not None


def server_databases(url: str | sa.URL, prefix: str) -> set[str]:
    """Names of the databases on ``url``'s server that start with ``prefix``."""
    parsed = sa.make_url(url)
    query = (
        "SELECT datname FROM pg_database"
        if parsed.get_backend_name() == "postgresql"
        else "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
    )
    with admin_connection(parsed) as conn:
        return {n for n in conn.exec_driver_sql(query).scalars() if n.startswith(prefix)}


def drop_database(url: str | sa.URL, *, force: bool = False) -> None:
    """Drop a database a test made (only ever one whose name has 'test'); SQLite: its files.

    ``force``: on PostgreSQL, end the connections still open on it (``WITH (FORCE)``)
    instead of failing because of them.
    """
    parsed = sa.make_url(url)
    name = parsed.database or ""
    assert "test" in os.path.basename(name), name
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name + suffix)
        return
    # The idle connections the library keeps for a next class are its by
    # design; any other connection still open makes the plain DROP fail.
    keeper.discard(parsed)
    with_force = " WITH (FORCE)" if force and parsed.get_backend_name() == "postgresql" else ""
    with admin_connection(parsed) as conn:
        conn.exec_driver_sql(
            f"DROP DATABASE IF EXISTS {conn.dialect.identifier_preparer.quote(name)}{with_force}"
        )


def table_names(url: str) -> set[str]:
    """The tables of the database at ``url``."""
    with own_connection(url) as conn:
        return set(sa.inspect(conn).get_table_names())


def delete_all_rows(url: str) -> None:
    """Delete every row but ``alembic_version``'s (children first), so later tests start clean.

    For after a broken isolation: what it committed for real must not reach the next test.
    """
    with own_connection(url, begin=True) as conn:
        metadata = sa.MetaData()
        metadata.reflect(conn)
        for table in reversed(metadata.sorted_tables):
            if table.name != "alembic_version":
                conn.execute(table.delete())


def leftover_rows(url: str) -> dict[str, int]:
    """Rows in every table but alembic_version, seen through a connection of our own."""
    with own_connection(url) as conn:
        counts = {}
        for table in sa.inspect(conn).get_table_names():
            if table == "alembic_version":
                continue
            n = conn.execute(
                sa.text(f"SELECT COUNT(*) FROM {conn.dialect.identifier_preparer.quote(table)}")
            ).scalar_one()
            if n:
                counts[table] = n
        return counts


def assert_no_leftover_rows(who: str, urls: t.Iterable[str]) -> None:
    """Fail, naming ``who``, when a database at ``urls`` holds a row (``alembic_version`` aside).

    For after a class: whatever its tests committed must have been undone.
    """
    for url in urls:
        left = leftover_rows(url)
        if left:
            raise AssertionError(f"{who} left rows behind in {url}: {left}")


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
            assert_no_leftover_rows(cls.__name__, cls._checked_urls)

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


def generate_per_backend(
    mixin: type, *bases: type, backends: t.Iterable[Backend] | None = None, name: str | None = None
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


def backends_named(*names: str) -> list[Backend]:
    """The selected backends among ``names`` (every selected one when no names are given)."""
    return [b for b in selected_backends() if not names or b.name in names]


def on_all_backends(mixin: type) -> type:
    """Create ``<Mixin>_<backend>`` test classes in the mixin's module, one per backend."""
    return generate_per_backend(mixin, BackendTestCase)


# -- running inner test classes ----------------------------------------------------------------

_R = t.TypeVar("_R", bound=unittest.TestResult)


def load_case(case: type[unittest.TestCase], names: t.Sequence[str] = ()) -> unittest.TestSuite:
    """The tests of ``case`` (only ``names`` if given), as a runner would collect them.

    A loader of our own: ``unittest.defaultTestLoader`` carries the outer
    runner's ``-k`` patterns, which would filter the inner class's tests.
    """
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


class RecordingResult(unittest.TextTestResult):
    """Keeps the exception objects of errors, not only their formatted tracebacks."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: ``(str(test), exception)`` per error, in order (class fixtures included).
        self.exceptions: list[tuple[str, BaseException]] = []

    def addError(self, test: t.Any, err: t.Any) -> None:
        super().addError(test, err)
        self.exceptions.append((str(test), err[1]))


def method_name(test: t.Any) -> str:
    """A test's method name, or the description of a class fixture (``setUpClass (...)``)."""
    return getattr(test, "_testMethodName", str(test))


def method_names(entries: t.Iterable[tuple[t.Any, t.Any]]) -> set[str]:
    """The :func:`method_name` of each test in a result's list (``errors``, ``failures``, ``skipped``)."""
    return {method_name(test) for test, _ in entries}


def transcript(result: unittest.TestResult, *notes: str) -> str:
    """How many tests ran (and ``notes``), then every error and failure with its traceback."""
    lines = [", ".join([f"ran {result.testsRun}", *notes])]
    for test, traceback in result.errors + result.failures:
        lines.append(f"--- {test}\n{traceback}")
    return "\n".join(lines)
