"""Per-backend behaviour, one module per vendor, looked up by SQLAlchemy backend name.

Everything that differs between SQLite, PostgreSQL and MySQL/MariaDB lives in
a :class:`Backend` strategy, so the rest of the library never branches
on a dialect name. Each vendor module (:mod:`.sqlite`, :mod:`.postgresql`,
:mod:`.mysql`) declares the backend names it serves with :func:`register`;
:func:`backend_for` finds the strategy for a URL.
"""

from __future__ import annotations

import typing as t

from sqlalchemy.engine import URL

from ..errors import ConfigurationError, mask_url
from .base import (
    TEMPLATE_NAME,
    Backend,
    ConstraintChecker,
    Label,
    Leftover,
    TableEmptier,
    TableRef,
    admin_session,
    make_label,
    model_schemas,
    parse_label,
    quiet_socket,
    reflect_tables,
)
from .drivers import (
    DRIVER_EXTRAS,
    DRIVER_MODULES,
    DRIVER_PACKAGES,
    check_driver,
    check_safe,
    install_hint,
    unreachable,
)

_B = t.TypeVar("_B", bound=type[Backend])

#: The strategy serving each SQLAlchemy backend name (``url.get_backend_name()``).
_BACKENDS: dict[str, Backend] = {}


def register(*names: str) -> t.Callable[[_B], _B]:
    """Class decorator: serve the SQLAlchemy backends ``names`` with the decorated class.

    Each name gets an instance of its own, made once: strategies hold no
    state, and every lookup of one name returns the same object.
    """

    def decorate(cls: _B) -> _B:
        for name in names:
            _BACKENDS[name] = cls()
        return cls

    return decorate


def backend_for(url: URL) -> Backend:
    """The :class:`Backend` for ``url``'s dialect, or a clear error."""
    try:
        return _BACKENDS[url.get_backend_name()]
    except KeyError:
        raise ConfigurationError(
            f"{mask_url(url)}: the {url.get_backend_name()!r} backend is not supported; "
            "use SQLite, PostgreSQL or MySQL/MariaDB."
        ) from None


# The vendor modules register themselves on import, with the function above.
from .mysql import MySQLBackend  # noqa: E402
from .postgresql import PostgreSQLBackend  # noqa: E402
from .sqlite import MARKER_SUFFIX, SQLiteBackend, template_folder  # noqa: E402

__all__ = [
    "DRIVER_EXTRAS",
    "DRIVER_MODULES",
    "DRIVER_PACKAGES",
    "MARKER_SUFFIX",
    "TEMPLATE_NAME",
    "Backend",
    "ConstraintChecker",
    "Label",
    "Leftover",
    "MySQLBackend",
    "PostgreSQLBackend",
    "SQLiteBackend",
    "TableEmptier",
    "TableRef",
    "admin_session",
    "backend_for",
    "check_driver",
    "check_safe",
    "install_hint",
    "make_label",
    "model_schemas",
    "parse_label",
    "quiet_socket",
    "reflect_tables",
    "register",
    "template_folder",
    "unreachable",
]
