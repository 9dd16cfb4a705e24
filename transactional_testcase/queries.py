"""Watching the statements a test sends.

One :class:`StatementMonitor` listens on a class's engines for its whole life.
It counts statements for ``assertNumQueries``, notes whether a test wrote
anything (so end-of-test constraint checks cost nothing for a test that did
not), and notes statements that commit implicitly on the backend (DDL on
MySQL/MariaDB) so the test that sent them can be failed.
"""

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
#: Key of ``Connection.info`` counting the write statements sent on a connection.
WRITES_KEY = "transactional_testcase.writes"

#: Statements that read only.
READS = re.compile(r"^\s*(SELECT|SHOW|PRAGMA|EXPLAIN|DESCRIBE|WITH\s+\w+\s+AS\s*\(\s*SELECT)\b", re.IGNORECASE)


class StatementMonitor:
    """Listens on a class's engines and watches what each test sends."""

    def __init__(self) -> None:
        self._captures: list[list[str]] = []
        self._engines: list[Engine] = []
        self._implicit: dict[int, re.Pattern[str]] = {}
        #: Whether the current test sent anything but reads and transaction control.
        self.wrote = False
        #: Statements of the current test that commit implicitly on their backend.
        self.implicit_commits: list[str] = []

    def listen(self, engines: t.Iterable[Engine], implicit_commit: t.Mapping[int, re.Pattern[str]]) -> None:
        """Start watching ``engines``; ``implicit_commit`` maps ``id(engine.dialect)`` to a pattern."""
        self._implicit = dict(implicit_commit)
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

    def reset(self) -> None:
        """Forget the previous test."""
        self.wrote = False
        if self.implicit_commits:
            self.implicit_commits = []

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
        if TRANSACTION_CONTROL.match(statement):
            return
        for statements in self._captures:
            statements.append(statement)
        if not READS.match(statement):
            self.wrote = True
            # Per connection, for SavepointConnection to tell its own writes
            # from the session's inside its savepoint.
            info = conn.info
            info[WRITES_KEY] = info.get(WRITES_KEY, 0) + 1
        pattern = self._implicit.get(id(conn.dialect))
        if pattern is not None and pattern.match(statement):
            self.implicit_commits.append(statement)


def describe(statements: t.Sequence[str], expected: int) -> str:
    """The failure message of ``assertNumQueries``: the count and every statement."""
    lines = [f"{len(statements)} != {expected} : {len(statements)} queries executed, {expected} expected"]
    lines.append("Captured queries were:" if statements else "No queries were captured.")
    lines.extend(f"{i}. {' '.join(sql.split())}" for i, sql in enumerate(statements, 1))
    return "\n".join(lines)
