"""A switch that logs every transaction statement of every test.

``TRANSACTIONAL_TESTCASE_DIAGNOSTICS=1`` makes each test case class log, per
test, the BEGIN / SAVEPOINT / RELEASE / ROLLBACK / COMMIT of the test's
transactions (the library's and the code under test's alike; a savepoint that
the transaction's start stands for is marked "not sent") on the
``transactional_testcase.diagnostics`` logger, and flag at WARNING anything
that escaped the test's transaction: a COMMIT of the outer transaction, or a
statement that commits implicitly.
"""

from __future__ import annotations

import logging
import typing as t

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from . import environment
from ._compat import savepoint_counter

ENV = environment.DIAGNOSTICS

logger = logging.getLogger("transactional_testcase.diagnostics")


def enabled() -> bool:
    return environment.flag(ENV)


class TransactionLog:
    """Records transaction events on a class's engines, flushed per test."""

    _EVENTS: t.ClassVar[tuple[str, ...]] = (
        "begin",
        "commit",
        "rollback",
        "savepoint",
        "rollback_savepoint",
        "release_savepoint",
    )

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.escaped: list[str] = []
        self._engines: list[Engine] = []
        self._handlers: dict[str, t.Callable[..., None]] = {}

    def listen(self, engines: t.Iterable[Engine]) -> None:
        for name in self._EVENTS:
            self._handlers[name] = self._handler(name)
        for engine in engines:
            for name, handler in self._handlers.items():
                event.listen(engine, name, handler)
            self._engines.append(engine)

    def remove(self) -> None:
        for engine in self._engines:
            for name, handler in self._handlers.items():
                if event.contains(engine, name, handler):
                    event.remove(engine, name, handler)
        self._engines.clear()

    def _handler(self, name: str) -> t.Callable[..., None]:
        verb = {
            "begin": "BEGIN",
            "commit": "COMMIT",
            "rollback": "ROLLBACK",
            "savepoint": "SAVEPOINT",
            "rollback_savepoint": "ROLLBACK TO SAVEPOINT",
            "release_savepoint": "RELEASE SAVEPOINT",
        }[name]

        def record(conn: Connection, *args: t.Any) -> None:
            savepoint = args[0] if args and isinstance(args[0], str) else ""
            if name == "savepoint" and not savepoint:
                # The event fires before SQLAlchemy numbers the savepoint.
                savepoint = f"sa_savepoint_{savepoint_counter(conn) + 1}"
            line = f"{verb} {savepoint}".strip()
            if savepoint and savepoint == getattr(conn, "_tt_spared", None):
                # The transaction's start stands for it (see transaction.TestConnection).
                line += " (sent as ROLLBACK)" if name == "rollback_savepoint" else " (not sent)"
            line += f" [{conn.engine.url.database}]"
            self.lines.append(line)
            if name == "commit":
                self.escaped.append(line)

        return record

    def flush(self, test_id: str, implicit_commits: t.Sequence[str]) -> None:
        """Log what ``test_id`` sent and flag what escaped; start again."""
        if self.lines:
            logger.info("%s: %s", test_id, "; ".join(self.lines))
        for line in self.escaped:
            logger.warning("%s: ESCAPED the test transaction: %s", test_id, line)
        for statement in implicit_commits:
            logger.warning(
                "%s: ESCAPED (implicit commit on this backend): %s",
                test_id,
                " ".join(statement.split())[:200],
            )
        self.lines = []
        self.escaped = []
