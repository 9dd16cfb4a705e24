"""MySQL and MariaDB: clones replayed from ``SHOW CREATE TABLE``, ``GET_LOCK`` locks.

DDL commits implicitly here, so a template cannot be built in one
statement: a marker table, written last, tells a complete one from a
half-built one.
"""

from __future__ import annotations

import contextlib
import math
import re
import typing as t

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from ..errors import DatabaseUnreachableError
from . import register
from .base import (
    TEMPLATE_NAME,
    Backend,
    Leftover,
    TableEmptier,
    TableRef,
    empty_nothing,
    make_label,
    parse_label,
    query_marker,
    quoted_names,
    sql_literal,
)

#: The table a template gets last: without it, it was left half-built.
_MYSQL_COMPLETE = "transactional_testcase_complete"

#: Tables of ``:schemas`` whose AUTO_INCREMENT counter has moved.
_MYSQL_COUNTERS = sa.text(
    "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA IN :schemas AND AUTO_INCREMENT > 1"
).bindparams(sa.bindparam("schemas", expanding=True))


@register("mysql", "mariadb")
class MySQLBackend(Backend):
    title = "MySQL/MariaDB"
    # ER_ACCESS_DENIED_ERROR, ER_BAD_DB_ERROR, ER_DBACCESS_DENIED_ERROR.
    connect_failures = {"1045": "auth", "1049": "missing", "1044": "permission"}
    # DDL, TRUNCATE and a few others end the transaction (and its savepoints).
    implicit_commit = re.compile(
        r"^\s*(CREATE|ALTER|DROP|TRUNCATE|RENAME|LOCK\s+TABLES|UNLOCK\s+TABLES|GRANT|REVOKE)\b",
        re.IGNORECASE,
    )

    def name_limit(self, name: str) -> str | None:
        if len(name) <= 64:
            return None
        return f"it is {len(name)} characters long and MySQL/MariaDB refuse names longer than 64"

    def error_code(self, dbapi_error: BaseException) -> str | None:
        # PyMySQL and mysqlclient: (errno, message).
        args = getattr(dbapi_error, "args", ())
        return str(args[0]) if args and isinstance(args[0], int) else None

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

    def save_template(self, url: URL, template: URL, engine: Engine, label: str = "") -> None:
        self._copy(url, template)
        with self.admin_connection(template) as conn:
            q = conn.dialect.identifier_preparer.quote
            # Written last, with the label in its one row: a template without
            # it was left half-built.
            conn.exec_driver_sql(
                f"CREATE TABLE {q(template.database or '')}.{q(_MYSQL_COMPLETE)} (label TEXT) "
                f"SELECT {sql_literal(conn, label)} AS label"
            )

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

    def template_names(self, url: URL, prefix: str) -> list[str]:
        with self.admin_connection(url) as conn:
            return list(
                conn.execute(
                    sa.text(
                        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                        "WHERE SCHEMA_NAME LIKE :p ORDER BY 1"
                    ),
                    {"p": prefix.replace("_", r"\_") + "%"},
                ).scalars()
            )

    def drop_templates(self, template: URL, prefix: str) -> list[str]:
        names = [name for name in self.template_names(template, prefix) if name != template.database]
        with self.admin_connection(template) as conn:
            for name in names:
                conn.exec_driver_sql(
                    f"DROP DATABASE IF EXISTS {conn.dialect.identifier_preparer.quote(name)}"
                )
        return names

    def read_marker(self, url: URL, engine: Engine) -> str | None:
        # MySQL has no schema comments: the query fails, and nothing is reused.
        return query_marker(
            engine,
            "SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE()",
        )

    def write_marker(self, url: URL, fingerprint: str, source: str = "") -> None:
        with self.admin_connection(url) as conn, contextlib.suppress(sa.exc.DBAPIError):
            quoted = conn.dialect.identifier_preparer.quote(url.database or "")
            label = sql_literal(conn, make_label(fingerprint, source))
            conn.exec_driver_sql(f"ALTER DATABASE {quoted} COMMENT {label}")

    def inventory(self, url: URL) -> list[Leftover]:
        found: list[Leftover] = []
        with self.admin_connection(url) as conn:
            like = {"p": "%test%"}
            try:  # MariaDB 10.5+; MySQL has no schema comments (and no kept databases)
                rows = conn.execute(
                    sa.text(
                        "SELECT SCHEMA_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA "
                        "WHERE SCHEMA_NAME LIKE :p ORDER BY SCHEMA_NAME"
                    ),
                    like,
                ).all()
            except sa.exc.DBAPIError:
                rows = conn.execute(
                    sa.text(
                        "SELECT SCHEMA_NAME, NULL FROM information_schema.SCHEMATA "
                        "WHERE SCHEMA_NAME LIKE :p ORDER BY SCHEMA_NAME"
                    ),
                    like,
                ).all()
            sizes = {
                row[0]: int(row[1] or 0)
                for row in conn.execute(
                    sa.text(
                        "SELECT TABLE_SCHEMA, SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA LIKE :p GROUP BY TABLE_SCHEMA"
                    ),
                    like,
                )
            }
            q = conn.dialect.identifier_preparer.quote
            for name, comment in rows:
                if TEMPLATE_NAME.match(name):
                    kind = "template"
                    try:  # a template made before 0.4 has no label
                        text = conn.exec_driver_sql(
                            f"SELECT label FROM {q(name)}.{q(_MYSQL_COMPLETE)}"
                        ).scalar()
                    except sa.exc.DBAPIError:
                        text = None
                    label = parse_label(text)
                else:
                    label = parse_label(comment)
                    if label is None:
                        continue
                    kind = "kept"
                found.append(
                    Leftover(
                        kind,
                        name,
                        url.set(database=name),
                        label.source if label else "",
                        sizes.get(name, 0),
                        label.made if label else None,
                    )
                )
        return found

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
            return empty_nothing
        default = connection.exec_driver_sql("SELECT DATABASE()").scalar_one()
        quoted = quoted_names(connection, tables)
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


def _mysql_recreate(conn: Connection, name: str) -> None:
    """Drop the database ``name`` if it exists and create it empty, in utf8mb4."""
    quoted = conn.dialect.identifier_preparer.quote(name)
    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
    conn.exec_driver_sql(f"CREATE DATABASE {quoted} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
