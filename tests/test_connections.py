"""What one test case class hands on to the next: engines, idle connections, schema plans.

``transactional_testcase.connections``: a class built by the same
``create_app`` with the same config, on the same databases, uses the engines
the previous class kept (their dialect initialized, their idle connections
pooled) when its own are interchangeable with them, and otherwise takes their
idle connections instead of opening new ones; and what a class works out
from the schema (``Provisioner.plan``) is not asked of the server again while
the schema is unchanged. The ``*Run_<backend>`` cases run small inner classes
(``tests.test_lifecycle.inner``, the shop app on ``tt_<driver>_test_keep`` and
its ``audit`` bind) and compare the server session ids their tests saw.
"""

from __future__ import annotations

import collections
import contextlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import typing as t
import unittest
from unittest import mock

import flask
import sqlalchemy as sa

from tests.admin import admin_connection, admin_url, drop_database, own_connection
from tests.apps import shop
from tests.matrix import BACKENDS, BackendUnderTest, bind_url, selected_backends
from tests.running import run_case, transcript
from tests.test_faults import drop_connections
from tests.test_lifecycle import ShopInner, inner, outer_on
from transactional_testcase import CommittingTestCase, provisioning
from transactional_testcase import backends as tt_backends
from transactional_testcase._compat import engine_listeners, socket_fileno
from transactional_testcase.backends import backend_for
from transactional_testcase.connections import MAX_KEPT, AppKey, ConnectionKeeper, keeper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSTGRES = ("psycopg2", "psycopg")
SERVERS = (*POSTGRES, "pymysql", "mysqlclient")


def session_id_query(backend: BackendUnderTest) -> str:
    if backend.name == "sqlite":
        return "SELECT 0"
    return "SELECT pg_backend_pid()" if backend.name in POSTGRES else "SELECT CONNECTION_ID()"


def server_session_ids(url: str) -> set[int]:
    """The server sessions connected to ``url``'s database, seen from an admin connection."""
    parsed = sa.make_url(url)
    query = (
        "SELECT pid FROM pg_stat_activity WHERE datname = :name"
        if parsed.get_backend_name() == "postgresql"
        else "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = :name"
    )
    with admin_connection(parsed) as conn:
        return set(conn.execute(sa.text(query), {"name": parsed.database}).scalars())


class _Probe:
    """Records the server session id of the test's connection on each database."""

    seen: t.ClassVar[list[tuple[int, int]]]
    query: t.ClassVar[str]

    def test_probe(self) -> None:
        db = self.db  # type: ignore[attr-defined]
        with db.engines[None].connect() as main, db.engines["audit"].connect() as audit:
            type(self).seen.append(
                (main.exec_driver_sql(self.query).scalar(), audit.exec_driver_sql(self.query).scalar())
            )


class _Base:
    backend: t.ClassVar[BackendUnderTest]
    #: Names the databases of the outer class's inner classes (``tt_<driver>_test_<purpose>``).
    purpose: t.ClassVar[str]
    #: The URLs the inner classes' engines really used (driver defaults included).
    urls: list[str]
    #: The engines the last inner class used, and the ones its app made.
    used: dict[str | None, sa.Engine]
    own: dict[str | None, sa.Engine]

    def probe(self, **attrs: t.Any) -> tuple[int, int]:
        """Run one inner class of the shop app; the session ids its test saw."""
        case = inner(
            self.backend,
            self.purpose,
            _Probe,
            _Engines,
            seen=[],
            query=session_id_query(self.backend),
            **attrs,
        )
        result = run_case(case)
        self.assertTrue(result.wasSuccessful(), transcript(result))  # type: ignore[attr-defined]
        self.urls = list(case.engine_urls.values())  # type: ignore[attr-defined]
        self.used, self.own = case.used, case.own  # type: ignore[attr-defined]
        (seen,) = case.seen  # type: ignore[attr-defined]
        return seen


class _Engines:
    """Records the engines an inner class used (``db.engines`` behind the redirect) and its app's own."""

    used: t.ClassVar[dict[str | None, sa.Engine]]
    own: t.ClassVar[dict[str | None, sa.Engine]]

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()  # type: ignore[misc]
        state = cls._tt_state  # type: ignore[attr-defined]
        cls.used, cls.own = dict(state.engines), dict(state.own_engines)


def _listening_factory(calls: list[int]) -> t.Callable[..., flask.Flask]:
    """A create_app that gives each new engine a listener of its own (a new closure each time)."""

    def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
        app = shop.create_app(config)
        with app.app_context():
            for engine in shop.db.engines.values():

                @sa.event.listens_for(engine, "connect")
                def on_connect(dbapi_connection: t.Any, record: t.Any) -> None:
                    calls.append(id(app))

        return app

    return create_app


@outer_on(*SERVERS)
class KeptConnectionsRun(_Base):
    purpose = "keep"

    def test_next_class_of_the_same_factory_uses_its_engines(self) -> None:
        first = self.probe()
        engines, handed = dict(self.used), keeper.stats["engines"]
        self.assertEqual(self.probe(), first)
        self.assertEqual(keeper.stats["engines"], handed + 2, "one engine per database")
        for key, engine in self.used.items():
            self.assertIs(engine, engines[key], "the second class should use the first one's engine")
            self.assertIsNot(self.own[key], engine)
            self.assertEqual(self.own[key].pool.checkedin(), 0, "the unused engine of the app connected")

    def test_a_factory_listening_with_new_closures_takes_the_connections(self) -> None:
        calls: list[int] = []
        factory = classmethod(_listening_factory(calls))
        first = self.probe(create_app=factory)
        engines, reused, handed = dict(self.used), keeper.stats["reused"], keeper.stats["engines"]
        calls.clear()
        self.assertEqual(self.probe(create_app=factory), first, "the connections should be handed on")
        self.assertEqual(keeper.stats["reused"], reused + 2, "one connection per database")
        self.assertEqual(keeper.stats["engines"], handed, "an engine with other listeners was handed on")
        for key, engine in self.used.items():
            self.assertIs(engine, self.own[key], "the class should use its own engine")
            self.assertIsNot(engine, engines[key])
        self.assertEqual(
            len(calls), 2, "the app's own connect listeners should run on the handed connections"
        )

    def test_an_engine_a_test_listened_on_is_not_handed_on(self) -> None:
        def test_listen(self: t.Any) -> None:
            sa.event.listen(self.db.engine, "checkout", lambda *args: None)  # lands on the engine's pool

        first = self.probe(test_listen=test_listen)
        handed = keeper.stats["engines"]
        engines = dict(self.used)
        self.probe()
        self.assertIsNot(self.used[None], engines[None], "an engine whose pool a test listened on was reused")
        self.assertEqual(keeper.stats["engines"], handed + 1, "the untouched audit engine is still handed on")
        self.assertTrue(first)

    def test_another_factory_or_config_of_the_same_app_shares_its_engines(self) -> None:
        """Each test module's own create_app calling the project's, or config the engines ignore."""
        first = self.probe()

        def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
            return shop.create_app(config)

        def get_app_config(cls: type) -> dict[str, t.Any]:
            return {**super(case_config, cls).get_app_config(), "SOMETHING_ELSE": 1}  # type: ignore[misc]

        handed = keeper.stats["engines"]
        self.assertEqual(self.probe(create_app=classmethod(create_app)), first)
        self.assertEqual(keeper.stats["engines"], handed + 2, "one engine per database")
        case_config = inner(
            self.backend,
            self.purpose,
            _Probe,
            seen=[],
            query=session_id_query(self.backend),
            get_app_config=classmethod(get_app_config),
        )
        result = run_case(case_config)
        self.assertTrue(result.wasSuccessful(), transcript(result))
        self.assertEqual(case_config.seen, [first])  # type: ignore[attr-defined]

    def test_other_engine_settings_open_their_own(self) -> None:
        first = self.probe()

        def get_app_config(cls: type) -> dict[str, t.Any]:
            return {**super(case_other, cls).get_app_config(), "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 3}}  # type: ignore[misc]

        case_other = inner(
            self.backend,
            self.purpose,
            _Probe,
            seen=[],
            query=session_id_query(self.backend),
            get_app_config=classmethod(get_app_config),
        )
        result = run_case(case_other)
        self.assertTrue(result.wasSuccessful(), transcript(result))
        (other,) = case_other.seen  # type: ignore[attr-defined]
        self.assertTrue(set(other).isdisjoint(first), (first, other))
        # Meanwhile the first settings' engines stayed kept for them.
        self.assertEqual(self.probe(), first)

    def test_another_factory_listening_anew_takes_connections_only_where_sessions_reset(self) -> None:
        """Loose connections go to another factory's engine only where the backend resets the session."""
        first = self.probe(create_app=classmethod(_listening_factory([])))
        other = self.probe(
            create_app=classmethod(_listening_factory([]))
        )  # another function: another factory
        if backend_for(sa.make_url(self.urls[0])).resets_sessions:
            self.assertEqual(other, first, "reset connections should be handed on")
        else:
            self.assertTrue(set(other).isdisjoint(first), (first, other))

    def test_connection_the_server_dropped_is_replaced(self) -> None:
        for attrs in ({}, {"create_app": classmethod(_listening_factory([]))}):
            with self.subTest("engines" if not attrs else "connections"):  # type: ignore[attr-defined]
                first = self.probe(**attrs)
                self.assertGreaterEqual(drop_connections(self.urls), 2, "the kept connections should be open")
                second = self.probe(**attrs)
                self.assertTrue(set(second).isdisjoint(first), (first, second))

    def test_rebuilt_database_gets_new_connections_and_the_old_are_closed(self) -> None:
        first = self.probe()
        provisioning.provisioner.invalidate(sa.make_url(u) for u in self.urls)
        second = self.probe()
        self.assertTrue(set(second).isdisjoint(first), (first, second))
        for url in self.urls:
            self.assertTrue(server_session_ids(url).isdisjoint(first), "a discarded connection was left open")

    def test_a_forked_child_neither_takes_nor_closes_them(self) -> None:
        first = self.probe()
        context = multiprocessing.get_context("fork")
        child = context.Process(target=_child_sees_no_kept_connection)
        child.start()
        child.join(60)
        self.assertEqual(child.exitcode, 0, "the child could take the parent's engines or connections")
        # The child ended without closing them: they are still alive, and reused.
        self.assertEqual(self.probe(), first)


def _child_sees_no_kept_connection() -> None:
    # Forked: the parent's engines and connections are set aside, neither offered nor closed.
    os._exit(0 if not keeper._idle and not keeper._engines and keeper._inherited else 1)


@outer_on(*POSTGRES)
class SessionResetRun(_Base):
    """Session state: kept on a handed-on engine, reset (DISCARD ALL) on handed-on connections."""

    purpose = "keep_reset"

    def states(self, **attrs: t.Any) -> list[tuple[int, int, int]]:
        states: list[tuple[int, int, int]] = []

        def test_probe(self: t.Any) -> None:
            with self.db.engines[None].connect() as conn:
                states.append(
                    (
                        conn.exec_driver_sql("SELECT pg_backend_pid()").scalar(),
                        conn.exec_driver_sql(
                            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                        ).scalar(),
                        conn.exec_driver_sql(
                            "SELECT count(*) FROM pg_prepared_statements WHERE name = 'tt_left'"
                        ).scalar(),
                    )
                )
                if len(states) == 1:
                    # Both outlive the test's rollback: session state, not transaction state.
                    conn.exec_driver_sql("SELECT pg_advisory_lock(4242)")
                    conn.exec_driver_sql("PREPARE tt_left AS SELECT 1")

        for _ in range(2):
            case = inner(self.backend, self.purpose, test_probe=test_probe, **attrs)
            result = run_case(case)
            self.assertTrue(result.wasSuccessful(), transcript(result))
        return states

    def test_a_handed_on_engine_keeps_its_sessions_as_they_are(self) -> None:
        (pid1, locks1, prepared1), (pid2, locks2, prepared2) = self.states()
        self.assertEqual(pid1, pid2, "the second class should have used the first one's engine")
        self.assertEqual((locks1, prepared1), (0, 0))
        self.assertEqual((locks2, prepared2), (1, 1), "the pooled connection is the same session, unchanged")
        with own_connection(self.backend.url_for("postgres") or "") as conn:
            conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid2})")  # the advisory lock goes with it

    def test_handed_on_connections_are_reset(self) -> None:
        factory = classmethod(_listening_factory([]))
        (pid1, locks1, prepared1), (pid2, locks2, prepared2) = self.states(create_app=factory)
        self.assertEqual(pid1, pid2, "the second class should have taken the first one's connection")
        self.assertEqual((locks1, prepared1), (0, 0))
        self.assertEqual((locks2, prepared2), (0, 0), "session state crossed from one class to the next")


@outer_on()
class SchemaPlansRun(_Base):
    """What a class works out from the schema is asked of the server once per database and schema."""

    purpose = "keep_plans"

    def test_planned_once_until_the_schema_may_have_changed(self) -> None:
        url = self.backend.url or "sqlite://"
        backend_class = type(tt_backends.backend_for(sa.make_url(url)))
        original = backend_class.constraint_checker
        with mock.patch.object(
            backend_class, "constraint_checker", autospec=True, side_effect=original
        ) as spy:
            self.probe()
            self.probe()
            self.assertEqual(spy.call_count, 2, "once per database (default and audit), not per class")
            committing = type(
                f"Committing_{self.backend.name}",
                (ShopInner, CommittingTestCase),
                {
                    "database_url": bind_url(self.backend, self.purpose),
                    "binds": {"audit": bind_url(self.backend, f"{self.purpose}_audit")},
                    "test_nothing": lambda self: None,
                },
            )
            self.assertTrue(run_case(committing).wasSuccessful())
            self.probe()
            self.assertEqual(spy.call_count, 4, "a committing class may have committed DDL: planned again")
            provisioning.provisioner.invalidate(sa.make_url(u) for u in self.urls)
            self.probe()
            self.assertEqual(spy.call_count, 6, "a rebuilt database: planned again")


def _sqlite_backend() -> list[BackendUnderTest]:
    return [b for b in selected_backends() if b.name == "sqlite"]


class SQLiteKeepsEnginesOnly(_Base, unittest.TestCase):
    """A SQLite engine is handed on whole; a connection alone costs nothing to open and is never loosened."""

    backend = BACKENDS["sqlite"]
    purpose = "keep"

    def setUp(self) -> None:
        if not _sqlite_backend():
            self.skipTest("sqlite is not in TT_TEST_BACKENDS")

    def test_engines_handed_on_connections_never_loose(self) -> None:
        kept, handed = keeper.stats["kept"], keeper.stats["engines"]
        self.probe()
        engines = dict(self.used)
        self.probe()
        self.assertEqual(self.used, engines)
        self.assertEqual(keeper.stats["engines"], handed + 2)
        self.probe(create_app=classmethod(_listening_factory([])))
        self.assertEqual(keeper.stats["kept"], kept)
        self.assertFalse([key for key, _ in keeper._idle if key[2].startswith("sqlite")])


@outer_on(*SERVERS)
class KeeperLimits:
    backend: t.ClassVar[BackendUnderTest]

    def test_at_most_max_kept_and_the_oldest_engines_closed(self) -> None:
        case = t.cast(unittest.TestCase, self)
        url = self.backend.url
        assert url is not None
        per_engine = MAX_KEPT // 2
        engines = [sa.create_engine(admin_url(url), pool_size=per_engine) for _ in range(3)]
        own = ConnectionKeeper()
        dbapi_error = engines[0].dialect.loaded_dbapi.Error
        opened: list[list[t.Any]] = []
        try:
            for i, engine in enumerate(engines):
                own.adopt({None: engine}, AppKey(f"limits{i}", f"limits{i}"))
                proxies = [engine.raw_connection() for _ in range(per_engine)]
                opened.append([p.dbapi_connection for p in proxies])
                for proxy in proxies:
                    proxy.close()
                own.release({None: engine}, [engine], AppKey(f"limits{i}", f"limits{i}"))
            case.assertEqual([k.engine for k in own._engines], engines[1:], "the oldest engine should go")
            case.assertEqual(sum(e.pool.checkedin() for e in engines[1:]), MAX_KEPT)
            for connection in opened[0]:
                with case.assertRaises(dbapi_error, msg="a connection of a disposed engine was left open"):
                    connection.cursor().execute("SELECT 1")
            own.close_all()
            for connection in opened[1] + opened[2]:
                with case.assertRaises(dbapi_error, msg="close_all left a connection open"):
                    connection.cursor().execute("SELECT 1")
        finally:
            own.close_all()
            for engine in engines:
                engine.dispose()


@outer_on(*SERVERS)
class PingRun:
    """A kept connection is pinged without a round trip while its socket is quiet."""

    backend: t.ClassVar[BackendUnderTest]

    def test_quiet_socket_no_round_trip_closed_one_fails(self) -> None:
        case = t.cast(unittest.TestCase, self)
        url = admin_url(self.backend.url or "")
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        case.addCleanup(engine.dispose)
        backend = tt_backends.backend_for(engine.url)
        proxied = engine.raw_connection()
        dbapi_connection = proxied.dbapi_connection
        proxied.detach()  # ours alone: the pool neither resets nor closes it
        case.addCleanup(_close_quietly, dbapi_connection)
        case.assertIsNotNone(
            socket_fileno(dbapi_connection), "every supported server driver shows its socket"
        )
        with mock.patch.object(
            type(backend), "_round_trip_ping", autospec=True, side_effect=type(backend)._round_trip_ping
        ) as round_trip:
            case.assertTrue(backend.ping(engine.dialect, dbapi_connection))
            case.assertEqual(round_trip.call_count, 0)
            cursor = dbapi_connection.cursor()
            cursor.execute(session_id_query(self.backend))
            (session_id,) = cursor.fetchone()
            cursor.close()
            dbapi_connection.rollback()
            _end_session(url, session_id)
            with case.assertRaises((engine.dialect.loaded_dbapi.Error, ConnectionError)):
                if not backend.ping(engine.dialect, dbapi_connection):
                    raise ConnectionError("ping said dead")
            case.assertEqual(round_trip.call_count, 1, "a dead socket must be asked")


@outer_on(*SERVERS)
class KeptEngineCheckRun(_Base):
    """Between two classes a kept engine's idle connections are looked at, not checked out."""

    purpose = "keep_check"

    def test_quiet_sockets_no_checkout_dropped_ones_replaced(self) -> None:
        # A listener on the pools would change the engines (not handed on):
        # the checkouts are counted on QueuePool itself.
        self.probe()
        engines = dict(self.used)
        checkouts: collections.Counter[str | None] = collections.Counter()
        original = sa.pool.QueuePool.connect

        def connect(pool: sa.pool.QueuePool) -> t.Any:
            for key, engine in engines.items():
                if engine.pool is pool:
                    checkouts[key] += 1
            return original(pool)

        with mock.patch.object(sa.pool.QueuePool, "connect", autospec=True, side_effect=connect):
            self.probe()  # the test checks out one connection per engine
            self.assertEqual(self.used, engines)
            self.assertEqual(
                checkouts, {None: 1, "audit": 1}, "the kept engines were checked out to be pinged"
            )
            first = self.probe()
            checkouts.clear()
            drop_connections(self.urls)
            second = self.probe()
        self.assertTrue(set(second).isdisjoint(first), (first, second))
        # Seen closed by their sockets and replaced: the test's own checkout alone.
        self.assertEqual(checkouts, {None: 1, "audit": 1})


@outer_on(*SERVERS)
class PartialLossRun:
    """One of a kept engine's idle connections closed by the server: that one replaced, the other kept."""

    backend: t.ClassVar[BackendUnderTest]

    def test_only_the_closed_connection_is_replaced(self) -> None:
        case = t.cast(unittest.TestCase, self)
        url = admin_url(self.backend.url or "")
        engine = sa.create_engine(url, pool_size=2)
        case.addCleanup(engine.dispose)
        checker = ConnectionKeeper()
        checker._watch_checkins(engine)
        query = session_id_query(self.backend)

        def session_ids() -> list[int]:
            with engine.connect() as one, engine.connect() as two:
                return [c.exec_driver_sql(query).scalar_one() for c in (one, two)]

        lost, kept = session_ids()
        _end_session(url, lost)  # what wait_timeout or idle_session_timeout does to one
        with mock.patch.object(
            sa.pool.QueuePool, "connect", autospec=True, side_effect=sa.pool.QueuePool.connect
        ) as checkout:
            checker._check(engine)
        case.assertEqual(checkout.call_count, 0, "no checkout (no round trip) to check them")
        now = session_ids()  # both usable: the closed one was replaced, not handed out
        case.assertIn(kept, now)
        case.assertNotIn(lost, now)


def _close_quietly(dbapi_connection: t.Any) -> None:
    with contextlib.suppress(Exception):  # the server ended it
        dbapi_connection.close()


def _end_session(url: sa.URL, session_id: int) -> None:
    """What a server restart does to one session, and wait until it is gone."""
    with admin_connection(url) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_terminate_backend(:p, 5000)"), {"p": session_id})
            return
        conn.exec_driver_sql(f"KILL {int(session_id)}")
        for _ in range(500):
            if not conn.exec_driver_sql(
                f"SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = {int(session_id)}"
            ).first():
                return
            time.sleep(0.01)


class EngineListeners(unittest.TestCase):
    """What makes two engines interchangeable: the same functions listening on them."""

    def listeners(self, engine: sa.Engine) -> frozenset[t.Any]:
        return engine_listeners(engine, lambda fn: False)

    def setUp(self) -> None:
        # A folder of this test's own in the run's temporary folder, removed after it.
        self.folder = tempfile.mkdtemp(prefix="tt_listeners_")
        self.addCleanup(shutil.rmtree, self.folder, True)

    def engine(self) -> sa.Engine:
        engine = sa.create_engine("sqlite:///" + os.path.join(self.folder, "tt_listeners_test.db"))
        self.addCleanup(engine.dispose)  # runs before the folder's removal (cleanups are LIFO)
        return engine

    def test_create_engines_own_listeners_are_left_out(self) -> None:
        engine = self.engine()
        self.assertEqual(self.listeners(engine), frozenset())
        with engine.connect():
            pass  # first_connect has fired
        self.assertEqual(self.listeners(engine), frozenset())

    def test_the_same_functions_make_the_same_set(self) -> None:
        a, b = self.engine(), self.engine()
        for engine in (a, b):
            sa.event.listen(engine, "connect", _module_listener)
            sa.event.listen(engine, "before_cursor_execute", _module_listener, named=True)
            sa.event.listen(engine, "do_connect", _module_listener)
        self.assertEqual(len(self.listeners(a)), 3)
        self.assertEqual(self.listeners(a), self.listeners(b))

    def test_closures_pool_and_dialect_listeners_count(self) -> None:
        a, b = self.engine(), self.engine()
        for engine in (a, b):
            sa.event.listen(engine, "connect", lambda *args: None)
        self.assertNotEqual(self.listeners(a), self.listeners(b), "two closures are two listeners")
        c, d = self.engine(), self.engine()
        sa.event.listen(c.pool, "checkout", _module_listener)
        self.assertNotEqual(self.listeners(c), self.listeners(d), "a listener on the pool itself")
        sa.event.listen(d.dialect, "do_execute", _module_listener)
        self.assertIn("do_execute", {name for _, name, _ in self.listeners(d)})

    def test_ignored_functions_are_left_out(self) -> None:
        engine = self.engine()
        sa.event.listen(engine, "connect", _module_listener)
        self.assertEqual(engine_listeners(engine, lambda fn: fn is _module_listener), frozenset())


def _module_listener(*args: t.Any, **kwargs: t.Any) -> None:
    return None


_WARM_SCRIPT = textwrap.dedent(
    """
    import contextlib, json, sys, unittest
    from unittest import mock
    from tests.apps import shop
    from transactional_testcase import TransactionalTestCase, backends, provisioning

    url, audit, out, forbid_admin = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"

    class Case(TransactionalTestCase):
        database_url = url
        binds = {"audit": audit}
        alembic_config = False

        @classmethod
        def create_app(cls, config):
            return shop.create_app(config)

        def test_schema(self):
            self.assertEqual(shop.count(shop.Customer), 0)

    def refuse(*args, **kwargs):
        raise AssertionError("an admin connection was opened on a warm run")

    with mock.patch.object(backends.Backend, "admin_connection", refuse) if forbid_admin else contextlib.nullcontext():
        result = unittest.TextTestRunner().run(unittest.defaultTestLoader.loadTestsFromTestCase(Case))
    with open(out, "w") as f:
        json.dump({"ok": result.wasSuccessful(), "stats": provisioning.provisioner.stats}, f)
    """
)


@outer_on(*SERVERS)
class WarmKeptRun:
    """A warm keepdb run reads its marker through the app's own engine: no admin connection at all."""

    backend: t.ClassVar[BackendUnderTest]

    def test_warm_run_opens_no_admin_connection(self) -> None:
        case = t.cast(unittest.TestCase, self)
        urls = [bind_url(self.backend, "keep_warm"), bind_url(self.backend, "keep_warm_audit")]
        for url in urls:
            case.addCleanup(drop_database, url, force=True)
        env = {
            k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", provisioning.WORKER_ENV)
        }
        env.update(
            PYTHONPATH=ROOT, TRANSACTIONAL_TESTCASE_KEEPDB="1", TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES="0"
        )
        folder = tempfile.mkdtemp(prefix="tt_keep_warm_")
        case.addCleanup(shutil.rmtree, folder, True)
        out = os.path.join(folder, "run.json")
        runs = []
        for forbid in ("0", "1"):
            proc = subprocess.run(
                [sys.executable, "-c", _WARM_SCRIPT, *urls, out, forbid],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            case.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
            with open(out) as f:
                runs.append(json.load(f))
        case.assertTrue(runs[0]["ok"] and runs[1]["ok"], runs)
        case.assertEqual(runs[0]["stats"]["build"], 1, runs)
        case.assertEqual(
            (runs[1]["stats"]["keep"], runs[1]["stats"]["build"], runs[1]["stats"]["clone"]), (1, 0, 0)
        )
        with own_connection(urls[0]) as conn:
            case.assertIn("customers", sa.inspect(conn).get_table_names())


if __name__ == "__main__":
    unittest.main()
