"""CommittingTestCase and LiveServerTestCase, on every backend.

Every generated class (``<Mixin>_<backend>``) checks, with a connection of its
own, that all tables (``alembic_version`` aside) are empty before each test
and after the class. The tests themselves prove the commits are real (another
connection sees them while the test runs), so the emptiness the next test
finds is the cleanup's doing. Tests whose names sort one after the other
(``test_a_...``, ``test_b_...``) are ordered on purpose: a test that leaves a
moved counter behind is followed by one that expects ids to start at 1.

Inner test classes (built inside a test and run with ``unittest`` machinery)
show what happens after a failing test, a test that only reads, a leaked
connection, raw DBAPI writes, and after a live server's class.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import socket
import tempfile
import threading
import typing as t
import unittest
import urllib.error
import urllib.request
from unittest import mock

import sqlalchemy as sa
from flask import Flask, jsonify
from sqlalchemy.orm import Session

from tests.admin import assert_no_leftover_rows, leftover_rows, own_connection
from tests.apps import committing_migrated as migrated
from tests.apps import notes, shop
from tests.apps.shop import ShopCase
from tests.matrix import BackendUnderTest, OuterCase, bind_url, generate_per_backend, require
from tests.running import run_into, transcript
from transactional_testcase import ConfigurationError, IsolationError
from transactional_testcase.committing import CommittingTestCase, LiveServerTestCase
from transactional_testcase.provisioning import worker_url
from transactional_testcase.state import ClassState

if t.TYPE_CHECKING:  # the mixins below are combined with a test case class
    _Case = CommittingTestCase
    _LiveCase = LiveServerTestCase
    _TestCase = unittest.TestCase
else:
    _Case = _LiveCase = _TestCase = object

Customer = shop.Customer
AuditEntry = shop.AuditEntry
db = shop.db

#: Generous upper bounds: only a hang reaches them.
THREAD_TIMEOUT = 30.0
HTTP_TIMEOUT = 30.0


# -- helpers -------------------------------------------------------------------------------


def count_rows(url: str, table: str) -> int:
    """Rows of ``table`` seen through a connection of our own (not the app's engines)."""
    with own_connection(url) as conn:
        quoted = conn.dialect.identifier_preparer.quote(table)
        return int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {quoted}")).scalar_one())


def engine_url(case: CommittingTestCase, key: str | None = None) -> str:
    """The URL a class's engine really uses (a parallel worker's suffix included)."""
    return case.db.engines[key].url.render_as_string(hide_password=False)


def customer_ids() -> list[int]:
    return list(db.session.scalars(sa.select(Customer.id).order_by(Customer.id)))


def add_customers(*emails: str) -> list[int]:
    db.session.add_all([Customer(email=e) for e in emails])
    db.session.commit()
    return customer_ids()


def http(url: str, payload: t.Any = None) -> tuple[int, t.Any]:
    """GET ``url``, or POST ``payload`` as JSON; the status and the decoded JSON body."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
        return response.status, json.loads(response.read())


def _whoami() -> t.Any:
    """Which thread serves the request, and which session ``db.session`` is there."""
    return jsonify(thread=threading.get_ident(), session=id(db.session()))


# -- the backend matrix for committing classes ----------------------------------------------


class BackendUrls(_Case):
    """Database URLs of one backend for committing classes: names of their own.

    Other test modules' transactional classes use ``tt_<driver>_test``; these
    classes empty tables with TRUNCATE, so they keep to ``tt_committing_*``.
    """

    backend: t.ClassVar[BackendUnderTest]
    database: t.ClassVar[str] = "committing"

    @classmethod
    def get_database_url(cls) -> str:
        return bind_url(cls.backend, cls.database)

    @classmethod
    def bind_url(cls, name: str) -> str:
        return bind_url(cls.backend, name)


class BackendChecks(BackendUrls):
    """Skips unreachable backends; checks for rows before each test and after the class."""

    checked_urls: t.ClassVar[list[str]] = []

    @classmethod
    def setUpClass(cls) -> None:
        require(cls.backend.name)
        super().setUpClass()
        cls.checked_urls = [e.url.render_as_string(hide_password=False) for e in cls.db.engines.values()]

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        assert_no_leftover_rows(cls.__name__, cls.checked_urls)

    def setUp(self) -> None:
        super().setUp()
        for url in self.checked_urls:
            # Tables a previous test committed to must be empty again.
            self.assertEqual(leftover_rows(url), {}, f"rows left in {url} before {self}")


def committing_on_all_backends(base: type[CommittingTestCase]) -> t.Callable[[type], type]:
    """Like ``tests.matrix.on_all_backends``, on ``base`` (a committing test case class)."""

    return lambda mixin: generate_per_backend(mixin, BackendChecks, base)


class ShopCommitting(ShopCase, _Case):  # type: ignore[misc]
    """The shop app (default + ``audit`` bind) on the committing databases."""

    @classmethod
    def get_app_config(cls) -> dict[str, t.Any]:
        config = super().get_app_config()
        config["SQLALCHEMY_BINDS"] = {"audit": bind_url(cls.backend, "committing_audit")}  # type: ignore[attr-defined]
        return config


# -- committing for real, emptied after -----------------------------------------------------


@committing_on_all_backends(CommittingTestCase)
class CommitsForReal(ShopCommitting):
    """Real commits on both databases; ids start at 1 in every test."""

    def test_a_commit_is_visible_to_another_connection(self) -> None:
        shop.session.add_all([Customer(email="a@example.com"), AuditEntry(message="hello")])
        shop.session.commit()
        # Not a savepoint of some test transaction: an independent connection sees it.
        self.assertEqual(count_rows(engine_url(self), "customers"), 1)
        self.assertEqual(count_rows(engine_url(self, "audit"), "audit_entries"), 1)
        self.assertEqual(customer_ids(), [1])
        self.assertEqual(db.session.scalars(sa.select(AuditEntry.id)).all(), [1])

    def test_b_rolled_back_inserts_still_move_the_counter(self) -> None:
        first = Customer(email="gone@example.com")
        db.session.add(first)
        db.session.flush()
        self.assertEqual(first.id, 1)
        db.session.rollback()
        second = Customer(email="gone-too@example.com")
        db.session.add(second)
        db.session.flush()
        # PostgreSQL sequences and AUTO_INCREMENT are not transactional; SQLite's
        # rowids are. Either way the table is empty after the rollback.
        self.assertEqual(second.id, 1 if self.backend.name == "sqlite" else 2)
        db.session.rollback()
        self.assertEqual(count_rows(engine_url(self), "customers"), 0)

    def test_c_ids_restart_at_1(self) -> None:
        # Follows a test that left only a moved counter behind.
        self.assertEqual(add_customers("a@example.com", "b@example.com", "c@example.com"), [1, 2, 3])
        self.assertEqual(count_rows(engine_url(self), "customers"), 3)

    def test_d_a_thread_with_its_own_app_context_writes(self) -> None:
        # Only the thread writes: the cleanup must notice writes from other threads.
        # The sessions themselves, not their ids: once the thread's context
        # ended, its session could be freed and its id given to another.
        sessions: list[Session] = []

        def work() -> None:
            # A failure here is printed by threading's excepthook; the asserts below catch it.
            with self.app.app_context():
                db.session.add_all([Customer(email="t@example.com"), AuditEntry(message="thread")])
                db.session.commit()
                sessions.append(db.session())

        thread = threading.Thread(target=work, name="committing-test-writer")
        thread.start()
        thread.join(THREAD_TIMEOUT)
        self.assertFalse(thread.is_alive(), "the writer thread hung")
        self.assertEqual(len(sessions), 1, "the writer thread failed")
        self.assertIsNot(sessions[0], db.session(), "the thread had a session of its own")
        self.assertEqual(customer_ids(), [1])
        self.assertEqual(count_rows(engine_url(self, "audit"), "audit_entries"), 1)

    def test_e_ids_restart_at_1_after_the_thread(self) -> None:
        self.assertEqual(add_customers("e@example.com"), [1])

    def test_f_test_client_request_and_engine_commit(self) -> None:
        response = self.client.post("/customers/raw", json={"email": "raw@example.com"})
        self.assertEqual(response.status_code, 201, response.get_data(as_text=True))
        with db.engines["audit"].begin() as conn:
            conn.execute(sa.insert(AuditEntry.__table__).values(message="core"))  # type: ignore[arg-type]
        self.assertEqual(count_rows(engine_url(self), "customers"), 1)
        self.assertEqual(count_rows(engine_url(self, "audit"), "audit_entries"), 1)
        self.assertEqual(customer_ids(), [1])

    def inner_class(self, name: str, attrs: dict[str, t.Any]) -> type[CommittingTestCase]:
        """A committing class on this class's databases, to be run from a test."""
        return type(
            f"{name}_{self.backend.name}",
            (ShopCommitting, BackendUrls, CommittingTestCase),
            {"backend": self.backend, "__module__": __name__, **attrs},
        )

    def test_g_cleanup_runs_after_a_failing_test(self) -> None:
        seen: list[tuple[int, int]] = []

        def test_commits_then_fails(case: CommittingTestCase) -> None:
            add_customers("f@example.com")
            shop.session.add(AuditEntry(message="before failing"))
            shop.session.commit()
            seen.append(
                (
                    count_rows(engine_url(case), "customers"),
                    count_rows(engine_url(case, "audit"), "audit_entries"),
                )
            )
            case.fail("deliberate failure")

        inner = self.inner_class("FailingCommitter", {"test_commits_then_fails": test_commits_then_fails})
        with self.assertLogs("transactional_testcase.committing", logging.DEBUG) as logs:
            result = run_into(inner)
        self.assertEqual(
            (result.testsRun, len(result.failures), len(result.errors)), (1, 1, 0), transcript(result)
        )
        self.assertIn("deliberate failure", result.failures[0][1])
        self.assertEqual(seen, [(1, 1)], "the failing test's rows were committed")
        emptied = [r.getMessage() for r in logs.records if "test_commits_then_fails" in r.getMessage()]
        self.assertEqual(len(emptied), 2, logs.output)  # the default and the audit database
        self.assertTrue(
            any("customers" in m for m in emptied) and any("audit_entries" in m for m in emptied), emptied
        )
        self.assertEqual(leftover_rows(engine_url(self)), {})
        self.assertEqual(leftover_rows(engine_url(self, "audit")), {})

    def test_h_a_test_that_only_reads_costs_no_cleanup(self) -> None:
        def test_1_reads(case: CommittingTestCase) -> None:
            case.assertEqual(shop.count(Customer), 0)

        def test_2_writes(case: CommittingTestCase) -> None:
            case.assertEqual(add_customers("w@example.com"), [1])

        inner = self.inner_class(
            "ReadThenWrite", {"test_1_reads": test_1_reads, "test_2_writes": test_2_writes}
        )
        with mock.patch.object(
            ClassState, "empty_tables", autospec=True, side_effect=ClassState.empty_tables
        ) as empty:
            result = run_into(inner)
        self.assertTrue(result.wasSuccessful(), transcript(result))
        self.assertEqual(result.testsRun, 2)
        whens = [c.args[2] for c in empty.call_args_list]
        self.assertEqual(len(whens), 2, whens)
        self.assertTrue(whens[0].endswith(".setUpClass"), whens)  # start from empty tables
        self.assertTrue(whens[1].endswith(".test_2_writes"), whens)  # test_1_reads: nothing
        self.assertEqual(leftover_rows(engine_url(self)), {})


# -- migrations: alembic_version is kept, unmapped tables and sequences are reset -----------


class MigratedCommitting(_Case):
    """The migrated app: ``tickets`` (a model) and ``legacy_log`` (no model)."""

    database = "committing_mig"
    alembic_config = migrated.MIGRATIONS

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return migrated.create_app(config)


@committing_on_all_backends(CommittingTestCase)
class KeepsAlembicVersion(MigratedCommitting):
    def _write_and_check(self) -> None:
        session = migrated.db.session
        version = session.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        self.assertEqual(version, [migrated.HEAD])
        ticket = migrated.Ticket(title="first")
        session.add(ticket)
        session.execute(sa.text("INSERT INTO legacy_log (message) VALUES ('unmapped')"))
        session.commit()
        self.assertEqual(ticket.id, 1)  # an IDENTITY column on PostgreSQL
        # AUTOINCREMENT on SQLite: sqlite_sequence was reset too.
        self.assertEqual(session.execute(sa.text("SELECT id FROM legacy_log")).scalars().all(), [1])
        url = engine_url(self)
        self.assertEqual(count_rows(url, "legacy_log"), 1)
        self.assertEqual(count_rows(url, "alembic_version"), 1)
        if self.backend.name in ("psycopg2", "psycopg"):
            # legacy_log.number comes from a sequence no column owns.
            numbers = session.execute(sa.text("SELECT number FROM legacy_log")).scalars().all()
            self.assertEqual(numbers, [1])

    def test_a_write_everywhere(self) -> None:
        self._write_and_check()

    def test_b_write_everywhere_again(self) -> None:
        self._write_and_check()


# -- writes the statement monitor cannot see ------------------------------------------------


def _raw_insert_customer(email: str) -> None:
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        marker = "?" if db.engine.dialect.paramstyle == "qmark" else "%s"
        cursor.execute(f"INSERT INTO customers (email) VALUES ({marker})", (email,))
        cursor.close()
        raw.commit()
    finally:
        raw.close()


@committing_on_all_backends(CommittingTestCase)
class RawWritesWithAlwaysEmptyTables(ShopCommitting):
    """Writes through a DBAPI connection: only ``always_empty_tables`` catches them."""

    always_empty_tables = True

    def test_a_raw_write(self) -> None:
        _raw_insert_customer("raw-a@example.com")
        self.assertEqual(count_rows(engine_url(self), "customers"), 1)

    def test_b_raw_write(self) -> None:
        _raw_insert_customer("raw-b@example.com")
        self.assertEqual(count_rows(engine_url(self), "customers"), 1)


class RawWritesControl(unittest.TestCase):
    """Without ``always_empty_tables`` a raw DBAPI write goes unnoticed (SQLite, a throwaway file)."""

    def test_raw_write_is_left_behind_without_always_empty_tables(self) -> None:
        folder = tempfile.mkdtemp(prefix="tt-committing-")
        self.addCleanup(shutil.rmtree, folder, True)
        url = "sqlite:///" + os.path.join(folder, "raw_control_test.db")

        def test_1_raw_write(case: CommittingTestCase) -> None:
            _raw_insert_customer("raw@example.com")

        def test_2_is_empty(case: CommittingTestCase) -> None:
            case.assertEqual(shop.count(Customer), 0)

        def make(flag: bool) -> type[CommittingTestCase]:
            return type(
                f"RawControl_{flag}",
                (ShopCase, CommittingTestCase),
                {
                    "database_url": url,
                    "get_app_config": classmethod(_sqlite_shop_config(url, folder)),
                    "always_empty_tables": flag,
                    "test_1_raw_write": test_1_raw_write,
                    "test_2_is_empty": test_2_is_empty,
                    "__module__": __name__,
                },
            )

        unseen = run_into(make(False))
        self.assertEqual(
            [f[0].id().rpartition(".")[2] for f in unseen.failures], ["test_2_is_empty"], transcript(unseen)
        )
        seen = run_into(make(True))
        self.assertTrue(seen.wasSuccessful(), transcript(seen))
        self.assertEqual(leftover_rows(worker_url(url).render_as_string()), {})


def _sqlite_shop_config(url: str, folder: str) -> t.Callable[[type], dict[str, t.Any]]:
    def get_app_config(cls: type) -> dict[str, t.Any]:
        return {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_BINDS": {"audit": "sqlite:///" + os.path.join(folder, "raw_control_audit_test.db")},
        }

    return get_app_config


# -- a connection left open: an error, not a hang -------------------------------------------


class LeakedConnection(_TestCase):
    """A test that leaves a transaction open fails after ``lock_timeout``, on every backend."""

    backend: t.ClassVar[BackendUnderTest]

    def inner(self, name: str, test: t.Callable[[CommittingTestCase], None]) -> type[CommittingTestCase]:
        return type(
            f"{name}_{self.backend.name}",
            (BackendUrls, CommittingTestCase),
            {
                "backend": self.backend,
                "database": "committing_lock",
                "alembic_config": False,
                "lock_timeout": 0.5,
                "create_app": classmethod(lambda cls, config: notes.create_app(config)),
                f"test_{name}": test,
                "__module__": __name__,
            },
        )

    def test_leaked_transaction_fails_the_test_and_the_next_class_recovers(self) -> None:
        leaks: list[sa.Connection] = []
        self.addCleanup(lambda: [c.close() for c in leaks])

        def leak(case: CommittingTestCase) -> None:
            notes.db.session.add(notes.Note(text="written"))
            notes.db.session.commit()
            conn = notes.db.engine.connect()
            leaks.append(conn)
            conn.execute(sa.select(notes.Note.id)).all()  # a transaction holding a read lock

        result = run_into(self.inner("leak", leak))
        self.assertEqual(
            (result.testsRun, len(result.failures), len(result.errors)), (1, 0, 1), transcript(result)
        )
        message = result.errors[0][1]
        self.assertIn(IsolationError.__name__, message)
        self.assertIn("1 connection(s) of this engine are still checked out", message)
        url = worker_url(bind_url(self.backend, "committing_lock")).render_as_string(hide_password=False)
        self.assertEqual(count_rows(url, "notes"), 1, "the cleanup could not empty the table")
        for conn in leaks:
            # Its engine was disposed with the inner class: close the DBAPI connection
            # itself rather than check it in to a pool nobody will close.
            conn.invalidate()
            conn.close()

        def starts_clean(case: CommittingTestCase) -> None:
            case.assertEqual(notes.db.session.scalars(sa.select(notes.Note)).all(), [])
            note = notes.Note(text="fresh")
            notes.db.session.add(note)
            notes.db.session.commit()
            case.assertEqual(note.id, 1)

        again = run_into(self.inner("starts_clean", starts_clean))
        self.assertTrue(again.wasSuccessful(), transcript(again))
        self.assertEqual(leftover_rows(url), {})


generate_per_backend(LeakedConnection, OuterCase)


# -- setUpTestData is refused ---------------------------------------------------------------


class NoSetUpTestData(unittest.TestCase):
    def test_defining_setUpTestData_is_a_configuration_error(self) -> None:
        inner = type(
            "WithClassData",
            (ShopCase, CommittingTestCase),
            {
                "setUpTestData": classmethod(lambda cls: None),
                "test_never_runs": lambda self: None,
                "__module__": __name__,
            },
        )
        result = run_into(inner)
        self.assertEqual(len(result.errors), 1, transcript(result))
        self.assertIn(ConfigurationError.__name__, result.errors[0][1])
        self.assertIn("Create the data in setUp", result.errors[0][1])


class DiagnosticsOnCommittingClasses(unittest.TestCase):
    """``TRANSACTIONAL_TESTCASE_DIAGNOSTICS=1``: a committing test's COMMITs are logged, not flagged."""

    def test_commits_are_not_reported_as_escaping(self) -> None:
        folder = tempfile.mkdtemp(prefix="tt-committing-")
        self.addCleanup(shutil.rmtree, folder, True)
        url = "sqlite:///" + os.path.join(folder, "diagnostics_test.db")

        def test_commits(case: CommittingTestCase) -> None:
            case.assertEqual(add_customers("d@example.com"), [1])

        inner = type(
            "DiagnosedCommitter",
            (ShopCase, CommittingTestCase),
            {
                "get_app_config": classmethod(_sqlite_shop_config(url, folder)),
                "test_commits": test_commits,
                "__module__": __name__,
            },
        )
        with (
            mock.patch.dict(os.environ, {"TRANSACTIONAL_TESTCASE_DIAGNOSTICS": "1"}),
            self.assertLogs("transactional_testcase.diagnostics", logging.INFO) as logs,
        ):
            result = run_into(inner)
        self.assertTrue(result.wasSuccessful(), transcript(result))
        lines = [r.getMessage() for r in logs.records if "test_commits" in r.getMessage()]
        self.assertTrue(any("COMMIT" in line for line in lines), logs.output)
        self.assertEqual([r.getMessage() for r in logs.records if r.levelno >= logging.WARNING], [])


# -- the live server -----------------------------------------------------------------------


class LiveShop(ShopCommitting):
    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        app = shop.create_app(config)
        app.add_url_rule("/whoami", view_func=_whoami)
        return app


class LiveShopTests(_LiveCase):
    """What a browser test needs: the server sees the test's commits, and the other way round."""

    def test_a_a_request_sees_what_the_test_committed(self) -> None:
        self.assertEqual(
            add_customers("a@example.com", "b@example.com"), [1, 2]
        )  # commit ends the transaction
        status, body = http(self.live_server_url + "/customers/count")
        self.assertEqual((status, body), (200, {"count": 2}))

    def test_b_the_test_sees_what_a_request_committed(self) -> None:
        status, body = http(self.live_server_url + "/customers", {"email": "posted@example.com"})
        self.assertEqual((status, body), (201, {"count": 1}))
        self.assertEqual(db.session.scalars(sa.select(Customer.email)).all(), ["posted@example.com"])
        self.assertEqual(customer_ids(), [1])

    def test_c_requests_run_in_threads_with_sessions_of_their_own(self) -> None:
        # Held while the request runs: two live objects never share an id(),
        # whereas one taken afterwards may reuse the freed request session's.
        mine = db.session()
        status, body = http(self.live_server_url + "/whoami")
        self.assertEqual(status, 200)
        self.assertNotEqual(body["thread"], threading.get_ident())
        self.assertNotEqual(body["session"], id(mine))


@committing_on_all_backends(LiveServerTestCase)
class LiveServer(LiveShopTests, LiveShop):
    def test_d_url_is_local_with_the_chosen_port(self) -> None:
        host, _, port = self.live_server_url.removeprefix("http://").partition(":")
        self.assertEqual(host, "127.0.0.1")
        self.assertGreater(int(port), 0)


class LiveServerInMemorySQLite(LiveShopTests, LiveShop, LiveServerTestCase):
    """In-memory SQLite: Flask-SQLAlchemy's StaticPool shares one connection with the server.

    It works as long as the test and the server take turns (a request at a
    time, the test's transaction ended before it), which is what these tests do.
    """

    database_url = "sqlite://"

    @classmethod
    def get_app_config(cls) -> dict[str, t.Any]:
        return {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": "sqlite://",
            "SQLALCHEMY_BINDS": {"audit": "sqlite://"},
        }

    def setUp(self) -> None:
        super().setUp()
        self.assertEqual((shop.count(Customer), shop.count(AuditEntry)), (0, 0))
        db.session.rollback()  # end the read: the connection is the server's too


class LiveServerLifecycle(unittest.TestCase):
    """The server runs for the class and is gone after it (SQLite, a throwaway file)."""

    def test_server_stops_after_the_class(self) -> None:
        folder = tempfile.mkdtemp(prefix="tt-live-")
        self.addCleanup(shutil.rmtree, folder, True)
        url = "sqlite:///" + os.path.join(folder, "live_lifecycle_test.db")
        served: list[tuple[str, int]] = []

        def test_request(case: LiveServerTestCase) -> None:
            served.append((case.live_server_url, http(case.live_server_url + "/customers/count")[0]))

        inner = type(
            "Lifecycle",
            (LiveShop, LiveServerTestCase),
            {
                "get_app_config": classmethod(_sqlite_shop_config(url, folder)),
                "test_request": test_request,
                "__module__": __name__,
            },
        )
        result = run_into(inner)
        self.assertTrue(result.wasSuccessful(), transcript(result))
        self.assertEqual(len(served), 1)
        live_url, status = served[0]
        self.assertEqual(status, 200)
        port = int(live_url.rpartition(":")[2])
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT).close()
        with self.assertRaises(urllib.error.URLError):
            http(live_url + "/customers/count")
        self.assertEqual(
            [th.name for th in threading.enumerate() if th.name.startswith("live-server-Lifecycle")], []
        )

    def test_a_port_in_use_is_a_configuration_error(self) -> None:
        folder = tempfile.mkdtemp(prefix="tt-live-")
        self.addCleanup(shutil.rmtree, folder, True)
        url = "sqlite:///" + os.path.join(folder, "live_port_test.db")
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        inner = type(
            "PortTaken",
            (LiveShop, LiveServerTestCase),
            {
                "get_app_config": classmethod(_sqlite_shop_config(url, folder)),
                "live_server_port": taken.getsockname()[1],
                "test_never_runs": lambda self: None,
                "__module__": __name__,
            },
        )
        with contextlib.redirect_stderr(io.StringIO()):  # werkzeug prints its own complaint
            result = run_into(inner)
        self.assertEqual(len(result.errors), 1, transcript(result))
        self.assertIn(ConfigurationError.__name__, result.errors[0][1])
        self.assertIn("live_server_port = 0", result.errors[0][1])
