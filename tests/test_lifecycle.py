"""The class and test lifecycle: class data, sequences, query counting, teardown, provisioning.

Generated ``<Name>_<backend>`` classes are TransactionalTestCases (see
``tests.matrix``). The ``*Run_<backend>`` classes are plain unittest cases that
run small inner TransactionalTestCase classes programmatically, because what
they check (errors in setUpClass, a test ending its own transaction, what is
left in the pool after a failing test, what the server holds after the class
or the process) can only be seen from outside the class under test.

Inner classes use databases of their own (``tt_<purpose>_<driver>_test``), so
rebuilding them never disturbs the databases the generated classes hold open.
"""

from __future__ import annotations

import collections
import gc
import os
import re
import subprocess
import sys
import textwrap
import typing as t
import unittest
import weakref
from unittest import mock

import flask
import sqlalchemy as sa
from sqlalchemy import event

from tests.admin import (
    admin_connection,
    database_exists,
    drop_database,
    leftover_rows,
    own_connection,
    table_names,
)
from tests.apps import notes, shop
from tests.apps.shop import ShopCase
from tests.matrix import (
    BACKENDS,
    BackendTestCase,
    BackendUnderTest,
    OuterCase,
    backends_named,
    bind_url,
    generate_per_backend,
    on_all_backends,
    require,
    selected_backends,
)
from tests.running import method_names, run_case, transcript
from transactional_testcase import (
    ConfigurationError,
    IsolationError,
    TransactionalTestCase,
    provisioning,
)
from transactional_testcase import backends as tt_backends
from transactional_testcase import schema as tt_schema

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSTGRES = ("psycopg2", "psycopg")
MYSQL = ("pymysql", "mysqlclient")


# -- helpers ---------------------------------------------------------------------------


def on_backends(*names: str) -> t.Callable[[type], type]:
    """Like ``on_all_backends``, for the backends a feature applies to."""
    return lambda mixin: generate_per_backend(mixin, BackendTestCase, backends=backends_named(*names))


def outer_on(*names: str) -> t.Callable[[type], type]:
    """Generate ``OuterCase`` classes per backend (all selected ones when no names)."""
    return lambda mixin: generate_per_backend(mixin, OuterCase, backends=backends_named(*names))


def actual_url(url: str) -> str:
    """The URL the library really uses for ``url`` (a worker suffix under xdist)."""
    return provisioning.worker_url(url).render_as_string(hide_password=False)


def create_stale_database(url: str) -> None:
    """Make ``url`` exist holding a stray table and a customer row, as a previous run might leave it."""
    parsed = sa.make_url(url)
    assert "test" in os.path.basename(parsed.database or "")
    if parsed.get_backend_name() != "sqlite" and not database_exists(url):
        with admin_connection(url) as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE {conn.dialect.identifier_preparer.quote(parsed.database or '')}"
            )
    with own_connection(url, begin=True) as conn:
        conn.exec_driver_sql("CREATE TABLE stale_marker (id INTEGER PRIMARY KEY)")
        shop.Customer.__table__.create(conn, checkfirst=True)
        conn.execute(shop.Customer.__table__.insert().values(email="stale@example.com"))


class ShopInner:
    """Base of inner classes: the shop app, and the URLs its engines really use."""

    alembic_config = False
    engine_urls: t.ClassVar[dict[str | None, str]]

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> flask.Flask:
        return shop.create_app(config)

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()  # type: ignore[misc]
        cls.engine_urls = {
            key: engine.url.render_as_string(hide_password=False)
            for key, engine in cls.db.engines.items()  # type: ignore[attr-defined]
        }


def inner(
    backend: BackendUnderTest, purpose: str, *mixins: type, **attrs: t.Any
) -> type[TransactionalTestCase]:
    """A TransactionalTestCase on ``tt_<purpose>_<driver>_test`` (and ``..._audit_...``)."""
    namespace: dict[str, t.Any] = {
        "database_url": bind_url(backend, purpose),
        "binds": {"audit": bind_url(backend, f"{purpose}_audit")},
        **attrs,
    }
    name = "_".join([m.__name__.strip("_") for m in mixins] + [backend.name])
    return type(name, (*mixins, ShopInner, TransactionalTestCase), namespace)


# -- setUpTestData ---------------------------------------------------------------------

CLASS_DATA_CALLS: collections.Counter[str] = collections.Counter()
#: Every object a test of each class received as ``self.alice`` (kept alive on purpose).
SEEN_ALICES: dict[str, list[object]] = collections.defaultdict(list)


@on_all_backends
class ClassDataTest(ShopCase):
    """Class data is built once, seen by every test as it was built, and rolled back after."""

    alice: shop.Customer
    bob: shop.Customer
    order: shop.Order
    entry: shop.AuditEntry
    customers: list[shop.Customer]
    by_name: dict[str, shop.Customer]

    @classmethod
    def setUpTestData(cls) -> None:
        CLASS_DATA_CALLS[cls.__name__] += 1
        cls.alice = shop.Customer(email="alice@example.com")
        cls.bob = shop.Customer(email="bob@example.com")
        shop.session.add_all([cls.alice, cls.bob])
        shop.session.flush()
        cls.order = shop.Order(customer_id=cls.alice.id, total=10)
        cls.entry = shop.AuditEntry(message="class data")
        cls.customers = [cls.alice, cls.bob]
        cls.by_name = {"bob": cls.bob}
        # Left pending on purpose: the library commits it when this returns.
        shop.session.add_all([cls.order, cls.entry])

    def start(self) -> None:
        """What every test checks first, whatever ran before it."""
        cls = type(self)
        self.assertEqual(CLASS_DATA_CALLS[cls.__name__], 1, "setUpTestData must run once per class")
        emails = shop.session.scalars(sa.select(shop.Customer.email).order_by(shop.Customer.email)).all()
        self.assertEqual(emails, ["alice@example.com", "bob@example.com"])
        orders = shop.session.execute(sa.select(shop.Order.customer_id, shop.Order.total)).all()
        self.assertEqual([tuple(o) for o in orders], [(self.alice.id, 10)])
        self.assertEqual(shop.session.scalars(sa.select(shop.AuditEntry.message)).all(), ["class data"])
        # A new object per test, never the class's own nor a previous test's.
        self.assertIsNot(self.alice, cls.alice)
        for previous in SEEN_ALICES[cls.__name__]:
            self.assertIsNot(self.alice, previous)
        SEEN_ALICES[cls.__name__].append(self.alice)

    def test_a_deletes_class_data_through_the_session(self) -> None:
        self.start()
        for obj in (self.order, self.alice, self.bob, self.entry):
            shop.session.delete(obj)
            shop.session.flush()
        shop.session.commit()
        self.assertEqual(shop.count(shop.Customer), 0)
        self.assertEqual(shop.count(shop.AuditEntry), 0)

    def test_b_modifies_class_data(self) -> None:
        self.start()
        self.alice.email = "changed@example.com"
        self.order.total = 99
        self.entry.message = "changed"
        shop.session.commit()
        self.assertEqual(shop.session.scalar(sa.select(shop.Order.total)), 99)
        self.assertEqual(
            shop.session.scalar(sa.select(shop.Customer.email).where(shop.Customer.id == self.alice.id)),
            "changed@example.com",
        )
        self.assertEqual(type(self).alice.email, "alice@example.com")

    def test_c_deletes_class_data_with_sql(self) -> None:
        self.start()
        shop.session.execute(sa.delete(shop.Order))
        shop.session.execute(sa.delete(shop.Customer))
        shop.session.commit()
        with self.db.engines["audit"].begin() as conn:
            conn.execute(sa.delete(shop.AuditEntry.__table__))
        self.assertEqual(shop.count(shop.Customer), 0)
        self.assertEqual(shop.count(shop.AuditEntry), 0)

    def test_d_class_attributes_are_attached_to_the_test_session(self) -> None:
        self.start()
        session = self.session
        for obj in (self.alice, self.bob, self.order, self.entry):
            state = sa.inspect(obj)
            self.assertIs(state.session, session)
            self.assertTrue(state.persistent)
        # Attribute access needs no refresh, and the identity map is shared.
        self.assertEqual(self.alice.email, "alice@example.com")
        self.assertEqual(self.order.customer_id, self.alice.id)
        self.assertIsInstance(self.customers, list)
        self.assertIs(self.customers[0], self.alice)
        self.assertIs(self.customers[1], self.bob)
        self.assertIs(self.by_name["bob"], self.bob)
        self.assertIs(session.get(shop.Customer, self.alice.id), self.alice)
        # Changes to them reach the database through the test's session.
        self.bob.email = "robert@example.com"
        session.flush()
        self.assertEqual(
            shop.session.scalar(sa.select(shop.Customer.email).where(shop.Customer.id == self.bob.id)),
            "robert@example.com",
        )

    def test_e_class_data_visible_to_requests(self) -> None:
        self.start()
        self.assertEqual(self.client.get("/customers/count").get_json(), {"count": 2})
        response = self.client.post("/customers", json={"email": "alice@example.com"})
        self.assertEqual(response.status_code, 409)


class _ClassDataInner:
    @classmethod
    def setUpTestData(cls) -> None:
        cls.carol = shop.Customer(email="carol@example.com")
        shop.session.add_all([cls.carol, shop.AuditEntry(message="class data")])

    def check_and_write(self) -> None:
        self.assertEqual(shop.count(shop.Customer), 1)  # type: ignore[attr-defined]
        self.assertEqual(shop.count(shop.AuditEntry), 1)  # type: ignore[attr-defined]
        shop.session.add_all([shop.Customer(email="dave@example.com"), shop.AuditEntry(message="x")])
        shop.session.commit()

    def test_a(self) -> None:
        self.check_and_write()

    def test_b(self) -> None:
        self.check_and_write()


@outer_on()
class ClassDataRun:
    """After a class with setUpTestData, an independent connection finds no row."""

    backend: BackendUnderTest

    def test_class_data_is_gone_after_the_class(self) -> None:
        case = inner(self.backend, "lifecycle", _ClassDataInner)
        result = run_case(case)
        self.assertEqual(result.testsRun, 2)
        self.assertTrue(result.wasSuccessful(), result.errors + result.failures)
        urls = case.engine_urls  # type: ignore[attr-defined]
        self.assertIn("customers", table_names(urls[None]))
        self.assertIn("audit_entries", table_names(urls["audit"]))
        for url in urls.values():
            self.assertEqual(leftover_rows(url), {}, url)


# -- reset_sequences -----------------------------------------------------------------------


@on_backends("sqlite", *POSTGRES)
class ResetSequencesTest(ShopCase):
    """Every test's first insert gets id 1, whatever the previous test inserted."""

    reset_sequences = True

    def insert_rows(self) -> None:
        first, second = shop.Customer(email="a@example.com"), shop.Customer(email="b@example.com")
        entry = shop.AuditEntry(message="m")
        shop.session.add_all([first, second, entry])
        shop.session.commit()
        self.assertEqual([first.id, second.id, entry.id], [1, 2, 1])

    def test_a_ids_start_at_one(self) -> None:
        self.insert_rows()

    def test_b_ids_start_at_one(self) -> None:
        self.insert_rows()

    def test_c_ids_start_at_one_through_the_engine(self) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(shop.Customer.__table__.insert().values(email="c@example.com"))
            self.assertEqual(conn.scalar(sa.select(shop.Customer.id)), 1)
        self.insert_rows_after_one()

    def insert_rows_after_one(self) -> None:
        customer = shop.Customer(email="d@example.com")
        shop.session.add(customer)
        shop.session.commit()
        self.assertEqual(customer.id, 2)


@on_backends("sqlite", *POSTGRES)
class ResetSequencesWithClassDataTest(ShopCase):
    """With class data, every test continues right after the class's rows."""

    reset_sequences = True
    first: shop.Customer

    @classmethod
    def setUpTestData(cls) -> None:
        cls.first = shop.Customer(email="first@example.com")
        shop.session.add(cls.first)

    def insert_rows(self) -> None:
        a, b = shop.Customer(email="a@example.com"), shop.Customer(email="b@example.com")
        shop.session.add_all([a, b])
        shop.session.commit()
        self.assertEqual([a.id, b.id], [self.first.id + 1, self.first.id + 2])

    def test_a_ids_continue_after_class_data(self) -> None:
        self.insert_rows()

    def test_b_ids_continue_after_class_data(self) -> None:
        self.insert_rows()


class _TrivialInner:
    ran: t.ClassVar[list[str]]

    def test_runs(self) -> None:
        type(self).ran.append("test_runs")


@outer_on(*MYSQL)
class ResetSequencesMySQLRun:
    """MariaDB cannot reset AUTO_INCREMENT inside a transaction: say so in setUpClass."""

    backend: BackendUnderTest

    def test_reset_sequences_is_refused(self) -> None:
        case = inner(self.backend, "lifecycle", _TrivialInner, reset_sequences=True, ran=[])
        result = run_case(case)
        self.assertEqual(case.ran, [], "no test may run when setUpClass refused")  # type: ignore[attr-defined]
        self.assertEqual(len(result.raised), 1, result.errors)
        where, exc = result.raised[0].where, result.raised[0].exception
        self.assertIn("setUpClass", where)
        self.assertIsInstance(exc, ConfigurationError)
        self.assertIn("reset_sequences", str(exc))
        self.assertFalse(flask.has_app_context())


# -- assertNumQueries ------------------------------------------------------------------------

FIRST_LINE_COUNTS = re.compile(r"\b(\d+)\b.*?\b(\d+)\b")


@on_all_backends
class AssertNumQueriesTest(ShopCase):
    """What the code under test sends is counted; the transaction machinery is not."""

    def test_exact_count_passes_and_yields_the_statements(self) -> None:
        with self.assertNumQueries(2) as statements:
            shop.count(shop.Customer)
            shop.count(shop.AuditEntry)
        self.assertEqual(len(statements), 2)
        self.assertRegex(statements[0], r"(?is)^\s*SELECT\b.*\bcustomers\b")
        self.assertRegex(statements[1], r"(?is)^\s*SELECT\b.*\baudit_entries\b")

    def test_wrong_count_fails_listing_the_statements(self) -> None:
        with self.assertRaises(AssertionError) as cm, self.assertNumQueries(3):
            shop.count(shop.Customer)
            shop.count(shop.AuditEntry)
        message = str(cm.exception)
        counts = FIRST_LINE_COUNTS.search(message.splitlines()[0])
        self.assertIsNotNone(counts, message)
        assert counts is not None
        self.assertEqual(sorted(counts.groups()), ["2", "3"], message)
        self.assertRegex(message, r"(?im)^\s*1\.\s*SELECT\b.*\bcustomers\b")
        self.assertRegex(message, r"(?im)^\s*2\.\s*SELECT\b.*\baudit_entries\b")

    def test_too_few_fails_too(self) -> None:
        with self.assertRaises(AssertionError), self.assertNumQueries(1):
            pass

    def test_commit_counts_only_the_insert(self) -> None:
        with self.assertNumQueries(1) as statements:
            shop.session.add(shop.Customer(email="a@example.com"))
            shop.session.commit()
        self.assertRegex(statements[0], r"(?is)^\s*INSERT INTO customers\b")
        # The failure message does not list SAVEPOINT / RELEASE either.
        with self.assertRaises(AssertionError) as cm, self.assertNumQueries(0):
            shop.session.add(shop.Customer(email="b@example.com"))
            shop.session.commit()
        message = str(cm.exception)
        self.assertRegex(message, r"(?im)^\s*1\.\s*INSERT INTO customers\b")
        self.assertNotRegex(message, r"(?i)\b(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|COMMIT)\b")

    def test_nested_transactions_and_rollbacks_are_not_counted(self) -> None:
        with self.assertNumQueries(2):
            with shop.session.begin_nested():
                shop.session.add(shop.Customer(email="a@example.com"))
            nested = shop.session.begin_nested()
            shop.session.add(shop.Customer(email="b@example.com"))
            shop.session.flush()
            nested.rollback()
            shop.session.rollback()

    def test_callable_form(self) -> None:
        calls: list[int] = []

        def count(model: t.Any, *, note: str) -> int:
            calls.append(1)
            self.assertEqual(note, "kw")
            return shop.count(model)

        self.assertIsNone(self.assertNumQueries(1, count, shop.Customer, note="kw"))
        with self.assertRaises(AssertionError) as cm:
            self.assertNumQueries(2, count, shop.Customer, note="kw")
        self.assertEqual(len(calls), 2)
        self.assertRegex(str(cm.exception), r"(?im)^\s*1\.\s*SELECT\b.*\bcustomers\b")

    def test_counts_test_client_requests(self) -> None:
        with self.assertNumQueries(2) as statements:
            response = self.client.post("/customers", json={"email": "a@example.com"})
        self.assertEqual(response.status_code, 201)
        self.assertRegex(statements[0], r"(?is)^\s*INSERT INTO customers\b")
        self.assertRegex(statements[1], r"(?is)^\s*SELECT\b.*\bcustomers\b")
        with self.assertNumQueries(1):
            self.assertEqual(self.client.get("/customers/count").get_json(), {"count": 1})

    def test_counts_engine_connections(self) -> None:
        with self.assertNumQueries(2) as statements:
            with self.db.engine.connect() as conn:
                conn.execute(shop.Customer.__table__.insert().values(email="a@example.com"))
                conn.commit()
            with self.db.engines["audit"].begin() as conn:
                conn.execute(sa.select(shop.AuditEntry.id))
        self.assertRegex(statements[0], r"(?is)^\s*INSERT INTO customers\b")
        self.assertRegex(statements[1], r"(?is)^\s*SELECT\b.*\baudit_entries\b")
        # A route using db.engine.begin(): its INSERT and the count that follows.
        with self.assertNumQueries(2):
            self.client.post("/customers/raw", json={"email": "b@example.com"})

    def test_statements_before_the_block_are_not_counted(self) -> None:
        shop.count(shop.Customer)
        shop.session.add(shop.Customer(email="a@example.com"))
        shop.session.commit()
        with self.assertNumQueries(0):
            pass


# -- teardown --------------------------------------------------------------------------------


class _TeardownInner:
    """Every way a test can end; each records the pools right after the library's cleanup."""

    #: Connections checked out per engine after each test (the class's own, if any).
    expected_checked_out: t.ClassVar[int] = 0
    pools: t.ClassVar[dict[str | None, t.Any]]
    during: t.ClassVar[dict[str, tuple[bool, bool, t.Any]]]
    after: t.ClassVar[dict[str, tuple[dict[str | None, int], t.Any]]]
    pool_events: t.ClassVar[collections.Counter[tuple[str | None, str]]]
    left_open: list[t.Any]

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> flask.Flask:
        app: flask.Flask = super().create_app(config)  # type: ignore[misc]
        with app.app_context():
            for key, engine in shop.db.engines.items():
                cls._count_pool_events(engine, key)
        return app

    @classmethod
    def _count_pool_events(cls, engine: sa.Engine, key: str | None) -> None:
        def checkout(*args: t.Any) -> None:
            cls.pool_events[key, "checkout"] += 1

        def checkin(*args: t.Any) -> None:
            cls.pool_events[key, "checkin"] += 1

        def detach(*args: t.Any) -> None:
            cls.pool_events[key, "detach"] += 1

        event.listen(engine, "checkout", checkout)
        event.listen(engine, "checkin", checkin)
        event.listen(engine, "detach", detach)

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()  # type: ignore[misc]
        cls.pools = {key: engine.pool for key, engine in cls.db.engines.items()}  # type: ignore[attr-defined]

    def setUp(self) -> None:
        # Registered before the library's cleanup, so it runs after it.
        self.addCleanup(self._observe)  # type: ignore[attr-defined]
        super().setUp()  # type: ignore[misc]
        flask.g.tt_test = self.id()  # type: ignore[attr-defined]
        type(self).during[self._testMethodName] = (  # type: ignore[attr-defined]
            flask.has_app_context(),
            flask.current_app._get_current_object() is self.app,  # type: ignore[attr-defined]
            flask.g.get("tt_test"),
        )
        if self._testMethodName == "test_skipped_in_setup":  # type: ignore[attr-defined]
            raise unittest.SkipTest("skipped in setUp on purpose")

    def _observe(self) -> None:
        marker = flask.g.get("tt_test") if flask.has_app_context() else None
        counts = {key: pool.checkedout() for key, pool in self.pools.items()}
        type(self).after[self._testMethodName] = (counts, marker)  # type: ignore[attr-defined]

    def write(self) -> None:
        shop.session.add_all([shop.Customer(email="w@example.com"), shop.AuditEntry(message="w")])
        shop.session.commit()

    def test_passes(self) -> None:
        self.write()

    def test_fails(self) -> None:
        self.write()
        self.fail("fails on purpose")  # type: ignore[attr-defined]

    def test_errors(self) -> None:
        self.write()
        raise RuntimeError("errors on purpose")

    def test_integrity_error_left_unhandled(self) -> None:
        shop.session.add(shop.Customer(email="dup@example.com"))
        shop.session.flush()
        shop.session.add(shop.Customer(email="dup@example.com"))
        shop.session.flush()

    def test_skipped_in_setup(self) -> None:
        self.fail("setUp skips this test")  # type: ignore[attr-defined]

    def test_closes_the_session(self) -> None:
        before = shop.count(shop.Customer)
        self.write()
        self.session.close()  # type: ignore[attr-defined]
        shop.db.session.remove()
        self.assertEqual(shop.count(shop.Customer), before + 1)  # type: ignore[attr-defined]
        shop.db.session.close()

    def test_leaves_engine_connections_open(self) -> None:
        conn = self.db.engine.connect()  # type: ignore[attr-defined]
        conn.execute(shop.Customer.__table__.insert().values(email="open@example.com"))
        audit = self.db.engines["audit"].connect()  # type: ignore[attr-defined]
        audit.begin()
        audit.execute(shop.AuditEntry.__table__.insert().values(message="open"))
        self.left_open = [conn, audit]

    def test_leaves_a_nested_transaction_open(self) -> None:
        shop.session.begin_nested()
        shop.session.add(shop.Customer(email="nested@example.com"))
        shop.session.flush()


class _WithClassData:
    expected_checked_out = 1  # the class transaction's connection, per engine

    @classmethod
    def setUpTestData(cls) -> None:
        shop.session.add(shop.Customer(email="class@example.com"))


TEARDOWN_TESTS = {
    "test_passes",
    "test_fails",
    "test_errors",
    "test_integrity_error_left_unhandled",
    "test_skipped_in_setup",
    "test_closes_the_session",
    "test_leaves_engine_connections_open",
    "test_leaves_a_nested_transaction_open",
}


@outer_on()
class TeardownRun:
    """Whatever a test does or however it ends, its connections go back to the pool."""

    backend: BackendUnderTest

    def check_teardown(self, *mixins: type) -> None:
        case = inner(
            self.backend,
            "lifecycle",
            *mixins,
            _TeardownInner,
            during={},
            after={},
            pool_events=collections.Counter(),
        )
        result = run_case(case)
        self.assertEqual(result.testsRun, len(TEARDOWN_TESTS))
        self.assertEqual(method_names(result.failures), {"test_fails"}, result.failures)
        self.assertEqual(
            method_names(result.errors), {"test_errors", "test_integrity_error_left_unhandled"}, result.errors
        )
        for _, text in result.errors + result.failures:
            self.assertNotIn("IsolationError", text)
        self.assertEqual(method_names(result.skipped), {"test_skipped_in_setup"})
        expected = case.expected_checked_out  # type: ignore[attr-defined]
        after = case.after  # type: ignore[attr-defined]
        self.assertEqual(set(after), TEARDOWN_TESTS)
        for name, (counts, marker) in after.items():
            self.assertEqual(
                counts, {None: expected, "audit": expected}, f"{name} left connections checked out"
            )
            self.assertIsNone(marker, f"{name}: the test's app context was not popped")
        during = case.during  # type: ignore[attr-defined]
        self.assertEqual(set(during), TEARDOWN_TESTS)
        for name, (has_context, is_app, marker) in during.items():
            self.assertTrue(has_context and is_app, name)
            self.assertTrue(marker and marker.endswith(name), name)
        # After the class: no app context, every checkout checked back in (the
        # engines, idle connections in their pools, are kept for the next
        # class), nothing written.
        self.assertFalse(flask.has_app_context())
        events = case.pool_events  # type: ignore[attr-defined]
        for key in (None, "audit"):
            self.assertGreater(events[key, "checkout"], 0)
            self.assertEqual(events[key, "detach"], 0, f"bind {key}: {events}")
            self.assertEqual(events[key, "checkout"], events[key, "checkin"], f"bind {key}: {events}")
        for url in case.engine_urls.values():  # type: ignore[attr-defined]
            self.assertEqual(leftover_rows(url), {})

    def test_every_ending_returns_connections(self) -> None:
        self.check_teardown()

    def test_every_ending_returns_connections_with_class_data(self) -> None:
        self.check_teardown(_WithClassData)


@outer_on()
class AppReleaseRun:
    """A finished class keeps nothing of its app alive: a long suite would hold every class's."""

    backend: BackendUnderTest

    def test_the_app_of_a_finished_class_can_be_collected(self) -> None:
        made: list[weakref.ref[flask.Flask]] = []

        def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
            app = shop.create_app(config)
            made.append(weakref.ref(app))
            return app

        def test_renders(self: t.Any) -> None:
            with self.app.test_request_context("/"):
                flask.render_template_string("{{ 1 }}")
            self.assertEqual(len(self.rendered_templates), 1)

        case = inner(self.backend, "lifecycle", create_app=classmethod(create_app), test_renders=test_renders)
        result = run_case(case)
        self.assertTrue(result.wasSuccessful(), transcript(result))  # type: ignore[attr-defined]
        self.assertNotIn("app", vars(case), "the class still holds its app")
        for _ in range(3):  # cycles inside the app and its engines take more than one pass
            gc.collect()
        self.assertIsNone(made[0](), "something still holds the finished class's app")


# -- a test that ends the outer transaction ---------------------------------------------------


class _EndsOuterInner:
    def test_a_ends_the_outer_transaction(self) -> None:
        self.db.session.connection().commit()  # type: ignore[attr-defined]

    def commit_and_count(self) -> None:
        self.assertEqual(shop.count(shop.Customer), 0)  # type: ignore[attr-defined]
        shop.session.add(shop.Customer(email="iso@example.com"))
        shop.session.commit()
        self.assertEqual(shop.count(shop.Customer), 1)  # type: ignore[attr-defined]

    def test_b_still_isolated(self) -> None:
        self.commit_and_count()

    def test_c_still_isolated(self) -> None:
        self.commit_and_count()


class _IsolatedInner:
    def test_a(self) -> None:
        _EndsOuterInner.commit_and_count(self)  # type: ignore[arg-type]

    def test_b(self) -> None:
        _EndsOuterInner.commit_and_count(self)  # type: ignore[arg-type]


@outer_on()
class EndsOuterTransactionRun:
    """Ending the test's own transaction fails that test, and only that test."""

    backend: BackendUnderTest

    def test_isolation_error_then_still_isolated(self) -> None:
        case = inner(self.backend, "lifecycle", _EndsOuterInner)
        result = run_case(case)
        self.assertEqual(result.testsRun, 3)
        self.assertEqual(result.failures, [])
        self.assertEqual([r.where for r in result.raised], [str(case("test_a_ends_the_outer_transaction"))])
        exc = result.raised[0].exception
        self.assertIsInstance(exc, IsolationError)
        self.assertRegex(str(exc), r"(?i)\btransaction\b")
        self.assertRegex(str(exc), r"(?i)commit")
        for url in case.engine_urls.values():  # type: ignore[attr-defined]
            self.assertEqual(leftover_rows(url), {})
        # The next class on the same databases is isolated as usual.
        after = inner(self.backend, "lifecycle", _IsolatedInner)
        result = run_case(after)
        self.assertEqual(result.testsRun, 2)
        self.assertTrue(result.wasSuccessful(), result.errors + result.failures)
        for url in after.engine_urls.values():  # type: ignore[attr-defined]
            self.assertEqual(leftover_rows(url), {})

    def check_next_class_isolated(self, purpose: str, *mixins: type) -> None:
        """Whatever the ending test let escape, the next class on its databases starts empty."""
        case = inner(self.backend, purpose, *mixins)
        result = run_case(case)
        self.assertEqual(len(result.raised), 1, result.errors)
        self.assertIsInstance(result.raised[0].exception, IsolationError)
        after = inner(self.backend, purpose, _IsolatedInner)
        result = run_case(after)
        self.assertEqual(result.testsRun, 2)
        self.assertTrue(result.wasSuccessful(), result.errors + result.failures)

    def test_class_data_committed_by_ending_the_transaction_does_not_reach_the_next_class(self) -> None:
        self.check_next_class_isolated("ended_class_data", _ClassDataEndsOuterInner)

    def test_rows_committed_by_ending_the_transaction_do_not_reach_the_next_class(self) -> None:
        self.check_next_class_isolated("ended_rows", _WritesThenEndsOuterInner)


class _ClassDataEndsOuterInner:
    @classmethod
    def setUpTestData(cls) -> None:
        shop.session.add(shop.Customer(email="class@example.com"))

    def test_ends_the_outer_transaction(self) -> None:
        self.db.session.connection().commit()  # type: ignore[attr-defined]


class _WritesThenEndsOuterInner:
    def test_writes_then_ends_the_outer_transaction(self) -> None:
        shop.session.add(shop.Customer(email="escaped@example.com"))
        shop.session.flush()
        self.db.session.connection().commit()  # type: ignore[attr-defined]


# -- provisioning ----------------------------------------------------------------------------


class _FreshInner:
    def test_database_is_fresh(self) -> None:
        conn = self.session.connection()  # type: ignore[attr-defined]
        self.assertNotIn("stale_marker", sa.inspect(conn).get_table_names())
        self.assertEqual(shop.count(shop.Customer), 0)  # type: ignore[attr-defined]


@outer_on()
class ProvisioningRun:
    """Databases are provisioned fresh, from the app's engines, and reused when unchanged."""

    backend: BackendUnderTest

    def test_existing_database_is_replaced(self) -> None:
        url, audit = bind_url(self.backend, "fresh"), bind_url(self.backend, "fresh_audit")
        real = actual_url(url)
        self.addCleanup(drop_database, real)
        self.addCleanup(drop_database, actual_url(audit))
        create_stale_database(real)
        self.assertIn("stale_marker", table_names(real))
        result = run_case(inner(self.backend, "fresh", _FreshInner))
        self.assertTrue(result.wasSuccessful(), result.errors + result.failures)
        tables = table_names(real)
        self.assertNotIn("stale_marker", tables)
        self.assertIn("customers", tables)
        self.assertEqual(leftover_rows(real), {})

    def test_factory_ignoring_config_gets_fresh_databases(self) -> None:
        own, own_audit = bind_url(self.backend, "own"), bind_url(self.backend, "own_audit")
        ignored = bind_url(self.backend, "ignored")
        for url in (own, own_audit):
            self.addCleanup(drop_database, url)
        drop_database(actual_url(ignored))
        create_stale_database(own)

        def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
            return shop.create_app(
                {"TESTING": True, "SQLALCHEMY_DATABASE_URI": own, "SQLALCHEMY_BINDS": {"audit": own_audit}}
            )

        case = inner(self.backend, "ignored", _FreshInner, create_app=classmethod(create_app))
        result = run_case(case)
        self.assertTrue(result.wasSuccessful(), result.errors + result.failures)
        used = {key: sa.make_url(u).database for key, u in case.engine_urls.items()}  # type: ignore[attr-defined]
        self.assertEqual(used, {None: sa.make_url(own).database, "audit": sa.make_url(own_audit).database})
        self.assertNotIn("stale_marker", table_names(own))
        self.assertIn("audit_entries", table_names(own_audit))
        self.assertFalse(database_exists(actual_url(ignored)), "a database the app never uses was created")

    def test_same_url_and_schema_is_reused_without_rebuilding(self) -> None:
        url, audit = bind_url(self.backend, "reuse"), bind_url(self.backend, "reuse_audit")
        backend = tt_backends.backend_for(sa.make_url(url))
        spies = {
            name: stack_patch(self, mock.patch.object(backend, name, wraps=getattr(backend, name)))
            for name in ("recreate", "clone", "drop")
            if hasattr(backend, name)
        }
        builds = stack_patch(
            self,
            mock.patch.object(
                tt_schema.CreateAllSchema,
                "build",
                autospec=True,
                side_effect=tt_schema.CreateAllSchema.build,
            ),
        )
        apps: list[flask.Flask] = []

        def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
            apps.append(shop.create_app(config))
            return apps[-1]

        def provisioned() -> set[str | None]:
            """Names of the databases recreated or cloned (templates included)."""
            urls = {c.args[0] for c in spies["recreate"].call_args_list}
            if "clone" in spies:
                urls |= {c.args[1] for c in spies["clone"].call_args_list}
            return {u.database for u in urls}

        names = {sa.make_url(actual_url(u)).database for u in (url, audit)}

        first = inner(self.backend, "reuse", _IsolatedInner, create_app=classmethod(create_app))
        self.assertTrue(run_case(first).wasSuccessful())
        self.assertEqual(provisioned() & names, names)

        for spy in (*spies.values(), builds):
            spy.reset_mock()
        second = inner(self.backend, "reuse", _IsolatedInner, create_app=classmethod(create_app))
        result = run_case(second)
        self.assertTrue(result.wasSuccessful(), result.errors + result.failures)
        self.assertEqual(len(apps), 2, "the later class builds its own app")
        self.assertIsNot(apps[0], apps[1])
        for name, spy in spies.items():
            self.assertEqual(spy.call_count, 0, f"{name} was called for an unchanged schema")
        self.assertEqual(builds.call_count, 0, "the schema was rebuilt for an unchanged schema")

        # Another schema on the same URL is a rebuild, not a reuse.
        notes_case = type(
            f"NotesInner_{self.backend.name}",
            (_NotesInner, TransactionalTestCase),
            {"database_url": url, "alembic_config": False},
        )
        result = run_case(notes_case)
        self.assertTrue(result.wasSuccessful(), result.errors + result.failures)
        self.assertIn(sa.make_url(actual_url(url)).database, provisioned())
        self.assertIn("notes", table_names(actual_url(url)))


class _NotesInner:
    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> flask.Flask:
        return notes.create_app(config)

    def test_notes_table(self) -> None:
        notes.db.session.add(notes.Note(text="n"))
        notes.db.session.commit()
        self.assertEqual(notes.db.session.scalar(sa.select(sa.func.count(notes.Note.id))), 1)  # type: ignore[attr-defined]


def stack_patch(test: unittest.TestCase, patcher: t.Any) -> t.Any:
    mocked = patcher.start()
    test.addCleanup(patcher.stop)
    return mocked


@on_backends("sqlite")
class InMemorySQLiteTest(ShopCase):
    """``sqlite://`` (default and bind) works with create_all, and is isolated too."""

    @classmethod
    def get_database_url(cls) -> str:
        return "sqlite://"

    @classmethod
    def bind_url(cls, name: str) -> str:
        return "sqlite://"

    def test_a_commit_is_rolled_back(self) -> None:
        self.assertIsNone(self.db.engine.url.database)
        self.assertIsNone(self.db.engines["audit"].url.database)
        self.commit_and_count()

    def test_b_commit_is_rolled_back(self) -> None:
        self.commit_and_count()

    def commit_and_count(self) -> None:
        self.assertEqual(shop.count(shop.Customer), 0)
        self.assertEqual(shop.count(shop.AuditEntry), 0)
        self.assertEqual(self.client.post("/customers", json={"email": "a@example.com"}).status_code, 201)
        self.client.post("/audit", json={"message": "m"})
        with self.db.engine.begin() as conn:
            conn.execute(shop.Customer.__table__.insert().values(email="b@example.com"))
        self.assertEqual(shop.count(shop.Customer), 2)
        self.assertEqual(shop.count(shop.AuditEntry), 1)


_AT_EXIT_SCRIPT = textwrap.dedent(
    """
    import sys
    import unittest

    import sqlalchemy as sa

    from tests.apps import shop
    from transactional_testcase import TransactionalTestCase


    class AtExit(TransactionalTestCase):
        database_url = sys.argv[1]
        binds = {"audit": sys.argv[2]}
        alembic_config = False

        @classmethod
        def create_app(cls, config):
            return shop.create_app(config)

        def test_uses_both_databases(self):
            shop.session.add_all([shop.Customer(email="a@example.com"), shop.AuditEntry(message="m")])
            shop.session.commit()
            pg = shop.session.scalar(sa.text("SELECT current_database()"))
            my = self.db.engines["audit"].connect().scalar(sa.text("SELECT DATABASE()"))
            self.assertEqual((pg, my), (self.db.engine.url.database, self.db.engines["audit"].url.database))
            print("DATABASES", pg, my, flush=True)


    suite = unittest.defaultTestLoader.loadTestsFromTestCase(AtExit)
    sys.exit(0 if unittest.TextTestRunner().run(suite).wasSuccessful() else 1)
    """
)


class DropAtExitTest(unittest.TestCase):
    """The databases a process provisioned are gone once it has exited."""

    def test_databases_are_dropped_when_the_process_ends(self) -> None:
        wanted = {"psycopg2", "pymysql"}
        missing = wanted - {b.name for b in selected_backends()}
        if missing:
            self.skipTest(
                f"needs the {', '.join(sorted(missing))} backends: include them in TT_TEST_BACKENDS"
            )
        for name in sorted(wanted):
            require(name)
        pg, my = bind_url(BACKENDS["psycopg2"], "atexit"), bind_url(BACKENDS["pymysql"], "atexit")
        for url in (pg, my):
            self.addCleanup(drop_database, url)
        env = {
            k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", provisioning.WORKER_ENV)
        }
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        env["TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES"] = "0"
        proc = subprocess.run(
            [sys.executable, "-c", _AT_EXIT_SCRIPT, pg, my],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("DATABASES ")]
        expected = f"DATABASES {sa.make_url(pg).database} {sa.make_url(my).database}"
        self.assertEqual(line, [expected], proc.stdout)
        self.assertFalse(database_exists(pg), "the PostgreSQL test database outlived its process")
        self.assertFalse(database_exists(my), "the MariaDB test database outlived its process")


if __name__ == "__main__":
    unittest.main()
