"""Fast, isolated database tests for Flask + Flask-SQLAlchemy apps with plain unittest.

The names below are imported on first use (:pep:`562`): ``import
transactional_testcase`` alone, as pytest does to load the package's plugin,
imports neither Flask nor SQLAlchemy.
"""

from __future__ import annotations

import importlib
import typing as t

if t.TYPE_CHECKING:
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

__version__ = "0.6.0"

#: Where each public name lives.
_EXPORTS = {
    "CommittingTestCase": "committing",
    "ConfigurationError": "errors",
    "DatabaseTestCase": "testcase",
    "DatabaseUnreachableError": "errors",
    "IsolationError": "errors",
    "LiveServerTestCase": "committing",
    "MigrationAssertionsMixin": "migration_checks",
    "MigrationError": "errors",
    "MigrationsTestCase": "migration_checks",
    "MissingDriverError": "errors",
    "TransactionalTestCase": "testcase",
    "TransactionalTestCaseError": "errors",
    "UnsafeDatabaseError": "errors",
    "config_class": "app_config",
    "registered_config": "app_config",
}

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


def __getattr__(name: str) -> t.Any:
    """A public name (or a submodule, as ``transactional_testcase.provisioning``), imported now."""
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    elif not name.startswith("__"):
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
