"""Per-backend behaviour, in one table.

Everything that differs between SQLite, PostgreSQL and MySQL/MariaDB lives in
a :class:`Backend` strategy here, so the rest of the library never branches
on a dialect name.
"""

from __future__ import annotations

import contextlib
import fcntl
import math
import os
import re
import select
import shutil
import sqlite3
import typing as t
import zlib

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

from . import environment
from ._compat import socket_fileno
from .errors import (
    ConfigurationError,
    DatabaseUnreachableError,
    MissingDriverError,
    UnsafeDatabaseError,
    first_line,
    mask_url,
    scrub,
)

#: ``(schema, table)``: None is the connection's default schema.
TableRef: t.TypeAlias = tuple[str | None, str]
#: Empties tables through the connection it is given; returns the tables it emptied.
TableEmptier: t.TypeAlias = t.Callable[[Connection], list[str]]

#: Checks, at the end of a test, what a COMMIT would; describes violations (None: none).
ConstraintChecker: t.TypeAlias = t.Callable[[Connection], str | None]

#: pip extra (of this package) that installs each DBAPI driver, by SQLAlchemy driver name.
DRIVER_EXTRAS: dict[str, str] = {
    "psycopg": "postgresql",
    "psycopg2": "psycopg2",
    "pymysql": "mysql",
    "mysqldb": "mysqlclient",
}
#: The PyPI package of other drivers SQLAlchemy knows, by SQLAlchemy driver name.
DRIVER_PACKAGES: dict[str, str] = {
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "mysqlconnector": "mysql-connector-python",
    "mariadbconnector": "mariadb",
    "aiomysql": "aiomysql",
    "asyncmy": "asyncmy",
    "aiosqlite": "aiosqlite",
    "pysqlcipher": "sqlcipher3",
    "cymysql": "cymysql",
}
#: SQLAlchemy driver name by the top-level module an ImportError names.
DRIVER_MODULES: dict[str, str] = {
    "psycopg": "psycopg",
    "psycopg2": "psycopg2",
    "pymysql": "pymysql",
    "MySQLdb": "mysqldb",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "mysql": "mysqlconnector",
    "mariadb": "mariadbconnector",
    "aiomysql": "aiomysql",
    "asyncmy": "asyncmy",
    "aiosqlite": "aiosqlite",
    "cymysql": "cymysql",
}


def install_hint(driver: str) -> str:
    """The pip command that installs SQLAlchemy driver ``driver``."""
    extra = DRIVER_EXTRAS.get(driver)
    if extra is not None:
        return f"pip install 'transactional_testcase[{extra}]'"
    return f"pip install {DRIVER_PACKAGES.get(driver, driver)}"


class Backend:
    """How one kind of database server is provisioned and isolated."""

    #: Human name used in messages.
    title: t.ClassVar[str] = "database"
    #: Environment variable documented as the way to point tests at this backend.
    env_hint: t.ClassVar[str] = "TEST_DATABASE_URL"
    #: Statements that commit the transaction implicitly on this backend.
    implicit_commit: t.ClassVar[re.Pattern[str] | None] = None
    #: Whether a class's idle connections are worth handing on to the next
    #: class (opening one costs a server process or a login).
    keeps_connections: t.ClassVar[bool] = False
    #: Whether an idle connection can be lost between two classes (a server
    #: restart): those an engine hands on are checked first.
    can_lose_connections: t.ClassVar[bool] = True
    #: Whether a test's first savepoint may be its transaction's start (see
    #: :meth:`transaction_untouched`): saves round trips to a server, nothing
    #: in-process.
    spares_savepoints: t.ClassVar[bool] = False

    def database_name(self, url: URL) -> str:
        """The name whose ``test`` marker makes a database safe to drop."""
        return url.database or ""

    def is_memory(self, url: URL) -> bool:
        """True for databases that live only inside one connection pool."""
        return False

    def prepare_engine(self, engine: Engine) -> None:
        """Make ``engine`` safe for SAVEPOINT-based isolation (idempotent)."""

    def reset_session(self, dbapi_connection: t.Any) -> None:
        """Make an idle connection kept for the next class look freshly opened."""

    def ping(self, dialect: t.Any, dbapi_connection: t.Any) -> bool:
        """Whether an idle connection kept from an earlier class still works; raises if not.

        A server that closed an idle connection (a restart, a terminated
        session) has sent something: only a connection whose socket has data
        waiting, or whose driver does not show its socket, costs a round trip.

        .. versionchanged:: 0.2
           No round trip for a connection whose socket is quiet.
        """
        if quiet_socket(dbapi_connection):
            return True
        return self._round_trip_ping(dialect, dbapi_connection)

    def _round_trip_ping(self, dialect: t.Any, dbapi_connection: t.Any) -> bool:
        return bool(dialect.do_ping(dbapi_connection))

    def transaction_untouched(self, dbapi_connection: t.Any) -> bool | None:
        """Whether nothing was sent since the connection's transaction began.

        Read from the driver, without a round trip; None where it cannot
        tell (the library then counts the statements it sees). Then a
        savepoint would mark the transaction's start, which costs nothing to
        return to (a ROLLBACK).
        """
        return None

    def recreate(self, url: URL) -> None:
        """Drop the database ``url`` names if it exists, then create it empty."""
        raise NotImplementedError

    def drop(self, url: URL) -> None:
        """Drop the database ``url`` names, if it exists."""
        raise NotImplementedError

    def template_url(self, url: URL, name: str) -> URL:
        """Where the migrated template called ``name`` lives, next to ``url``."""
        return url.set(database=name)

    def save_template(self, url: URL, template: URL, engine: Engine) -> None:
        """Copy the freshly migrated database ``url`` to ``template`` (all or nothing)."""
        raise NotImplementedError

    def has_template(self, template: URL, url: URL) -> bool:
        """Whether a complete template exists at ``template``.

        ``url`` is the database it would be cloned into: the one an error names
        (a user configured ``url``, not the template).
        """
        raise NotImplementedError

    def clone(self, template: URL, url: URL, engine: Engine) -> None:
        """Replace the database ``url`` by a copy of ``template``."""
        raise NotImplementedError

    def drop_templates(self, template: URL, prefix: str) -> None:
        """Drop templates named ``prefix*`` other than ``template`` (stale fingerprints)."""

    def read_marker(self, url: URL, engine: Engine) -> str | None:
        """The fingerprint a kept database was built from, if it exists.

        Read through the app's own ``engine``: on a warm run its connection is
        the one the tests then use, not one more to open.
        """
        return None

    def write_marker(self, url: URL, fingerprint: str) -> None:
        """Remember which fingerprint ``url`` was built from (``keepdb``)."""

    @contextlib.contextmanager
    def lock(self, url: URL, name: str) -> t.Iterator[None]:
        """Hold a lock shared by every process that may build template ``name``."""
        yield

    def table_emptier(
        self, connection: Connection, tables: t.Sequence[TableRef], lock_timeout: float
    ) -> TableEmptier:
        """Plan, once per class, emptying ``tables`` and resetting their counters.

        The returned callable does it through the connection it is given and
        returns the tables it emptied (for ``CommittingTestCase``).
        """
        raise ConfigurationError(f"emptying tables is not supported on {self.title}")

    def constraint_checker(self, connection: Connection) -> ConstraintChecker | None:
        """Plan, once per class, checking what a real COMMIT would check.

        The returned callable runs at the end of a test that wrote, on the
        test's connection, and describes the violations it finds (None: none).
        None means there is nothing a COMMIT would check that a statement has
        not already checked (no deferred constraints): the test pays nothing.
        """
        return None

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
    def admin_connection(self, url: URL, named: URL | None = None) -> t.Iterator[Connection]:
        """An AUTOCOMMIT connection to the server, outside the test database.

        If the server cannot be reached, the error names ``named`` (default
        ``url``): the database the user configured rather than a template.
        """
        last: Exception | None = None
        for admin_url in self._admin_urls(url):
            engine = sa.create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
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
        raise unreachable(named or url, last, self) from None


class SQLiteBackend(Backend):
    title = "SQLite"
    can_lose_connections = False  # a file: no server to lose it

    def database_name(self, url: URL) -> str:
        return os.path.basename(url.database or "")

    def is_memory(self, url: URL) -> bool:
        db = url.database or ""
        return db in ("", ":memory:") or db.startswith("file::memory:") or (url.query.get("mode") == "memory")

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
        for suffix in ("", "-journal", "-wal", "-shm", MARKER_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + suffix)

    def template_url(self, url: URL, name: str) -> URL:
        return url.set(database=os.path.join(template_folder(), name + ".db"), query={})

    def save_template(self, url: URL, template: URL, engine: Engine) -> None:
        path = template.database or ""
        partial = f"{path}.{os.getpid()}.partial"
        if self.is_memory(url):
            raw = engine.raw_connection()
            try:
                target = sqlite3.connect(partial)
                try:
                    raw.dbapi_connection.backup(target)  # type: ignore[union-attr]
                finally:
                    target.close()
            finally:
                raw.close()
        else:
            shutil.copyfile(url.database or "", partial)
        os.replace(partial, path)  # atomic: a template is complete or absent

    def has_template(self, template: URL, url: URL) -> bool:
        return os.path.isfile(template.database or "")

    def clone(self, template: URL, url: URL, engine: Engine) -> None:
        if self.is_memory(url):
            source = sqlite3.connect(template.database or "")
            raw = engine.raw_connection()
            try:
                source.backup(raw.dbapi_connection)  # type: ignore[arg-type]
            finally:
                raw.close()
                source.close()
            return
        self.recreate(url)
        shutil.copyfile(template.database or "", url.database or "")

    def drop_templates(self, template: URL, prefix: str) -> None:
        folder = os.path.dirname(template.database or "")
        keep = os.path.basename(template.database or "")
        for name in os.listdir(folder):
            if name.startswith(prefix) and name.endswith(".db") and name != keep:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, name))

    def read_marker(self, url: URL, engine: Engine) -> str | None:
        if self.is_memory(url) or not os.path.isfile(url.database or ""):
            return None
        try:
            with open(_marker_path(url), encoding="utf-8") as f:
                return f.read().strip()
        except OSError:
            return None

    def write_marker(self, url: URL, fingerprint: str) -> None:
        if not self.is_memory(url):
            with open(_marker_path(url), "w", encoding="utf-8") as f:
                f.write(fingerprint)

    @contextlib.contextmanager
    def lock(self, url: URL, name: str) -> t.Iterator[None]:
        with open(os.path.join(template_folder(), name + ".lock"), "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def constraint_checker(self, connection: Connection) -> ConstraintChecker | None:
        deferred = connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' "
            "AND sql LIKE '%DEFERRABLE%INITIALLY%DEFERRED%' LIMIT 1"
        ).first()
        if deferred is None:
            return None

        def check(conn: Connection) -> str | None:
            # Deferred foreign keys are checked at COMMIT only while enforcement is on.
            if not conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
                return None
            rows = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            if not rows:
                return None
            return "; ".join(f"{r[0]} rowid {r[1]} references missing {r[2]} row" for r in rows)

        return check

    def sequence_resetter(self, connection: Connection) -> t.Callable[[Connection], None]:
        # Rowids (and AUTOINCREMENT's sqlite_sequence) are transactional in
        # SQLite: a rolled-back test already leaves them where they were.
        return _noop

    def table_emptier(
        self, connection: Connection, tables: t.Sequence[TableRef], lock_timeout: float
    ) -> TableEmptier:
        if not tables:
            return _nothing
        quoted = _quoted_names(connection, tables)
        probe = " UNION ALL ".join(
            f"SELECT {i} WHERE EXISTS (SELECT 1 FROM {name})" for i, name in enumerate(quoted)
        )
        has_counters = (
            connection.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
            ).first()
            is not None
        )
        connection.rollback()
        own = {name for schema, name in tables if schema is None}
        timeout_ms = max(1, math.ceil(lock_timeout * 1000))

        def empty(conn: Connection) -> list[str]:
            # Through the DBAPI connection: PRAGMA foreign_keys is ignored inside a
            # transaction, and the engine's begin listener would open one first.
            raw: t.Any = conn.connection.dbapi_connection
            cursor = raw.cursor()
            try:
                dirty = [row[0] for row in cursor.execute(probe)]
                counters = (
                    sorted(
                        row[0] for row in cursor.execute("SELECT name FROM sqlite_sequence") if row[0] in own
                    )
                    if has_counters
                    else []
                )
                if not dirty and not counters:
                    return []
                enforced = cursor.execute("PRAGMA foreign_keys").fetchone()[0]
                busy = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
                cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
                if enforced:
                    cursor.execute("PRAGMA foreign_keys = OFF")
                try:
                    cursor.execute("BEGIN")
                    try:
                        for i in dirty:
                            cursor.execute(f"DELETE FROM {quoted[i]}")
                        if counters:
                            marks = ", ".join("?" * len(counters))
                            cursor.execute(f"DELETE FROM sqlite_sequence WHERE name IN ({marks})", counters)
                        cursor.execute("COMMIT")
                    except BaseException:
                        with contextlib.suppress(Exception):
                            cursor.execute("ROLLBACK")
                        raise
                finally:
                    if enforced:
                        cursor.execute("PRAGMA foreign_keys = ON")
                    cursor.execute(f"PRAGMA busy_timeout = {int(busy)}")
            finally:
                cursor.close()
            return sorted({tables[i][1] for i in dirty} | set(counters))

        return empty


class PostgreSQLBackend(Backend):
    title = "PostgreSQL"
    keeps_connections = True
    spares_savepoints = True

    def transaction_untouched(self, dbapi_connection: t.Any) -> bool | None:
        # libpq's transaction status, kept by the client: IDLE (0 for
        # psycopg2 and psycopg 3) until the driver sends its BEGIN with the
        # transaction's first statement.
        try:
            return bool(dbapi_connection.info.transaction_status == 0)
        except Exception:  # noqa: BLE001 - closed: its next statement fails as it would have
            return False

    def reset_session(self, dbapi_connection: t.Any) -> None:
        # Settings, temporary tables, prepared statements and advisory locks
        # go (psycopg 3 forgets its prepared statements on seeing it).
        dbapi_connection.rollback()
        _pg_outside_transaction(dbapi_connection, "DISCARD ALL")

    def _round_trip_ping(self, dialect: t.Any, dbapi_connection: t.Any) -> bool:
        # What the psycopg dialects' do_ping does, without compiling a
        # select(1) for every new dialect (a millisecond per class).
        _pg_outside_transaction(dbapi_connection, "SELECT 1")
        return True

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

    def save_template(self, url: URL, template: URL, engine: Engine) -> None:
        engine.dispose()  # nobody may be connected to the source of a copy
        with self.admin_connection(url) as conn:
            q = conn.dialect.identifier_preparer.quote
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {q(template.database or '')} WITH (FORCE)")
            # One statement: the template exists complete, or not at all.
            conn.exec_driver_sql(
                f"CREATE DATABASE {q(template.database or '')} TEMPLATE {q(url.database or '')}"
            )

    def has_template(self, template: URL, url: URL) -> bool:
        with self.admin_connection(template, named=url) as conn:
            found = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": template.database}
            ).first()
        return found is not None

    def clone(self, template: URL, url: URL, engine: Engine) -> None:
        engine.dispose()
        with self.admin_connection(url) as conn:
            q = conn.dialect.identifier_preparer.quote
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {q(url.database or '')} WITH (FORCE)")
            conn.exec_driver_sql(
                f"CREATE DATABASE {q(url.database or '')} TEMPLATE {q(template.database or '')}"
            )

    def drop_templates(self, template: URL, prefix: str) -> None:
        with self.admin_connection(template) as conn:
            names = (
                conn.execute(
                    sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p AND datname <> :k"),
                    {"p": prefix.replace("_", r"\_") + "%", "k": template.database},
                )
                .scalars()
                .all()
            )
            for name in names:
                quoted = conn.dialect.identifier_preparer.quote(name)
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")

    def read_marker(self, url: URL, engine: Engine) -> str | None:
        return _read_marker(
            engine,
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname = current_database()",
        )

    def write_marker(self, url: URL, fingerprint: str) -> None:
        with self.admin_connection(url) as conn:
            quoted = conn.dialect.identifier_preparer.quote(url.database or "")
            conn.exec_driver_sql(f"COMMENT ON DATABASE {quoted} IS '{fingerprint}'")

    @contextlib.contextmanager
    def lock(self, url: URL, name: str) -> t.Iterator[None]:
        key = zlib.crc32(name.encode())
        with self.admin_connection(url) as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})

    def constraint_checker(self, connection: Connection) -> ConstraintChecker | None:
        deferrable = connection.exec_driver_sql(
            "SELECT 1 FROM pg_constraint WHERE condeferrable LIMIT 1"
        ).first()
        if deferrable is None:
            return None
        return _pg_check_deferred

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

    def table_emptier(
        self, connection: Connection, tables: t.Sequence[TableRef], lock_timeout: float
    ) -> TableEmptier:
        default = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
        quoted = _quoted_names(connection, tables)
        index = {(schema or default, name): i for i, (schema, name) in enumerate(tables)}
        schemas = sorted({schema or default for schema, _ in tables} | {default})
        owned: dict[int, list[str]] = {}
        unowned: list[str] = []
        for sequence, table_schema, table in connection.execute(sa.text(_PG_SEQUENCES), {"schemas": schemas}):
            if table is None:
                unowned.append(sequence)
            elif (i := index.get((table_schema, table))) is not None:
                owned.setdefault(i, []).append(sequence)
            # else: the sequence of a kept table, left alone
        connection.rollback()
        parts = [
            f"SELECT {i} WHERE EXISTS (SELECT 1 FROM {name})"
            + "".join(f" OR (SELECT is_called FROM {seq})" for seq in owned.get(i, ()))
            for i, name in enumerate(quoted)
        ]
        parts += [f"SELECT {-1 - j} FROM {seq} WHERE is_called" for j, seq in enumerate(unowned)]
        if not parts:
            return _nothing
        probe = " UNION ALL ".join(parts)
        timeout = f"SET LOCAL lock_timeout = '{max(1, math.ceil(lock_timeout * 1000))}ms'"

        def empty(conn: Connection) -> list[str]:
            found = [row[0] for row in conn.exec_driver_sql(probe)]
            if not found:
                conn.rollback()
                return []
            conn.exec_driver_sql(timeout)
            dirty = [i for i in found if i >= 0]
            if dirty:
                conn.exec_driver_sql(
                    "TRUNCATE TABLE " + ", ".join(quoted[i] for i in dirty) + " RESTART IDENTITY CASCADE"
                )
            restarted = [unowned[-1 - i] for i in found if i < 0]
            for seq in restarted:
                conn.exec_driver_sql(f"ALTER SEQUENCE {seq} RESTART")
            conn.commit()
            return [tables[i][1] for i in dirty] + restarted

        return empty


class MySQLBackend(Backend):
    title = "MySQL/MariaDB"
    # DDL, TRUNCATE and a few others end the transaction (and its savepoints).
    implicit_commit = re.compile(
        r"^\s*(CREATE|ALTER|DROP|TRUNCATE|RENAME|LOCK\s+TABLES|UNLOCK\s+TABLES|GRANT|REVOKE)\b",
        re.IGNORECASE,
    )
    # No driver-neutral session reset exists (PyMySQL has no
    # COM_RESET_CONNECTION): a kept connection goes only to a class built by
    # the same create_app and config, whose connect listeners set the same.
    keeps_connections = True
    # No driver shows it reliably (PyMySQL's server_status is that of the
    # last OK packet: a statement returning rows, INSERT ... RETURNING
    # included, leaves it as it was): the statements are counted, which
    # every MySQL engine's monitor does anyway (implicit commits).
    spares_savepoints = True

    def _admin_urls(self, url: URL) -> list[URL]:
        return [url._replace(database=None)]

    def recreate(self, url: URL) -> None:
        with self.admin_connection(url) as conn:
            _mysql_recreate(conn, url.database or "")

    def drop(self, url: URL) -> None:
        with self.admin_connection(url) as conn:
            quoted = conn.dialect.identifier_preparer.quote(url.database or "")
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")

    def save_template(self, url: URL, template: URL, engine: Engine) -> None:
        self._copy(url, template)
        with self.admin_connection(template) as conn:
            q = conn.dialect.identifier_preparer.quote
            # Written last: a template without it was left half-built.
            conn.exec_driver_sql(f"CREATE TABLE {q(template.database or '')}.{q(_MYSQL_COMPLETE)} (id INT)")

    def has_template(self, template: URL, url: URL) -> bool:
        with self.admin_connection(template, named=url) as conn:
            found = conn.execute(
                sa.text(
                    "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = :s AND TABLE_NAME = :t"
                ),
                {"s": template.database, "t": _MYSQL_COMPLETE},
            ).first()
        return found is not None

    def clone(self, template: URL, url: URL, engine: Engine) -> None:
        engine.dispose()
        self._copy(template, url)

    def _copy(self, source: URL, target: URL) -> None:
        """Replay ``source``'s ``SHOW CREATE TABLE``s and rows into a new ``target``.

        ``CREATE TABLE ... LIKE`` would lose the foreign keys. One admin
        connection for all of it: a PyMySQL login costs tens of milliseconds.
        """
        with self.admin_connection(source) as conn:
            _mysql_recreate(conn, target.database or "")
            q = conn.dialect.identifier_preparer.quote
            src, dst = q(source.database or ""), q(target.database or "")
            tables = (
                conn.execute(
                    sa.text(
                        "SELECT TABLE_NAME FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA = :s AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME <> :c "
                        "ORDER BY TABLE_NAME"
                    ),
                    {"s": source.database, "c": _MYSQL_COMPLETE},
                )
                .scalars()
                .all()
            )
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
            try:
                conn.exec_driver_sql(f"USE {dst}")
                for table in tables:
                    ddl = conn.exec_driver_sql(f"SHOW CREATE TABLE {src}.{q(table)}").one()[1]
                    conn.exec_driver_sql(ddl)
                for table in tables:
                    conn.exec_driver_sql(f"INSERT INTO {dst}.{q(table)} SELECT * FROM {src}.{q(table)}")
            finally:
                conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")

    def drop_templates(self, template: URL, prefix: str) -> None:
        with self.admin_connection(template) as conn:
            names = (
                conn.execute(
                    sa.text(
                        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                        "WHERE SCHEMA_NAME LIKE :p AND SCHEMA_NAME <> :k"
                    ),
                    {"p": prefix.replace("_", r"\_") + "%", "k": template.database},
                )
                .scalars()
                .all()
            )
            for name in names:
                conn.exec_driver_sql(
                    f"DROP DATABASE IF EXISTS {conn.dialect.identifier_preparer.quote(name)}"
                )

    def read_marker(self, url: URL, engine: Engine) -> str | None:
        # MySQL has no schema comments: the query fails, and nothing is reused.
        return _read_marker(
            engine,
            "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()",
        )

    def write_marker(self, url: URL, fingerprint: str) -> None:
        with self.admin_connection(url) as conn, contextlib.suppress(sa.exc.DBAPIError):
            quoted = conn.dialect.identifier_preparer.quote(url.database or "")
            conn.exec_driver_sql(f"ALTER DATABASE {quoted} COMMENT '{fingerprint}'")

    @contextlib.contextmanager
    def lock(self, url: URL, name: str) -> t.Iterator[None]:
        with self.admin_connection(url) as conn:
            got = conn.execute(sa.text("SELECT GET_LOCK(:n, 600)"), {"n": name}).scalar()
            if got != 1:
                raise DatabaseUnreachableError(
                    f"timed out waiting for another process building the template {name}"
                )
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": name})

    def table_emptier(
        self, connection: Connection, tables: t.Sequence[TableRef], lock_timeout: float
    ) -> TableEmptier:
        if not tables:
            return _nothing
        default = connection.exec_driver_sql("SELECT DATABASE()").scalar_one()
        quoted = _quoted_names(connection, tables)
        index = {(schema or default, name): i for i, (schema, name) in enumerate(tables)}
        schemas = sorted({schema or default for schema, _ in tables})
        probe = " UNION ALL ".join(
            f"SELECT {i} FROM DUAL WHERE EXISTS (SELECT 1 FROM {name})" for i, name in enumerate(quoted)
        )
        dialect = connection.dialect
        # MySQL 8 caches information_schema's AUTO_INCREMENT for a day by default.
        fresh_stats = not getattr(dialect, "is_mariadb", False) and (dialect.server_version_info or (0,)) >= (
            8,
        )
        connection.rollback()
        seconds = max(1, math.ceil(lock_timeout))

        def empty(conn: Connection) -> list[str]:
            if fresh_stats:
                conn.exec_driver_sql("SET SESSION information_schema_stats_expiry = 0")
            rows = {row[0] for row in conn.exec_driver_sql(probe)}
            counters = {
                i
                for row in conn.execute(_MYSQL_COUNTERS, {"schemas": schemas})
                if (i := index.get((row[0], row[1]))) is not None
            }
            conn.rollback()
            if not rows and not counters:
                return []
            saved = conn.exec_driver_sql(
                "SELECT @@SESSION.foreign_key_checks, @@SESSION.lock_wait_timeout, "
                "@@SESSION.innodb_lock_wait_timeout"
            ).one()
            conn.exec_driver_sql(
                "SET SESSION foreign_key_checks = 0, "
                f"lock_wait_timeout = {seconds}, innodb_lock_wait_timeout = {seconds}"
            )
            try:
                # DELETE is cheap on a near-empty table; TRUNCATE (DDL, an implicit
                # commit) is what resets AUTO_INCREMENT.
                for i in sorted(rows - counters):
                    conn.exec_driver_sql(f"DELETE FROM {quoted[i]}")
                conn.commit()
                for i in sorted(counters):
                    conn.exec_driver_sql(f"TRUNCATE TABLE {quoted[i]}")
            finally:
                try:
                    conn.rollback()
                    checks, wait, innodb_wait = (int(v) for v in saved)
                    conn.exec_driver_sql(
                        f"SET SESSION foreign_key_checks = {checks}, lock_wait_timeout = {wait}, "
                        f"innodb_lock_wait_timeout = {innodb_wait}"
                    )
                    conn.commit()
                except sa.exc.SQLAlchemyError:
                    # Never hand the pool a connection with foreign-key checks off.
                    conn.invalidate()
            return sorted(tables[i][1] for i in rows | counters)

        return empty


_MYSQL_COMPLETE = "transactional_testcase_complete"

MARKER_SUFFIX = ".tt-fingerprint"


def template_folder() -> str:
    """Where SQLite templates are kept between runs."""
    folder = os.environ.get(environment.CACHE) or os.path.join(
        os.path.expanduser("~"), ".cache", "transactional_testcase"
    )
    os.makedirs(folder, exist_ok=True)
    return folder


def _marker_path(url: URL) -> str:
    return (url.database or "") + MARKER_SUFFIX


_PG_SEQUENCES = """
SELECT s.oid::regclass::text, tn.nspname, tbl.relname
FROM pg_class s
JOIN pg_namespace sn ON sn.oid = s.relnamespace
LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
LEFT JOIN pg_class tbl ON tbl.oid = d.refobjid
LEFT JOIN pg_namespace tn ON tn.oid = tbl.relnamespace
WHERE s.relkind = 'S' AND sn.nspname = ANY(:schemas)
ORDER BY 1
"""

_MYSQL_COUNTERS = sa.text(
    "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA IN :schemas AND AUTO_INCREMENT > 1"
).bindparams(sa.bindparam("schemas", expanding=True))

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
        raise MissingDriverError(
            f"{mask_url(url)} needs the {driver!r} driver, which is not installed "
            f"({exc}): {install_hint(driver)}."
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
    first = scrub(first_line(exc), url)
    return DatabaseUnreachableError(
        f"cannot connect to the {backend.title} server for {mask_url(url)}: {first}. "
        f"Start the server, or point {backend.env_hint} / database_url at one that runs."
    )


def _nothing(connection: Connection) -> list[str]:
    return []


def _quoted_names(connection: Connection, tables: t.Sequence[TableRef]) -> list[str]:
    preparer = connection.dialect.identifier_preparer
    return [
        (f"{preparer.quote_schema(schema)}." if schema else "") + preparer.quote(name)
        for schema, name in tables
    ]


def reflect_tables(
    connection: Connection, schemas: t.Iterable[str | None], keep: t.Container[str]
) -> list[TableRef]:
    """Every table of ``schemas`` (None: the default schema) but those named in ``keep``."""
    inspector = sa.inspect(connection)
    found: list[TableRef] = []
    for schema in schemas:
        for name in inspector.get_table_names(schema=schema):
            if name not in keep:
                found.append((schema, name))
    return found


def model_schemas(db: SQLAlchemy, key: str | None) -> list[str | None]:
    """The default schema, then every other schema the bind's models name."""
    metadata = db.metadatas.get(key)
    named = {table.schema for table in metadata.tables.values()} if metadata is not None else set()
    return [None, *sorted(s for s in named if s is not None)]


def quiet_socket(dbapi_connection: t.Any) -> bool | None:
    """Whether nothing waits to be read on an idle connection's socket.

    An idle connection receives nothing until the server closes it (a restart,
    a terminated session, a timeout). None, meaning "ask the server", when
    the socket cannot be seen.
    """
    fd = socket_fileno(dbapi_connection)
    if fd is None or fd < 0:
        return None
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return not poller.poll(0)  # POLLHUP and POLLERR are always reported


def _pg_outside_transaction(dbapi_connection: t.Any, statement: str) -> None:
    """Run ``statement`` in autocommit mode (``DISCARD ALL`` refuses a transaction block).

    psycopg2 and psycopg 3 both switch with the ``autocommit`` attribute, which
    opens no transaction of its own.
    """
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
    finally:
        dbapi_connection.autocommit = autocommit


def _mysql_recreate(conn: Connection, name: str) -> None:
    quoted = conn.dialect.identifier_preparer.quote(name)
    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
    conn.exec_driver_sql(f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")


def _pg_check_deferred(connection: Connection) -> str | None:
    # What Django does before rolling back: deferred constraints fire now. No
    # savepoint is needed: the test's transaction (or its savepoint, whose
    # rollback also restores the constraint modes) is rolled back right after.
    try:
        connection.exec_driver_sql("SET CONSTRAINTS ALL IMMEDIATE")
    except sa.exc.DBAPIError as exc:
        orig = exc.orig
        state = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
        if not state.startswith("23"):
            return None  # not a violation: an aborted transaction, say
        return first_line(exc)
    return None


def _read_marker(engine: Engine, statement: str) -> str | None:
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(statement).scalar() or None
    except sa.exc.DBAPIError:
        # No such database yet (or no server: provisioning then says so).
        return None


def _noop(connection: Connection) -> None:
    return None


def _sqlite_on_connect(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_on_begin(conn: Connection) -> None:
    # An app that applies the same fix itself has already emitted BEGIN.
    if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN")
