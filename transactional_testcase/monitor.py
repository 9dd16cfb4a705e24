"""Watching the statements a test sends.

One :class:`StatementMonitor` per test case class counts statements for
``assertNumQueries``, notes whether a test wrote anything (so end-of-test
constraint checks cost nothing for a test that did not), and notes
statements that commit implicitly on the backend (DDL on MySQL/MariaDB) so
the test that sent them can be failed.

A connection event listener (``before_cursor_execute``) on an engine makes
SQLAlchemy dispatch every event, statements and transaction steps alike, for
every connection of that engine, which costs more than the rest of the
library's per-test work. So where every statement must be seen (implicit
commits, constraint checks, every connection of a committing test case) the
monitor listens on the engine's dialect instead (``do_execute`` and its two
siblings: statements only, nothing else dispatched), and elsewhere it watches
single connections, only while something needs them: ``assertNumQueries``
blocks, and direct ``db.engine.connect()`` use.

.. versionchanged:: 0.2
   Listens on dialects where every statement must be seen, and watches test
   connections on demand elsewhere.
"""

from __future__ import annotations

import contextlib
import re
import typing as t
import weakref

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

#: Transaction control is the library's (and the Session's) business, not the
#: code under test's: BEGIN, COMMIT, ROLLBACK [TO SAVEPOINT], SAVEPOINT, RELEASE.
TRANSACTION_CONTROL = re.compile(
    r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|START\s+TRANSACTION)\b", re.IGNORECASE
)
#: Key of ``Connection.info`` counting the write statements sent on a connection.
WRITES_KEY = "transactional_testcase.writes"
#: Key of ``Connection.info`` counting the statements (transaction control
#: aside) sent on a connection since its test transaction began; reset by
#: :class:`~transactional_testcase.transaction.TestConnection`.
STATEMENTS_KEY = "transactional_testcase.statements"

#: Statements that read only.
READS = re.compile(
    r"^\s*(SELECT|SHOW|PRAGMA|EXPLAIN|DESCRIBE|WITH\s+\w+\s+AS\s*\(\s*SELECT)\b", re.IGNORECASE
)


class StatementMonitor:
    """Watches what each test sends, on whole engines or on single connections."""

    def __init__(self) -> None:
        self._captures: list[list[str]] = []
        self._engines: list[Engine] = []
        #: Connections watched one by one (their engines are not listened on).
        self._watched: weakref.WeakValueDictionary[int, Connection] = weakref.WeakValueDictionary()
        self._implicit: dict[int, re.Pattern[str]] = {}
        #: Whether the current test sent anything but reads and transaction
        #: control on a listened engine (or a watched connection).
        self.wrote = False
        #: Statements of the current test that commit implicitly on their backend.
        self.implicit_commits: list[str] = []

    def listen(self, engines: t.Iterable[Engine], implicit_commit: t.Mapping[int, re.Pattern[str]]) -> None:
        """Watch every connection of ``engines`` for the class's life.

        ``implicit_commit`` maps ``id(engine.dialect)`` to a pattern. The
        engine's connections, open or not, dispatch nothing more than before:
        the dialect calls the handlers for statements only.
        """
        self._implicit.update(implicit_commit)
        for engine in engines:
            for name, handler in self._dialect_handlers():
                event.listen(engine, name, handler)
            self._engines.append(engine)

    def remove(self) -> None:
        for engine in self._engines:
            for name, handler in self._dialect_handlers():
                if event.contains(engine, name, handler):
                    event.remove(engine, name, handler)
        self._engines.clear()
        for connection in list(self._watched.values()):
            self.unwatch(connection)

    def watch(self, connection: Connection) -> bool:
        """Watch ``connection`` until :meth:`unwatch` or its end; False if already watched."""
        if connection.engine in self._engines or id(connection) in self._watched:
            return False
        event.listen(connection, "before_cursor_execute", self._record)
        self._watched[id(connection)] = connection
        return True

    def listens_on(self, engine: Engine) -> bool:
        """Whether every statement of ``engine``'s connections is seen (and counted)."""
        return engine in self._engines

    def unwatch(self, connection: Connection) -> None:
        if self._watched.pop(id(connection), None) is not None:
            with contextlib.suppress(Exception):  # already closed and gone: nothing left to undo
                event.remove(connection, "before_cursor_execute", self._record)

    def reset(self) -> None:
        """Forget the previous test."""
        self.wrote = False
        if self.implicit_commits:
            self.implicit_commits = []

    @contextlib.contextmanager
    def capture(self, connections: t.Iterable[Connection] = ()) -> t.Iterator[list[str]]:
        """Collect the statements sent while the block runs.

        On the listened engines, and on ``connections`` (watched for the
        block's duration if they are not already).
        """
        statements: list[str] = []
        added = [c for c in connections if self.watch(c)]
        self._captures.append(statements)
        try:
            yield statements
        finally:
            self._captures.remove(statements)
            for connection in added:
                self.unwatch(connection)

    def _dialect_handlers(self) -> tuple[tuple[str, t.Callable[..., None]], ...]:
        return (
            ("do_execute", self._on_execute),
            ("do_executemany", self._on_execute),
            ("do_execute_no_params", self._on_execute_no_params),
        )

    def _on_execute(self, cursor: t.Any, statement: str, parameters: t.Any, context: t.Any) -> None:
        # Returns None: not handled, the dialect executes the statement as usual.
        self._record(context.root_connection, cursor, statement, parameters, context, False)

    def _on_execute_no_params(self, cursor: t.Any, statement: str, context: t.Any) -> None:
        self._record(context.root_connection, cursor, statement, None, context, False)

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
        info = _info(conn)
        info[STATEMENTS_KEY] = info.get(STATEMENTS_KEY, 0) + 1
        if not READS.match(statement):
            self.wrote = True
            # Per connection, for SavepointConnection to tell its own writes
            # from the session's inside its savepoint.
            info[WRITES_KEY] = info.get(WRITES_KEY, 0) + 1
        pattern = self._implicit.get(id(conn.dialect))
        if pattern is not None and pattern.match(statement):
            self.implicit_commits.append(statement)


def _info(conn: Connection) -> dict[t.Any, t.Any]:
    """``conn.info``; a throwaway dict while a dialect's first connect queries the server.

    The connection a dialect initializes on is a bare DBAPI connection, whose
    ``info`` SQLAlchemy leaves unimplemented: nothing of a test's is counted there.
    """
    try:
        return conn.info
    except NotImplementedError:
        return {}


def describe(statements: t.Sequence[str], expected: int) -> str:
    """The failure message of ``assertNumQueries``: the count and every statement."""
    lines = [f"{len(statements)} != {expected} : {len(statements)} queries executed, {expected} expected"]
    lines.append("Captured queries were:" if statements else "No queries were captured.")
    lines.extend(f"{i}. {' '.join(sql.split())}" for i, sql in enumerate(statements, 1))
    return "\n".join(lines)
