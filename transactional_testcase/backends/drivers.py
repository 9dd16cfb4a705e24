"""What to install, what is safe to drop, and what to say when a server is away.

Kept apart from the vendor modules: these answers are needed before any
backend does anything (a missing driver, an unsafe name), and they are the
same whatever the vendor.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from sqlalchemy.engine import URL

from ..errors import (
    ConfigurationError,
    DatabaseUnreachableError,
    MissingDriverError,
    UnsafeDatabaseError,
    first_line,
    mask_url,
    scrub,
)

if t.TYPE_CHECKING:
    from .base import Backend

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
    """Refuse to drop or recreate a database whose name lacks ``test``, or that the server would not name so.

    .. versionchanged:: 0.5
       Also refuses a name longer than the server keeps (PostgreSQL cuts it
       silently, so two workers' databases could become one).
    """
    # Imported here: the registry imports the vendor modules, which import this one.
    from . import backend_for

    backend = backend_for(url)
    if backend.is_memory(url):
        return
    if "test" not in backend.database_name(url).lower():
        raise UnsafeDatabaseError(
            f"refusing to drop and recreate {mask_url(url)}: its database name does "
            f"not contain 'test'. Change {setting} to a database whose name "
            "contains 'test' (for example 'myapp_test')."
        )
    name = backend.database_name(url)
    too_long = backend.name_limit(name)
    if too_long is not None:
        raise ConfigurationError(
            f"cannot use {mask_url(url)} as a test database: {too_long}. Change {setting} to a shorter "
            "name (a parallel runner adds the worker's name to it, '_gw0'; the migration checks add "
            "'_migrations')."
        )


def unreachable(url: URL, exc: BaseException, backend: Backend) -> DatabaseUnreachableError:
    """A :class:`DatabaseUnreachableError` for ``url``: the driver's first line and the fix for its cause.

    .. versionchanged:: 0.4
       Tells a server that is down or away from one that refused the
       credentials, lacks the database, or denies the permission.
    """
    first = scrub(first_line(exc), url)
    setting = f"{backend.env_hint} / database_url"
    fix = {
        "auth": f"The server answered but refused the user or password: correct them in {setting}",
        "missing": f"The server answered but has no such database: create it, or name one that exists in {setting}",
        "permission": (
            "The server answered but the user may not use that database: grant it the privileges "
            f"(CONNECT and CREATEDB on PostgreSQL, CREATE and DROP on MySQL/MariaDB), or use another user in {setting}"
        ),
    }.get(backend.connect_failure(exc), f"Start the server, or point {setting} at one that runs")
    return DatabaseUnreachableError(
        f"cannot connect to the {backend.title} server for {mask_url(url)}: {first}. {fix}."
    )
