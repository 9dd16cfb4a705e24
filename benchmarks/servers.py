"""The database servers the benchmarks run on, and the few admin statements they need.

Each backend is named after its driver. Servers default to the local ones
(PostgreSQL on 127.0.0.1:5432 as ``postgres``, MariaDB on 127.0.0.1:3306 as
``root``); ``BENCH_<DRIVER>_URL`` (e.g. ``BENCH_PSYCOPG2_URL``) points one
elsewhere: its database part is ignored, every database the benchmarks create
gets its own name, and every name contains ``test``. ``BENCH_TAG`` starts every
name with ``<tag>_``: two runs on one shared server then never touch each
other's databases.
"""

from __future__ import annotations

import contextlib
import os
import typing as t

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

SERVER_URLS: dict[str, str | None] = {
    "sqlite": None,
    "psycopg2": "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres",
    "psycopg": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "pymysql": "mysql+pymysql://root@127.0.0.1:3306/",
    "mysqlclient": "mysql+mysqldb://root@127.0.0.1:3306/",
}

TITLES = {
    "sqlite": "SQLite (file)",
    "psycopg2": "PostgreSQL/psycopg2",
    "psycopg": "PostgreSQL/psycopg3",
    "pymysql": "MariaDB/PyMySQL",
    "mysqlclient": "MariaDB/mysqlclient",
}


def server_url(driver: str) -> URL | None:
    """The server of ``driver`` (None for SQLite)."""
    if driver not in SERVER_URLS:
        raise SystemExit(f"unknown backend {driver!r}; choose from {', '.join(SERVER_URLS)}")
    raw = os.environ.get(f"BENCH_{driver.upper()}_URL") or SERVER_URLS[driver]
    return sa.make_url(raw) if raw else None


def database_url(driver: str, name: str, sqlite_dir: str) -> str:
    """URL of the test database ``name`` (a file in ``sqlite_dir`` for SQLite)."""
    if "test" not in name:
        raise ValueError(f"benchmark database names must contain 'test': {name!r}")
    tag = os.environ.get("BENCH_TAG")
    if tag:
        name = f"{tag}_{name}"
    server = server_url(driver)
    if server is None:
        return "sqlite:///" + os.path.join(sqlite_dir, name + ".db")
    return server.set(database=name).render_as_string(hide_password=False)


def family(url: str | URL) -> str:
    """``sqlite``, ``postgresql`` or ``mysql``."""
    name = sa.make_url(url).get_backend_name()
    return "mysql" if name == "mariadb" else name


def _admin_url(url: URL) -> URL:
    if family(url) == "postgresql":
        return url.set(database="postgres")
    return URL.create(url.drivername, url.username, url.password, url.host, url.port, query=url.query)


def admin(url: str | URL, statements: t.Iterable[str]) -> list[t.Any]:
    """Run ``statements`` in AUTOCOMMIT on ``url``'s server; the first column of each result."""
    engine = sa.create_engine(_admin_url(sa.make_url(url)), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        out = []
        with engine.connect() as conn:
            for statement in statements:
                result = conn.exec_driver_sql(statement)
                out.append(result.scalars().all() if result.returns_rows else None)
        return out
    finally:
        engine.dispose()


def _quote(url: URL, name: str) -> str:
    return sa.make_url(url).get_dialect()().identifier_preparer.quote(name)


def drop_database(url: str | URL) -> None:
    """Drop the test database ``url`` names, if it exists."""
    parsed = sa.make_url(url)
    name = parsed.database or ""
    if "test" not in os.path.basename(name):
        raise ValueError(f"refusing to drop {name!r}: not a test database")
    if family(parsed) == "sqlite":
        for suffix in ("", "-journal", "-wal", "-shm", ".tt-fingerprint"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name + suffix)
        return
    force = " WITH (FORCE)" if family(parsed) == "postgresql" else ""
    admin(parsed, [f"DROP DATABASE IF EXISTS {_quote(parsed, name)}{force}"])


def create_database(url: str | URL) -> None:
    """(Re)create the empty test database ``url`` names."""
    parsed = sa.make_url(url)
    drop_database(parsed)
    if family(parsed) == "sqlite":
        return
    name = _quote(parsed, parsed.database or "")
    if family(parsed) == "mysql":
        admin(parsed, [f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"])
    else:
        admin(parsed, [f"CREATE DATABASE {name}"])


def list_databases(url: str | URL, prefix: str) -> list[str]:
    """Names of the databases on ``url``'s server that start with ``prefix``."""
    parsed = sa.make_url(url)
    if family(parsed) == "postgresql":
        query = "SELECT datname FROM pg_database ORDER BY 1"
    else:
        query = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY 1"
    return [n for n in admin(parsed, [query])[0] if n.startswith(prefix)]


def server_version(driver: str) -> str:
    server = server_url(driver)
    if server is None:
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    query = "SHOW server_version" if family(server) == "postgresql" else "SELECT VERSION()"
    version = admin(server, [query])[0][0]
    prefix = "PostgreSQL " if family(server) == "postgresql" else ""
    return prefix + str(version)


def unreachable(driver: str) -> str | None:
    """Why ``driver``'s server cannot be used, or None."""
    server = server_url(driver)
    if server is None:
        return None
    try:
        server.get_dialect().import_dbapi()
    except ImportError as exc:
        return f"driver not installed ({exc})"
    try:
        admin(server, ["SELECT 1"])
    except Exception as exc:  # noqa: BLE001 - any failure means "not usable"
        return str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    return None
