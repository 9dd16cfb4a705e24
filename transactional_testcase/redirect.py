"""Routing ``db.session`` and ``db.engine`` onto the test's transaction.

While a test case class runs, every engine in ``db.engines`` is replaced by a
:class:`RedirectedEngine` (through :mod:`.extension`: Flask-SQLAlchemy-Lite's
``sessionmaker`` binds are repointed too) and the session factory produces a
:class:`~sqlalchemy.orm.Session` subclass whose ``get_bind`` returns the test's
:class:`~sqlalchemy.engine.Connection` instead of an engine. The Session thus
always sees a Connection as its bind and, with
``join_transaction_mode="create_savepoint"``, turns its own commits and
rollbacks into SAVEPOINTs of the test's transaction (on SQLAlchemy 2.1 a Session
bound to an Engine would take over the outer transaction instead).

Nothing is replaced on the ``db`` object itself, so references to
``db.session`` taken at import time, ``Model.query``, factory_boy factories and
session event listeners all keep working.

.. versionchanged:: 0.4
   Was ``isolation``; ``TestEngine`` is now :class:`RedirectedEngine` and
   ``SavepointConnection`` :class:`NestedConnection`.

.. versionchanged:: 0.5
   Flask-SQLAlchemy-Lite apps too.
"""

from __future__ import annotations

import contextlib
import threading
import typing as t

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, NestedTransaction
from sqlalchemy.orm import Session, sessionmaker

from ._compat import ConnectionFacade, OptionEngine, savepoint_counter
from ._types import BindKey
from .errors import IsolationError
from .monitor import WRITES_KEY

if t.TYPE_CHECKING:
    from .extension import Extension


def _ignore(connection: Connection) -> None:
    return None


class RedirectedEngine(OptionEngine):
    """Stands in for one of ``db.engines`` while a test case class runs.

    ``url``, ``dialect``, ``pool``, events and reflection are the real
    engine's. ``connect()`` and ``begin()`` hand out a
    :class:`NestedConnection` on the test's connection, so app code that uses
    the engine directly stays inside the test's transaction.
    """

    def __init__(
        self,
        proxied: Engine,
        bind_key: BindKey,
        watch: t.Callable[[Connection], t.Any] = _ignore,
        violations: list[IsolationError] | None = None,
    ) -> None:
        super().__init__(proxied, {})
        self.bind_key = bind_key
        self._test_connection: Connection | None = None
        self._owner: int | None = None
        self._watch = watch
        #: Errors raised in threads other than the test's, for the test to fail with.
        self._violations = violations if violations is not None else []

    def attach(self, connection: Connection | None) -> None:
        """Route this engine to ``connection`` (None: between tests)."""
        self._test_connection = connection
        self._owner = threading.get_ident() if connection is not None else None

    def test_connection(self) -> Connection:
        """The test's connection, for the thread that owns the test."""
        connection = self._test_connection
        if connection is None:
            raise IsolationError(
                f"db.engines[{self.bind_key!r}] was used outside a test of a "
                "TransactionalTestCase (in setUpClass before super().setUpClass(), "
                "or after the test ended): use the database inside test methods, "
                "setUp or setUpTestData."
            )
        if self._owner != threading.get_ident():
            error = IsolationError(
                "the database was used from another thread "
                f"({threading.current_thread().name}) while a TransactionalTestCase "
                "test runs: the test's transaction lives on one connection that "
                "cannot be shared between threads, and other connections cannot see "
                "its uncommitted data. Run that code in the test's thread, or use "
                "CommittingTestCase for tests that need threads."
            )
            # Raised in that thread, where the test may never see it (the
            # thread's code catches it, or threading prints it to stderr):
            # the test that started the thread fails with it too.
            self._violations.append(error)
            raise error
        return connection

    def connect(self) -> NestedConnection:
        connection = self.test_connection()
        # Its writes and the session's must be told apart (see _tt_interleaved).
        self._watch(connection)
        return NestedConnection(self, connection)

    @contextlib.contextmanager
    def begin(self) -> t.Iterator[NestedConnection]:
        with self.connect() as conn, conn.begin():
            yield conn

    def raw_connection(self) -> t.Any:
        raise IsolationError(
            "engine.raw_connection() inside a TransactionalTestCase test would hand "
            "out the DBAPI connection, whose commit() ends the test's transaction. "
            "Use engine.connect() instead, or CommittingTestCase for such code."
        )

    def dispose(self, close: bool = True) -> None:
        # Disposing would close the test's own connection under it.
        return None


class NestedConnection(ConnectionFacade):
    """What ``engine.connect()`` returns inside a test: a connection nested in the test's.

    A real :class:`~sqlalchemy.engine.Connection` to SQLAlchemy (so
    ``inspect()``, ``has_table()`` and reflection accept it) whose transaction
    is a SAVEPOINT of the test's connection: ``commit()`` releases it,
    ``rollback()`` and ``close()`` roll back to it, and the next statement opens
    a new one (SQLAlchemy 2.x "autobegin"). Statements run on the test's
    connection itself.
    """

    def __init__(self, engine: RedirectedEngine, connection: Connection) -> None:
        super().__init__(engine, connection)
        self.__dict__.update(
            _tt_savepoint=None,
            _tt_closed=False,
            _tt_options={},
            _tt_own_writes=0,
            _tt_writes_at_begin=0,
            _tt_expected_seq=0,
        )

    # -- transactions -----------------------------------------------------------

    def _tt_active(self) -> NestedTransaction | None:
        sp: NestedTransaction | None = self.__dict__["_tt_savepoint"]
        return sp if sp is not None and sp.is_active else None

    def _facade_begin(self) -> Connection:
        if self.__dict__["_tt_closed"]:
            raise sa_exc.ResourceClosedError("This Connection is closed")
        connection: Connection = self.__dict__["_facade_target"]
        if self._tt_active() is None:
            self.__dict__["_tt_savepoint"] = connection.begin_nested()
            self.__dict__["_tt_own_writes"] = 0
            self.__dict__["_tt_writes_at_begin"] = _writes(connection)
            self.__dict__["_tt_expected_seq"] = savepoint_counter(connection)
        return connection

    def _tt_run(self, method: str, statement: t.Any, parameters: t.Any, kw: dict[str, t.Any]) -> t.Any:
        connection = self._facade_begin()
        before = _writes(connection)
        try:
            return getattr(connection, method)(statement, parameters, **self._tt_options_for(kw))
        finally:
            self.__dict__["_tt_own_writes"] += _writes(connection) - before

    def _tt_interleaved(self, savepoint: NestedTransaction) -> bool:
        """Whether other work (db.session's) happened inside our savepoint.

        A savepoint begun inside ours, or writes that were not ours: on the
        one shared connection, undoing ours would undo that work too, which
        in production would be an independent transaction.
        """
        connection: Connection = self.__dict__["_facade_target"]
        foreign_writes = (
            _writes(connection) - self.__dict__["_tt_writes_at_begin"] - self.__dict__["_tt_own_writes"]
        )
        return (
            connection.get_nested_transaction() is not savepoint
            or savepoint_counter(connection) != self.__dict__["_tt_expected_seq"]
            or foreign_writes > 0
        )

    def _tt_end(self, commit: bool) -> None:
        savepoint = self._tt_active()
        self.__dict__["_tt_savepoint"] = None
        if savepoint is None:
            return
        if not self._tt_interleaved(savepoint):
            savepoint.commit() if commit else savepoint.rollback()
            return
        # What this connection wrote stays either way (it cannot be undone
        # alone). With ours on top (the session only wrote inside it),
        # RELEASE ends it and keeps everything, so that the session's own
        # savepoint below it ends cleanly later; with a savepoint of the
        # session's above ours, releasing would destroy that one, so ours is
        # left to the test's transaction.
        connection: Connection = self.__dict__["_facade_target"]
        if connection.get_nested_transaction() is savepoint:
            savepoint.commit()
        if commit or not self.__dict__["_tt_own_writes"]:
            return  # the same data as production would have
        raise IsolationError(
            "a db.engine.connect() connection was rolled back (or closed without "
            "commit) after db.session began work inside its transaction: both share "
            "the test's one connection, so undoing the connection's writes would undo "
            "the session's too, which production would not (its writes were kept in the "
            "test's transaction). Commit or close the "
            "engine connection before using db.session (or use CommittingTestCase)."
        )

    def begin(self) -> NestedTransaction:  # type: ignore[override]
        if self._tt_active() is not None:
            raise sa_exc.InvalidRequestError(
                "This connection has already initialized a SQLAlchemy Transaction() "
                "object via begin() or autobegin; can't call begin() here unless "
                "rollback() or commit() is called first."
            )
        self._facade_begin()
        savepoint: NestedTransaction = self.__dict__["_tt_savepoint"]
        return savepoint

    def begin_nested(self) -> NestedTransaction:
        connection = self._facade_begin()
        self.__dict__["_tt_expected_seq"] += 1  # our own savepoint, not interleaved work
        return connection.begin_nested()

    def commit(self) -> None:
        self._tt_end(commit=True)

    def rollback(self) -> None:
        self._tt_end(commit=False)

    def close(self) -> None:
        if not self.__dict__["_tt_closed"]:
            self.rollback()
            self.__dict__["_tt_closed"] = True

    def in_transaction(self) -> bool:
        return self._tt_active() is not None

    def in_nested_transaction(self) -> bool:
        connection: Connection = self.__dict__["_facade_target"]
        return (
            self._tt_active() is not None
            and connection.get_nested_transaction() is not (self.__dict__["_tt_savepoint"])
        )

    def get_transaction(self) -> NestedTransaction | None:  # type: ignore[override]
        return self._tt_active()

    @property
    def closed(self) -> bool:
        closed: bool = self.__dict__["_tt_closed"]
        return closed

    def __enter__(self) -> t.Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def execution_options(self, **opt: t.Any) -> t.Self:
        self.__dict__["_tt_options"] = {**self.__dict__["_tt_options"], **opt}
        return self

    # -- statements ----------------------------------------------------------------

    def _tt_options_for(self, kw: dict[str, t.Any]) -> dict[str, t.Any]:
        options = self.__dict__["_tt_options"]
        if options:
            kw["execution_options"] = {**options, **(kw.get("execution_options") or {})}
        return kw

    def execute(self, statement: t.Any, parameters: t.Any = None, **kw: t.Any) -> t.Any:
        return self._tt_run("execute", statement, parameters, kw)

    def exec_driver_sql(  # type: ignore[override]
        self, statement: str, parameters: t.Any = None, **kw: t.Any
    ) -> t.Any:
        return self._tt_run("exec_driver_sql", statement, parameters, kw)

    def scalar(self, statement: t.Any, parameters: t.Any = None, **kw: t.Any) -> t.Any:
        return self._tt_run("scalar", statement, parameters, kw)

    def scalars(self, statement: t.Any, parameters: t.Any = None, **kw: t.Any) -> t.Any:
        return self._tt_run("scalars", statement, parameters, kw)


def _writes(connection: Connection) -> int:
    """Write statements sent on ``connection`` so far (counted by the StatementMonitor)."""
    count: int = connection.info.get(WRITES_KEY, 0)
    return count


_routed_classes: dict[type[Session], type[Session]] = {}


def routed_session_class(base: type[Session]) -> type[Session]:
    """A subclass of ``base`` whose binds are the test's connections."""
    routed = _routed_classes.get(base)
    if routed is None:

        def get_bind(self: Session, *args: t.Any, **kwargs: t.Any) -> t.Any:
            bind = super(routed, self).get_bind(*args, **kwargs)  # type: ignore[arg-type]
            if isinstance(bind, RedirectedEngine):
                return bind.test_connection()
            return bind

        routed = type(base.__name__, (base,), {"get_bind": get_bind, "_tt_routed": True})
        _routed_classes[base] = routed
    return routed


class SessionRedirect:
    """Swaps one app's engines and ``db.session``'s factory for the duration of a class.

    Call :meth:`apply` and :meth:`restore` inside an app context of the app.
    """

    def __init__(self, extension: Extension, watch: t.Callable[[Connection], t.Any] = _ignore) -> None:
        """``watch(connection)`` is called before app code uses a test connection directly."""
        self.extension = extension
        self.factory: sessionmaker[t.Any] = extension.session_factory()
        self.engines: dict[BindKey, Engine] = extension.engines()
        #: Isolation errors raised in other threads since the last :meth:`take_violations`.
        self.violations: list[IsolationError] = []
        self.test_engines = {
            key: RedirectedEngine(e, key, watch, self.violations) for key, e in self.engines.items()
        }
        self._saved_class: type[Session] | None = None
        self._saved_kw: dict[str, t.Any] | None = None

    def apply(self) -> None:
        self.extension.remove_session()
        self._saved_class = self.factory.class_
        self._saved_kw = dict(self.factory.kw)
        self.factory.class_ = routed_session_class(self.factory.class_)
        self.factory.configure(join_transaction_mode="create_savepoint")
        self.extension.point(self.test_engines)

    def restore(self) -> None:
        with contextlib.suppress(Exception):
            self.extension.remove_session()
        self.extension.point(self.engines)
        if self._saved_class is not None and self._saved_kw is not None:
            self.factory.class_ = self._saved_class
            self.factory.kw.clear()
            self.factory.kw.update(self._saved_kw)
            self._saved_class = self._saved_kw = None

    def take_violations(self) -> list[IsolationError]:
        """The isolation errors other threads met since the last call (and forget them)."""
        if not self.violations:  # every test asks: the usual answer costs nothing
            return []
        found = list(self.violations)
        del self.violations[:]
        return found

    def attach(self, connections: t.Mapping[BindKey, Connection] | None) -> None:
        """Route every test engine to its connection (None detaches them)."""
        for key, engine in self.test_engines.items():
            engine.attach(connections[key] if connections is not None else None)
