"""Per-backend behaviour, in one table.

Everything that differs between SQLite, PostgreSQL and MySQL/MariaDB lives in
a :class:`Backend` strategy here, so the rest of the library never branches
on a dialect name.
"""

from __future__ import annotations

import contextlib
import os
import typing as t

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from .errors import (
    ConfigurationError,
    DatabaseUnreachableError,
    MissingDriverError,
    UnsafeDatabaseError,
    mask_url,
    scrub,
)

#: pip extra (of this package) that installs each DBAPI driver.
DRIVER_EXTRAS: dict[str, str] = {
    "psycopg": "postgresql",
    "psycopg2": "psycopg2",
    "pymysql": "mysql",
    "mysqldb": "mysqlclient",
}


class Backend:
    """How one kind of database server is provisioned and isolated."""

    #: Human name used in messages.
    title: t.ClassVar[str] = "database"
    #: Environment variable documented as the way to point tests at this backend.
    env_hint: t.ClassVar[str] = "TEST_DATABASE_URL"
    #: Whether ``reset_sequences`` can be honoured inside a transaction.
    can_reset_sequences: t.ClassVar[bool] = False

    def database_name(self, url: URL) -> str:
        """The name whose ``test`` marker makes a database safe to drop."""
        return url.database or ""

    def is_memory(self, url: URL) -> bool:
        """True for databases that live only inside one connection pool."""
        return False

    def prepare_engine(self, engine: Engine) -> None:
        """Make ``engine`` safe for SAVEPOINT-based isolation (idempotent)."""

    def recreate(self, url: URL) -> None:
        """Drop the database ``url`` names if it exists, then create it empty."""
        raise NotImplementedError

    def drop(self, url: URL) -> None:
        """Drop the database ``url`` names, if it exists."""
        raise NotImplementedError

    def sequence_resetter(self, connection: Connection) -> t.Callable[[Connection], None]:
        """Return a callable that sets every sequence to ``max(id) + 1``."""
        raise ConfigurationError(
            f"reset_sequences = True is not supported on {self.title}: its "
            "auto-increment counters cannot be reset inside a transaction (the "
            "statement that does it commits implicitly). Set reset_sequences = False "
            "and compare ids to the objects you created instead of literal numbers."
        )

    # -- helpers shared by the server backends ---------------------------------

    def _admin_urls(self, url: URL) -> list[URL]:
        return [url]

    @contextlib.contextmanager
    def admin_connection(self, url: URL) -> t.Iterator[Connection]:
        """An AUTOCOMMIT connection to the server, outside the test database."""
        last: Exception | None = None
        for admin_url in self._admin_urls(url):
            engine = sa.create_engine(
                admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT"
            )
            try:
                try:
                    conn = engine.connect()
                except sa.exc.OperationalError as exc:
                    last = exc
                    continue
                with conn:
                    yield conn
                return
            finally:
                engine.dispose()
        assert last is not None
        raise unreachable(url, last, self) from None


class SQLiteBackend(Backend):
    title = "SQLite"

    def database_name(self, url: URL) -> str:
        return os.path.basename(url.database or "")

    def is_memory(self, url: URL) -> bool:
        db = url.database or ""
        return db in ("", ":memory:") or db.startswith("file::memory:") or (
            url.query.get("mode") == "memory"
        )

    def prepare_engine(self, engine: Engine) -> None:
        # pysqlite's legacy transaction control emits no BEGIN before SAVEPOINT,
        # so a released savepoint would commit for real. SQLAlchemy's documented
        # fix: let the driver do nothing and emit BEGIN ourselves.
        if event.contains(engine, "connect", _sqlite_on_connect):
            return
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        # Connections pooled before the fix lack it: start again.
        engine.dispose()

    def recreate(self, url: URL) -> None:
        if self.is_memory(url):
            return
        self.drop(url)
        directory = os.path.dirname(os.path.abspath(url.database or ""))
        if not os.path.isdir(directory):
            raise ConfigurationError(
                f"SQLite test database {mask_url(url)}: folder {directory!r} does "
                "not exist; create it or point database_url elsewhere."
            )

    def drop(self, url: URL) -> None:
        if self.is_memory(url):
            return
        path = url.database or ""
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + suffix)

    def sequence_resetter(self, connection: Connection) -> t.Callable[[Connection], None]:
        # Rowids (and AUTOINCREMENT's sqlite_sequence) are transactional in
        # SQLite: a rolled-back test already leaves them where they were.
        return _noop


class PostgreSQLBackend(Backend):
    title = "PostgreSQL"
    can_reset_sequences = True

    def _admin_urls(self, url: URL) -> list[URL]:
        return [url.set(database="postgres"), url.set(database="template1")]

    def recreate(self, url: URL) -> None:
        name = url.database or ""
        with self.admin_connection(url) as conn:
            quoted = conn.dialect.identifier_preparer.quote(name)
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
            conn.exec_driver_sql(f"CREATE DATABASE {quoted}")

    def drop(self, url: URL) -> None:
        with self.admin_connection(url) as conn:
            quoted = conn.dialect.identifier_preparer.quote(url.database or "")
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")

    def sequence_resetter(self, connection: Connection) -> t.Callable[[Connection], None]:
        rows = connection.exec_driver_sql(_PG_OWNED_SEQUENCES).all()
        if not rows:
            return _noop
        parts = [
            f"setval('{seq}', COALESCE((SELECT MAX({col}) FROM {table}), 0) + 1, false)"
            for seq, table, col in rows
        ]
        statement = "SELECT " + ", ".join(parts)

        def reset(conn: Connection) -> None:
            conn.exec_driver_sql(statement)

        return reset


class MySQLBackend(Backend):
    title = "MySQL/MariaDB"

    def _admin_urls(self, url: URL) -> list[URL]:
        return [url._replace(database=None)]

    def recreate(self, url: URL) -> None:
        with self.admin_connection(url) as conn:
            quoted = conn.dialect.identifier_preparer.quote(url.database or "")
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
            conn.exec_driver_sql(
                f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )

    def drop(self, url: URL) -> None:
        with self.admin_connection(url) as conn:
            quoted = conn.dialect.identifier_preparer.quote(url.database or "")
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")


_PG_OWNED_SEQUENCES = """
SELECT quote_ident(sn.nspname) || '.' || quote_ident(s.relname),
       quote_ident(tn.nspname) || '.' || quote_ident(tbl.relname),
       quote_ident(a.attname)
FROM pg_class s
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
JOIN pg_class tbl ON tbl.oid = d.refobjid
JOIN pg_namespace tn ON tn.oid = tbl.relnamespace
JOIN pg_attribute a ON a.attrelid = tbl.oid AND a.attnum = d.refobjsubid
WHERE s.relkind = 'S' AND tn.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1
"""

_BACKENDS: dict[str, Backend] = {
    "sqlite": SQLiteBackend(),
    "postgresql": PostgreSQLBackend(),
    "mysql": MySQLBackend(),
    "mariadb": MySQLBackend(),
}


def backend_for(url: URL) -> Backend:
    """The :class:`Backend` for ``url``'s dialect, or a clear error."""
    try:
        return _BACKENDS[url.get_backend_name()]
    except KeyError:
        raise ConfigurationError(
            f"{mask_url(url)}: the {url.get_backend_name()!r} backend is not supported; "
            "use SQLite, PostgreSQL or MySQL/MariaDB."
        ) from None


def check_driver(url: URL) -> None:
    """Fail with the pip extra to install when ``url``'s DBAPI driver is missing."""
    try:
        dialect_cls = url.get_dialect()
        dialect_cls.import_dbapi()
    except ImportError as exc:
        driver = url.get_driver_name()
        extra = DRIVER_EXTRAS.get(driver)
        fix = (
            f"pip install 'transactional_testcase[{extra}]'"
            if extra
            else f"install the {driver!r} driver"
        )
        raise MissingDriverError(
            f"{mask_url(url)} needs the {driver!r} driver, which is not installed "
            f"({exc}): {fix}."
        ) from None
    except sa.exc.NoSuchModuleError:
        raise ConfigurationError(
            f"{mask_url(url)}: SQLAlchemy has no dialect for this URL; check its scheme."
        ) from None


def check_safe(url: URL, setting: str) -> None:
    """Refuse to drop or recreate a database whose name lacks ``test``."""
    backend = backend_for(url)
    if backend.is_memory(url):
        return
    if "test" not in backend.database_name(url).lower():
        raise UnsafeDatabaseError(
            f"refusing to drop and recreate {mask_url(url)}: its database name does "
            f"not contain 'test'. Change {setting} to a database whose name "
            "contains 'test' (for example 'myapp_test')."
        )


def unreachable(url: URL, exc: BaseException, backend: Backend) -> DatabaseUnreachableError:
    """A :class:`DatabaseUnreachableError` for ``url`` with the driver's first line."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    first = scrub(reason[0] if reason else type(exc).__name__, url)
    return DatabaseUnreachableError(
        f"cannot connect to the {backend.title} server for {mask_url(url)}: {first}. "
        f"Start the server, or point {backend.env_hint} / database_url at one that runs."
    )


def _noop(connection: Connection) -> None:
    return None


def _sqlite_on_connect(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_on_begin(conn: Connection) -> None:
    # An app that applies the same fix itself has already emitted BEGIN.
    if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN")
