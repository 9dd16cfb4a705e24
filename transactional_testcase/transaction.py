"""The outer transactions a test (or a class's ``setUpTestData``) runs inside.

.. versionchanged:: 0.4
   ``TestConnection`` is now :class:`OuterConnection` and ``TestTransaction``
   :class:`TransactionSet`.
"""

from __future__ import annotations

import contextlib
import typing as t

from sqlalchemy.engine import Connection, Engine, NestedTransaction, Transaction
from sqlalchemy.exc import SQLAlchemyError

from ._compat import SavepointSparingConnection, rewind
from ._types import BindKey
from .monitor import STATEMENTS_KEY

if t.TYPE_CHECKING:
    from .backends import Backend


class OuterConnection(SavepointSparingConnection):
    """The connection holding a test's outer transaction: its first savepoint is free while nothing was sent.

    The session begins its savepoint (``join_transaction_mode=
    "create_savepoint"``) when it is first used, usually before anything
    else ran in the test's transaction: that savepoint is then the
    transaction's start, and needs neither a SAVEPOINT nor a RELEASE. A test
    that adds a row and commits sends its INSERT and the final ROLLBACK
    only; a session rollback there is a ROLLBACK of the whole transaction.

    Untouched is what the driver says (:meth:`Backend.transaction_untouched
    <transactional_testcase.backends.Backend.transaction_untouched>`), or,
    where it cannot tell, that the statement monitor counted nothing since
    the transaction began; where neither is known, every savepoint is real.

    .. versionadded:: 0.3
    """

    def __init__(self, engine: Engine, backend: Backend, counted: bool) -> None:
        """``counted``: whether a monitor counts every statement of ``engine`` (see ``_tt_untouched``)."""
        super().__init__(engine)
        self._tt_backend = backend
        self._tt_counted = counted
        self._tt_restarted()

    def _tt_untouched(self) -> bool:
        untouched = self._tt_backend.transaction_untouched(self.connection.dbapi_connection)
        if untouched is None:  # the driver cannot tell: count what was sent
            return self._tt_counted and not self.info.get(STATEMENTS_KEY, 0)
        return untouched

    def _tt_restarted(self) -> None:
        self.info[STATEMENTS_KEY] = 0


class TransactionSet:
    """One connection and one transaction per engine, rolled back by :meth:`end`.

    A top-level one owns its connections and ends by closing them (closing
    rolls back, and spares the pool a second ROLLBACK). A nested one, for a
    test of a class with ``setUpTestData``, is a SAVEPOINT on the class's
    connections and ends by rolling back to it, which leaves the savepoint
    open: the next test takes it again (see :meth:`begin_nested`).
    """

    def __init__(
        self,
        connections: dict[BindKey, Connection],
        transactions: dict[BindKey, Transaction],
        parent: TransactionSet | None = None,
    ) -> None:
        self.connections = connections
        self.transactions = transactions
        self.parent = parent
        #: A nested transaction that ended by rolling back to its savepoints,
        #: still open: the next :meth:`begin_nested` returns it.
        self._rewound: TransactionSet | None = None

    @classmethod
    def begin(
        cls,
        engines: t.Mapping[BindKey, Engine],
        backends: t.Mapping[BindKey, Backend],
        counted: t.Callable[[Engine], bool] = lambda engine: False,
    ) -> TransactionSet:
        """Connect to every engine and begin; ``counted(engine)``: its statements are counted."""
        connections: dict[BindKey, Connection] = {}
        transactions: dict[BindKey, Transaction] = {}
        try:
            for key, engine in engines.items():
                backend = backends[key]
                connections[key] = conn = (
                    OuterConnection(engine, backend, counted(engine))
                    if backend.spares_savepoints
                    else engine.connect()
                )
                transactions[key] = conn.begin()
        except BaseException:
            for conn in connections.values():
                conn.close()
            raise
        return cls(connections, transactions)

    def begin_nested(self) -> TransactionSet:
        """A SAVEPOINT on every connection: the one the last nested transaction rolled back to, if open.

        Rolled back to, a savepoint marks again the state it was begun in,
        so the next test needs no new one: a round trip less per test, and no
        pile of savepoints over a long class (MySQL's SAVEPOINT takes longer
        with every savepoint open).

        .. versionchanged:: 0.3
           Takes the previous test's savepoints again.
        """
        rewound, self._rewound = self._rewound, None
        if rewound is not None and all(
            trans.is_active and self.connections[key].get_nested_transaction() is trans
            for key, trans in rewound.transactions.items()
        ):
            return rewound
        transactions: dict[BindKey, Transaction] = {}
        for key, conn in self.connections.items():
            transactions[key] = conn.begin_nested()
        return TransactionSet(self.connections, transactions, parent=self)

    def end(self) -> list[BindKey]:
        """Roll everything back; return the bind keys whose transaction was ended early."""
        ended: list[BindKey] = []
        for key, conn in self.connections.items():
            trans = self.transactions[key]
            if not trans.is_active:
                ended.append(key)
            if self.parent is None:
                with contextlib.suppress(Exception):
                    conn.close()
                continue
            # Savepoints left open above ours (a Connection the app never
            # closed) are discarded by rolling back to ours.
            while (inner := conn.get_nested_transaction()) is not None and inner is not trans:
                with contextlib.suppress(Exception):
                    inner.rollback()
                if conn.get_nested_transaction() is inner:
                    break
            if trans.is_active:
                try:
                    rewind(t.cast(NestedTransaction, trans))
                except SQLAlchemyError:
                    ended.append(key)
                    with contextlib.suppress(Exception):  # ends it in SQLAlchemy too
                        trans.rollback()
        if self.parent is not None:
            self.parent._rewound = None if ended else self
        return ended
