"""Fast, isolated database tests for Flask + Flask-SQLAlchemy apps with plain unittest."""

from __future__ import annotations

from .app_config import config_class, registered_config
from .committing import CommittingTestCase, LiveServerTestCase
from .errors import (
    ConfigurationError,
    DatabaseUnreachableError,
    IsolationError,
    MigrationError,
    MissingDriverError,
    TransactionalTestCaseError,
    UnsafeDatabaseError,
)
from .migration_checks import MigrationAssertionsMixin, MigrationsTestCase
from .testcase import DatabaseTestCase, TransactionalTestCase

__version__ = "0.4.0"

__all__ = [
    "CommittingTestCase",
    "ConfigurationError",
    "DatabaseTestCase",
    "DatabaseUnreachableError",
    "IsolationError",
    "LiveServerTestCase",
    "MigrationAssertionsMixin",
    "MigrationError",
    "MigrationsTestCase",
    "MissingDriverError",
    "TransactionalTestCase",
    "TransactionalTestCaseError",
    "UnsafeDatabaseError",
    "config_class",
    "registered_config",
]
