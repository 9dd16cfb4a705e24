"""The one place that reaches into other packages' non-public names.

Checked against SQLAlchemy 2.0.x and 2.1.9, Flask-SQLAlchemy 3.0.x and 3.1.1.
"""

from __future__ import annotations

import contextlib
import logging
import os
import typing as t

# ``Engine.execution_options()`` returns an ``OptionEngine``: an Engine that
# shares its parent's pool, dialect, URL and event dispatch. It is public in
# behaviour but only importable from ``sqlalchemy.engine.base``.
from sqlalchemy.engine.base import OptionEngine

__all__ = [
    "OptionEngine",
    "handlers_out_of_reach_of_fileconfig",
    "revision_steps",
    "savepoint_counter",
    "version_locations",
]


@contextlib.contextmanager
def handlers_out_of_reach_of_fileconfig() -> t.Iterator[None]:
    """Keep ``logging.config.fileConfig()`` from closing the handlers that exist now.

    ``fileConfig`` (called by every stock Alembic ``env.py``) shuts down every
    handler in ``logging._handlerList`` before installing its own; a test
    suite's open log files would stay closed. Hiding the list while migrations
    run leaves only the handlers created meanwhile to be closed.
    Checked against CPython 3.11 and 3.12's ``logging`` module.
    """
    saved_list = logging._handlerList[:]  # type: ignore[attr-defined]
    saved_map = dict(logging._handlers)  # type: ignore[attr-defined]
    del logging._handlerList[:]  # type: ignore[attr-defined]
    try:
        yield
    finally:
        logging._handlerList[:0] = saved_list  # type: ignore[attr-defined]
        for name, handler in saved_map.items():
            logging._handlers.setdefault(name, handler)  # type: ignore[attr-defined]


def revision_steps(script: t.Any, destination: str, current: t.Any, upgrade: bool) -> t.Any:
    """The steps ``alembic upgrade/downgrade destination`` would run from ``current``.

    What ``alembic.command.upgrade``/``downgrade`` pass to ``EnvironmentContext``
    (``ScriptDirectory._upgrade_revs``/``_downgrade_revs``); calling them with
    one ``ScriptDirectory`` avoids re-reading every revision file per step.
    Checked against Alembic 1.13 to 1.20.
    """
    if upgrade:
        return script._upgrade_revs(destination, current)
    return script._downgrade_revs(destination, current)


def savepoint_counter(connection: t.Any) -> int:
    """How many SAVEPOINTs ``connection`` has begun so far.

    SQLAlchemy numbers them per Connection (``sa_savepoint_N``) in the private,
    name-mangled ``Connection.__savepoint_seq``. Checked against SQLAlchemy
    2.0.x and 2.1.9.
    """
    return int(getattr(connection, "_Connection__savepoint_seq", 0))


def version_locations(script: t.Any) -> list[str]:
    """The folders ``script`` (an Alembic ``ScriptDirectory``) reads revisions from.

    ``ScriptDirectory._version_locations``: ``version_locations`` resolved
    (package resources included), or ``<script_location>/versions``; folders
    that do not exist are left out, as Alembic does. Checked against Alembic
    1.13 to 1.20.
    """
    return [str(path) for path in script._version_locations if os.path.isdir(path)]
