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

import threading
import typing as t

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .errors import ConfigurationError
from .state import ClassState
from .testcase import DatabaseTestCase

__all__ = ["CommittingTestCase", "LiveServerTestCase"]


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

    _tt_commits = True

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
        state.emptiers = state.plan_emptiers(cls.keep_tables, cls.lock_timeout)
        # Its tests may commit DDL: later classes plan from the schema afresh.
        state.schema_may_change = True
        state.empty_tables(state.emptiers, f"{cls.__qualname__}.setUpClass")

    @classmethod
    def _tt_committing_state(cls) -> ClassState:
        state = cls._tt_state
        assert state is not None, "setUpDatabases runs inside setUpClass"
        return state

    def _tt_end_test(self, state: ClassState) -> None:
        """Remove the session and empty what the test wrote (before the app context is popped)."""
        try:
            self._tt_extension().remove_session()
        finally:
            try:
                if state.monitor.wrote or self.always_empty_tables:
                    state.empty_tables(state.emptiers, self.id())
            finally:
                if state.log is not None:
                    # Diagnostics: commits are the point here, no test transaction to escape.
                    state.log.escaped.clear()


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
        server = state.live_server = _LiveServer.start(
            cls.app,
            cls.live_server_host,
            cls.live_server_port,
            cls.__qualname__,
            cls.live_server_stop_timeout,
        )
        cls.live_server_url = f"http://{cls.live_server_host}:{server.port}"


# -- the live server ---------------------------------------------------------------------


class _QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's handler without the access log line per request (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


class _LiveServer:
    """werkzeug's threaded server on a thread of its own, for one class."""

    def __init__(self, server: BaseWSGIServer, thread: threading.Thread, stop_timeout: float) -> None:
        self.server, self.thread, self.stop_timeout = server, thread, stop_timeout
        self.port: int = server.port

    @classmethod
    def start(cls, app: t.Any, host: str, port: int, owner: str, stop_timeout: float) -> _LiveServer:
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
        return cls(server, thread, stop_timeout)

    def stop(self) -> None:
        try:
            if self.thread.is_alive():
                self.server.shutdown()
            self.thread.join(self.stop_timeout)
        finally:
            self.server.server_close()
        if self.thread.is_alive():
            raise RuntimeError(
                f"the live server's thread {self.thread.name} did not stop within {self.stop_timeout} s"
            )
