"""Everything a test case class holds between ``setUpClass`` and ``tearDownClass``.

One :class:`ClassState` per running class, stored on the class. Each part of
the setup fills in a field; :meth:`ClassState.close` undoes whatever was set up,
in one fixed order, the reverse of ``setUpClass``'s:

1. stop the live server (its requests use the engines);
2. end the class transaction (``setUpTestData``'s data);
3. give ``db.session`` and ``db.engines`` back to the app;
4. forget the schema plans if the class's tests could change the schema;
5. stop watching statements (diagnostics log, statement monitor);
6. hand the engines on to the next class, or dispose of them;
7. give a module-level app its own engines and configuration back;
8. drop the databases that live only as long as the class (migration checks);
9. stop recording templates and flashed messages;
10. pop the class's app context.

.. versionadded:: 0.4
   Replaces the callbacks registered across five methods and the loose class
   attributes of the committing, request-assertion and migration-check code.
"""

from __future__ import annotations

import logging
import typing as t

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import URL, Connection, Engine

from ._types import BindKey
from .backends import backend_for, model_schemas, reflect_tables
from .connections import AppKey, keeper
from .errors import IsolationError, first_line, mask_url
from .monitor import StatementMonitor
from .provisioning import provisioner
from .transaction import TransactionSet

if t.TYPE_CHECKING:
    from flask.ctx import AppContext

    from .app_discovery import AppSource
    from .app_engines import PointedEngines
    from .assertions import RequestRecorder
    from .backends import Backend, ConstraintChecker, TableEmptier
    from .diagnostics import TransactionLog
    from .extension import Extension
    from .redirect import SessionRedirect


logger = logging.getLogger("transactional_testcase.committing")


class LiveServer(t.Protocol):
    """What the state needs of a running live server (see ``committing``)."""

    def stop(self) -> None: ...


class ClassState:
    """The app, engines, transactions and helpers of one running test case class."""

    def __init__(self) -> None:
        #: The app built for the class (dropped from the class after it) and its extension.
        self.app: Flask | None = None
        self.extension: Extension | None = None
        #: The class-long app context (transactional and committing cases).
        self.app_context: AppContext | None = None
        #: Templates and flashed messages of the app's requests.
        self.recorder: RequestRecorder | None = None
        #: What must match for a later class to take these engines; None: nothing is handed on.
        self.app_key: AppKey | None = None
        #: The engines the class uses: its app's own, or kept ones of an earlier class.
        self.engines: dict[BindKey, Engine] = {}
        #: The engines its app made.
        self.own_engines: dict[BindKey, Engine] = {}
        self.backends: dict[BindKey, Backend] = {}
        self.monitor = StatementMonitor()
        self.log: TransactionLog | None = None
        #: ``db.session`` and ``db.engines`` routed onto the tests' connections.
        self.redirect: SessionRedirect | None = None
        #: The transaction ``setUpTestData`` ran in, and what it made.
        self.class_transaction: TransactionSet | None = None
        self.class_data: dict[str, t.Any] = {}
        #: Per test: sequences to reset, constraints to check.
        self.resetters: list[tuple[BindKey, t.Callable[[Connection], None]]] = []
        self.checkers: list[tuple[BindKey, ConstraintChecker]] = []
        #: Committing cases: how each engine's tables are emptied after a test.
        self.emptiers: dict[BindKey, TableEmptier] = {}
        #: The class's tests may commit DDL: plans made from the schema are forgotten after it.
        self.schema_may_change = False
        self.live_server: LiveServer | None = None
        #: Databases made for the class alone, dropped after it.
        self.databases_to_drop: list[URL] = []
        #: Where the class's app came from: its ``create_app``, ``flask_app``, or discovery.
        self.source: AppSource | None = None
        #: A module-level app's engines, pointed at the test databases for the class.
        self.pointed: PointedEngines | None = None
        #: Per bind key, the setting that chose a pointed app's test database (for safety errors).
        self.pointed_settings: dict[BindKey, str] = {}
        #: Ids of the engines :meth:`close` hands to the connection keeper.
        self._handed_on: set[int] = set()

    def begin(self) -> TransactionSet:
        """A connection per engine, each in a transaction of its own (the class's or a test's)."""
        return TransactionSet.begin(self.engines, self.backends, self.monitor.listens_on)

    def plan_emptiers(self, keep: t.Container[str], lock_timeout: float) -> dict[BindKey, TableEmptier]:
        """How to empty each engine's tables but ``keep`` (reflected from the databases: tables the
        migrations made but the models lack are included)."""
        assert self.extension is not None
        metadatas = self.extension.metadatas()
        emptiers: dict[BindKey, TableEmptier] = {}
        for key, engine in self.engines.items():
            with engine.connect() as conn:
                tables = reflect_tables(conn, model_schemas(metadatas.get(key, ())), keep)
                emptiers[key] = self.backends[key].table_emptier(conn, tables, lock_timeout)
        return emptiers

    def empty_tables(self, emptiers: t.Mapping[BindKey, TableEmptier], when: str) -> None:
        """Empty the tables with ``emptiers``; an :class:`IsolationError` if any engine failed.

        Every engine is tried (the next test needs them all empty); the
        emptying's own TRUNCATEs are not counted as the test's implicit commits.
        """
        implicit = list(self.monitor.implicit_commits)
        failure: IsolationError | None = None
        try:
            for key, empty in emptiers.items():
                engine = self.engines[key]
                # The SQLite emptier works on the DBAPI connection: its errors come raw.
                errors = (sa.exc.DBAPIError, engine.dialect.loaded_dbapi.Error)
                try:
                    with engine.connect() as conn:
                        emptied = empty(conn)
                except errors as exc:
                    if failure is None:
                        failure = _emptying_failure(key, engine, when, exc)
                        failure.__cause__ = exc
                    continue
                if emptied:
                    logger.debug(
                        "%s: emptied %s of the %s database", when, ", ".join(emptied), bind_name(key)
                    )
        finally:
            self.monitor.implicit_commits = implicit
        if failure is not None:
            raise failure

    def close(self) -> None:
        """Undo the class's setup in the order of the module's docstring.

        Every step runs whatever an earlier one raised; the first error is
        raised at the end. Safe to call again: done steps find nothing to undo.
        """
        errors: list[BaseException] = []
        # The engines the connection keeper disposes of or keeps (step 6), not step 7.
        self._handed_on = {id(e) for e in (*self.own_engines.values(), *self.engines.values())}
        for step in (
            self._stop_live_server,
            self._end_class_transaction,
            self._restore_session,
            self._forget_plans,
            self._stop_watching,
            self._release_engines,
            self._restore_pointed_engines,
            self._drop_databases,
            self._stop_recording,
            self._pop_app_context,
        ):
            try:
                step()
            except BaseException as exc:  # noqa: BLE001 - raised below, after every step ran
                errors.append(exc)
        self.app = self.extension = None
        if errors:
            raise errors[0]

    # -- the steps -----------------------------------------------------------------------

    def _stop_live_server(self) -> None:
        server, self.live_server = self.live_server, None
        if server is not None:
            server.stop()

    def _end_class_transaction(self) -> None:
        transaction, self.class_transaction = self.class_transaction, None
        if transaction is not None:
            transaction.end()

    def _restore_session(self) -> None:
        redirect, self.redirect = self.redirect, None
        if redirect is not None:
            redirect.restore()

    def _forget_plans(self) -> None:
        if self.schema_may_change:
            self.schema_may_change = False
            provisioner.forget_plans([e.url for e in self.engines.values()])

    def _stop_watching(self) -> None:
        log, self.log = self.log, None
        try:
            if log is not None:
                log.remove()
        finally:
            self.monitor.remove()

    def _release_engines(self) -> None:
        used, own = self.engines, self.own_engines
        if not used and not own:
            return
        self.engines, self.own_engines = {}, {}
        try:
            if self.extension is not None and self.app_context is not None and used != own:
                self.extension.point(own)  # the app's own engines back in db.engines
        finally:
            # The engines are the app's: kept for the next class or disposed of, whatever happens.
            keeper.release(used, own.values(), self.app_key)

    def _restore_pointed_engines(self) -> None:
        pointed, self.pointed = self.pointed, None
        if pointed is not None:
            pointed.restore(self._handed_on)

    def _drop_databases(self) -> None:
        while self.databases_to_drop:
            url = self.databases_to_drop.pop()
            backend_for(url).drop(url)

    def _stop_recording(self) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.stop()

    def _pop_app_context(self) -> None:
        context, self.app_context = self.app_context, None
        if context is not None:
            context.pop()


def bind_name(key: BindKey) -> str:
    """How messages name a bind: ``default`` or its key."""
    return "default" if key is None else repr(key)


def _emptying_failure(key: BindKey, engine: Engine, when: str, exc: Exception) -> IsolationError:
    checkedout = getattr(engine.pool, "checkedout", None)
    held = f" ({checkedout()} connection(s) of this engine are still checked out)" if checkedout else ""
    return IsolationError(
        f"emptying the tables of the {bind_name(key)} database {mask_url(engine.url)} "
        f"after {when} failed: {first_line(exc)}. If it timed out "
        "waiting for a lock, a connection is still inside a transaction on those tables"
        f"{held}: a session or connection the test, a thread or a request it started did "
        "not close. Close connections, remove sessions and join threads before the test "
        "ends (or in a cleanup registered with addCleanup in the test)."
    )
