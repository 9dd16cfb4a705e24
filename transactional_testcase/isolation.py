"""Routing ``db.session`` and ``db.engine`` onto the test's transaction.

While a test case class runs, every engine in ``db.engines`` is replaced by a
:class:`TestEngine` and the scoped session's factory produces a
:class:`~sqlalchemy.orm.Session` subclass whose ``get_bind`` returns the test's
:class:`~sqlalchemy.engine.Connection` instead of an engine. The Session thus
always sees a Connection as its bind and, with
``join_transaction_mode="create_savepoint"``, turns its own commits and
rollbacks into SAVEPOINTs of the test's transaction (on SQLAlchemy 2.1 a Session
bound to an Engine would take over the outer transaction instead).

Nothing is replaced on the ``db`` object itself, so references to
``db.session`` taken at import time, ``Model.query``, factory_boy factories and
session event listeners all keep working.
"""

from __future__ import annotations

import contextlib
import threading
import typing as t

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Engine, NestedTransaction
from sqlalchemy.orm import Session, sessionmaker

from ._compat import OptionEngine
from .errors import IsolationError

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

BindKey: t.TypeAlias = str | None


class TestEngine(OptionEngine):
    """Stands in for one of ``db.engines`` while a test case class runs.

    ``url``, ``dialect``, ``pool``, events and reflection are the real
    engine's. ``connect()`` and ``begin()`` hand out a
    :class:`SavepointConnection` on the test's connection, so app code that uses
    the engine directly stays inside the test's transaction.
    """

    __test__ = False  # not a test, whatever pytest thinks of the name

    def __init__(self, proxied: Engine, bind_key: BindKey) -> None:
        super().__init__(proxied, {})
        self.bind_key = bind_key
        self._test_connection: Connection | None = None
        self._owner: int | None = None

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
            raise IsolationError(
                "the database was used from another thread "
                f"({threading.current_thread().name}) while a TransactionalTestCase "
                "test runs: the test's transaction lives on one connection that "
                "cannot be shared between threads, and other connections cannot see "
                "its uncommitted data. Run that code in the test's thread, or use "
                "CommittingTestCase for tests that need threads."
            )
        return connection

    def connect(self) -> SavepointConnection:  # type: ignore[override]
        return SavepointConnection(self, self.test_connection())

    @contextlib.contextmanager
    def begin(self) -> t.Iterator[SavepointConnection]:  # type: ignore[override]
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


class SavepointConnection:
    """What ``engine.connect()`` returns inside a test.

    It behaves like a :class:`~sqlalchemy.engine.Connection` whose transaction
    is a SAVEPOINT of the test's connection: ``commit()`` releases it,
    ``rollback()`` and ``close()`` roll back to it, and the next statement opens
    a new one (SQLAlchemy 2.x "autobegin"). Everything else is the test
    connection's.
    """

    def __init__(self, engine: TestEngine, connection: Connection) -> None:
        self.engine = engine
        self._connection = connection
        self._savepoint: NestedTransaction | None = None
        self._closed = False

    # -- transactions -----------------------------------------------------------

    def _active(self) -> NestedTransaction | None:
        sp = self._savepoint
        return sp if sp is not None and sp.is_active else None

    def _autobegin(self) -> Connection:
        if self._closed:
            raise sa_exc.ResourceClosedError("This Connection is closed")
        if self._active() is None:
            self._savepoint = self._connection.begin_nested()
        return self._connection

    def begin(self) -> NestedTransaction:
        if self._active() is not None:
            raise sa_exc.InvalidRequestError(
                "This connection has already initialized a SQLAlchemy Transaction() "
                "object via begin() or autobegin; can't call begin() here unless "
                "rollback() or commit() is called first."
            )
        self._autobegin()
        assert self._savepoint is not None
        return self._savepoint

    def begin_nested(self) -> NestedTransaction:
        return self._autobegin().begin_nested()

    def commit(self) -> None:
        sp, self._savepoint = self._active(), None
        if sp is not None:
            sp.commit()

    def rollback(self) -> None:
        sp, self._savepoint = self._active(), None
        if sp is not None:
            sp.rollback()

    def close(self) -> None:
        if not self._closed:
            self.rollback()
            self._closed = True

    def in_transaction(self) -> bool:
        return self._active() is not None

    def in_nested_transaction(self) -> bool:
        return self._active() is not None and self._connection.in_nested_transaction()

    def get_transaction(self) -> NestedTransaction | None:
        return self._active()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> t.Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- statements ----------------------------------------------------------------

    def execute(self, statement: t.Any, parameters: t.Any = None, **kw: t.Any) -> t.Any:
        return self._autobegin().execute(statement, parameters, **kw)

    def exec_driver_sql(self, statement: str, parameters: t.Any = None, **kw: t.Any) -> t.Any:
        return self._autobegin().exec_driver_sql(statement, parameters, **kw)

    def scalar(self, statement: t.Any, parameters: t.Any = None, **kw: t.Any) -> t.Any:
        return self._autobegin().scalar(statement, parameters, **kw)

    def scalars(self, statement: t.Any, parameters: t.Any = None, **kw: t.Any) -> t.Any:
        return self._autobegin().scalars(statement, parameters, **kw)

    def __getattr__(self, name: str) -> t.Any:
        # dialect, info, connection, execution_options, default_isolation_level...
        return getattr(self._connection, name)


_routed_classes: dict[type[Session], type[Session]] = {}


def routed_session_class(base: type[Session]) -> type[Session]:
    """A subclass of ``base`` whose binds are the test's connections."""
    routed = _routed_classes.get(base)
    if routed is None:

        def get_bind(self: Session, *args: t.Any, **kwargs: t.Any) -> t.Any:
            bind = super(routed, self).get_bind(*args, **kwargs)  # type: ignore[arg-type]
            if isinstance(bind, TestEngine):
                return bind.test_connection()
            return bind

        routed = type(base.__name__, (base,), {"get_bind": get_bind, "_tt_routed": True})
        _routed_classes[base] = routed
    return routed


class SessionRedirect:
    """Swaps one app's engines and ``db.session``'s factory for the duration of a class.

    Call :meth:`apply` and :meth:`restore` inside an app context of the app.
    """

    def __init__(self, db: SQLAlchemy) -> None:
        self.db = db
        self.factory: sessionmaker[t.Any] = db.session.session_factory
        self.engines: dict[BindKey, Engine] = dict(db.engines)
        self.test_engines = {key: TestEngine(e, key) for key, e in self.engines.items()}
        self._saved_class: type[Session] | None = None
        self._saved_kw: dict[str, t.Any] | None = None

    def apply(self) -> None:
        self.db.session.remove()
        self._saved_class = self.factory.class_
        self._saved_kw = dict(self.factory.kw)
        self.factory.class_ = routed_session_class(self.factory.class_)
        self.factory.configure(join_transaction_mode="create_savepoint")
        live = t.cast(dict[BindKey, Engine], self.db.engines)
        live.update(self.test_engines)

    def restore(self) -> None:
        with contextlib.suppress(Exception):
            self.db.session.remove()
        live = t.cast(dict[BindKey, Engine], self.db.engines)
        live.update(self.engines)
        if self._saved_class is not None and self._saved_kw is not None:
            self.factory.class_ = self._saved_class
            self.factory.kw.clear()
            self.factory.kw.update(self._saved_kw)
            self._saved_class = self._saved_kw = None

    def attach(self, connections: t.Mapping[BindKey, Connection] | None) -> None:
        """Route every test engine to its connection (None detaches them)."""
        for key, engine in self.test_engines.items():
            engine.attach(connections[key] if connections is not None else None)
