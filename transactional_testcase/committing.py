"""Test cases whose tests really commit, and a live server on top of them.

:class:`CommittingTestCase` is for code the rolled-back transaction of
:class:`~transactional_testcase.TransactionalTestCase` cannot contain: several
connections, threads, a server in another thread. Nothing is redirected:
``db.session`` and ``db.engine`` are the app's own, every commit is real, and
after each test (whatever its outcome) every table of every engine is emptied
and every sequence/identity/AUTO_INCREMENT counter reset, except the tables in
:attr:`~CommittingTestCase.keep_tables` (Alembic's ``alembic_version``).

Emptying is planned once per class (the tables are reflected from the
database, so tables created by migrations but absent from the models are
included) and is only done where needed: after a test that sent no write
statement nothing at all happens; otherwise one probe query per engine finds the
tables that hold rows or whose counter moved, and only those are emptied:

* PostgreSQL: one ``TRUNCATE ... RESTART IDENTITY CASCADE`` (plus ``ALTER
  SEQUENCE ... RESTART`` for sequences no column owns);
* MySQL/MariaDB: with ``foreign_key_checks`` off, ``TRUNCATE`` for a table whose
  AUTO_INCREMENT moved (it resets the counter), a plain ``DELETE`` for the others
  (``TRUNCATE`` is DDL there, several times slower on a near-empty table);
* SQLite: ``DELETE`` with foreign keys off, and the tables' ``sqlite_sequence``
  rows (``AUTOINCREMENT``); plain rowids restart by themselves.

:class:`LiveServerTestCase` serves the app on a free local port in a background
thread for the whole class (:attr:`~LiveServerTestCase.live_server_url`).
"""

from __future__ import annotations

import logging
import threading
import typing as t

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from ._types import BindKey
from .backends import TableEmptier, model_schemas, reflect_tables
from .errors import ConfigurationError, IsolationError, first_line, mask_url
from .provisioning import provisioner
from .testcase import DatabaseTestCase

if t.TYPE_CHECKING:
    from .testcase import _ClassState

__all__ = ["CommittingTestCase", "LiveServerTestCase"]

logger = logging.getLogger("transactional_testcase.committing")


class CommittingTestCase(DatabaseTestCase):
    """A test case whose tests commit for real; the tables are emptied after each test.

    Use it for code that a rolled-back transaction cannot contain: work done
    on several connections, in threads with their own app context, by a
    live server. ``db.session`` and ``db.engine`` are the app's own and every
    commit is real, so other connections see it at once.

    After each test (after ``tearDown`` and the test's own cleanups, even when
    it failed) ``db.session`` is removed and every table the test could have
    written to is emptied, its sequence or AUTO_INCREMENT counter reset: the
    next test sees empty tables and ids starting at 1. The cleanup is skipped
    when the test sent no write statement on any of the app's engines, from
    whichever thread; writes that bypass SQLAlchemy (a DBAPI connection from
    ``engine.raw_connection()``, another process) are invisible to that check:
    set :attr:`always_empty_tables` for them.

    There is no ``setUpTestData`` (as in Django's ``TransactionTestCase``):
    whatever it created would be gone after the first test. Create shared data
    in ``setUp``; defining ``setUpTestData`` is refused with an error.

    Slower than :class:`~transactional_testcase.TransactionalTestCase` by the
    commits and the emptying (a few milliseconds per test that wrote; more on
    MySQL/MariaDB, where resetting AUTO_INCREMENT is DDL): use it only where
    the transactional one cannot work.
    """

    #: Tables never emptied (by name, in any schema).
    keep_tables: t.ClassVar[frozenset[str]] = frozenset({"alembic_version"})

    #: Empty the tables after every test, even when no write statement was
    #: seen: for code that writes through raw DBAPI connections or other
    #: processes, or only moves sequences (``SELECT nextval(...)`` is a read).
    always_empty_tables: t.ClassVar[bool] = False

    #: Seconds the cleanup waits for a lock held by a connection that is still
    #: in a transaction (PostgreSQL ``lock_timeout``, MySQL/MariaDB
    #: ``lock_wait_timeout``, SQLite ``busy_timeout``) before failing the test
    #: with an :class:`~transactional_testcase.IsolationError` instead of hanging.
    lock_timeout: t.ClassVar[float] = 10.0

    _tt_emptiers: t.ClassVar[dict[BindKey, TableEmptier] | None] = None

    @classmethod
    def setUpClass(cls) -> None:
        if callable(getattr(cls, "setUpTestData", None)):
            raise ConfigurationError(
                f"{cls.__qualname__} defines setUpTestData, which a CommittingTestCase does "
                "not run: its tables are emptied after every test, so class-level data "
                "would be gone after the first one. Create the data in setUp instead."
            )
        super().setUpClass()

    @classmethod
    def setUpDatabases(cls) -> None:
        """Plan the emptying of every engine's tables, and start from empty tables.

        The databases may have been used before in this process (by a
        transactional class, whose rolled-back inserts still moved PostgreSQL
        sequences and MySQL AUTO_INCREMENT counters) or kept from an
        interrupted run (``keepdb``).
        """
        super().setUpDatabases()
        state = cls._tt_committing_state()
        emptiers: dict[BindKey, TableEmptier] = {}
        for key, engine in state.engines.items():
            with engine.connect() as conn:
                tables = reflect_tables(conn, model_schemas(cls.db, key), cls.keep_tables)
                emptiers[key] = state.backends[key].table_emptier(conn, tables, cls.lock_timeout)
        cls._tt_emptiers = emptiers
        state.stack.callback(cls._tt_forget_emptiers)
        # Its tests may commit DDL: later classes plan from the schema afresh.
        state.stack.callback(provisioner.forget_plans, [e.url for e in state.engines.values()])
        cls._tt_empty_tables(state, f"{cls.__qualname__}.setUpClass")

    @classmethod
    def _tt_forget_emptiers(cls) -> None:
        cls._tt_emptiers = None

    @classmethod
    def _tt_committing_state(cls) -> _ClassState:
        state = cls._tt_state
        assert state is not None, "setUpDatabases runs inside setUpClass"
        return state

    def _tt_end_test(self, state: _ClassState) -> None:
        """Remove the session and empty what the test wrote (before the app context is popped)."""
        try:
            self.db.session.remove()
        finally:
            try:
                if state.monitor.wrote or self.always_empty_tables:
                    self._tt_empty_tables(state, self.id())
            finally:
                if state.log is not None:
                    # Diagnostics: commits are the point here, no test transaction to escape.
                    state.log.escaped.clear()

    @classmethod
    def _tt_empty_tables(cls, state: _ClassState, when: str) -> None:
        emptiers = cls._tt_emptiers
        assert emptiers is not None
        # The cleanup's own TRUNCATEs are not the test's implicit commits.
        implicit = list(state.monitor.implicit_commits)
        failure: IsolationError | None = None
        try:
            for key, empty in emptiers.items():
                engine = state.engines[key]
                # The SQLite emptier works on the DBAPI connection: its errors come raw.
                errors = (sa.exc.DBAPIError, engine.dialect.loaded_dbapi.Error)
                try:
                    with engine.connect() as conn:
                        emptied = empty(conn)
                except errors as exc:
                    # Go on with the other engines: the next test needs them empty too.
                    if failure is None:
                        failure = _cleanup_failure(key, engine, when, exc)
                        failure.__cause__ = exc
                    continue
                if emptied:
                    logger.debug(
                        "%s: emptied %s of the %s database", when, ", ".join(emptied), _bind_name(key)
                    )
        finally:
            state.monitor.implicit_commits = implicit
        if failure is not None:
            raise failure


class LiveServerTestCase(CommittingTestCase):
    """A :class:`CommittingTestCase` with the app served over HTTP for the whole class.

    ``setUpClass`` starts werkzeug's threaded server on
    :attr:`live_server_host` and a free port (:attr:`live_server_port` = 0)
    once the databases are ready; :attr:`live_server_url` is its
    ``http://host:port``. ``tearDownClass`` shuts it down and joins its thread.

    Each request runs in a thread of the server with its own app context, so
    its own ``db.session``, on the app's real engines: it sees what the test
    committed, and the test sees what it committed. The test's session keeps
    its transaction open after a query, though: end it (``db.session.commit()``,
    ``rollback()`` or ``close()``) before a request writes what the test then
    reads: on MySQL/MariaDB (REPEATABLE READ) an open transaction keeps
    reading its old snapshot, and on SQLite its read lock blocks the server's
    commit. SQLite: a database file (the default) is shared safely between
    threads; in-memory SQLite (``sqlite://``) works only because
    Flask-SQLAlchemy gives it a single shared connection (``StaticPool``), so
    the test and the server must not use it at the same time.
    """

    #: Interface the server listens on.
    live_server_host: t.ClassVar[str] = "127.0.0.1"
    #: Port to listen on; 0 lets the operating system choose a free one.
    live_server_port: t.ClassVar[int] = 0
    #: Seconds to wait for the server's thread to end after the class.
    live_server_stop_timeout: t.ClassVar[float] = 10.0

    #: ``http://host:port`` of the running server (set in ``setUpClass``).
    live_server_url: t.ClassVar[str]

    @classmethod
    def setUpDatabases(cls) -> None:
        """Start the server once the databases are ready (stopped after the class)."""
        super().setUpDatabases()
        state = cls._tt_committing_state()
        server, thread = _start_server(cls.app, cls.live_server_host, cls.live_server_port, cls.__qualname__)
        state.stack.callback(_stop_server, server, thread, cls.live_server_stop_timeout)
        cls.live_server_url = f"http://{cls.live_server_host}:{server.port}"


# -- the live server ---------------------------------------------------------------------


class _QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without the access log line per request (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def _start_server(app: t.Any, host: str, port: int, owner: str) -> tuple[BaseWSGIServer, threading.Thread]:
    try:
        server = make_server(host, port, app, threaded=True, request_handler=_QuietRequestHandler)
    except SystemExit:  # werkzeug reports a port in use and exits
        raise ConfigurationError(
            f"{owner}: the live server cannot listen on {host}:{port}; set "
            "live_server_port = 0 to let the system choose a free port."
        ) from None
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},  # shutdown() waits up to one poll interval
        name=f"live-server-{owner}",
        daemon=True,
    )
    thread.start()
    return server, thread


def _stop_server(server: BaseWSGIServer, thread: threading.Thread, timeout: float) -> None:
    try:
        if thread.is_alive():
            server.shutdown()
        thread.join(timeout)
    finally:
        server.server_close()
    if thread.is_alive():
        raise RuntimeError(f"the live server's thread {thread.name} did not stop within {timeout} s")


# -- emptying tables (per backend) -------------------------------------------------------


def _bind_name(key: BindKey) -> str:
    return "default" if key is None else repr(key)


def _cleanup_failure(key: BindKey, engine: Engine, when: str, exc: Exception) -> IsolationError:
    checkedout = getattr(engine.pool, "checkedout", None)
    held = f" ({checkedout()} connection(s) of this engine are still checked out)" if checkedout else ""
    return IsolationError(
        f"emptying the tables of the {_bind_name(key)} database {mask_url(engine.url)} "
        f"after {when} failed: {first_line(exc)}. If it timed out "
        "waiting for a lock, a connection is still inside a transaction on those tables"
        f"{held}: a session or connection the test, a thread or a request it started did "
        "not close. Close connections, remove sessions and join threads before the test "
        "ends (or in a cleanup registered with addCleanup in the test)."
    )
