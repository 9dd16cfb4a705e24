"""Isolation, proved by a model: a hypothesis state machine drives app code inside tests.

``StateMachine_<backend>.test_model_agrees_with_database`` runs
:class:`IsolationMachine` with a fixed seed, and
``ClassDataStateMachine_<backend>`` runs it again in a class whose
``setUpTestData`` wrote rows (in one INSERT that returns ids) that every
example starts from: there each example runs in the savepoint of the class
transaction the previous one rolled back to. Each hypothesis example is a random
sequence of what app code does inside one test: add/flush/commit/rollback
through ``db.session`` and through ``shop.session`` (a reference taken at import
time), ``begin_nested()`` blocks released or abandoned, IntegrityErrors caught and
recovered, ``db.session.remove()``/``close()``, test-client requests that commit,
answer 409 after a rollback or 500 after a flush, ``db.engine.connect()`` and
``db.engine.begin()`` writes with their own commit, rollback or close, on both
binds (the ``audit`` bind is a second database). The machine keeps its own model
of what the test should see and, after every step, compares it with what
``db.session`` sees in both databases.

Each example is a test of its own
---------------------------------
An example must run in its own test transaction, exactly as one test method
would. The driving test method therefore has no transaction (``setUp`` does
nothing for it), and every example makes a fresh instance of the same generated
class and drives a real test lifecycle by hand (:class:`ExampleTest`): the
library's ``setUp()`` when the machine is built, the cleanups it registered in
the machine's ``teardown()``. ``addCleanup`` sends an example's cleanups to an
:class:`~contextlib.ExitStack`, so they run in reverse order and their errors
reach hypothesis (``doCleanups()`` outside a running test would swallow them).
After every example:

* the test's connections must be closed and the pools must have nothing
  checked out (a leaked connection is force-closed so later examples run);
  with class data, the class's connections must be back in the test's
  savepoint, with nothing else checked out;
* an independent connection per database (``leftover_rows``) must find no row,
  whatever the example committed (rows found are reported and wiped).

The model
---------
Per table (customers; audit entries in the other bind) the model holds the
values *committed* inside the test's transaction and the values *pending* in
the session's transaction: added since the last ``commit()``, flushed or not
(queries autoflush). ``commit()`` makes pending committed; ``rollback()``,
``remove()`` and ``close()`` drop what is pending. It also tracks whether the
session's transaction holds a SAVEPOINT on each bind yet (it takes one on first
use: a flush or a query), because of the first divergence below.

Divergences from production, modelled here and pinned by the ``test_divergence_*`` tests
-----------------------------------------------------------------------------------------
1. A ``db.engine.connect()``/``begin()`` commit made while ``db.session`` holds
   its SAVEPOINT lands inside that savepoint: a later ``db.session.rollback()``,
   ``remove()`` or ``close()`` discards it. In production the direct connection is
   another connection and its commit is durable. (Modelled: such a commit joins
   the session's pending work; made while the session holds no savepoint, it is
   committed.)
2. With Flask <= 3.1 a test-client request reuses the test's app context, so the
   request's ``db.session`` *is* the test's session, and the app context is not
   torn down after the request:

   * a request that flushes and then fails with 500 leaves its flushed row
     pending in the test's session, where the test's (or the next request's)
     commit commits it; in production the request's session is removed and the
     row discarded;
   * a request that rolls back (the 409 on a duplicate) discards the test's own
     uncommitted work too; a request that commits commits it.

Interleaving a direct connection with the session
-------------------------------------------------
When ``db.session`` begins its SAVEPOINT or flushes rows while a
``db.engine.connect()`` connection has an open transaction, the session's work
lands inside the direct connection's savepoint (one shared connection). A direct
commit then keeps both, as in production; a direct rollback or close of a
connection that wrote would undo the session's work too, so the library raises
an ``IsolationError`` instead, and the direct write stays. The machine drives
both and models exactly that; the ``test_interleaved_*`` tests pin it.
``TT_STATE_MACHINE_EXAMPLES=N`` overrides the number of examples per backend.
Each driving test prints ``state machine: <backend> ran N sequences, M steps``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import importlib.metadata
import os
import sys
import time
import typing as t

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.engine import Connection
from werkzeug.local import LocalProxy

from tests.admin import delete_all_rows, leftover_rows
from tests.apps import model_app, shop
from tests.matrix import on_all_backends
from transactional_testcase import IsolationError
from transactional_testcase.redirect import RedirectedEngine

if t.TYPE_CHECKING:  # mixed into the generated BackendTestCase classes
    from tests.matrix import BackendTestCase as _CaseBase
else:
    _CaseBase = object

db = shop.db
Customer = shop.Customer
AuditEntry = shop.AuditEntry

#: Steps per example (hypothesis runs this many unless it is shrinking).
STEPS = 30
#: Examples per backend: every step is a few statements on a local server.
EXAMPLES = {"sqlite": 150, "psycopg2": 50, "psycopg": 50, "pymysql": 50, "mysqlclient": 50}

CUSTOMERS = "customers"
AUDIT = "audit"


@dataclasses.dataclass(frozen=True)
class Target:
    """One table the machine writes to, and how app code writes to it."""

    bind_key: str | None
    model: type[t.Any]
    column: t.Any
    prefix: str
    suffix: str

    def value(self, n: int) -> str:
        return f"{self.prefix}{n}{self.suffix}"

    def new(self, value: str) -> t.Any:
        return self.model(**{self.column.key: value})

    def insert(self, value: str) -> sa.Insert:
        return sa.insert(self.model.__table__).values({self.column.key: value})

    def seen(self) -> list[str]:
        """What ``db.session`` sees (autoflushing first, as app code's queries do)."""
        return list(db.session.scalars(sa.select(self.column)))


TARGETS: dict[str, Target] = {
    CUSTOMERS: Target(None, Customer, Customer.email, "c", "@example.com"),
    AUDIT: Target("audit", AuditEntry, AuditEntry.message, "a", ""),
}

#: The test's session under the two names app code uses: ``db.session``, looked
#: up on every use, and a reference taken at import time.
SESSIONS: dict[str, t.Any] = {"db.session": LocalProxy(lambda: db.session), "shop.session": shop.session}

#: The request routes that flush a row and then fail with 500.
FAILING_ROUTES = {
    (CUSTOMERS, "abort"): "/customers/fail",
    (CUSTOMERS, "raise"): "/customers/explode",
    (AUDIT, "abort"): "/audit/fail",
    (AUDIT, "raise"): "/audit/explode",
}
PAYLOAD_KEY = {CUSTOMERS: "email", AUDIT: "message"}

targets = st.sampled_from(sorted(TARGETS))
session_names = st.sampled_from(sorted(SESSIONS))
#: What the app code does with the session right before a direct write.
befores = st.sampled_from(["nothing", "session commit", "session rollback"])


class Abandon(Exception):
    """Raised inside a block to abandon it (its context manager rolls back)."""


# -- the model ---------------------------------------------------------------------------


@dataclasses.dataclass
class Table:
    committed: set[str] = dataclasses.field(default_factory=set)
    pending: set[str] = dataclasses.field(default_factory=set)
    #: Whether the session's transaction holds its SAVEPOINT on this table's bind.
    savepoint: bool = False
    #: Whether the session holds added objects of this table not flushed yet.
    unflushed: bool = False


class Model:
    """What the test should see through ``db.session``."""

    def __init__(self, committed: t.Mapping[str, t.Iterable[str]] | None = None) -> None:
        """``committed``: what the test starts from (the class data), per table."""
        committed = committed or {}
        self.tables = {name: Table(committed=set(committed.get(name, ()))) for name in TARGETS}

    def expected(self, name: str) -> set[str]:
        table = self.tables[name]
        return table.committed | table.pending

    def add(self, name: str, value: str) -> None:
        """``session.add()``: pending, flushed by the next flush or query."""
        self.tables[name].pending.add(value)
        self.tables[name].unflushed = True

    def flush(self) -> None:
        """A flush takes the session's savepoint on every bind it writes to."""
        for table in self.tables.values():
            if table.unflushed:
                table.unflushed, table.savepoint = False, True

    def query(self, name: str) -> None:
        """A query autoflushes, then uses (and takes a savepoint on) its bind."""
        self.flush()
        self.tables[name].savepoint = True

    def commit(self) -> None:
        for table in self.tables.values():
            table.committed |= table.pending
            table.pending.clear()
            table.savepoint = table.unflushed = False

    def rollback(self) -> None:
        """rollback(), remove(), close(): everything since the last commit goes."""
        for table in self.tables.values():
            table.pending.clear()
            table.savepoint = table.unflushed = False

    def direct_commit(self, name: str, value: str, enclosed: bool) -> None:
        """A db.engine commit: durable, unless the session's savepoint encloses it (divergence 1).

        ``enclosed``: the session held its savepoint when the direct
        connection's transaction began (a savepoint the session begins later
        sits inside the direct one instead).
        """
        table = self.tables[name]
        (table.pending if enclosed else table.committed).add(value)

    def peek_is_safe(self, name: str) -> bool:
        """Whether a session query now, inside a direct connection's transaction, stays out of it.

        It does when the session's savepoint already exists (it encloses the
        direct one) and nothing is left to flush into the direct transaction.
        """
        table = self.tables[name]
        return table.savepoint and not table.unflushed


# -- one test's lifecycle, driven by hand -----------------------------------------------------


class ExampleTest:
    """A fresh test of ``case``'s class: ``setUp()`` now, cleanups and checks in :meth:`finish`."""

    def __init__(self, case: _Machine) -> None:
        self.case = case
        self.cleanups = case._sm_cleanups = contextlib.ExitStack()
        try:
            case.setUp()
            engines = shop.engines()
            assert all(isinstance(e, RedirectedEngine) for e in engines.values()), "db.engines not redirected"
            self.connections: dict[str | None, Connection] = {
                key: t.cast(RedirectedEngine, engine).test_connection() for key, engine in engines.items()
            }
            self.pools = {key: engine.pool for key, engine in engines.items()}
            #: With class data, the class's connections and the savepoint the test runs in.
            self.class_data = bool(case.class_values())
            self.savepoints = {key: conn.get_nested_transaction() for key, conn in self.connections.items()}
        except BaseException:
            self.cleanups.close()
            raise

    def finish(self) -> None:
        """Run the test's cleanups; then nothing may be left open or committed."""
        error: BaseException | None = None
        try:
            self.case.tearDown()
            self.cleanups.close()
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the checks
            error = exc
        problems = self._leaks() + self._leftovers()
        if problems:
            raise AssertionError("after the test's cleanup: " + "; ".join(problems)) from error
        if error is not None:
            raise error

    def _leaks(self) -> list[str]:
        problems = []
        # With class data the class's own connection stays checked out and
        # open, back in the savepoint the test began in (the next one's).
        kept = 1 if self.class_data else 0
        for key, pool in self.pools.items():
            checked_out = getattr(pool, "checkedout", lambda: 0)()
            if checked_out != kept:
                problems.append(f"the {_bind_name(key)} pool has {checked_out} connection(s) checked out")
        for key, conn in self.connections.items():
            if self.class_data:
                savepoint = self.savepoints[key]
                if conn.closed or conn.get_nested_transaction() is not savepoint or not savepoint.is_active:
                    problems.append(
                        f"the class's {_bind_name(key)} connection is not back in the test's savepoint"
                    )
                continue
            if not conn.closed:
                problems.append(f"the test's {_bind_name(key)} connection was left open")
                with contextlib.suppress(Exception):
                    conn.invalidate()  # closes the DBAPI connection: its locks go with it
                with contextlib.suppress(Exception):
                    conn.close()
        return problems

    def _leftovers(self) -> list[str]:
        problems = []
        for url in self.case._checked_urls:  # type: ignore[attr-defined]  # set in setUpClass
            left = leftover_rows(url)
            if left:
                problems.append(f"rows committed for real in {sa.make_url(url).database}: {left}")
                delete_all_rows(url)
        return problems


def _bind_name(key: str | None) -> str:
    return "default" if key is None else repr(key)


# -- the machine ------------------------------------------------------------------------------


@dataclasses.dataclass
class Stats:
    sequences: int = 0
    steps: int = 0
    rules: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


#: Every rule's name, in definition order (filled by :func:`step`).
RULES: list[str] = []
_F = t.TypeVar("_F", bound=t.Callable[..., None])


def step(function: _F) -> _F:
    """Count the rule's runs, so the test can show every rule was exercised."""
    RULES.append(function.__name__)

    @functools.wraps(function)
    def counted(self: IsolationMachine, *args: t.Any, **kwargs: t.Any) -> None:
        self.stats.steps += 1
        self.stats.rules[function.__name__] += 1
        function(self, *args, **kwargs)

    return t.cast(_F, counted)


class IsolationMachine(RuleBasedStateMachine):
    """What app code does inside one test, checked against :class:`Model` after every step."""

    def __init__(self, case_factory: t.Callable[[], _Machine], stats: Stats) -> None:
        super().__init__()
        self.stats = stats
        stats.sequences += 1
        self.example = ExampleTest(case_factory())
        self.case = self.example.case
        self.model = Model(self.case.class_values())
        self.counter = 0

    def teardown(self) -> None:
        self.example.finish()

    # -- helpers -----------------------------------------------------------------------

    def fresh(self, name: str) -> str:
        self.counter += 1
        return TARGETS[name].value(self.counter)

    def session_first(self, before: str) -> None:
        if before == "session commit":
            db.session.commit()
            self.model.commit()
        elif before == "session rollback":
            db.session.rollback()
            self.model.rollback()

    def check(self, name: str, extra: t.Iterable[str] = ()) -> None:
        expected = self.model.expected(name) | set(extra)
        self.case.assertCountEqual(TARGETS[name].seen(), expected, f"{name} seen through db.session")
        self.model.query(name)

    def count_in(self, response: t.Any, name: str) -> None:
        """The route's answer counts what its session (the test's) sees."""
        self.case.assertEqual(response.get_json(), {"count": len(self.model.expected(name))})

    # -- the invariant -----------------------------------------------------------------------

    @invariant()
    def session_sees_the_model(self) -> None:
        for name in TARGETS:
            self.check(name)

    # -- the session -------------------------------------------------------------------------

    @rule(ref=session_names, table=targets, flush=st.booleans())
    @step
    def add(self, ref: str, table: str, flush: bool) -> None:
        value = self.fresh(table)
        SESSIONS[ref].add(TARGETS[table].new(value))
        self.model.add(table, value)
        if flush:
            SESSIONS[ref].flush()
            self.model.flush()

    @rule(ref=session_names)
    @step
    def commit(self, ref: str) -> None:
        SESSIONS[ref].commit()
        self.model.commit()

    @rule(ref=session_names)
    @step
    def rollback(self, ref: str) -> None:
        SESSIONS[ref].rollback()
        self.model.rollback()

    @rule(how=st.sampled_from(["remove", "close"]))
    @step
    def end_session(self, how: str) -> None:
        if how == "remove":
            shop.end_session()  # Flask-SQLAlchemy's remove(); Flask-SQLAlchemy-Lite has none: close()
        else:
            db.session.close()
        self.model.rollback()

    @rule(ref=session_names, table=targets, release=st.booleans(), direct=st.booleans())
    @step
    def nested_block(self, ref: str, table: str, release: bool, direct: bool) -> None:
        """``with session.begin_nested():`` add (and maybe write directly), then release or raise."""
        session, spec = SESSIONS[ref], TARGETS[table]
        value, extra = self.fresh(table), self.fresh(table)
        with contextlib.suppress(Abandon), session.begin_nested():  # flushes pending work first
            self.model.flush()
            session.add(spec.new(value))
            session.flush()
            if direct:
                with shop.engine(spec.bind_key).begin() as conn:
                    conn.execute(spec.insert(extra))
            if not release:
                raise Abandon
        if release:
            self.model.add(table, value)
            self.model.flush()
            if direct:
                self.model.direct_commit(table, extra, enclosed=True)  # inside the session's savepoint

    @precondition(lambda self: bool(self.model.expected(CUSTOMERS)))
    @rule(data=st.data(), ref=session_names, recover=st.sampled_from(["rollback", "savepoint"]))
    @step
    def duplicate_recovered(self, data: st.DataObject, ref: str, recover: str) -> None:
        """Insert a taken email, catch the IntegrityError, recover as apps do."""
        email = data.draw(st.sampled_from(sorted(self.model.expected(CUSTOMERS))), label="email")
        session = SESSIONS[ref]
        if recover == "rollback":
            session.add(Customer(email=email))
            with self.case.assertRaises(sa.exc.IntegrityError):
                session.flush()
            session.rollback()
            self.model.rollback()
        else:
            with self.case.assertRaises(sa.exc.IntegrityError), session.begin_nested():
                self.model.flush()
                session.add(Customer(email=email))
                session.flush()
            # only the savepoint's work is gone; everything pending before stays

    # -- requests (they share the test's session: divergence 2) ---------------------------------

    @rule()
    @step
    def request_adds_customer(self) -> None:
        email = self.fresh(CUSTOMERS)
        response = self.case.client.post("/customers", json={"email": email})
        self.case.assertEqual(response.status_code, 201, response.get_data(as_text=True))
        self.model.add(CUSTOMERS, email)
        self.model.commit()  # the test's pending work too
        self.model.query(CUSTOMERS)
        self.count_in(response, CUSTOMERS)

    @precondition(lambda self: bool(self.model.expected(CUSTOMERS)))
    @rule(data=st.data())
    @step
    def request_duplicate_409(self, data: st.DataObject) -> None:
        email = data.draw(st.sampled_from(sorted(self.model.expected(CUSTOMERS))), label="email")
        response = self.case.client.post("/customers", json={"email": email})
        self.case.assertEqual(response.status_code, 409, response.get_data(as_text=True))
        self.model.rollback()  # the route's rollback: the test's pending work too

    @rule(table=targets, how=st.sampled_from(["abort", "raise"]))
    @step
    def request_fails_500_after_flush(self, table: str, how: str) -> None:
        value = self.fresh(table)
        url = FAILING_ROUTES[(table, how)]
        payload = {PAYLOAD_KEY[table]: value}
        if how == "raise":  # PROPAGATE_EXCEPTIONS = False: logged, answered 500
            with self.case.assertLogs(self.case.app.logger, "ERROR"):
                response = self.case.client.post(url, json=payload)
        else:
            response = self.case.client.post(url, json=payload)
        self.case.assertEqual(response.status_code, 500)
        self.model.add(table, value)  # still pending in the shared session
        self.model.flush()

    @rule()
    @step
    def request_adds_audit_entry(self) -> None:
        message = self.fresh(AUDIT)
        response = self.case.client.post("/audit", json={"message": message})
        self.case.assertEqual(response.status_code, 201, response.get_data(as_text=True))
        self.model.add(AUDIT, message)
        self.model.commit()
        self.model.query(AUDIT)
        self.count_in(response, AUDIT)

    @rule()
    @step
    def request_writes_directly(self) -> None:
        """The route writes with ``db.engine.begin()``, then counts through the session."""
        email = self.fresh(CUSTOMERS)
        response = self.case.client.post("/customers/raw", json={"email": email})
        self.case.assertEqual(response.status_code, 201, response.get_data(as_text=True))
        self.model.direct_commit(CUSTOMERS, email, self.model.tables[CUSTOMERS].savepoint)
        self.model.query(CUSTOMERS)
        self.count_in(response, CUSTOMERS)

    # -- db.engine -------------------------------------------------------------------------------

    @rule(
        table=targets,
        before=befores,
        add_first=st.booleans(),
        end=st.sampled_from(["commit", "rollback", "close"]),
        more=st.booleans(),
        peek=st.booleans(),
    )
    @step
    def direct_connect(
        self, table: str, before: str, add_first: bool, end: str, more: bool, peek: bool
    ) -> None:
        """``db.engine.connect()``: write, maybe look through the session, commit/rollback/close.

        With ``add_first`` the session holds an added, unflushed row of the
        same table meanwhile. With ``more``, after a commit or rollback it
        writes again and closes without committing: that write is discarded.
        """
        self.session_first(before)
        spec = TARGETS[table]
        if add_first:
            added = self.fresh(table)
            db.session.add(spec.new(added))
            self.model.add(table, added)
        value = self.fresh(table)
        enclosed = self.model.tables[table].savepoint
        conn = shop.engine(spec.bind_key).connect()
        conn.execute(spec.insert(value))
        self.case.assertIn(value, conn.scalars(sa.select(spec.column)).all())
        interleaved = False
        if peek:
            # The session sees the uncommitted write: it is on the same connection.
            # If that began the session's savepoint, or flushed its rows, inside
            # the direct connection's transaction, the two are interleaved.
            interleaved = not self.model.peek_is_safe(table)
            self.check(table, extra=[value])
        if interleaved and end != "commit":
            # Undoing the direct write would undo the session's work too: the
            # library refuses clearly, and the direct write stays in the test.
            with self.case.assertRaises(IsolationError):
                conn.rollback() if end == "rollback" else conn.close()
            self.model.direct_commit(table, value, enclosed)
            conn.close()
            return
        if end == "close":
            conn.close()
            return
        if end == "commit":
            conn.commit()
            self.model.direct_commit(table, value, enclosed)
        else:
            conn.rollback()
        if more:
            conn.execute(spec.insert(self.fresh(table)))
        conn.close()

    @rule(table=targets, before=befores, fail=st.booleans())
    @step
    def direct_begin(self, table: str, before: str, fail: bool) -> None:
        """``with db.engine.begin()``: committed, or rolled back by an exception."""
        self.session_first(before)
        spec = TARGETS[table]
        value = self.fresh(table)
        with contextlib.suppress(Abandon), shop.engine(spec.bind_key).begin() as conn:
            conn.execute(spec.insert(value))
            if fail:
                raise Abandon
        if not fail:
            self.model.direct_commit(table, value, self.model.tables[table].savepoint)


# -- the tests --------------------------------------------------------------------------------


def machine_settings(backend: str) -> settings:
    examples = int(os.environ.get("TT_STATE_MACHINE_EXAMPLES") or EXAMPLES.get(backend, 40))
    return settings(
        max_examples=examples,
        stateful_step_count=STEPS,
        derandomize=True,  # a fixed seed: the same sequences on every run and backend
        database=None,
        deadline=None,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


def emails() -> list[str]:
    return sorted(TARGETS[CUSTOMERS].seen())


class _Machine(model_app.ModelCase, _CaseBase):  # type: ignore[misc]  # alembic_config = False
    """Drives examples, each a test of this class of its own (see the module docstring)."""

    _sm_cleanups: contextlib.ExitStack | None = None

    @classmethod
    def class_values(cls) -> dict[str, set[str]]:
        """What every example starts from, per table: the class data."""
        return {}

    # -- the example lifecycle ---------------------------------------------------------------

    def setUp(self) -> None:
        """Only examples get a test transaction: the driving test methods run none."""
        if self._sm_cleanups is not None:
            super().setUp()

    def addCleanup(self, function: t.Callable[..., t.Any], /, *args: t.Any, **kwargs: t.Any) -> None:
        if self._sm_cleanups is None:
            super().addCleanup(function, *args, **kwargs)
        else:
            self._sm_cleanups.callback(function, *args, **kwargs)

    def new_example(self) -> _Machine:
        return type(self)(self._testMethodName)

    @contextlib.contextmanager
    def example(self) -> t.Iterator[_Machine]:
        """One scripted test, run like a machine's example (and checked alike afterwards)."""
        example = ExampleTest(self.new_example())
        try:
            yield example.case
        finally:
            example.finish()

    # -- the machine -------------------------------------------------------------------------

    def test_model_agrees_with_database(self) -> None:
        with self.example() as case:
            # The model's requests share the test's session (Flask <= 3.1).
            session = shop.current_session()
            with case.app.test_request_context():
                flask_version = importlib.metadata.version("flask")
                self.assertIs(
                    shop.current_session(),
                    session,
                    f"Flask {flask_version} gives a request its own app context and session: "
                    "update the model's request rules",
                )
        stats = Stats()
        started = time.perf_counter()
        run_state_machine_as_test(  # type: ignore[no-untyped-call]
            functools.partial(IsolationMachine, self.new_example, stats),
            settings=machine_settings(self.backend.name),
        )
        elapsed = time.perf_counter() - started
        print(
            f"\nstate machine: {self.backend.name} ran {stats.sequences} sequences, "
            f"{stats.steps} steps ({elapsed:.1f} s)",
            file=sys.stderr,
        )
        self.assertGreater(stats.sequences, 1)
        never = [name for name in RULES if not stats.rules[name]]
        self.assertEqual(never, [], "rules the machine never ran")


@on_all_backends
class ClassDataStateMachine(_Machine):
    """The same machine in a class with ``setUpTestData``: every example starts from its rows.

    Each example runs in the savepoint of the class transaction that the
    previous one rolled back to; the checks after every example find the
    class's connections back in it.
    """

    CLASS_VALUES: t.ClassVar[dict[str, set[str]]] = {
        CUSTOMERS: {"class1@example.com", "class2@example.com"},
        AUDIT: {"class audit"},
    }

    @classmethod
    def class_values(cls) -> dict[str, set[str]]:
        return cls.CLASS_VALUES

    @classmethod
    def setUpTestData(cls) -> None:
        for name, values in cls.CLASS_VALUES.items():
            db.session.add_all(TARGETS[name].new(value) for value in sorted(values))


@on_all_backends
class StateMachine(_Machine):
    """The machine, and scripted tests of what it found (each an example of its own)."""

    # -- divergence 1: direct commits inside the session's savepoint ------------------------

    def test_divergence_direct_commit_inside_session_savepoint_undone_by_rollback(self) -> None:
        with self.example():
            self.assertEqual(emails(), [])  # the session takes its savepoint
            with db.engine.begin() as conn:
                conn.execute(TARGETS[CUSTOMERS].insert("direct@example.com"))
            db.session.rollback()
            # In production the direct commit is durable: ["direct@example.com"].
            self.assertEqual(emails(), [])

    def test_divergence_direct_commit_outside_session_savepoint_survives_rollback(self) -> None:
        with self.example():
            db.session.add(Customer(email="session@example.com"))
            db.session.commit()  # the session holds no savepoint now
            with db.engine.connect() as conn:
                conn.execute(TARGETS[CUSTOMERS].insert("direct@example.com"))
                conn.commit()
            db.session.rollback()
            self.assertEqual(emails(), ["direct@example.com", "session@example.com"])

    # -- divergence 2: requests share the test's session --------------------------------------

    def test_divergence_failed_request_row_stays_in_tests_session(self) -> None:
        with self.example() as case:
            with self.assertLogs(case.app.logger, "ERROR"):
                response = case.client.post("/customers/explode", json={"email": "failed@example.com"})
            self.assertEqual(response.status_code, 500)
            # In production the request's session is removed: the row is gone.
            self.assertEqual(emails(), ["failed@example.com"])
            db.session.commit()
            db.session.rollback()
            self.assertEqual(emails(), ["failed@example.com"])

    def test_divergence_request_rollback_discards_tests_pending_work(self) -> None:
        with self.example() as case:
            db.session.add(Customer(email="taken@example.com"))
            db.session.commit()
            db.session.add(Customer(email="pending@example.com"))
            db.session.flush()
            response = case.client.post("/customers", json={"email": "taken@example.com"})
            self.assertEqual(response.status_code, 409)
            self.assertEqual(emails(), ["taken@example.com"])

    # -- known bugs: these tests fail until the library handles them ------------------------------

    def test_interleaved_direct_commit_keeps_both(self) -> None:
        """The session's first query comes while a direct connection has uncommitted
        work; the direct connection then commits: both writes stay, as in production."""
        with self.example():
            with db.engine.connect() as conn:
                conn.execute(TARGETS[CUSTOMERS].insert("direct@example.com"))
                self.assertEqual(emails(), ["direct@example.com"])  # the session begins here
                conn.commit()
            db.session.add(Customer(email="session@example.com"))
            db.session.commit()
            self.assertEqual(emails(), ["direct@example.com", "session@example.com"])

    def test_interleaved_direct_rollback_is_refused_clearly(self) -> None:
        """Rolling back a direct connection that the session did work inside cannot be
        reproduced on one connection: a clear IsolationError, never a silent loss."""
        for end in ("rollback", "close"):
            for session_begun in (False, True):
                with self.subTest(end=end, session_begun=session_begun), self.example():
                    if session_begun:
                        self.assertEqual(emails(), [])  # the session's savepoint exists first
                    conn = db.engine.connect()
                    conn.execute(TARGETS[CUSTOMERS].insert("direct@example.com"))
                    db.session.add(Customer(email="session@example.com"))
                    self.assertEqual(emails(), ["direct@example.com", "session@example.com"])
                    with self.assertRaises(IsolationError) as caught:
                        getattr(conn, end)()
                    self.assertIn("db.session began work inside", str(caught.exception))
                    # Nothing was silently undone.
                    self.assertEqual(emails(), ["direct@example.com", "session@example.com"])
                    conn.close()

    def test_interleaved_read_only_direct_connection_is_harmless(self) -> None:
        """A direct connection that only read may be closed whatever the session did."""
        with self.example():
            db.session.add(Customer(email="session@example.com"))
            with db.engine.connect() as conn:
                conn.execute(sa.select(sa.literal(1)))
                self.assertEqual(emails(), ["session@example.com"])  # autoflush inside it
            db.session.commit()
            self.assertEqual(emails(), ["session@example.com"])

    def test_cleanup_after_failed_direct_statement_releases_connection(self) -> None:
        """App code catches a direct connection's error and never closes it."""
        with self.example():
            conn = db.engine.connect()
            conn.execute(TARGETS[CUSTOMERS].insert("dup@example.com"))
            with self.assertRaises(sa.exc.IntegrityError):
                conn.execute(TARGETS[CUSTOMERS].insert("dup@example.com"))
        # example() checked that the cleanup raised nothing and closed the test's connections
