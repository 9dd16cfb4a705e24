"""Counting the statements the code under test sends, for ``assertNumQueries``."""

from __future__ import annotations

import contextlib
import re
import typing as t

from sqlalchemy import event
from sqlalchemy.engine import Engine

#: Transaction control is the library's (and the Session's) business, not the
#: code under test's: BEGIN, COMMIT, ROLLBACK [TO SAVEPOINT], SAVEPOINT, RELEASE.
TRANSACTION_CONTROL = re.compile(
    r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|START\s+TRANSACTION)\b", re.IGNORECASE
)


class QueryRecorder:
    """Listens on a class's engines and records statements while a capture is open."""

    def __init__(self) -> None:
        self._captures: list[list[str]] = []
        self._engines: list[Engine] = []

    def listen(self, engines: t.Iterable[Engine]) -> None:
        for engine in engines:
            # Registered per class, before any test connection exists: a
            # Connection only fires events its engine had when it was created.
            event.listen(engine, "before_cursor_execute", self._record)
            self._engines.append(engine)

    def remove(self) -> None:
        for engine in self._engines:
            if event.contains(engine, "before_cursor_execute", self._record):
                event.remove(engine, "before_cursor_execute", self._record)
        self._engines.clear()

    @contextlib.contextmanager
    def capture(self) -> t.Iterator[list[str]]:
        """Collect the statements sent while the block runs."""
        statements: list[str] = []
        self._captures.append(statements)
        try:
            yield statements
        finally:
            self._captures.remove(statements)

    def _record(
        self,
        conn: t.Any,
        cursor: t.Any,
        statement: str,
        parameters: t.Any,
        context: t.Any,
        executemany: bool,
    ) -> None:
        if self._captures and not TRANSACTION_CONTROL.match(statement):
            for statements in self._captures:
                statements.append(statement)


def describe(statements: t.Sequence[str], expected: int) -> str:
    """The failure message of ``assertNumQueries``: the count and every statement."""
    lines = [f"{len(statements)} != {expected} : {len(statements)} queries executed, {expected} expected"]
    lines.append("Captured queries were:" if statements else "No queries were captured.")
    lines.extend(f"{i}. {' '.join(sql.split())}" for i, sql in enumerate(statements, 1))
    return "\n".join(lines)
