"""Databases seen through connections of our own, never the app's engines.

Server-side admin SQL (``admin_connection``, ``database_exists``,
``server_databases``, ``drop_database``) and what a database holds
(``table_names``, ``leftover_rows``, ``delete_all_rows``...): what these see is
what is committed. Every connection here is unpooled and its engine disposed
of afterwards, so nothing stays connected to the servers.
"""

from __future__ import annotations

import contextlib
import os
import typing as t

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from transactional_testcase.connections import keeper


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


#: The version tables of the test apps' migrations: Alembic's, and the one
#: ``plain_alembic/own_version_table`` names. Their rows are the schema's own.
VERSION_TABLES = frozenset({"alembic_version", "widgets_version"})


def delete_all_rows(url: str) -> None:
    """Delete every row but the version tables' (children first), so later tests start clean.

    For after a broken isolation: what it committed for real must not reach the next test.
    """
    with own_connection(url, begin=True) as conn:
        metadata = sa.MetaData()
        metadata.reflect(conn)
        for table in reversed(metadata.sorted_tables):
            if table.name not in VERSION_TABLES:
                conn.execute(table.delete())


def leftover_rows(url: str) -> dict[str, int]:
    """Rows in every table but the version tables, seen through a connection of our own."""
    with own_connection(url) as conn:
        counts = {}
        for table in sa.inspect(conn).get_table_names():
            if table in VERSION_TABLES:
                continue
            n = conn.execute(
                sa.text(f"SELECT COUNT(*) FROM {conn.dialect.identifier_preparer.quote(table)}")
            ).scalar_one()
            if n:
                counts[table] = n
        return counts


def assert_no_leftover_rows(who: str, urls: t.Iterable[str]) -> None:
    """Fail, naming ``who``, when a database at ``urls`` holds a row (the version tables aside).

    For after a class: whatever its tests committed must have been undone.
    """
    for url in urls:
        left = leftover_rows(url)
        if left:
            raise AssertionError(f"{who} left rows behind in {url}: {left}")
