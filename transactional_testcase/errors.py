"""Exceptions raised by transactional_testcase.

Every error is raised from the library's own frames with one message that says
what went wrong and which setting fixes it. URLs in messages are always
rendered with the password masked.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError


class TransactionalTestCaseError(Exception):
    """Base class of every error raised by this library."""


class ConfigurationError(TransactionalTestCaseError):
    """The test case, the app factory or the app's configuration is unusable."""


class DatabaseUnreachableError(TransactionalTestCaseError):
    """The database server for a test database could not be reached."""


class MissingDriverError(ConfigurationError):
    """The DBAPI driver a URL names is not installed."""


class UnsafeDatabaseError(ConfigurationError):
    """A database would be dropped whose name does not mark it as a test database."""


class MigrationError(TransactionalTestCaseError):
    """Migrating a test database failed."""


class IsolationError(TransactionalTestCaseError):
    """The test's transaction was ended or used in a way that breaks isolation."""


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (a DBAPI error's own, when wrapped), or its type's name.

    Drivers and Alembic raise messages of many lines (SQL, parameters, hints):
    a one-line error names the cause and leaves the rest to the traceback.
    """
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def mask_url(url: str | URL) -> str:
    """Render ``url`` for a message, with its password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError, TypeError):  # not a URL at all: show nothing secret
        return "<unparseable URL>"


def scrub(text: str, *urls: str | URL) -> str:
    """Remove the passwords of ``urls`` from ``text`` (a driver's error message, say)."""
    for url in urls:
        try:
            password = make_url(url).password
        except (ArgumentError, ValueError, TypeError):
            password = None
        if password:
            text = text.replace(str(password), "***")
    return text
