"""Fast, isolated database tests for Flask + Flask-SQLAlchemy apps with plain unittest."""

from __future__ import annotations

from .errors import (
    ConfigurationError,
    DatabaseUnreachableError,
    IsolationError,
    MigrationError,
    MissingDriverError,
    TransactionalTestCaseError,
    UnsafeDatabaseError,
)
from .testcase import TransactionalTestCase

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "DatabaseUnreachableError",
    "IsolationError",
    "MigrationError",
    "MissingDriverError",
    "TransactionalTestCase",
    "TransactionalTestCaseError",
    "UnsafeDatabaseError",
]
