"""PostgreSQL: ``CREATE DATABASE ... TEMPLATE`` clones, advisory locks, comments as markers.

Both psycopg2 and psycopg 3 are served by the same code: it only uses what
they share (libpq's transaction status, the ``autocommit`` attribute).
"""

from __future__ import annotations

import contextlib
import math
import typing as t
import zlib

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import NullPool

from ..errors import first_line
from . import register
from .base import (
    TEMPLATE_NAME,
    Backend,
    ConstraintChecker,
    Leftover,
    TableEmptier,
    TableRef,
    empty_nothing,
    make_label,
    parse_label,
    query_marker,
    quoted_names,
    reset_nothing,
    sql_literal,
)

#: Every sequence of ``:schemas`` with the table that owns it (NULLs: owned by none).
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

#: Every sequence a column owns (serial, identity), quoted: sequence, table, column.
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


#: The tables whose rows tell whether a transaction committed into the database
#: since a snapshot: the user's and the database's own catalogs (committed DDL
#: writes those), less the planner's statistics (ANALYZE, autovacuum's too,
#: writes them) and other sessions' temporary tables. Whether each is the
#: server's own (``pg_catalog``, ``information_schema``) and whether this role
#: may read it: a catalog it may not read (``pg_user_mapping``) is left out.
_PG_SNAPSHOT_TABLES = """
SELECT c.oid::regclass::text,
       c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace),
       has_table_privilege(c.oid, 'SELECT')
FROM pg_class c
WHERE c.relkind = 'r' AND NOT c.relisshared AND c.relpersistence <> 't'
  AND c.oid NOT IN ('pg_catalog.pg_statistic'::regclass, 'pg_catalog.pg_statistic_ext_data'::regclass)
ORDER BY 1
"""

#: Every sequence of the database (not temporary), and whether this role may read it.
_PG_SNAPSHOT_SEQUENCES = """
SELECT c.oid::regclass::text, has_sequence_privilege(c.oid, 'SELECT')
FROM pg_class c WHERE c.relkind = 'S' AND c.relpersistence <> 't' ORDER BY 1
"""

#: What a rename keeps of the database itself and a copy would not: owner,
#: privileges, connection settings, and its ``ALTER DATABASE ... SET`` values.
_PG_DATABASE_ROW = """
SELECT d.datdba, d.datacl::text, d.datconnlimit, d.datallowconn, d.datistemplate,
       (SELECT count(*) FROM pg_db_role_setting s WHERE s.setdatabase = d.oid)
FROM pg_database d WHERE d.datname = current_database()
"""

#: How much a database may have grown since its snapshot (bytes of tables
#: and indexes, rolled-back rows included) and still be renamed as it is:
#: beyond that, the tables that grew are compacted first, or every clone
#: would copy the dead rows of the run that made the template.
_RENAME_GROWTH = 1 << 20


class _Snapshot(t.NamedTuple):
    """A freshly built database as :meth:`PostgreSQLBackend.rename_to_template` compares it."""

    #: The next transaction id (32 bits) when it was taken: a row written
    #: since has an ``xmin`` no older than this.
    next_xid: int
    #: Rows of every table of :data:`_PG_SNAPSHOT_TABLES` it may read.
    rows: dict[str, int]
    #: Bytes of each of the user's tables, indexes and TOAST included.
    sizes: dict[str, int]
    #: Each sequence's ``(last_value, is_called)``.
    sequences: dict[str, tuple[int, bool]]
    #: :data:`_PG_DATABASE_ROW`.
    database: tuple[t.Any, ...]


@register("postgresql")
class PostgreSQLBackend(Backend):
    title = "PostgreSQL"
    keeps_connections = True
    spares_savepoints = True
    resets_sessions = True  # DISCARD ALL
    # invalid_password, invalid_authorization_specification (no such role,
    # pg_hba refusal), invalid_catalog_name, insufficient_privilege.
    connect_failures = {"28P01": "auth", "28000": "auth", "3D000": "missing", "42501": "permission"}
    renames_to_templates = True

    def name_limit(self, name: str) -> str | None:
        size = len(name.encode())
        if size <= 63:
            return None
        return (
            f"it is {size} bytes long and PostgreSQL keeps the first 63 of a name, silently: two "
            "names alike up to there (two workers' databases) would be one database"
        )

    def error_code(self, dbapi_error: BaseException) -> str | None:
        # psycopg 3: sqlstate; psycopg2: pgcode (None for most connect errors).
        code = getattr(dbapi_error, "sqlstate", None) or getattr(dbapi_error, "pgcode", None)
        return str(code) if code else None

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

    def save_template(self, url: URL, template: URL, engine: Engine, label: str = "") -> None:
        engine.dispose()  # nobody may be connected to the source of a copy
        with self.admin_connection(url) as conn:
            q = conn.dialect.identifier_preparer.quote
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {q(template.database or '')} WITH (FORCE)")
            # One statement: the template exists complete, or not at all.
            conn.exec_driver_sql(
                f"CREATE DATABASE {q(template.database or '')} TEMPLATE {q(url.database or '')}"
            )
            if label:  # not copied by CREATE DATABASE ... TEMPLATE: its clones have none
                conn.exec_driver_sql(
                    f"COMMENT ON DATABASE {q(template.database or '')} IS {sql_literal(conn, label)}"
                )

    def snapshot(self, engine: Engine) -> _Snapshot | None:
        with engine.connect() as conn:
            next_xid = conn.exec_driver_sql("SELECT txid_snapshot_xmax(txid_current_snapshot())").scalar_one()
            tables = conn.exec_driver_sql(_PG_SNAPSHOT_TABLES).all()
            sequences = conn.exec_driver_sql(_PG_SNAPSHOT_SEQUENCES).all()
            if not all(readable for _, catalog, readable in tables if not catalog) or not all(
                readable for _, readable in sequences
            ):
                return None  # what it cannot read, it could not compare
            names = [name for name, _, readable in tables if readable]
            user_tables = {name for name, catalog, _ in tables if not catalog}
            # Sizes of the user's tables only: each is a stat() of every file
            # of the table, its indexes and TOAST, and catalogs are never compacted.
            counted = conn.exec_driver_sql(
                " UNION ALL ".join(
                    f"SELECT {i}, count(*), "
                    + (f"pg_total_relation_size({_literal(name)}::regclass)" if name in user_tables else "0")
                    + f" FROM {name}"
                    for i, name in enumerate(names)
                )
            ).all()
            values = (
                conn.exec_driver_sql(
                    " UNION ALL ".join(
                        f"SELECT {i}, last_value, is_called FROM {name}"
                        for i, (name, _) in enumerate(sequences)
                    )
                ).all()
                if sequences
                else []
            )
            database = tuple(conn.exec_driver_sql(_PG_DATABASE_ROW).one())
            conn.rollback()
        return _Snapshot(
            int(next_xid) % 2**32,
            {names[i]: int(rows) for i, rows, _ in counted},
            {names[i]: int(size) for i, _, size in counted if names[i] in user_tables},
            {sequences[i][0]: (int(value), bool(called)) for i, value, called in values},
            database,
        )

    def rename_to_template(self, url: URL, template: URL, snapshot: t.Any, label: str) -> str | None:
        if not isinstance(snapshot, _Snapshot):
            return "it was never compared"
        name = url.database or ""
        try:
            with self.admin_connection(url) as admin:
                # This process is done with the database: whatever is still
                # connected (an engine nobody disposed) goes, as a DROP ...
                # WITH (FORCE) would end it; else the rename would wait for it.
                admin.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
                engine = sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
                try:
                    with engine.connect() as conn:
                        changed = _changes_since(conn, snapshot)
                        if changed:
                            return changed
                        _restore_sequences(conn, snapshot)
                        _compact_if_grown(conn, snapshot)
                finally:
                    engine.dispose()
                q = admin.dialect.identifier_preparer.quote
                if label:  # first: a template is never without its label
                    admin.exec_driver_sql(f"COMMENT ON DATABASE {q(name)} IS {sql_literal(admin, label)}")
                admin.exec_driver_sql(f"ALTER DATABASE {q(name)} RENAME TO {q(template.database or '')}")
        except sa.exc.DBAPIError as exc:
            return f"{type(exc.orig).__name__}: {first_line(exc)}"
        return None

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

    def template_names(self, url: URL, prefix: str) -> list[str]:
        with self.admin_connection(url) as conn:
            return list(
                conn.execute(
                    sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p ORDER BY 1"),
                    {"p": prefix.replace("_", r"\_") + "%"},
                ).scalars()
            )

    def drop_templates(self, template: URL, prefix: str) -> list[str]:
        names = [name for name in self.template_names(template, prefix) if name != template.database]
        with self.admin_connection(template) as conn:
            for name in names:
                quoted = conn.dialect.identifier_preparer.quote(name)
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
        return names

    def read_marker(self, url: URL, engine: Engine) -> str | None:
        return query_marker(
            engine,
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname = current_database()",
        )

    def write_marker(self, url: URL, fingerprint: str, source: str = "") -> None:
        with self.admin_connection(url) as conn:
            quoted = conn.dialect.identifier_preparer.quote(url.database or "")
            label = sql_literal(conn, make_label(fingerprint, source))
            conn.exec_driver_sql(f"COMMENT ON DATABASE {quoted} IS {label}")

    def inventory(self, url: URL) -> list[Leftover]:
        found: list[Leftover] = []
        with self.admin_connection(url) as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname LIKE :p ORDER BY datname"
                ),
                {"p": "%test%"},
            ).all()
            for name, comment in rows:
                label = parse_label(comment)
                if TEMPLATE_NAME.match(name):
                    kind = "template"
                elif label is not None:
                    kind = "kept"
                else:
                    continue
                try:  # dropped meanwhile by another run: no size
                    size = conn.execute(sa.text("SELECT pg_database_size(:n)"), {"n": name}).scalar()
                except sa.exc.DBAPIError:
                    size = None
                found.append(
                    Leftover(
                        kind,
                        name,
                        url.set(database=name),
                        label.source if label else "",
                        int(size) if size is not None else None,
                        label.made if label else None,
                    )
                )
        return found

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
            return reset_nothing
        parts = [
            f"setval({_literal(seq)}, COALESCE((SELECT MAX({col}) FROM {table}), 0) + 1, false)"
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
        quoted = quoted_names(connection, tables)
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
            return empty_nothing
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


def _changes_since(conn: Connection, snapshot: _Snapshot) -> str | None:
    """What was committed into the database since ``snapshot`` (a table that changed), or None.

    A row inserted or updated since has an ``xmin`` no older than the
    snapshot's next transaction id (``age()`` compares them as the server
    does, around the wraparound); a row deleted leaves its table with fewer
    rows. Committed DDL writes the catalogs, which are compared the same way.
    """
    if tuple(conn.exec_driver_sql(_PG_DATABASE_ROW).one()) != snapshot.database:
        return "the database's own settings changed"
    names = list(snapshot.rows)
    current = {name for name, _, readable in conn.exec_driver_sql(_PG_SNAPSHOT_TABLES) if readable}
    if current != set(names):
        return "tables were created or dropped"
    counted = conn.exec_driver_sql(
        " UNION ALL ".join(
            f"SELECT {i}, count(*), count(*) FILTER (WHERE age(xmin) <= age('{snapshot.next_xid}'::xid)) "
            f"FROM {name}"
            for i, name in enumerate(names)
        )
    ).all()
    for i, rows, written in counted:
        if written or rows != snapshot.rows[names[i]]:
            return f"{names[i]} changed"
    sequences = {name for name, _ in conn.exec_driver_sql(_PG_SNAPSHOT_SEQUENCES)}
    if sequences != set(snapshot.sequences):
        return "sequences were created or dropped"
    return None


def _restore_sequences(conn: Connection, snapshot: _Snapshot) -> None:
    """Set every sequence back to where the build left it: tests' ``nextval()`` outlives their rollback."""
    if snapshot.sequences:
        conn.exec_driver_sql(
            "SELECT "
            + ", ".join(
                f"setval({_literal(name)}, {value}, {'true' if called else 'false'})"
                for name, (value, called) in snapshot.sequences.items()
            )
        )


def _compact_if_grown(conn: Connection, snapshot: _Snapshot) -> None:
    """Rewrite the tables that grew by rows the tests rolled back, when they grew by much."""
    names = list(snapshot.sizes)
    if not names:  # nothing of the user's (as CREATE DATABASE makes it)
        return
    sizes = conn.exec_driver_sql(
        " UNION ALL ".join(
            f"SELECT {i}, pg_total_relation_size({_literal(name)}::regclass)" for i, name in enumerate(names)
        )
    ).all()
    grown = [names[i] for i, size in sizes if size > snapshot.sizes[names[i]]]
    if sum(size - snapshot.sizes[names[i]] for i, size in sizes) > _RENAME_GROWTH:
        for name in grown:
            conn.exec_driver_sql(f"VACUUM FULL {name}")


def _literal(text: str) -> str:
    """``text`` as a SQL string literal (a quoted name may hold a quote)."""
    return "'" + text.replace("'", "''") + "'"


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
