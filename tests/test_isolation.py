"""Per-test isolation, point by point, on every backend.

Each generated class (``<Mixin>_<backend>``) is checked after it ran by an
independent connection (``BackendTestCase``): whatever its tests committed, no
row may be left. The tests themselves assert that what the code under test did
was visible while the test ran, so the rollback is the library's doing and not
a no-op.

The ``ControlledIsolation_<backend>`` classes at the end (SQLite, one
PostgreSQL and one MariaDB driver) switch one mechanism off at a time on a
throwaway database and show what then breaks, and that the checks used here (a
later test expecting an empty table, the independent count of leftover rows,
the session-on-the-test-connection check) catch it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import typing as t
import unittest
from unittest import mock

import flask
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from tests.admin import leftover_rows
from tests.apps import isolation_app, shop
from tests.apps.isolation_app import IsolationCase
from tests.matrix import (
    BACKENDS,
    BackendUnderTest,
    OuterCase,
    generate_per_backend,
    on_all_backends,
    selected_backends,
)
from tests.running import method_name, run_into, transcript
from transactional_testcase import IsolationError, TransactionalTestCase
from transactional_testcase import redirect as tt_redirect
from transactional_testcase.backends import SQLiteBackend, backend_for
from transactional_testcase.provisioning import worker_url
from transactional_testcase.transaction import OuterConnection

Customer = shop.Customer
AuditEntry = shop.AuditEntry
db = shop.db

#: Generous upper bound for joining a background thread: only a hang reaches it.
THREAD_TIMEOUT = 30.0


def customers() -> int:
    return shop.count(Customer)


def audits() -> int:
    return shop.count(AuditEntry)


def emails() -> list[str]:
    return sorted(db.session.scalars(sa.select(Customer.email)))


def insert_customer(email: str) -> sa.Insert:
    return sa.insert(Customer.__table__).values(email=email)


# -- the session -----------------------------------------------------------------------


@on_all_backends
class SessionIsolation(IsolationCase):
    """``db.session``: everything the code under test does with it rolls back."""

    def test_commit(self) -> None:
        db.session.add(Customer(email="a@example.com"))
        db.session.commit()
        self.assertEqual(emails(), ["a@example.com"])

    def test_rollback_discards_pending_work_and_keeps_committed(self) -> None:
        db.session.add(Customer(email="kept@example.com"))
        db.session.commit()
        db.session.add(Customer(email="dropped@example.com"))
        db.session.flush()
        self.assertEqual(customers(), 2)
        db.session.rollback()
        self.assertEqual(emails(), ["kept@example.com"])

    def test_begin_nested_committed(self) -> None:
        with db.session.begin_nested():
            db.session.add(Customer(email="nested@example.com"))
        self.assertEqual(customers(), 1)
        db.session.commit()
        self.assertEqual(emails(), ["nested@example.com"])

    def test_begin_nested_rolled_back(self) -> None:
        db.session.add(Customer(email="outer@example.com"))
        db.session.commit()
        with self.assertRaises(KeyError), db.session.begin_nested():
            db.session.add(Customer(email="inner@example.com"))
            db.session.flush()
            self.assertEqual(customers(), 2)
            raise KeyError("abandon the savepoint")
        self.assertEqual(emails(), ["outer@example.com"])
        db.session.commit()
        self.assertEqual(emails(), ["outer@example.com"])

    def test_flush_without_commit_is_visible(self) -> None:
        db.session.add(Customer(email="flushed@example.com"))
        db.session.flush()
        self.assertEqual(emails(), ["flushed@example.com"])
        with db.engine.connect() as conn:
            self.assertEqual(conn.scalar(sa.select(sa.func.count()).select_from(Customer)), 1)

    def test_integrity_error_recovered_with_rollback(self) -> None:
        # On PostgreSQL the failed INSERT aborts the transaction: only a
        # rollback to the session's savepoint makes the connection usable.
        db.session.add(Customer(email="dup@example.com"))
        db.session.commit()
        db.session.add(Customer(email="dup@example.com"))
        with self.assertRaises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()
        db.session.add(Customer(email="after@example.com"))
        db.session.commit()
        self.assertEqual(emails(), ["after@example.com", "dup@example.com"])

    @shop.flask_sqlalchemy_only
    def test_remove_mid_test_then_more_work(self) -> None:
        first = shop.current_session()
        db.session.add(Customer(email="before@example.com"))
        db.session.commit()
        db.session.add(Customer(email="pending@example.com"))
        db.session.flush()
        shop.end_session()
        self.assertIsNot(shop.current_session(), first)
        self.assertEqual(emails(), ["before@example.com"])  # the flushed row went with the session
        db.session.add(Customer(email="after@example.com"))
        db.session.commit()
        self.assertEqual(emails(), ["after@example.com", "before@example.com"])

    def test_close_mid_test_then_more_work(self) -> None:
        customer = Customer(email="before@example.com")
        db.session.add(customer)
        db.session.commit()
        db.session.close()
        self.assertNotIn(customer, db.session)
        self.assertEqual(emails(), ["before@example.com"])
        db.session.add(Customer(email="after@example.com"))
        db.session.commit()
        self.assertEqual(emails(), ["after@example.com", "before@example.com"])

    def test_raw_sql_through_the_session(self) -> None:
        db.session.execute(
            sa.text("INSERT INTO customers (email) VALUES (:email)"), {"email": "raw@example.com"}
        )
        db.session.commit()
        self.assertEqual(
            db.session.execute(sa.text("SELECT email FROM customers")).scalars().all(), ["raw@example.com"]
        )

    def test_import_time_reference_is_the_test_session(self) -> None:
        self.assertIs(shop.current_session(), self.session)
        customer = Customer(email="import-time@example.com")
        shop.session.add(customer)
        self.assertIn(customer, self.session)
        shop.session.commit()
        self.assertEqual(emails(), ["import-time@example.com"])

    def test_session_is_bound_to_the_tests_connection(self) -> None:
        # The session is bound to the test's own Connection (one SAVEPOINT
        # level), not to one of the savepoint connections db.engine hands out.
        session_conn = db.session.connection()
        self.assertIsInstance(session_conn, Connection)
        self.assertNotIsInstance(session_conn, tt_redirect.NestedConnection)
        self.assertIn("customers", sa.inspect(session_conn).get_table_names())
        with db.engine.connect() as conn:
            self.assertIs(conn.connection.dbapi_connection, session_conn.connection.dbapi_connection)

    @shop.flask_sqlalchemy_only
    def test_model_query(self) -> None:
        db.session.add(Customer(email="query@example.com"))
        db.session.commit()
        found = Customer.query.filter_by(email="query@example.com").one()
        self.assertIn(found, self.session)
        self.assertIs(Customer.query.session, self.session)
        self.assertEqual(Customer.query.count(), 1)

    def test_listener_registered_at_import_time_fires(self) -> None:
        isolation_app.committed_sessions.clear()
        db.session.add(Customer(email="listened@example.com"))
        db.session.commit()
        self.assertEqual(list(isolation_app.committed_sessions), [id(self.session)])

    def test_listener_registered_in_the_test_fires(self) -> None:
        seen: list[Session] = []
        listen_target = db.session

        def record(session: Session, flush_context: t.Any) -> None:
            seen.append(session)

        event.listen(listen_target, "after_flush", record)
        self.addCleanup(event.remove, listen_target, "after_flush", record)
        db.session.add(Customer(email="flushed@example.com"))
        db.session.flush()
        self.assertEqual(seen, [self.session])


#: Where a test's first savepoint is its transaction's start: the server
#: backends (PostgreSQL's drivers show an untouched transaction, MySQL's
#: statements are counted); SQLite, in-process, spares nothing.
SPARING_DRIVERS = {"psycopg2", "psycopg", "pymysql", "mysqlclient"}


@on_all_backends
class SparedSavepoints(IsolationCase):
    """The session's first savepoint in an untouched transaction sends nothing, and loses nothing.

    Where nothing was sent in the test's transaction yet, the savepoint the
    session begins is the transaction's start: no SAVEPOINT, no RELEASE, and
    its rollback is a ROLLBACK of the whole transaction. Every later
    savepoint is real.
    """

    def sent(self) -> list[str]:
        """The first word of every statement sent on the test's connection from now on."""
        conn = db.session.get_bind()  # the test's connection; begins nothing
        sent: list[str] = []

        def record(conn: Connection, cursor: t.Any, statement: str, *args: t.Any) -> None:
            sent.append(statement.split()[0].upper())

        event.listen(conn, "before_cursor_execute", record)
        self.addCleanup(event.remove, conn, "before_cursor_execute", record)
        return sent

    @property
    def sparing(self) -> bool:
        return self.backend.name in SPARING_DRIVERS

    def test_a_commit_sends_no_savepoint_on_an_untouched_transaction(self) -> None:
        sent = self.sent()
        db.session.add(Customer(email="a@example.com"))
        db.session.commit()
        self.assertEqual(
            [s for s in sent if s in ("SAVEPOINT", "RELEASE")],
            [] if self.sparing else ["SAVEPOINT", "RELEASE"],
        )
        self.assertIn("INSERT", sent)
        self.assertEqual(emails(), ["a@example.com"])

    def test_b_rolling_back_the_first_savepoint_rolls_back_everything_since(self) -> None:
        db.session.add(Customer(email="gone@example.com"))
        db.session.flush()
        self.assertEqual(emails(), ["gone@example.com"])
        db.session.rollback()
        self.assertEqual(emails(), [])
        db.session.add(Customer(email="kept@example.com"))
        db.session.commit()
        self.assertEqual(emails(), ["kept@example.com"])

    def test_c_a_savepoint_after_a_write_is_real(self) -> None:
        db.session.add(Customer(email="first@example.com"))
        db.session.commit()
        sent = self.sent()
        db.session.add(Customer(email="second@example.com"))
        db.session.flush()
        db.session.rollback()
        self.assertEqual([s for s in sent if s in ("SAVEPOINT", "ROLLBACK")], ["SAVEPOINT", "ROLLBACK"])
        self.assertEqual(emails(), ["first@example.com"])

    def test_c_after_rows_returned_by_an_insert(self) -> None:
        # Several rows in one INSERT (RETURNING their ids on PostgreSQL and
        # MariaDB): a statement that returns rows must count as a write too.
        db.session.add_all([Customer(email=f"{n}@example.com") for n in ("one", "two", "three")])
        db.session.commit()
        db.session.add(Customer(email="undone@example.com"))
        db.session.flush()
        db.session.rollback()
        self.assertEqual(emails(), ["one@example.com", "three@example.com", "two@example.com"])

    def test_d_control_an_untouched_check_that_lies_loses_a_commit(self) -> None:
        # What test_c relies on: were the transaction taken for untouched
        # after a write, the next savepoint would be its start, and rolling
        # back to it would undo the commit (inside the test's transaction
        # still: nothing leaks). SQLite never asks (it spares nothing).
        with mock.patch.object(OuterConnection, "_tt_untouched", lambda self: True):
            db.session.add(Customer(email="first@example.com"))
            db.session.commit()
            db.session.add(Customer(email="second@example.com"))
            db.session.flush()
            db.session.rollback()
            self.assertEqual(emails(), [] if self.sparing else ["first@example.com"])

    def test_e_savepoints_nested_in_the_first(self) -> None:
        db.session.add(Customer(email="outer@example.com"))
        db.session.flush()
        with db.session.begin_nested():
            db.session.add(Customer(email="inner@example.com"))
        nested = db.session.begin_nested()
        db.session.add(Customer(email="undone@example.com"))
        db.session.flush()
        nested.rollback()
        self.assertEqual(emails(), ["inner@example.com", "outer@example.com"])
        db.session.rollback()
        self.assertEqual(emails(), [])

    def test_f_recovering_from_an_integrity_error_in_the_first(self) -> None:
        db.session.add_all([Customer(email="dup@example.com"), Customer(email="dup@example.com")])
        with self.assertRaises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()
        db.session.add(Customer(email="after@example.com"))
        db.session.commit()
        self.assertEqual(emails(), ["after@example.com"])

    def test_g_an_engine_connection_first(self) -> None:
        with db.engine.connect() as conn:
            conn.execute(insert_customer("rolled-back@example.com"))
            conn.rollback()
            conn.execute(insert_customer("closed@example.com"))
        self.assertEqual(emails(), [])
        db.session.commit()  # else the direct commit below lands in the session's savepoint
        with db.engine.begin() as conn:
            conn.execute(insert_customer("direct@example.com"))
        db.session.add(Customer(email="session@example.com"))
        db.session.rollback()
        self.assertEqual(emails(), ["direct@example.com"])

    def test_z_nothing_is_left(self) -> None:
        self.assertEqual(emails(), [])


CLASS_EMAILS = ["one@example.com", "three@example.com", "two@example.com"]


@on_all_backends
class ClassDataSavepoints(IsolationCase):
    """Each test runs in one savepoint of the class transaction, taken again by the next test.

    The class data is written in one INSERT that returns rows: the class
    transaction is touched, so the test's savepoint is a real one, and
    rolling a test back leaves the class data there. Rolled back to, that
    savepoint is still open and marks the class data again: the next test
    starts in it, whatever the previous one left open.
    """

    first_savepoint: t.ClassVar[sa.engine.NestedTransaction | None] = None

    @classmethod
    def setUpTestData(cls) -> None:
        db.session.add_all([Customer(email=f"{n}@example.com") for n in ("one", "two", "three")])

    def savepoint(self) -> sa.engine.NestedTransaction | None:
        """The savepoint the test runs in (the test connection's innermost; begins nothing)."""
        return db.session.get_bind().get_nested_transaction()

    def test_a_session_rollback_keeps_the_class_data(self) -> None:
        type(self).first_savepoint = self.savepoint()
        self.assertIsNotNone(self.first_savepoint)
        db.session.add(Customer(email="undone@example.com"))
        db.session.flush()
        db.session.rollback()
        self.assertEqual(emails(), CLASS_EMAILS)
        db.session.add(Customer(email="four@example.com"))
        db.session.commit()

    def test_b_the_next_test_starts_from_the_class_data_in_the_same_savepoint(self) -> None:
        self.assertIs(self.savepoint(), self.first_savepoint)
        self.assertEqual(emails(), CLASS_EMAILS)

    def test_c_leaves_savepoints_open(self) -> None:
        db.session.begin_nested()
        db.session.add(Customer(email="nested-open@example.com"))
        db.session.flush()
        conn = db.engine.connect()  # never closed
        conn.execute(insert_customer("direct-open@example.com"))
        self.assertEqual(len(emails()), 5)

    def test_d_starts_from_the_class_data_again(self) -> None:
        self.assertIs(self.savepoint(), self.first_savepoint)
        self.assertEqual(emails(), CLASS_EMAILS)


# -- db.engine -------------------------------------------------------------------------


@on_all_backends
class EngineIsolation(IsolationCase):
    """App code using ``db.engine`` directly stays inside the test's transaction."""

    def test_connect_execute_commit(self) -> None:
        with db.engine.connect() as conn:
            conn.execute(insert_customer("engine@example.com"))
            conn.commit()
        self.assertEqual(emails(), ["engine@example.com"])

    def test_connect_rollback_keeps_earlier_commit(self) -> None:
        with db.engine.connect() as conn:
            conn.execute(insert_customer("committed@example.com"))
            conn.commit()
            conn.execute(insert_customer("rolled-back@example.com"))
            self.assertEqual(conn.scalar(sa.select(sa.func.count()).select_from(Customer)), 2)
            conn.rollback()
            self.assertEqual(conn.scalar(sa.select(sa.func.count()).select_from(Customer)), 1)
        self.assertEqual(emails(), ["committed@example.com"])

    def test_connect_close_without_commit_discards(self) -> None:
        conn = db.engine.connect()
        conn.execute(insert_customer("uncommitted@example.com"))
        self.assertEqual(conn.scalar(sa.select(sa.func.count()).select_from(Customer)), 1)
        conn.close()
        self.assertEqual(customers(), 0)
        # the test's own work is unaffected
        db.session.add(Customer(email="after@example.com"))
        db.session.commit()
        self.assertEqual(emails(), ["after@example.com"])

    def test_begin_commits_on_success(self) -> None:
        with db.engine.begin() as conn:
            conn.execute(insert_customer("begin@example.com"))
        self.assertEqual(emails(), ["begin@example.com"])

    def test_begin_rolls_back_on_exception(self) -> None:
        with db.engine.begin() as conn:
            conn.execute(insert_customer("kept@example.com"))
        with self.assertRaises(LookupError), db.engine.begin() as conn:
            conn.execute(insert_customer("dropped@example.com"))
            raise LookupError("abort the block")
        self.assertEqual(emails(), ["kept@example.com"])

    def test_engine_sees_sessions_flushed_rows(self) -> None:
        db.session.add(Customer(email="flushed@example.com"))
        db.session.flush()
        with db.engine.connect() as conn:
            self.assertEqual(conn.scalars(sa.select(Customer.email)).all(), ["flushed@example.com"])

    def test_inspect_engine(self) -> None:
        self.assertEqual(sorted(sa.inspect(db.engine).get_table_names()), ["customers", "orders"])
        self.assertEqual(sa.inspect(shop.engine("audit")).get_table_names(), ["audit_entries"])
        columns = [c["name"] for c in sa.inspect(db.engine).get_columns("customers")]
        self.assertEqual(columns, ["id", "email"])

    def test_inspect_engine_has_table(self) -> None:
        # SQLAlchemy's documented public way to ask whether a table exists.
        inspector = sa.inspect(db.engine)
        self.assertTrue(inspector.has_table("customers"))
        self.assertFalse(inspector.has_table("no_such_table"))

    def test_inspect_engine_connection(self) -> None:
        with db.engine.connect() as conn:
            self.assertIn("customers", sa.inspect(conn).get_table_names())

    def test_reflect_table_with_engine(self) -> None:
        table = sa.Table("customers", sa.MetaData(), autoload_with=db.engine)
        self.assertEqual([c.name for c in table.columns], ["id", "email"])

    def test_url_and_dialect_pass_through(self) -> None:
        expected = make_url(self.app.config["SQLALCHEMY_DATABASE_URI"])
        url = db.engine.url  # Flask-SQLAlchemy may add query options (MySQL charset)
        self.assertEqual(
            (url.drivername, url.host, url.port, url.username, url.database),
            (expected.drivername, expected.host, expected.port, expected.username, expected.database),
        )
        self.assertEqual(
            db.engine.dialect.name,
            "mysql" if expected.get_backend_name() == "mariadb" else expected.get_backend_name(),
        )
        self.assertEqual(db.engine.dialect.driver, expected.get_driver_name())
        self.assertEqual(
            shop.engine("audit").url.database, make_url(shop.bind_url_in(self.app.config, "audit")).database
        )

    def test_audit_engine_begin_is_isolated(self) -> None:
        with shop.engine("audit").begin() as conn:
            conn.execute(sa.insert(AuditEntry.__table__).values(message="engine"))
        self.assertEqual(audits(), 1)


# -- test-client requests ----------------------------------------------------------------


@on_all_backends
class RequestIsolation(IsolationCase):
    """Requests and the test see each other's data; a failing request harms nothing."""

    def test_test_sees_requests_commit(self) -> None:
        response = self.client.post("/customers", json={"email": "request@example.com"})
        self.assertEqual(response.status_code, 201, response.get_data(as_text=True))
        self.assertEqual(response.get_json(), {"count": 1})
        self.assertEqual(emails(), ["request@example.com"])

    def test_request_sees_tests_flushed_data(self) -> None:
        db.session.add(Customer(email="flushed@example.com"))
        db.session.flush()
        self.assertEqual(self.client.get("/customers/count").get_json(), {"count": 1})

    def test_request_sees_tests_committed_data(self) -> None:
        db.session.add(Customer(email="committed@example.com"))
        db.session.commit()
        response = self.client.post("/customers", json={"email": "second@example.com"})
        self.assertEqual(response.get_json(), {"count": 2})
        self.assertEqual(emails(), ["committed@example.com", "second@example.com"])

    def test_failing_request_after_flush_leaves_tests_data(self) -> None:
        customer = Customer(email="test@example.com")
        db.session.add(customer)
        db.session.commit()
        response = self.client.post("/customers/fail", json={"email": "failed@example.com"})
        self.assertEqual(response.status_code, 500)
        self.assertIn(customer, db.session)
        self.assertEqual(customer.email, "test@example.com")
        self.assertIn("test@example.com", emails())
        db.session.add(Customer(email="after@example.com"))
        db.session.commit()
        self.assertIn("after@example.com", emails())

    def test_request_raising_after_flush_leaves_tests_data(self) -> None:
        # TESTING=True propagates the view's exception to the test.
        customer = Customer(email="test@example.com")
        db.session.add(customer)
        db.session.commit()
        with self.assertRaisesRegex(RuntimeError, "after flushing"):
            self.client.post("/customers/explode", json={"email": "exploded@example.com"})
        self.assertIn(customer, db.session)
        self.assertIn("test@example.com", emails())
        db.session.add(Customer(email="after@example.com"))
        db.session.commit()
        self.assertIn("after@example.com", emails())

    def test_request_500_without_propagation_leaves_tests_data(self) -> None:
        self.addCleanup(
            self.app.config.__setitem__, "PROPAGATE_EXCEPTIONS", self.app.config["PROPAGATE_EXCEPTIONS"]
        )
        self.app.config["PROPAGATE_EXCEPTIONS"] = False
        db.session.add(Customer(email="test@example.com"))
        db.session.commit()
        with self.assertLogs(self.app.logger, "ERROR") as logs:
            response = self.client.post("/customers/explode", json={"email": "exploded@example.com"})
        self.assertEqual(response.status_code, 500)
        self.assertIn("after flushing", "\n".join(logs.output))
        self.assertIn("test@example.com", emails())

    def test_request_integrity_error_409(self) -> None:
        # The request's IntegrityError and rollback (PostgreSQL: an aborted
        # transaction) must leave the test's committed data and a usable connection.
        customer = Customer(email="taken@example.com")
        db.session.add(customer)
        db.session.commit()
        response = self.client.post("/customers", json={"email": "taken@example.com"})
        self.assertEqual(response.status_code, 409)
        self.assertEqual(response.get_json(), {"error": "exists"})
        self.assertEqual(emails(), ["taken@example.com"])
        self.assertIn(customer, db.session)
        response = self.client.post("/customers", json={"email": "free@example.com"})
        self.assertEqual(response.status_code, 201)
        self.assertEqual(emails(), ["free@example.com", "taken@example.com"])

    def test_request_writing_through_engine_begin(self) -> None:
        response = self.client.post("/customers/raw", json={"email": "raw@example.com"})
        self.assertEqual(response.status_code, 201)
        self.assertEqual(response.get_json(), {"count": 1})
        self.assertEqual(emails(), ["raw@example.com"])

    def test_request_writes_audit_bind(self) -> None:
        response = self.client.post("/audit", json={"message": "hello"})
        self.assertEqual(response.get_json(), {"count": 1})
        self.assertEqual(db.session.scalars(sa.select(AuditEntry.message)).all(), ["hello"])


# -- Flask 3.2: a new app context (and session) per request ------------------------------------


@on_all_backends
class NewAppContextIsolation(IsolationCase):
    """A second app context gets its own session; its removal spares the test's."""

    def test_new_context_commit_is_seen_by_test(self) -> None:
        test_session = shop.current_session()
        with self.app.app_context():
            inner_session = shop.current_session()
            self.assertIsNot(inner_session, test_session)
            db.session.add(Customer(email="inner@example.com"))
            db.session.commit()
        self.assertIs(shop.current_session(), test_session)
        self.assertEqual(emails(), ["inner@example.com"])

    def test_new_context_remove_keeps_tests_session(self) -> None:
        loaded = Customer(email="loaded@example.com")
        db.session.add(loaded)
        db.session.commit()
        pending = Customer(email="pending@example.com")
        db.session.add(pending)
        db.session.flush()
        test_session = shop.current_session()
        with self.app.app_context():
            self.assertEqual(customers(), 2)  # sees the test's flushed row
            db.session.add(Customer(email="inner@example.com"))
            db.session.commit()
            shop.end_session()
        self.assertIs(shop.current_session(), test_session)
        self.assertIn(loaded, db.session)
        self.assertIn(pending, db.session)
        self.assertEqual(loaded.email, "loaded@example.com")
        db.session.commit()
        self.assertEqual(emails(), ["inner@example.com", "loaded@example.com", "pending@example.com"])

    def test_request_in_its_own_context(self) -> None:
        db.session.add(Customer(email="test@example.com"))
        db.session.flush()
        with self.app.app_context():
            response = self.client.post("/customers", json={"email": "request@example.com"})
            self.assertEqual(response.get_json(), {"count": 2})
        self.assertEqual(emails(), ["request@example.com", "test@example.com"])

    def test_failed_request_in_its_own_context_is_discarded(self) -> None:
        # With its own context the request's session is removed afterwards,
        # which rolls its flushed row back, and only that.
        customer = Customer(email="test@example.com")
        db.session.add(customer)
        db.session.commit()
        with self.app.app_context():
            response = self.client.post("/customers/fail", json={"email": "failed@example.com"})
            self.assertEqual(response.status_code, 500)
        self.assertEqual(emails(), ["test@example.com"])
        self.assertIn(customer, db.session)

    def test_integrity_error_in_its_own_context(self) -> None:
        db.session.add(Customer(email="taken@example.com"))
        db.session.commit()
        with self.app.app_context():
            response = self.client.post("/customers", json={"email": "taken@example.com"})
            self.assertEqual(response.status_code, 409)
        db.session.add(Customer(email="after@example.com"))
        db.session.commit()
        self.assertEqual(emails(), ["after@example.com", "taken@example.com"])


# -- threads ---------------------------------------------------------------------------------


@on_all_backends
class ThreadIsolation(IsolationCase):
    """Background threads with their own app context."""

    def join(self, thread: threading.Thread) -> None:
        thread.join(THREAD_TIMEOUT)
        self.assertFalse(thread.is_alive(), f"{thread.name} hung")

    def test_thread_removing_its_session_leaves_tests_session(self) -> None:
        loaded = Customer(email="loaded@example.com")
        db.session.add(loaded)
        db.session.commit()
        pending = Customer(email="pending@example.com")
        db.session.add(pending)
        db.session.flush()
        test_session = shop.current_session()
        mailer: isolation_app.Mailer = self.app.extensions["mailer"]
        self.join(mailer.send(self.app, "loaded@example.com", look_up_customer=False))
        self.assertEqual(mailer.errors, [])
        self.assertEqual(mailer.sent, ["loaded@example.com"])
        self.assertIs(shop.current_session(), test_session)
        self.assertIn(loaded, db.session)
        self.assertIn(pending, db.session)
        db.session.commit()
        self.assertEqual(emails(), ["loaded@example.com", "pending@example.com"])

    def test_request_starting_a_mailer_thread(self) -> None:
        mailer: isolation_app.Mailer = self.app.extensions["mailer"]
        response = self.client.post("/customers/welcome", json={"email": "welcome@example.com"})
        self.assertEqual(response.status_code, 201)
        for thread in mailer.threads:
            self.join(thread)
        self.assertEqual(mailer.errors, [])
        self.assertEqual(mailer.sent, ["welcome@example.com"])
        self.assertEqual(emails(), ["welcome@example.com"])

    def test_thread_querying_the_database_gets_isolation_error(self) -> None:
        db.session.add(Customer(email="test@example.com"))
        db.session.flush()
        mailer: isolation_app.Mailer = self.app.extensions["mailer"]
        thread = mailer.send(self.app, "test@example.com", look_up_customer=True)
        self.join(thread)
        self.assertEqual(mailer.sent, [])
        self.assertEqual(len(mailer.errors), 1, mailer.errors)
        error = mailer.errors[0]
        self.assertIsInstance(error, IsolationError)
        self.assertIn(thread.name, str(error))
        self.assertIn("thread", str(error))
        # the test's own work carries on
        self.assertEqual(emails(), ["test@example.com"])
        # ... and the test itself would fail with it at its end (taken here: this test expects it).
        self.assertEqual([str(e) for e in self.take_violations()], [str(error)])

    def test_thread_using_the_engine_gets_isolation_error(self) -> None:
        errors: list[BaseException] = []
        engine = db.engine  # handed to the thread, as code that caches the engine does

        def work() -> None:
            try:
                with engine.connect() as conn:
                    conn.execute(sa.select(1))
            except Exception as exc:  # noqa: BLE001 - the test asserts on it
                errors.append(exc)

        thread = threading.Thread(target=work, name="engine-user")
        thread.start()
        self.join(thread)
        self.assertEqual(len(errors), 1)
        self.assertIsInstance(errors[0], IsolationError)
        self.assertIn("engine-user", str(errors[0]))
        self.assertEqual(self.take_violations(), errors)

    def take_violations(self) -> list[IsolationError]:
        """The errors the test's end would fail with, taken so that this test does not."""
        state = type(self)._tt_state
        assert state is not None and state.redirect is not None
        return state.redirect.take_violations()

    def tearDown(self) -> None:
        mailer: isolation_app.Mailer = self.app.extensions["mailer"]
        for thread in mailer.threads:
            thread.join(THREAD_TIMEOUT)
        mailer.threads.clear()
        mailer.sent.clear()
        mailer.errors.clear()
        super().tearDown()


# -- the second bind -----------------------------------------------------------------------


@on_all_backends
class BindIsolation(IsolationCase):
    """The ``audit`` bind is isolated like the default one."""

    def test_audit_commit(self) -> None:
        db.session.add(AuditEntry(message="audited"))
        db.session.commit()
        self.assertEqual(audits(), 1)

    def test_commit_spanning_both_binds(self) -> None:
        db.session.add_all([Customer(email="both@example.com"), AuditEntry(message="both")])
        db.session.commit()
        self.assertEqual((customers(), audits()), (1, 1))

    def test_failed_commit_rolls_back_both_binds(self) -> None:
        db.session.add(Customer(email="taken@example.com"))
        db.session.commit()
        db.session.add(AuditEntry(message="written first"))
        db.session.flush()
        self.assertEqual(audits(), 1)
        db.session.add(Customer(email="taken@example.com"))
        with self.assertRaises(sa.exc.IntegrityError):
            db.session.commit()
        db.session.rollback()
        self.assertEqual((customers(), audits()), (1, 0))
        db.session.add(AuditEntry(message="after"))
        db.session.commit()
        self.assertEqual((customers(), audits()), (1, 1))

    def test_x_both_binds_start_empty(self) -> None:
        # Sorts after the tests above, which committed to both binds.
        self.assertEqual((customers(), audits()), (0, 0))


# -- ordering pairs ----------------------------------------------------------------------------


def _assert_empty_then_commit_via_session(case: unittest.TestCase) -> None:
    case.assertEqual((customers(), audits()), (0, 0))
    db.session.add_all([Customer(email="pair@example.com"), AuditEntry(message="pair")])
    db.session.commit()
    case.assertEqual((customers(), audits()), (1, 1))


def _assert_empty_then_commit_via_request(case: TransactionalTestCase) -> None:
    case.assertEqual((customers(), audits()), (0, 0))
    case.assertEqual(case.client.post("/customers", json={"email": "pair@example.com"}).status_code, 201)
    case.assertEqual(case.client.post("/audit", json={"message": "pair"}).status_code, 201)
    case.assertEqual((customers(), audits()), (1, 1))


@on_all_backends
class OrderingPairs(IsolationCase):
    """Each test commits a row and first asserts the tables are empty.

    Test methods run alphabetically: pair 1 runs session then request, pair 2
    request then session, pair 3 engine then a new app context. Whichever runs
    second proves the first one's commit was rolled back.
    """

    def test_pair1_a_session(self) -> None:
        _assert_empty_then_commit_via_session(self)

    def test_pair1_b_request(self) -> None:
        _assert_empty_then_commit_via_request(self)

    def test_pair2_a_request(self) -> None:
        _assert_empty_then_commit_via_request(self)

    def test_pair2_b_session(self) -> None:
        _assert_empty_then_commit_via_session(self)

    def test_pair3_a_engine_begin(self) -> None:
        self.assertEqual((customers(), audits()), (0, 0))
        with db.engine.begin() as conn:
            conn.execute(insert_customer("pair@example.com"))
        self.assertEqual(customers(), 1)

    def test_pair3_b_new_app_context(self) -> None:
        self.assertEqual((customers(), audits()), (0, 0))
        with self.app.app_context():
            db.session.add(Customer(email="pair@example.com"))
            db.session.commit()
        self.assertEqual(customers(), 1)


# -- controls: switch one mechanism off and watch isolation break ---------------------------

#: The inner test classes' module: not importable, so unittest runs no module fixtures for them.
_INNER_MODULE = "tests.test_isolation.controlled"


def _notes() -> list[str]:
    return sorted(isolation_app.control_db.session.scalars(sa.select(isolation_app.Note.body)))


def _scenario_commit_recover_commit(case: unittest.TestCase) -> None:
    """An app-level rollback after an IntegrityError, then more committed work."""
    session = isolation_app.control_db.session
    session.add(isolation_app.Note(body="first"))
    session.commit()
    session.add(isolation_app.Note(body="first"))
    with case.assertRaises(sa.exc.IntegrityError):
        session.commit()
    session.rollback()
    session.add(isolation_app.Note(body="second"))
    session.commit()
    case.assertEqual(_notes(), ["first", "second"])


def _scenario_session_commit(case: unittest.TestCase) -> None:
    session = isolation_app.control_db.session
    session.add(isolation_app.Note(body="session"))
    session.commit()
    case.assertIn("session", _notes())


def _scenario_engine_begin(case: unittest.TestCase) -> None:
    with isolation_app.control_db.engine.begin() as conn:
        conn.execute(sa.insert(isolation_app.Note.__table__).values(body="engine"))
    case.assertIn("engine", _notes())


def _scenario_session_on_test_connection(case: unittest.TestCase) -> None:
    """What SessionIsolation.test_session_is_bound_to_the_tests_connection checks."""
    conn = isolation_app.control_db.session.connection()
    case.assertIsInstance(conn, Connection)
    case.assertNotIsInstance(conn, tt_redirect.NestedConnection)


def _scenario_thread_swallows_its_error(case: unittest.TestCase) -> None:
    """A background thread queries, and its code catches the refusal (as a mail worker might)."""
    session = isolation_app.control_db.session
    session.add(isolation_app.Note(body="main"))
    session.commit()
    app = flask.current_app._get_current_object()  # type: ignore[attr-defined]

    def work() -> None:
        with app.app_context(), contextlib.suppress(Exception):
            isolation_app.control_db.session.scalar(sa.select(sa.func.count(isolation_app.Note.id)))

    thread = threading.Thread(target=work, name="swallowing-worker")
    thread.start()
    thread.join(THREAD_TIMEOUT)
    case.assertEqual(_notes(), ["main"])  # the test's own assertions all pass


def _check_table_is_empty(case: unittest.TestCase) -> None:
    """What every ordering pair asserts first; sorts after the scenarios."""
    case.assertEqual(_notes(), [])


class _Result(unittest.TestResult):
    """A TestResult that also remembers which tests passed."""

    def __init__(self) -> None:
        super().__init__()
        self.passed: list[str] = []

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self.passed.append(method_name(test))


class _Run(t.NamedTuple):
    result: _Result
    leftovers: dict[str, int]

    def outcome(self, test_name: str) -> str:
        """'ok', 'failure', 'error' (wins: a failing cleanup after a failure) or 'not run'."""
        for kind, entries in (("error", self.result.errors), ("failure", self.result.failures)):
            if any(method_name(test) == test_name for test, _ in entries):
                return kind
        return "ok" if test_name in self.result.passed else "not run"

    def tracebacks(self, test_name: str) -> str:
        return "\n".join(
            tb for test, tb in self.result.errors + self.result.failures if method_name(test) == test_name
        )

    def report(self) -> str:
        return transcript(self.result, f"leftovers {self.leftovers}")


def _scenario_method(
    scenario: t.Callable[[unittest.TestCase], None],
) -> t.Callable[[unittest.TestCase], None]:
    def method(self: unittest.TestCase) -> None:
        scenario(self)

    method.__doc__ = scenario.__doc__
    return method


if t.TYPE_CHECKING:  # mixed into unittest.TestCase below
    _ControlBase = unittest.TestCase
else:
    _ControlBase = object


class ControlledIsolation(_ControlBase):
    """Runs a throwaway TransactionalTestCase class with one mechanism patched out.

    Each control builds an inner test class on a database of its own (made
    here, dropped afterwards), runs it with ``unittest`` machinery and then
    counts leftover rows with an independent connection. The baseline run,
    with nothing patched, passes and leaves nothing: so every failure the
    other controls observe is the patched mechanism's doing.
    """

    backend: t.ClassVar[BackendUnderTest]

    def run_controlled(
        self,
        label: str,
        scenarios: t.Mapping[str, t.Callable[[unittest.TestCase], None]],
        patch: t.ContextManager[t.Any] | None = None,
    ) -> _Run:
        url = self._throwaway_url(label)
        # The database the inner class really uses: a parallel worker adds its suffix.
        used = worker_url(url).render_as_string(hide_password=False)
        attrs: dict[str, t.Any] = {
            "database_url": url,
            "alembic_config": False,
            "create_app": classmethod(lambda cls, config: isolation_app.create_control_app(config)),
            "__module__": _INNER_MODULE,
            "test_9_table_is_empty": _scenario_method(_check_table_is_empty),
        }
        for name, scenario in scenarios.items():
            attrs[f"test_{name}"] = _scenario_method(scenario)
        inner = type(f"Controlled_{label}_{self.backend.name}", (TransactionalTestCase,), attrs)
        result = _Result()
        try:
            with patch if patch is not None else contextlib.nullcontext():
                run_into(inner, result)
            leftovers = leftover_rows(used)
        finally:
            self._drop(used)
        return _Run(result, leftovers)

    def _throwaway_url(self, label: str) -> str:
        """A database for one control: each label is used once per process."""
        # Named after the backend's main test database: runs with other
        # TT_TEST_*_URL settings (the version matrix's sessions) never share it.
        main = sa.make_url(self.backend.url).database if self.backend.url else "tt_test"
        name = f"{main}_ctl_{label}"
        url = self.backend.url_for(name)
        if url is None:
            folder = tempfile.mkdtemp(prefix="tt_control_")
            self.addCleanup(shutil.rmtree, folder, True)
            url = "sqlite:///" + os.path.join(folder, f"{name}.db")
        return url

    def _drop(self, url: str) -> None:
        parsed = make_url(url)
        backend_for(parsed).drop(parsed)

    # -- the controls ---------------------------------------------------------------

    def test_baseline_with_every_mechanism(self) -> None:
        run = self.run_controlled(
            "baseline",
            {
                "1_commit_recover_commit": _scenario_commit_recover_commit,
                "2_session_commit": _scenario_session_commit,
                "3_engine_begin": _scenario_engine_begin,
                "4_session_on_test_connection": _scenario_session_on_test_connection,
            },
        )
        self.assertTrue(run.result.wasSuccessful(), run.report())
        self.assertEqual(run.result.testsRun, 5, run.report())
        self.assertEqual(run.leftovers, {}, run.report())

    def test_a_thread_refused_fails_the_test_that_started_it(self) -> None:
        run = self.run_controlled("thread", {"1_thread_swallows": _scenario_thread_swallows_its_error})
        self.assertEqual(run.outcome("test_1_thread_swallows"), "error", run.report())
        traceback = run.tracebacks("test_1_thread_swallows")
        self.assertIn("IsolationError: a thread this test started used the database", traceback)
        self.assertIn("swallowing-worker", traceback)
        self.assertEqual(run.outcome("test_9_table_is_empty"), "ok", run.report())  # the next test is clean
        self.assertEqual(run.leftovers, {}, run.report())

    def test_without_create_savepoint_an_app_rollback_ends_the_test_transaction(self) -> None:
        real_apply = tt_redirect.SessionRedirect.apply

        def apply_without_savepoints(redirect: tt_redirect.SessionRedirect) -> None:
            real_apply(redirect)
            redirect.factory.kw.pop("join_transaction_mode", None)

        run = self.run_controlled(
            "savepoint",
            {"1_commit_recover_commit": _scenario_commit_recover_commit},
            mock.patch.object(tt_redirect.SessionRedirect, "apply", apply_without_savepoints),
        )
        # The rollback ended the outer transaction: the cleanup says so...
        self.assertEqual(run.outcome("test_1_commit_recover_commit"), "error", run.report())
        traceback_text = run.tracebacks("test_1_commit_recover_commit")
        self.assertIn("IsolationError", traceback_text)
        self.assertIn("ended its own transaction", traceback_text)
        # ...the commit after it was real, and the library's recovery emptied the
        # tables again: the next test and an independent count find nothing.
        self.assertEqual(run.outcome("test_9_table_is_empty"), "ok", run.report())
        self.assertEqual(run.leftovers, {}, run.report())

    def test_without_session_redirect_the_session_leaves_the_test_connection(self) -> None:
        # Flask-SQLAlchemy's own get_bind then returns db.engines' shim, whose
        # savepoint connection still keeps the rows out; what notices the
        # missing redirect is the check that the session is on the test's
        # Connection (Core tools such as the inspector need a real one).
        run = self.run_controlled(
            "redirect",
            {
                "1_session_commit": _scenario_session_commit,
                "2_session_on_test_connection": _scenario_session_on_test_connection,
            },
            mock.patch.object(tt_redirect, "routed_session_class", lambda base: base),
        )
        self.assertEqual(run.outcome("test_2_session_on_test_connection"), "failure", run.report())
        self.assertEqual(run.outcome("test_1_session_commit"), "ok", run.report())
        self.assertEqual(run.outcome("test_9_table_is_empty"), "ok", run.report())
        self.assertEqual(run.leftovers, {}, run.report())

    def test_without_engine_shim_engine_and_session_commits_persist(self) -> None:
        real_apply = tt_redirect.SessionRedirect.apply

        def apply_with_real_engines(redirect: tt_redirect.SessionRedirect) -> None:
            real_apply(redirect)
            redirect.extension.point(redirect.engines)

        run = self.run_controlled(
            "shim",
            {"1_engine_begin": _scenario_engine_begin, "2_session_commit": _scenario_session_commit},
            mock.patch.object(tt_redirect.SessionRedirect, "apply", apply_with_real_engines),
        )
        self.assertEqual(run.outcome("test_9_table_is_empty"), "failure", run.report())
        self.assertEqual(run.leftovers, {"notes": 2}, run.report())


class ControlledSQLiteIsolation(ControlledIsolation):
    """On SQLite also the pysqlite BEGIN fix: without it a released SAVEPOINT is a real COMMIT."""

    def test_without_sqlite_begin_fix_a_commit_persists(self) -> None:
        run = self.run_controlled(
            "sqlitefix",
            {"1_session_commit": _scenario_session_commit},
            mock.patch.object(SQLiteBackend, "prepare_engine", lambda backend, engine: None),
        )
        self.assertEqual(run.outcome("test_9_table_is_empty"), "failure", run.report())
        self.assertEqual(run.leftovers, {"notes": 1}, run.report())


def _control_backends() -> list[BackendUnderTest]:
    """SQLite, the first selected PostgreSQL driver and the first selected MariaDB driver."""
    names = {b.name for b in selected_backends()}
    chosen = []
    for group in (("sqlite",), ("psycopg2", "psycopg"), ("pymysql", "mysqlclient")):
        for name in group:
            if name in names:
                chosen.append(BACKENDS[name])
                break
    return chosen


# The control tests switch the library's mechanisms off on an app of their own: once is enough.
if shop.EXTENSION == "Flask-SQLAlchemy":
    for _backend in _control_backends():
        _mixin = ControlledSQLiteIsolation if _backend.name == "sqlite" else ControlledIsolation
        generate_per_backend(_mixin, OuterCase, backends=[_backend], name="ControlledIsolation")
    del _backend, _mixin
