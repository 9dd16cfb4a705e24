"""The outer transactions a test (or a class's ``setUpTestData``) runs inside."""

from __future__ import annotations

import contextlib
import typing as t

from sqlalchemy.engine import Connection, Engine, Transaction
from sqlalchemy.exc import SQLAlchemyError

BindKey: t.TypeAlias = str | None


class TestTransaction:
    """One connection and one transaction per engine, rolled back by :meth:`end`.

    A top-level one owns its connections and ends by closing them (closing
    rolls back, and spares the pool a second ROLLBACK). A nested one, for a
    test of a class with ``setUpTestData``, is a SAVEPOINT on the class's
    connections and ends by rolling back to it.
    """

    __test__ = False

    def __init__(
        self,
        connections: dict[BindKey, Connection],
        transactions: dict[BindKey, Transaction],
        owns_connections: bool,
    ) -> None:
        self.connections = connections
        self.transactions = transactions
        self.owns_connections = owns_connections

    @classmethod
    def begin(cls, engines: t.Mapping[BindKey, Engine]) -> TestTransaction:
        connections: dict[BindKey, Connection] = {}
        transactions: dict[BindKey, Transaction] = {}
        try:
            for key, engine in engines.items():
                connections[key] = conn = engine.connect()
                transactions[key] = conn.begin()
        except BaseException:
            for conn in connections.values():
                conn.close()
            raise
        return cls(connections, transactions, owns_connections=True)

    def begin_nested(self) -> TestTransaction:
        transactions: dict[BindKey, Transaction] = {}
        for key, conn in self.connections.items():
            transactions[key] = conn.begin_nested()
        return TestTransaction(self.connections, transactions, owns_connections=False)

    def end(self) -> list[BindKey]:
        """Roll everything back; return the bind keys whose transaction was ended early."""
        ended: list[BindKey] = []
        for key, conn in self.connections.items():
            trans = self.transactions[key]
            if not trans.is_active:
                ended.append(key)
            if self.owns_connections:
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
                    trans.rollback()
                except SQLAlchemyError:
                    ended.append(key)
        return ended
