"""Faults: what goes wrong around a TransactionalTestCase, and what the run must survive.

Each ``<Name>_<backend>`` class here is a plain unittest case that builds small
inner TransactionalTestCase classes inside its test methods and runs them with
a real runner, because what is checked can only be seen from outside the class
under test: errors raised by ``setUpClass``, a test failed by the library at
its end, connections still checked out of the pools, an app context left
pushed, rows left in the databases (seen through connections of our own, with
``tests.admin.leftover_rows``), and later classes on the same databases.

What is covered here, on every backend it applies to:

* ``setUpClass`` failing half way (the factory raises, a migration fails,
  ``setUpTestData`` raises, a subclass's ``setUpClass`` raises after
  ``super()``): nothing left open, later classes work and are isolated;
* a test that ends its own transaction by hand, with and without writing first
  and with class data;
* PostgreSQL's aborted transaction after an error the test never rolled back;
* DDL: implicit commits on MySQL/MariaDB are failed and cleaned up after,
  PostgreSQL and SQLite roll it back;
* the server dropping every connection (a restart) between tests and between
  classes (simulated with ``pg_terminate_backend`` / ``KILL``: no server is
  ever restarted);
* a test process killed with SIGKILL in the middle of a test, and one whose
  last test escaped its transaction: what they leave on the servers;
* connection leaks: after every class the pools have nothing checked out;
* a thread that shares the test's app context and uses ``db.session``.

Covered elsewhere, not repeated here: every way a single test can end and its
connections (``test_lifecycle.TeardownRun``), ``Connection.commit()`` of the
test's transaction without earlier writes (``test_lifecycle``), threads with
an app context of their own (``test_isolation.ThreadIsolation``), and the
safety rails (``test_errors``: unsafe names from ``database_url``,
``TEST_DATABASE_URL``, ``binds`` and the app's own config, refused before any
destructive call, for every backend; passwords in messages).

Inner classes use databases of their own (``tt_<driver>_test_faults...``) and
claim a module that is not imported, so the inner runs never trigger module
fixtures.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import contextvars
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import typing as t
import unittest

import flask
import sqlalchemy as sa
from sqlalchemy import event

from tests.admin import (
    admin_connection,
    database_exists,
    delete_all_rows,
    drop_database,
    leftover_rows,
    own_connection,
    server_databases,
    table_names,
)
from tests.apps import bad_migrations, shop
from tests.matrix import (
    BACKENDS,
    BackendUnderTest,
    OuterCase,
    backends_named,
    bind_url,
    generate_per_backend,
    require,
    selected_backends,
    unavailable,
)
from tests.running import (
    RecordingResult,
    outcome,
    run_case,
    transcript,
)
from transactional_testcase import (
    IsolationError,
    MigrationError,
    TransactionalTestCase,
    provisioning,
)
from transactional_testcase.connections import keeper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSTGRES = ("psycopg2", "psycopg")
MYSQL = ("pymysql", "mysqlclient")
SERVERS = POSTGRES + MYSQL
#: Inner classes claim this module, which is never imported (no module fixtures run for them).
INNER_MODULE = "tests.test_faults_inner"
#: Generous bound for joins and waits: only a hang reaches it.
HANG_TIMEOUT = 30.0
#: Purpose of the databases most inner classes share (``..._faults_shared`` and ``..._audit``):
#: one pair per backend to provision, however many classes run.
SHARED = "shared"
#: A table the DDL tests create inside a test.
TMP_TABLE = "tt_tmp_faults_x"


# -- helpers ---------------------------------------------------------------------------------


def per_backend(*names: str) -> t.Callable[[type], type]:
    """Generate ``<Mixin>_<backend>`` OuterCases for ``names`` (every selected backend when empty)."""
    return lambda mixin: generate_per_backend(mixin, OuterCase, backends=backends_named(*names))


class PoolTally:
    """Checkouts minus checkins on every engine of the apps it watches.

    Pool listeners registered on an engine survive ``engine.dispose()`` (the new
    pool copies them), so the tally stays right after the library disposes of
    the engines at the end of the class.
    """

    def __init__(self) -> None:
        self.open: collections.Counter[str | None] = collections.Counter()
        self.engines: dict[str | None, sa.Engine] = {}

    def watch(self, app: flask.Flask) -> flask.Flask:
        with app.app_context():
            for key, engine in app.extensions["sqlalchemy"].engines.items():
                self.engines[key] = engine
                event.listen(engine, "checkout", self._listener(key, 1))
                event.listen(engine, "checkin", self._listener(key, -1))
                # Handed to the keeper for a later class (servers): out of the pool too.
                event.listen(engine, "detach", self._listener(key, -1))
        return app

    def _listener(self, key: str | None, delta: int) -> t.Callable[..., None]:
        def count(*args: t.Any) -> None:
            self.open[key] += delta

        return count

    def still_open(self) -> dict[str | None, int]:
        return {key: n for key, n in self.open.items() if n}


def inner(
    backend: BackendUnderTest, purpose: str, *mixins: type, tally: PoolTally | None = None, **attrs: t.Any
) -> type[TransactionalTestCase]:
    """A TransactionalTestCase on the shop app, databases ``..._faults_<purpose>`` (and ``_audit``)."""
    tally = tally or PoolTally()
    _USED.add(backend.name)

    def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
        return tally.watch(shop.create_app(config))

    namespace: dict[str, t.Any] = {
        "__module__": INNER_MODULE,
        "database_url": bind_url(backend, f"faults_{purpose}"),
        "binds": {"audit": bind_url(backend, f"faults_{purpose}_audit")},
        "alembic_config": False,
        "create_app": classmethod(create_app),
        "tally": tally,
        **attrs,
    }
    name = "_".join([m.__name__.strip("_") for m in mixins] + [purpose, backend.name])
    namespace["__qualname__"] = name
    return type(name, (*mixins, TransactionalTestCase), namespace)


def database_urls(backend: BackendUnderTest, purpose: str) -> list[str]:
    """The URLs the inner classes of ``purpose`` really use (a worker suffix under xdist)."""
    return [
        provisioning.worker_url(bind_url(backend, f"faults_{name}")).render_as_string(hide_password=False)
        for name in (purpose, f"{purpose}_audit")
    ]


def leftovers(backend: BackendUnderTest, purpose: str) -> dict[str, dict[str, int]]:
    """Rows left in the databases of ``purpose``, per database (only those holding any)."""
    found = {}
    for url in database_urls(backend, purpose):
        if database_exists(url):
            rows = leftover_rows(url)
            if rows:
                found[sa.make_url(url).database or url] = rows
    return found


def empty_tables(urls: t.Iterable[str]) -> None:
    """Delete every row a broken isolation left behind, so later classes start clean."""
    for url in urls:
        if database_exists(url):
            delete_all_rows(url)


def drop_table(url: str, table: str) -> None:
    with own_connection(url, begin=True) as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {conn.dialect.identifier_preparer.quote(table)}")


def drop_connections(urls: t.Iterable[str]) -> int:
    """Do to every connection of these databases what a server restart does; how many there were.

    PostgreSQL: ``pg_terminate_backend``; MySQL/MariaDB: ``KILL``. Run from an
    admin connection of our own, which is spared. Returns once the sessions
    are gone, as a restart has ended them all before the server is back.
    """
    names = [sa.make_url(u).database for u in urls]
    first = sa.make_url(next(iter(urls)))
    with admin_connection(first) as conn:
        if first.get_backend_name() == "postgresql":
            pids = (
                conn.execute(
                    sa.text(
                        "SELECT pid FROM pg_stat_activity WHERE datname IN :names AND pid <> pg_backend_pid()"
                    ).bindparams(sa.bindparam("names", expanding=True)),
                    {"names": names},
                )
                .scalars()
                .all()
            )
            for pid in pids:
                # With a timeout it waits for the backend to exit (PostgreSQL 14+).
                conn.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
            return len(pids)
        ids = (
            conn.execute(
                sa.text(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB IN :names AND ID <> CONNECTION_ID()"
                ).bindparams(sa.bindparam("names", expanding=True)),
                {"names": names},
            )
            .scalars()
            .all()
        )
        for ident in ids:
            with contextlib.suppress(sa.exc.DBAPIError):  # already gone
                conn.exec_driver_sql(f"KILL {int(ident)}")
        deadline = time.monotonic() + 5
        while ids and time.monotonic() < deadline:
            alive = (
                conn.execute(
                    sa.text("SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN :ids").bindparams(
                        sa.bindparam("ids", expanding=True)
                    ),
                    {"ids": list(ids)},
                )
                .scalars()
                .all()
            )
            if not alive:
                break
            time.sleep(0.01)
        return len(ids)


#: Backends this process ran inner classes on.
_USED: set[str] = set()


def _drop_own_databases() -> None:
    """At exit: drop this module's server databases, even those the provisioner forgot.

    A safety net: the provisioner drops what it built at exit, but not a
    database it was told to forget because a test escaped its transaction
    (``ProcessLeftovers`` tests exactly that, in a process of its own).
    """
    for backend in selected_backends():
        if backend.name not in _USED or backend.url is None or unavailable(backend.name):
            continue
        for purpose in (SHARED, "migrations"):
            for url in database_urls(backend, purpose):
                with contextlib.suppress(Exception):
                    drop_database(url, force=True)


atexit.register(_drop_own_databases)


def customers() -> int:
    return shop.count(shop.Customer)


def audits() -> int:
    return shop.count(shop.AuditEntry)


if t.TYPE_CHECKING:
    # Mixins are checked as the classes they end up in; at run time they must
    # not be TestCases themselves, or unittest would collect them.
    _Inner = TransactionalTestCase
    _Outer = OuterCase
else:
    _Inner = object
    _Outer = object


class _Isolated(_Inner):
    """Each test expects empty tables, commits on both binds (session, request) and counts."""

    def commit_and_count(self) -> None:
        self.assertEqual((customers(), audits()), (0, 0))
        shop.session.add(shop.Customer(email="iso@example.com"))
        shop.session.commit()
        self.assertEqual(self.client.post("/audit", json={"message": "m"}).status_code, 201)
        self.assertEqual((customers(), audits()), (1, 1))

    def test_isolated_a(self) -> None:
        self.commit_and_count()

    def test_isolated_b(self) -> None:
        self.commit_and_count()


class _Checks(_Outer):
    """Assertions shared by the outer classes."""

    def assert_later_class_isolated(self, purpose: str, *mixins: type, **attrs: t.Any) -> None:
        """A later class on the same databases runs and is isolated; nothing is left behind."""
        tally = PoolTally()
        result = run_case(inner(self.backend, purpose, *mixins, _Isolated, tally=tally, **attrs))
        self.assertEqual(result.testsRun, 2)
        self.assertTrue(result.wasSuccessful(), transcript(result))
        self.assertEqual(tally.still_open(), {})
        self.assertEqual(leftovers(self.backend, purpose), {})

    def assert_setup_class_error(self, result: RecordingResult) -> BaseException:
        """The run reported exactly one error, from setUpClass, and ran no test."""
        self.assertEqual(result.testsRun, 0, transcript(result))
        self.assertEqual(result.failures, [])
        self.assertEqual(len(result.errors), 1, transcript(result))
        (raised,) = result.raised
        self.assertIn("setUpClass", raised.where)
        return raised.exception


# -- setUpClass failing half way ------------------------------------------------------------


class _SetUpTestDataFails(_Inner):
    @classmethod
    def setUpTestData(cls) -> None:
        shop.session.add_all([shop.Customer(email="class@example.com"), shop.AuditEntry(message="class")])
        shop.session.flush()
        raise RuntimeError("setUpTestData fails half way")

    def test_never_runs(self) -> None:
        raise AssertionError("setUpClass failed: no test may run")


class _SubclassSetUpClassFails(_Inner):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        raise RuntimeError("the subclass's own setUpClass fails after super()")

    def test_never_runs(self) -> None:
        raise AssertionError("setUpClass failed: no test may run")


def _bad_migrations_case(
    backend: BackendUnderTest, tally: PoolTally, alembic_config: t.Any
) -> type[TransactionalTestCase]:
    _USED.add(backend.name)

    def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
        return tally.watch(bad_migrations.create_app(config))

    def commit_and_count(self: TransactionalTestCase) -> None:
        self.assertEqual(bad_migrations.count(), 0)
        bad_migrations.db.session.add(bad_migrations.Gadget(name="g"))
        bad_migrations.db.session.commit()
        self.assertEqual(bad_migrations.count(), 1)

    name = f"Gadgets_{backend.name}"
    return type(
        name,
        (TransactionalTestCase,),
        {
            "__module__": INNER_MODULE,
            "__qualname__": name,
            "database_url": bind_url(backend, "faults_migrations"),
            "alembic_config": alembic_config,
            "create_app": classmethod(create_app),
            "test_a": commit_and_count,
            "test_b": commit_and_count,
        },
    )


@per_backend()
class SetUpClassFailsHalfWay(_Checks):
    """Whatever fails in setUpClass: nothing stays open, and later classes work and are isolated."""

    def snapshot(self) -> tuple[t.Any, dict[str, t.Any]]:
        """What a class redirects on the shop app's ``db``; it must be restored after a failure."""
        factory = shop.db.session.session_factory
        return factory.class_, dict(factory.kw)

    def left_open(self, tally: PoolTally, before: t.Any) -> list[str]:
        problems = []
        if flask.has_app_context():
            problems.append("an app context is still pushed")
        if tally.still_open():
            problems.append(f"connections still checked out: {tally.still_open()}")
        if self.snapshot() != before:
            problems.append("shop.db.session is still redirected (session class or options)")
        return problems

    def test_factory_raises_after_init_app(self) -> None:
        tally = PoolTally()

        def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
            tally.watch(shop.create_app(config))
            raise RuntimeError("the factory fails after db.init_app")

        before = self.snapshot()
        case = inner(self.backend, SHARED, _Isolated, create_app=classmethod(create_app))
        exc = self.assert_setup_class_error(run_case(case))
        self.assertIn("the factory fails after db.init_app", str(exc))
        self.assertEqual(self.left_open(tally, before), [])
        self.assert_later_class_isolated(SHARED)

    def test_migration_fails(self) -> None:
        tally = PoolTally()
        result = run_case(_bad_migrations_case(self.backend, tally, bad_migrations.HERE))
        exc = self.assert_setup_class_error(result)
        self.assertIsInstance(exc, MigrationError)
        self.assertIn(bad_migrations.BROKEN_REVISION, str(exc))
        self.assertFalse(flask.has_app_context(), "an app context is still pushed")
        self.assertEqual(tally.still_open(), {}, "connections still checked out")
        # The same database, now built from the models, works and is isolated.
        later = PoolTally()
        result = run_case(_bad_migrations_case(self.backend, later, False))
        self.assertEqual(result.testsRun, 2)
        self.assertTrue(result.wasSuccessful(), transcript(result))
        self.assertEqual(later.still_open(), {})
        url = provisioning.worker_url(bind_url(self.backend, "faults_migrations")).render_as_string(
            hide_password=False
        )
        self.assertEqual(leftover_rows(url), {})

    def test_set_up_test_data_raises_after_writing(self) -> None:
        tally = PoolTally()
        before = self.snapshot()
        exc = self.assert_setup_class_error(
            run_case(inner(self.backend, SHARED, _SetUpTestDataFails, tally=tally))
        )
        self.assertIn("setUpTestData fails half way", str(exc))
        self.assertEqual(self.left_open(tally, before), [])
        self.assertEqual(leftovers(self.backend, SHARED), {}, "the class data was committed")
        self.assert_later_class_isolated(SHARED)

    def test_subclass_set_up_class_raises_after_super(self) -> None:
        """unittest skips tearDownClass when setUpClass raises: the library must clean up anyway."""
        tally = PoolTally()
        before = self.snapshot()
        case = inner(self.backend, SHARED, _SubclassSetUpClassFails, tally=tally)

        def tear_down_if_left() -> None:
            # Undo what the library left, so a failure here does not spread to other tests.
            if getattr(case, "_tt_state", None) is not None:
                case.tearDownClass()

        self.addCleanup(tear_down_if_left)
        exc = self.assert_setup_class_error(run_case(case))
        self.assertIn("fails after super()", str(exc))
        problems = self.left_open(tally, before)
        tear_down_if_left()
        self.assert_later_class_isolated(SHARED)
        self.assertEqual(problems, [])


# -- a test that ends the outer transaction by hand --------------------------------------------


class _EndsByHand(_Inner):
    """Test ``a`` writes on both binds, then ends the test's transaction itself."""

    how: t.ClassVar[str]

    def test_a_ends_the_transaction(self) -> None:
        shop.session.add_all([shop.Customer(email="before@example.com"), shop.AuditEntry(message="before")])
        shop.session.commit()
        connection = self.db.session.connection()
        getattr(connection, self.how)()

    def test_b_after(self) -> None:
        _Isolated.commit_and_count(self)  # type: ignore[arg-type]

    def test_c_after(self) -> None:
        _Isolated.commit_and_count(self)  # type: ignore[arg-type]


class _ClassCustomer(_Inner):
    customer: t.ClassVar[shop.Customer]

    @classmethod
    def setUpTestData(cls) -> None:
        cls.customer = shop.Customer(email="class@example.com")
        shop.session.add(cls.customer)

    def test_b_after(self) -> None:
        self.assertEqual(customers(), 1)
        self.assertEqual(shop.session.scalars(sa.select(shop.Customer.email)).all(), ["class@example.com"])

    test_c_after = test_b_after


@per_backend()
class EndsTransactionByHand(_Checks):
    """``Connection.commit()``/``rollback()`` on the test's connection: that test fails, clearly.

    Later tests, and later classes, must still be isolated: nothing the test
    wrote may survive it.
    """

    def check(self, how: str, *mixins: type) -> None:
        purpose = SHARED
        self.addCleanup(empty_tables, database_urls(self.backend, purpose))
        result = run_case(inner(self.backend, purpose, *mixins, _EndsByHand, how=how))
        self.assertEqual(result.testsRun, 3)
        self.assertEqual(outcome(result)["failures"], set(), transcript(result))
        self.assertEqual(outcome(result)["errors"], {"test_a_ends_the_transaction"}, transcript(result))
        exc = result.raised_by("test_a_ends_the_transaction")
        self.assertIsInstance(exc, IsolationError)
        self.assertIn("ended its own transaction", str(exc))
        self.assertIn("db.session.connection()", str(exc))
        self.assertEqual(leftovers(self.backend, purpose), {})
        self.assert_later_class_isolated(purpose)

    def test_rollback_after_writing(self) -> None:
        self.check("rollback")

    def test_commit_after_writing(self) -> None:
        """What the test wrote before its COMMIT was committed for real: it must not outlive the test."""
        self.check("commit")

    def test_rollback_with_class_data(self) -> None:
        self.check("rollback", _ClassCustomer)

    def test_commit_with_class_data(self) -> None:
        """Committing the class's connection commits the class data too: it must not outlive the class."""
        self.check("commit", _ClassCustomer)


# -- PostgreSQL's aborted transaction ---------------------------------------------------------


class _Aborted(_Inner):
    """Errors the tests catch and never roll back; the next test writes the same unique row.

    ``lock_timeout`` turns a wait on a lock held by a leaked transaction into an
    error instead of a hang.
    """

    EMAIL = "same@example.com"

    def write(self) -> None:
        shop.session.execute(sa.text("SET LOCAL lock_timeout = '3s'"))
        shop.session.add(shop.Customer(email=self.EMAIL))
        shop.session.commit()
        self.client.post("/audit", json={"message": "m"})

    def test_a1_error_through_the_session(self) -> None:
        self.write()
        with self.assertRaises(sa.exc.ProgrammingError):
            shop.session.execute(sa.text("SELECT no_such_column FROM customers"))
        # no rollback: the test ends with the session's transaction aborted

    def test_a2_next(self) -> None:
        self.assertEqual(customers(), len(getattr(self, "class_customers", [])))
        self.write()

    def test_b1_error_on_an_engine_connection_left_open(self) -> None:
        self.write()
        conn = self.db.engine.connect()
        with self.assertRaises(sa.exc.ProgrammingError):
            conn.execute(sa.text("SELECT no_such_column FROM customers"))
        # neither rolled back nor closed, as code that forgets its connection does

    def test_b2_next(self) -> None:
        self.test_a2_next()


class _AbortedWithClassData(_Inner):
    class_customers: t.ClassVar[list[shop.Customer]]

    @classmethod
    def setUpTestData(cls) -> None:
        cls.class_customers = [shop.Customer(email="class@example.com")]
        shop.session.add_all(cls.class_customers)


@per_backend(*POSTGRES)
class AbortedTransaction(_Checks):
    """An error leaves PostgreSQL's transaction aborted; the test ends without rolling back."""

    def check(self, *mixins: type) -> None:
        tally = PoolTally()
        result = run_case(inner(self.backend, SHARED, *mixins, _Aborted, tally=tally))
        self.assertEqual(result.testsRun, 4)
        self.assertTrue(result.wasSuccessful(), transcript(result))
        self.assertEqual(tally.still_open(), {}, "connections still checked out after the class")
        self.assertEqual(leftovers(self.backend, SHARED), {})
        self.assert_later_class_isolated(SHARED)

    def test_next_test_is_fine(self) -> None:
        self.check()

    def test_next_test_is_fine_with_class_data(self) -> None:
        self.check(_AbortedWithClassData)


# -- DDL --------------------------------------------------------------------------------------


class _DDL(_Inner):
    """DDL and TRUNCATE in a test that wrote nothing before them."""

    def test_a_create_table(self) -> None:
        shop.session.execute(sa.text(f"CREATE TABLE {TMP_TABLE} (id INT)"))
        shop.session.execute(sa.text(f"INSERT INTO {TMP_TABLE} (id) VALUES (1)"))
        self.assertEqual(shop.session.scalar(sa.text(f"SELECT COUNT(*) FROM {TMP_TABLE}")), 1)

    def test_b_after(self) -> None:
        _Isolated.commit_and_count(self)  # type: ignore[arg-type]

    def test_c_truncate(self) -> None:
        # (SQLite has no TRUNCATE: its classes leave this test out.)
        shop.session.execute(sa.text("TRUNCATE TABLE orders"))

    def test_d_after(self) -> None:
        _Isolated.commit_and_count(self)  # type: ignore[arg-type]


class _DDLAfterWriting(_Inner):
    """DDL in a test that committed rows (through db.session) before it."""

    def test_a_write_then_create_table(self) -> None:
        shop.session.add_all([shop.Customer(email="before@example.com"), shop.AuditEntry(message="before")])
        shop.session.commit()
        shop.session.execute(sa.text(f"CREATE TABLE {TMP_TABLE} (id INT)"))

    def test_b_after(self) -> None:
        _Isolated.commit_and_count(self)  # type: ignore[arg-type]

    def test_c_after(self) -> None:
        _Isolated.commit_and_count(self)  # type: ignore[arg-type]


@per_backend(*MYSQL)
class ImplicitCommitOnMySQL(_Checks):
    """DDL and TRUNCATE commit implicitly on MySQL/MariaDB: that test fails, later ones are isolated."""

    def setUp(self) -> None:
        self.url = database_urls(self.backend, SHARED)[0]
        self.addCleanup(self.assert_later_class_isolated, SHARED)
        self.addCleanup(drop_table, self.url, TMP_TABLE)
        self.addCleanup(empty_tables, database_urls(self.backend, SHARED))

    def assert_implicit_commit(self, exc: BaseException, statement: str) -> None:
        self.assertIsInstance(exc, IsolationError)
        self.assertIn(statement, str(exc))
        self.assertIn("commits implicitly", str(exc))

    def test_ddl_and_truncate_fail_the_test(self) -> None:
        result = run_case(inner(self.backend, SHARED, _DDL))
        self.assertEqual(result.testsRun, 4)
        self.assertEqual(outcome(result)["failures"], set(), transcript(result))
        self.assertEqual(
            outcome(result)["errors"], {"test_a_create_table", "test_c_truncate"}, transcript(result)
        )
        self.assert_implicit_commit(result.raised_by("test_a_create_table"), f"CREATE TABLE {TMP_TABLE}")
        self.assert_implicit_commit(result.raised_by("test_c_truncate"), "TRUNCATE TABLE orders")
        # The DDL really was committed: that is what the error is about.
        self.assertIn(TMP_TABLE, table_names(self.url))
        self.assertEqual(leftovers(self.backend, SHARED), {})

    def test_rows_written_before_the_ddl_do_not_outlive_the_test(self) -> None:
        """The implicit commit committed the test's earlier rows: later tests must not see them."""
        result = run_case(inner(self.backend, SHARED, _DDLAfterWriting))
        self.assertEqual(result.testsRun, 3)
        self.assertEqual(outcome(result)["errors"], {"test_a_write_then_create_table"}, transcript(result))
        self.assert_implicit_commit(result.raised_by("test_a_write_then_create_table"), "CREATE TABLE")
        self.assertEqual(outcome(result)["failures"], set(), transcript(result))
        self.assertEqual(leftovers(self.backend, SHARED), {})


@per_backend("sqlite", *POSTGRES)
class TransactionalDDL(_Checks):
    """PostgreSQL and SQLite roll DDL back with the test: nothing to report."""

    def setUp(self) -> None:
        self.url = database_urls(self.backend, SHARED)[0]
        self.addCleanup(drop_table, self.url, TMP_TABLE)

    def check(self, *mixins: type, **attrs: t.Any) -> None:
        result = run_case(inner(self.backend, SHARED, *mixins, **attrs))
        self.assertTrue(result.testsRun > 0 and result.wasSuccessful(), transcript(result))
        self.assertNotIn(TMP_TABLE, table_names(self.url))
        self.assertIn("customers", table_names(self.url))
        self.assertEqual(leftovers(self.backend, SHARED), {})

    def test_ddl_is_rolled_back(self) -> None:
        sqlite = self.backend.name == "sqlite"
        self.check(_DDL, **({"test_c_truncate": None} if sqlite else {}))

    def test_rows_written_before_the_ddl_are_rolled_back_too(self) -> None:
        self.check(_DDLAfterWriting)


# -- the server drops every connection ---------------------------------------------------------


class _Restart(_Inner):
    """The server drops every connection of the class's databases before test ``b``."""

    dropped: t.ClassVar[list[int]]
    urls: t.ClassVar[list[str]]

    def setUp(self) -> None:
        if self._testMethodName == "test_b_after_the_restart":
            # Between tests: the pools hold test a's connections, idle.
            type(self).dropped.append(drop_connections(self.urls))
        super().setUp()

    def test_a_before_the_restart(self) -> None:
        _Isolated.commit_and_count(self)  # type: ignore[arg-type]

    def test_b_after_the_restart(self) -> None:
        _Isolated.commit_and_count(self)  # type: ignore[arg-type]

    def test_c_later(self) -> None:
        _Isolated.commit_and_count(self)  # type: ignore[arg-type]

    def test_d_later_still(self) -> None:
        _Isolated.commit_and_count(self)  # type: ignore[arg-type]


@per_backend(*SERVERS)
class ServerRestart(_Checks):
    """Stale pooled connections after the server dropped them (a restart, a failover)."""

    def test_between_two_tests_of_a_class(self) -> None:
        """Within a class the pool cannot know a connection died until it is used.

        Pre-pinging would cost a round trip in every test, so the tests that meet
        a dropped connection (one per database: b, then c for the other bind)
        fail with the driver's error; the pool discards each one, and the tests
        after them work. Between classes nothing fails (the tests below).
        """
        urls = database_urls(self.backend, SHARED)
        for url in urls:
            keeper.discard(url)  # idle connections earlier classes left for later ones
        case = inner(self.backend, SHARED, _Restart, dropped=[], urls=urls)
        result = run_case(case)
        self.assertEqual(result.testsRun, 4)
        self.assertEqual(
            case.dropped, [2], "test a's two connections (default and audit) should have been pooled"
        )  # type: ignore[attr-defined]
        failed = {test.id().rsplit(".", 1)[-1] for test, _ in result.errors + result.failures}
        self.assertIn("test_b_after_the_restart", failed, transcript(result))
        self.assertLessEqual(failed, {"test_b_after_the_restart", "test_c_later"}, transcript(result))
        self.assertEqual(leftovers(self.backend, SHARED), {})

    def test_between_two_classes_of_one_app(self) -> None:
        """The app is built once and handed to both classes, as module-level apps are."""
        urls = database_urls(self.backend, SHARED)
        apps: list[flask.Flask] = []

        def create_app(cls: type, config: dict[str, t.Any]) -> flask.Flask:
            if not apps:
                apps.append(shop.create_app(config))
            return apps[0]

        first = run_case(inner(self.backend, SHARED, _Isolated, create_app=classmethod(create_app)))
        self.assertTrue(first.wasSuccessful(), transcript(first))
        drop_connections(urls)
        second = run_case(inner(self.backend, SHARED, _Isolated, create_app=classmethod(create_app)))
        self.assertEqual(second.testsRun, 2)
        self.assertTrue(second.wasSuccessful(), transcript(second))
        self.assertEqual(len(apps), 1)
        self.assertEqual(leftovers(self.backend, SHARED), {})


# -- connection leaks ------------------------------------------------------------------------------


class _EveryKind(_Inner):
    """Tests ending in every way; the pools are read at the end of the class."""

    pools_at_end: t.ClassVar[dict[str | None, int]]
    thread_errors: t.ClassVar[list[BaseException]]

    @classmethod
    def tearDownClass(cls) -> None:
        engines = cls.tally.engines  # type: ignore[attr-defined]
        cls.pools_at_end = {key: engine.pool.checkedout() for key, engine in engines.items()}
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        if self._testMethodName == "test_skipped_in_setup":
            raise unittest.SkipTest("skipped in setUp on purpose")

    def write(self) -> None:
        shop.session.add_all([shop.Customer(email="w@example.com"), shop.AuditEntry(message="w")])
        shop.session.commit()

    def test_passes(self) -> None:
        self.write()
        self.client.post("/customers/raw", json={"email": "raw@example.com"})

    def test_fails(self) -> None:
        self.write()
        self.fail("fails on purpose")

    def test_errors(self) -> None:
        self.write()
        raise RuntimeError("errors on purpose")

    def test_skipped_in_setup(self) -> None:
        raise AssertionError("setUp skips this test")

    def test_ends_its_transaction(self) -> None:
        self.db.session.connection().rollback()

    def test_failing_request(self) -> None:
        self.write()
        self.assertEqual(
            self.client.post("/customers/fail", json={"email": "f@example.com"}).status_code, 500
        )

    def test_leaves_connections_and_savepoints_open(self) -> None:
        self.write()
        conn = self.db.engines["audit"].connect()
        conn.execute(shop.AuditEntry.__table__.insert().values(message="open"))
        shop.session.begin_nested()
        shop.session.add(shop.Customer(email="nested@example.com"))
        shop.session.flush()
        self.left_open = conn

    def test_thread_using_the_session(self) -> None:
        self.write()
        # The thread runs in a copy of the test's context (as asyncio.to_thread does):
        # it shares the test's app context, hence its scoped session.
        context = contextvars.copy_context()

        def work() -> None:
            try:
                shop.session.add(shop.Customer(email="thread@example.com"))
                shop.session.commit()
            except Exception as exc:  # noqa: BLE001 - the outer test asserts on it
                type(self).thread_errors.append(exc)

        thread = threading.Thread(target=context.run, args=(work,), name="faults-thread", daemon=True)
        thread.start()
        thread.join(HANG_TIMEOUT)
        self.assertFalse(thread.is_alive(), "the thread hung")


class _EveryKindWithClassData(_Inner):
    @classmethod
    def setUpTestData(cls) -> None:
        shop.session.add(shop.Customer(email="class@example.com"))


@per_backend()
class ConnectionLeaks(_Checks):
    """After every class the pools have nothing checked out, however its tests ended."""

    def check(self, *mixins: type, in_use_at_end: int) -> None:
        tally = PoolTally()
        case = inner(self.backend, SHARED, *mixins, _EveryKind, tally=tally, thread_errors=[])
        result = run_case(case)
        self.assertEqual(result.testsRun, 8)
        self.assertEqual(
            outcome(result),
            {
                "failures": {"test_fails"},
                # The thread's refusal fails the test that started it too.
                "errors": {"test_errors", "test_ends_its_transaction", "test_thread_using_the_session"},
                "skipped": {"test_skipped_in_setup"},
            },
            transcript(result),
        )
        self.assertIsInstance(result.raised_by("test_ends_its_transaction"), IsolationError)
        self.assertIn("faults-thread", str(result.raised_by("test_thread_using_the_session")))
        # Before the class ends only its own class transaction's connections are in use.
        self.assertEqual(case.pools_at_end, {None: in_use_at_end, "audit": in_use_at_end})  # type: ignore[attr-defined]
        self.assertEqual(tally.still_open(), {})
        self.assertEqual(set(tally.open), {None, "audit"}, "checkouts were not seen on both engines")
        self.assertFalse(flask.has_app_context())
        errors = case.thread_errors  # type: ignore[attr-defined]
        self.assertEqual(len(errors), 1)
        self.assertIsInstance(errors[0], IsolationError)
        self.assertIn("faults-thread", str(errors[0]))
        self.assertEqual(leftovers(self.backend, SHARED), {})
        self.assert_later_class_isolated(SHARED)

    def test_every_kind_of_test(self) -> None:
        self.check(in_use_at_end=0)

    def test_every_kind_of_test_with_class_data(self) -> None:
        self.check(_EveryKindWithClassData, in_use_at_end=1)


# -- a test process killed mid-run ------------------------------------------------------------------


_SUBPROCESS_SUITE = textwrap.dedent(
    """
    import os
    import sys
    import time
    import unittest

    import sqlalchemy as sa

    from tests.apps import shop
    from transactional_testcase import TransactionalTestCase

    MARKER, MODE = sys.argv[3], sys.argv[4]


    class Killed(TransactionalTestCase):
        database_url = sys.argv[1]
        binds = {"audit": sys.argv[2]}
        alembic_config = False

        @classmethod
        def create_app(cls, config):
            return shop.create_app(config)

        def test_inside(self):
            for key in (None, "audit"):
                names = sa.inspect(self.db.engines[key].connect()).get_table_names()
                self.assertNotIn("stale_marker", names)
            self.assertEqual((shop.count(shop.Customer), shop.count(shop.AuditEntry)), (0, 0))
            shop.session.add_all([shop.Customer(email="k@example.com"), shop.AuditEntry(message="k")])
            shop.session.commit()
            self.assertEqual((shop.count(shop.Customer), shop.count(shop.AuditEntry)), (1, 1))
            if MODE == "hang":
                with open(MARKER, "w") as f:
                    f.write(str(os.getpid()))
                time.sleep(120)
            if MODE == "escape":
                # Commit the test's own transaction on both databases: an IsolationError.
                for model in (shop.Customer, shop.AuditEntry):
                    self.db.session.connection(bind_arguments={"mapper": model}).commit()


    suite = unittest.defaultTestLoader.loadTestsFromTestCase(Killed)
    sys.exit(0 if unittest.TextTestRunner().run(suite).wasSuccessful() else 1)
    """
)


class ProcessLeftovers(unittest.TestCase):
    """What a test process leaves on the servers (PostgreSQL and MariaDB at once).

    SIGKILL in the middle of a test: the next run starts cleanly and cleans up
    after itself. A process whose last test escaped its transaction: nothing.
    """

    def setUp(self) -> None:
        wanted = {"psycopg2", "pymysql"}
        missing = wanted - {b.name for b in selected_backends()}
        if missing:
            self.skipTest(
                f"needs the {', '.join(sorted(missing))} backends: include them in TT_TEST_BACKENDS"
            )
        for name in sorted(wanted):
            require(name)
        pg = bind_url(BACKENDS["psycopg2"], "faults_killed")
        my = bind_url(BACKENDS["pymysql"], "faults_killed")
        assert pg is not None and my is not None
        self.pg, self.my = pg, my
        for url in (pg, my):
            self.addCleanup(drop_database, url, force=True)
        # The templates of these two databases (the library names them per URL, bind
        # and kind of schema source: create_all() here).
        self.templates = [
            (pg, provisioning._template_prefix(sa.make_url(pg), None, "create_all")),
            (my, provisioning._template_prefix(sa.make_url(my), "audit", "create_all")),
        ]
        for url, prefix in self.templates:
            self.addCleanup(self.drop_templates, url, prefix)
        folder = tempfile.mkdtemp(prefix="tt_faults_killed_")
        self.addCleanup(shutil.rmtree, folder, True)
        self.marker = os.path.join(folder, "inside")

    @staticmethod
    def drop_templates(url: str, prefix: str) -> None:
        for name in server_databases(url, prefix):
            drop_database(
                sa.make_url(url).set(database=name).render_as_string(hide_password=False), force=True
            )

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if k not in ("PYTEST_XDIST_WORKER", provisioning.WORKER_ENV)
        }
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        env["TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES"] = "0"
        return env

    def kill_inside_the_test(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SUBPROCESS_SUITE, self.pg, self.my, self.marker, "hang"],
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 120
            while not os.path.exists(self.marker):
                if proc.poll() is not None:
                    self.fail(f"the suite ended before reaching the test: {proc.communicate()[0]!r}")
                if time.monotonic() > deadline:
                    self.fail("the suite never reached the test")
                time.sleep(0.05)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=HANG_TIMEOUT)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=HANG_TIMEOUT)
            if proc.stdout is not None:
                proc.stdout.close()
        self.assertEqual(proc.returncode, -signal.SIGKILL)

    def leave_stale_marker(self, url: str) -> None:
        """What a run killed during its setUpClass could have left: a stray table."""
        with own_connection(url, begin=True) as conn:
            conn.exec_driver_sql("CREATE TABLE stale_marker (id INTEGER PRIMARY KEY)")

    def run_again(self) -> None:
        proc = subprocess.run(
            [sys.executable, "-c", _SUBPROCESS_SUITE, self.pg, self.my, self.marker, "run"],
            check=False,
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        self.assertIn("Ran 1 test", proc.stderr)

    def assert_all_dropped(self) -> None:
        self.assertFalse(
            database_exists(self.pg), "the PostgreSQL test database outlived the process that used it"
        )
        self.assertFalse(
            database_exists(self.my), "the MariaDB test database outlived the process that used it"
        )
        for url, prefix in self.templates:
            self.assertEqual(
                server_databases(url, prefix), set(), "a template outlived the process that used it"
            )

    def test_next_run_replaces_the_leftovers(self) -> None:
        self.kill_inside_the_test()
        # The killed run could not drop anything: its databases and templates are still there.
        for url, prefix in self.templates:
            self.assertTrue(database_exists(url))
            self.assertEqual(len(server_databases(url, prefix)), 1)
            self.leave_stale_marker(url)
        self.run_again()
        self.assert_all_dropped()

    def test_databases_a_test_escaped_from_are_dropped_at_exit(self) -> None:
        """A test that committed its own transaction: its databases are rebuilt next time, and still dropped."""
        proc = subprocess.run(
            [sys.executable, "-c", _SUBPROCESS_SUITE, self.pg, self.my, self.marker, "escape"],
            check=False,
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(proc.returncode, 1, proc.stdout + proc.stderr)
        self.assertIn("IsolationError: the test ended its own transaction", proc.stderr)
        self.assert_all_dropped()

    def test_half_built_template_is_rebuilt(self) -> None:
        """A MariaDB template without its completion mark (a kill while saving it) is not cloned."""
        self.kill_inside_the_test()
        url, prefix = self.templates[1]
        (name,) = server_databases(url, prefix)
        template = sa.make_url(url).set(database=name).render_as_string(hide_password=False)
        self.assertIn("audit_entries", table_names(template))
        drop_table(template, "audit_entries")
        drop_table(template, "transactional_testcase_complete")
        self.run_again()  # the test writes to audit_entries: a clone of the half-built template has none
        self.assert_all_dropped()


if __name__ == "__main__":
    unittest.main()
