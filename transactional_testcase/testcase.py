"""The test case classes and their lifecycle.

``setUpClass`` (see :class:`~transactional_testcase.app_testcase.AppTestCase`)
    :meth:`~DatabaseTestCase.get_app_config` → :meth:`~DatabaseTestCase.create_app`
    → push the class's app context → provision every engine of ``db.engines``
    (migrated once per fingerprint) → plan what each test needs
    → :meth:`~DatabaseTestCase.setUpDatabases`: for :class:`TransactionalTestCase`,
    redirect ``db.session`` and ``db.engines`` and run
    :meth:`~TransactionalTestCase.setUpTestData` in a class transaction.
``setUp``
    push an app context; :class:`TransactionalTestCase` opens the test's
    transaction (a SAVEPOINT of the class transaction when there is class
    data) and routes the session into it.
cleanup (after ``tearDown``, whatever happened)
    check constraints, remove the sessions, roll back, close, pop the context.
``tearDownClass``
    :meth:`ClassState.close <transactional_testcase.state.ClassState.close>`:
    roll back the class data, restore ``db``, hand on or dispose of the engines.
"""

from __future__ import annotations

import contextlib
import logging
import typing as t

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session
from sqlalchemy.orm.state import InstanceState

from . import diagnostics
from ._types import BindKey
from .app_testcase import AppTestCase
from .assertions import RequestAssertionsMixin, RequestRecorder
from .backends import backend_for
from .connections import AppKey, keeper
from .errors import (
    ConfigurationError,
    IsolationError,
    MigrationError,
    UnsafeDatabaseError,
    first_line,
    mask_url,
    scrub,
)
from .monitor import describe
from .provisioning import keepdb_from_env, provisioner, worker_id
from .redirect import SessionRedirect
from .schema import schema_source
from .state import ClassState, bind_name
from .transaction import TransactionSet

if t.TYPE_CHECKING:
    from flask.ctx import AppContext
    from flask.testing import FlaskClient

_T = t.TypeVar("_T")
logger = logging.getLogger("transactional_testcase")


class DatabaseTestCase(RequestAssertionsMixin, AppTestCase):
    """Builds the app and its fresh, migrated test databases once per class.

    The base of :class:`TransactionalTestCase` (each test rolled back) and of
    the committing test cases (each test's writes really committed, then
    emptied). Tests get an app context pushed, :attr:`client`,
    :attr:`session`, :meth:`assertNumQueries` and the request assertions of
    :class:`~transactional_testcase.assertions.RequestAssertionsMixin`.

    .. versionchanged:: 0.4
       The class settings (``database_url``, ``alembic_config``, ``binds``)
       and the hooks ``create_app``, ``get_database_url`` and
       ``get_app_config`` come from
       :class:`~transactional_testcase.app_testcase.AppTestCase`, shared with
       :class:`~transactional_testcase.MigrationsTestCase`.
    """

    #: Keep the test databases after the run and reuse them next time while
    #: their schema fingerprint still matches (Django's ``--keepdb``). Also on
    #: for every class when ``TRANSACTIONAL_TESTCASE_KEEPDB=1``.
    keepdb: t.ClassVar[bool] = False
    #: Whether the class's tests commit for real: then its databases do not
    #: stay as their build made them (see ``Provisioner.ensure``).
    _tt_commits: t.ClassVar[bool] = False

    # -- hooks ---------------------------------------------------------------------

    @classmethod
    def setUpDatabases(cls) -> None:
        """Prepare the provisioned databases for the class's tests (a subclass hook)."""

    # -- class lifecycle -------------------------------------------------------------

    @classmethod
    def _tt_keepdb(cls) -> bool:
        return cls.keepdb or keepdb_from_env()

    @classmethod
    def _tt_set_up_class(cls, state: ClassState, config: t.Mapping[str, t.Any]) -> None:
        cls._tt_provision(state, config)
        cls._tt_plan_class(state)
        cls.setUpDatabases()

    @classmethod
    def _tt_provision(cls, state: ClassState, config: t.Mapping[str, t.Any]) -> None:
        """Push the class's app context, choose its engines and provision their databases."""
        app, extension = cls.app, state.extension
        assert extension is not None
        state.app_context = app.app_context()
        state.app_context.push()
        state.recorder = RequestRecorder.start(app, cls.render_templates)
        own = state.own_engines = extension.engines()
        # An earlier class of the same factory and config hands its engines
        # (or their connections) on, and this class's are kept for the next.
        state.app_key = cls._tt_connection_key(config)
        engines = state.engines = keeper.adopt(own, state.app_key)
        if engines != own:
            extension.point(engines)
        missing = sorted(set(cls.binds) - {k for k in engines if k is not None})
        if missing:
            raise ConfigurationError(
                f"{cls.__qualname__}.binds names {', '.join(map(repr, missing))}, but the app "
                f"created no engine for it: make create_app apply {extension.config_key(missing[0])} "
                "(app.config.update(config) before db.init_app(app))."
            )
        state.backends = {key: backend_for(e.url) for key, e in engines.items()}
        requested = extension.requested_urls(config)
        cls._tt_check_engine_urls(engines, requested)
        schema = schema_source(cls.alembic_config, app, extension, cls.__qualname__)
        settings = cls._tt_settings(engines, requested)
        try:
            provisioner.ensure(
                app, extension, engines, schema, settings, keepdb=cls._tt_keepdb(), commits=cls._tt_commits
            )
        except MigrationError as exc:
            memory = [
                (key, e)
                for key, e in engines.items()
                if backend_for(e.url).is_memory(e.url) and not _ours(e, key, requested)
            ]
            if not memory:
                raise
            key, engine = memory[0]
            raise ConfigurationError(
                scrub(
                    f"{cls.__qualname__}: the app's {bind_name(key)} engine is in-memory SQLite "
                    f"({mask_url(engine.url)}), not the database handed over in {extension.config_key(key)} "
                    f"({_masked(requested.get(key))}), and migrating it failed: each connection to an "
                    "in-memory database is a new, empty database of its own. "
                    f"{_FIX} The migration error: {first_line(exc)}",
                    *_requested_urls(requested),
                )
            ) from None
        if diagnostics.enabled():
            state.log = diagnostics.TransactionLog()
            state.log.listen(engines.values())

    @classmethod
    def _tt_plan_class(cls, state: ClassState) -> None:
        """Work out, once per class, what each test needs: here, every statement watched.

        Tests of this class may write on any connection, from any thread: the
        monitor listens on every engine (the app's own too, where a kept one
        replaced it: code may hold it from ``create_app``).
        """
        cls._tt_listen(state, state.engines)
        cls._tt_listen(state, {k: e for k, e in state.own_engines.items() if e is not state.engines.get(k)})

    @classmethod
    def _tt_listen(cls, state: ClassState, engines: t.Mapping[BindKey, Engine]) -> None:
        state.monitor.listen(
            engines.values(),
            {
                id(e.dialect): pattern
                for key, e in engines.items()
                if (pattern := state.backends[key].implicit_commit) is not None
            },
        )

    def _tt_test_connections(self) -> t.Iterable[Connection]:
        """The connections the current test's statements go through (beyond the listened engines)."""
        return ()

    @classmethod
    def _tt_connection_key(cls, config: t.Mapping[str, t.Any]) -> AppKey:
        """What must match for a later class to take this class's engines or idle connections.

        The extension (its engine options) and the engine settings the app
        applied; for connections whose session a backend cannot reset, also
        the factory and what it was given.

        .. versionchanged:: 0.4
           Classes of different factories share engines that are interchangeable.
        """
        source = cls._tt_state.source if cls._tt_state is not None else None
        # The class's own create_app: its function, shared by the subclasses that inherit it.
        if source is None or not source.found:
            factory: t.Hashable = getattr(cls.create_app, "__func__", cls.create_app)
        else:
            factory = source.identity
        applied = {k: cls.app.config.get(k) for k in cls._tt_extension().engine_settings}
        return AppKey((cls.db, repr(applied)), (factory, repr(sorted(config.items()))))

    @classmethod
    def _tt_check_engine_urls(
        cls, engines: t.Mapping[BindKey, Engine], requested: t.Mapping[BindKey, t.Any]
    ) -> None:
        """Refuse, before any test, engines that ignore the URLs handed over where that breaks the run.

        Under a parallel runner every worker's app would use (and drop) the
        same database: refused, unless the name holds the worker's name. Elsewhere
        such engines are provisioned as they are, and said in the log. Engines
        the library does not isolate (Flask-SQLAlchemy-Lite's async ones) are
        refused on a database whose name lacks ``test``.

        .. versionchanged:: 0.6
           Refuses unisolated engines on a database whose name lacks ``test``.
        """
        worker = worker_id()
        extension = cls._tt_extension()
        for key, engine in engines.items():
            if _ours(engine, key, requested):
                continue
            backend = backend_for(engine.url)
            handed = (
                f"not the database handed over in {extension.config_key(key)} ({_masked(requested[key])})"
                if key in requested
                else f"and no database was handed over for it (binds has no {key!r})"
            )
            fix = _FIX if key in requested else _BIND_FIX.format(key=key, where=extension.config_key(key))
            shared = worker is not None and not backend.is_memory(engine.url)
            if shared and worker.lower() not in backend.database_name(engine.url).lower():  # type: ignore[union-attr]
                raise ConfigurationError(
                    scrub(
                        f"{cls.__qualname__}: under a parallel runner (this is worker {worker}) each worker "
                        f"needs databases of its own, but the app's {bind_name(key)} engine uses "
                        f"{mask_url(engine.url)}, {handed}: every worker would use and drop that same "
                        f"database. {fix}",
                        *_requested_urls(requested),
                    )
                )
            logger.info(
                "%s: the app's %s engine uses %s, %s",
                cls.__qualname__,
                bind_name(key),
                mask_url(engine.url),
                handed,
            )
        for setting, url in extension.unisolated_urls().items():
            backend = backend_for(url)
            if not backend.is_memory(url) and "test" not in backend.database_name(url).lower():
                raise UnsafeDatabaseError(
                    f"{cls.__qualname__}: the app's engine {setting} uses {mask_url(url)}, a database "
                    "whose name does not contain 'test'. The library neither provisions nor isolates "
                    f"it, so a test using it would write there. Point {setting} at a test database in "
                    f"create_app (the database of {extension.config_key(None)}, with the async driver), "
                    "or leave it out of the configuration the tests use."
                )

    @classmethod
    def _tt_settings(
        cls, engines: t.Mapping[BindKey, Engine], requested: t.Mapping[BindKey, t.Any]
    ) -> dict[BindKey, str]:
        """Name, per engine, the setting that chose its URL (for safety errors)."""
        state = cls._tt_state
        extension = cls._tt_extension()
        settings: dict[BindKey, str] = (
            dict(state.pointed_settings) if state is not None and state.pointed else {}
        )
        for key, engine in engines.items():
            if key in settings:
                continue
            ours = key in requested and _same_database(engine.url, requested[key])
            if key is None:
                settings[key] = (
                    "database_url (or the TEST_DATABASE_URL environment variable)"
                    if ours
                    else f"the {extension.setting(key)} that create_app sets (it ignores "
                    f"{extension.config_key(key)})"
                )
            else:
                settings[key] = (
                    f"binds[{key!r}]"
                    if ours
                    else f"the app's own {extension.setting(key)} (or set binds[{key!r}] "
                    f"and make create_app use {extension.config_key(key)})"
                )
        return settings

    # -- per test --------------------------------------------------------------------

    def setUp(self) -> None:
        super().setUp()
        state = self._tt_class_state()
        ctx = self.app.app_context()
        ctx.push()
        # One cleanup for the whole test: it runs after tearDown and the
        # test's own cleanups, whatever happened.
        self.addCleanup(self._tt_after_test, state, ctx)
        state.monitor.reset()
        if state.recorder is not None:
            state.recorder.clear()
        self._tt_before_test(state)

    def _tt_before_test(self, state: ClassState) -> None:
        """Per-test database setup, inside the test's app context (a subclass hook)."""

    def _tt_end_test(self, state: ClassState) -> None:
        """Per-test database teardown, before the app context is popped (a subclass hook).

        Runs even when :meth:`_tt_before_test` failed half way.
        """

    def _ra_recording(self) -> RequestRecorder:
        recorder = self._tt_class_state().recorder
        assert recorder is not None, "recording starts with the class's app context"
        return recorder

    def _tt_class_state(self) -> ClassState:
        state = type(self)._tt_state
        if state is None:
            raise ConfigurationError(
                f"{type(self).__qualname__}.setUpClass did not run: a setUpClass override "
                "must call super().setUpClass()."
            )
        return state

    def _tt_after_test(self, state: ClassState, ctx: AppContext) -> None:
        try:
            self._tt_end_test(state)
        finally:
            try:
                ctx.pop()
            finally:
                if state.log is not None:
                    state.log.flush(self.id(), state.monitor.implicit_commits)

    @property
    def client(self) -> FlaskClient:
        """A test client of :attr:`app`, made on first use in each test."""
        client = self.__dict__.get("_tt_client")
        if client is None:
            client = self.__dict__["_tt_client"] = self.app.test_client()
        return client

    @property
    def session(self) -> Session:
        """The test's session: what ``db.session`` hands out in the test's app context."""
        extension = self._tt_class_state().extension
        assert extension is not None
        return extension.session()

    @t.overload
    def assertNumQueries(self, num: int) -> contextlib.AbstractContextManager[list[str]]: ...

    @t.overload
    def assertNumQueries(
        self, num: int, func: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any
    ) -> None: ...

    def assertNumQueries(
        self, num: int, func: t.Callable[..., t.Any] | None = None, *args: t.Any, **kwargs: t.Any
    ) -> t.Any:
        """Assert that the block (or ``func(*args, **kwargs)``) sends ``num`` statements.

        Counted on every engine of the app, test-client requests and direct
        engine use included; transaction control (BEGIN, SAVEPOINT, RELEASE,
        ROLLBACK, COMMIT) is not counted. On failure every statement is listed.
        """
        context = self._tt_count(num)
        if func is None:
            return context
        with context:
            func(*args, **kwargs)
        return None

    @contextlib.contextmanager
    def _tt_count(self, num: int) -> t.Iterator[list[str]]:
        monitor = self._tt_class_state().monitor
        with monitor.capture(self._tt_test_connections()) as statements:
            yield statements
        if len(statements) != num:
            self.fail(describe(statements, num))


class TransactionalTestCase(DatabaseTestCase):
    """A :class:`unittest.TestCase` whose tests each run in a rolled-back transaction.

    Subclasses implement :meth:`create_app`. The class provisions fresh test
    databases for every engine the app creates (migrated to Alembic head, or
    built with ``create_all()``), and every test sees them exactly as
    :meth:`setUpTestData` left them, whatever the previous test committed.
    """

    #: Make primary keys start from ``max(id) + 1`` in every test, where the
    #: backend can do that inside a transaction (PostgreSQL; SQLite always
    #: does). On MySQL/MariaDB it is refused with an error.
    reset_sequences: t.ClassVar[bool] = False

    #: Before rolling back a test that wrote something, check what a real
    #: COMMIT would have checked: PostgreSQL's deferred constraints (``SET
    #: CONSTRAINTS ALL IMMEDIATE``) and SQLite's deferred foreign keys
    #: (``PRAGMA foreign_key_check``, when foreign keys are enforced).
    check_constraints: t.ClassVar[bool] = True

    @classmethod
    def setUpTestData(cls) -> None:
        """Create data every test of the class sees, once per class.

        It runs inside the class's own transaction, rolled back after the
        class. Pending objects are committed (into that transaction) when it
        returns. Mapped objects assigned to class attributes here are handed to
        each test merged into that test's session, so a test may change them
        freely.
        """

    @classmethod
    def _tt_plan_class(cls, state: ClassState) -> None:
        """Plan sequence resets and constraint checks; watch only what must be.

        Every statement is watched on the engines whose backend commits
        implicitly (MySQL DDL) or that have constraints to check after a test
        that wrote. Elsewhere nothing listens, which spares SQLAlchemy's event
        dispatch on every statement; ``assertNumQueries`` and direct engine
        use watch the test's connections when they need to.
        """
        for key, backend in state.backends.items():
            if cls.reset_sequences:
                resetter = cls._tt_plan(state, key, "sequences", backend.sequence_resetter)
                state.resetters.append((key, resetter))
            if cls.check_constraints and (
                checker := cls._tt_plan(state, key, "constraints", backend.constraint_checker)
            ):
                state.checkers.append((key, checker))
        checked = {key for key, _ in state.checkers}
        cls._tt_listen(
            state,
            {
                key: engine
                for key, engine in state.engines.items()
                if state.backends[key].implicit_commit is not None or key in checked or diagnostics.enabled()
            },
        )

    @classmethod
    def setUpDatabases(cls) -> None:
        """Redirect ``db`` onto test connections and run :meth:`setUpTestData`."""
        super().setUpDatabases()
        state = cls._tt_state
        assert state is not None and state.extension is not None
        extension = state.extension
        redirect = state.redirect = SessionRedirect(extension, watch=state.monitor.watch)
        redirect.apply()
        if _has_class_data(cls):
            cls._tt_run_setup_test_data(state, redirect)

    @classmethod
    def _tt_plan(cls, state: ClassState, key: BindKey, name: str, make: t.Callable[[Connection], _T]) -> _T:
        """``make(connection)``, asked of the server once per database, app and schema.

        What ``make`` finds may depend on the app's connect listeners (SQLite's
        ``PRAGMA foreign_keys``): it is remembered per app factory and config.
        """
        engine = state.engines[key]

        def ask() -> _T:
            with engine.connect() as conn:
                return make(conn)

        # What the app's connect listeners set up (SQLite's foreign keys) may change the
        # answer: remembered per extension, engine settings and listeners, not per factory.
        assert state.app_key is not None
        return provisioner.plan(engine.url, (name, state.app_key.engines, keeper.signature(engine)), ask)

    @classmethod
    def _tt_run_setup_test_data(cls, state: ClassState, redirect: SessionRedirect) -> None:
        extension = redirect.extension
        transaction = state.class_transaction = state.begin()
        redirect.attach(transaction.connections)
        before = dict(vars(cls))
        try:
            cls.setUpTestData()
            session = extension.session()
            session.commit()
            state.class_data = {
                name: value
                for name, value in vars(cls).items()
                if before.get(name, _MISSING) is not value and _has_instances(value)
            }
            # Loaded now, once: tests get them without a query of their own.
            for obj in _instances(state.class_data.values()):
                if obj in session:
                    session.refresh(obj)
        finally:
            extension.remove_session()
            redirect.attach(None)

    def _tt_before_test(self, state: ClassState) -> None:
        """Open the test's transaction (a SAVEPOINT of the class's, with class data) and route ``db`` into it."""
        redirect = state.redirect
        assert redirect is not None
        transaction = (
            state.class_transaction.begin_nested() if state.class_transaction is not None else state.begin()
        )
        self._tt_transaction = transaction
        redirect.attach(transaction.connections)
        for key, reset in state.resetters:
            reset(transaction.connections[key])
        if state.class_data:
            session = redirect.extension.session()
            for name, value in state.class_data.items():
                setattr(self, name, _merge(session, value))

    def _tt_test_connections(self) -> t.Iterable[Connection]:
        transaction: TransactionSet | None = self.__dict__.get("_tt_transaction")
        return transaction.connections.values() if transaction is not None else ()

    def _tt_end_test(self, state: ClassState) -> None:
        """Check constraints, roll everything back, and fail the test if it escaped its transaction."""
        transaction: TransactionSet | None = self.__dict__.pop("_tt_transaction", None)
        if transaction is None:
            return  # setUp failed before the transaction began
        assert state.redirect is not None
        violations: list[str] = []
        ended: list[BindKey] = []
        try:
            with contextlib.suppress(Exception):
                state.redirect.extension.remove_session()
            if state.checkers and state.monitor.wrote:
                violations = self._tt_check_constraints(state, transaction)
        finally:
            try:
                ended = transaction.end()
            finally:
                state.redirect.attach(None)
        implicit = list(state.monitor.implicit_commits)
        if implicit or ended:
            self._tt_recover(state)
        if implicit:
            statement = " ".join(implicit[0].split())[:120]
            raise IsolationError(
                f"the test sent {statement!r}, which commits implicitly on MySQL/MariaDB: "
                "everything the test wrote before it was committed for real and its "
                "savepoints were gone. The tables were emptied (and the class data made "
                "again) so the next tests are isolated. Keep DDL and TRUNCATE out of "
                "TransactionalTestCase tests (use CommittingTestCase for them)."
            )
        if ended:
            names = ", ".join("default" if k is None else repr(k) for k in ended)
            raise IsolationError(
                f"the test ended its own transaction on the {names} database "
                "(Connection.commit() or rollback() on db.session.connection(), for "
                "example): a commit wrote for real, a rollback threw away the class data. "
                "The tables were emptied (and the class data made again) so the next tests "
                "are isolated. Commit through db.session, or use db.engine.connect(), "
                "whose commits are savepoints."
            )
        threads = state.redirect.take_violations()
        if threads:
            raise IsolationError(
                f"a thread this test started used the database ({len(threads)} time(s)), and "
                f"was refused: {threads[0]}"
            )
        if violations:
            self.fail("the test left data that a real COMMIT would have refused: " + "; ".join(violations))

    def _tt_recover(self, state: ClassState) -> None:
        """Undo what escaped the test's transaction, so later tests stay isolated.

        Empties every table (as CommittingTestCase does) and, with class data,
        runs setUpTestData again in a new class transaction. What escaped may
        have changed the schema (DDL committed with it) and the emptying took
        the migrations' own rows too: the databases are no longer reused by
        later classes, nor kept for the next run, but built again.
        """
        cls = type(self)
        assert state.redirect is not None
        if state.class_transaction is not None:
            state.class_transaction.end()
            state.class_transaction = None
        provisioner.invalidate(e.url for e in state.engines.values())
        escaped = len(state.log.escaped) if state.log is not None else 0
        try:
            emptiers = state.plan_emptiers({"alembic_version"}, _RECOVERY_LOCK_TIMEOUT)
            state.empty_tables(emptiers, f"recovering from {self.id()}")
        finally:
            # The recovery's own TRUNCATEs and COMMITs escape nothing.
            if state.log is not None:
                del state.log.escaped[escaped:]
        if _has_class_data(cls):
            cls._tt_run_setup_test_data(state, state.redirect)

    def _tt_check_constraints(self, state: ClassState, transaction: TransactionSet) -> list[str]:
        found = []
        for key, check in state.checkers:
            try:
                problem = check(transaction.connections[key])
            except sa.exc.SQLAlchemyError:
                # The transaction is unusable (an error the test never rolled
                # back): nothing to check, and the rollback follows anyway.
                continue
            if problem:
                found.append(problem)
        return found


_BASE_SET_UP_TEST_DATA = TransactionalTestCase.setUpTestData.__func__  # type: ignore[attr-defined]
#: Seconds the recovery after an escaped commit waits for a lock.
_RECOVERY_LOCK_TIMEOUT = 10.0


def _has_class_data(cls: type[TransactionalTestCase]) -> bool:
    return getattr(cls.setUpTestData, "__func__", None) is not _BASE_SET_UP_TEST_DATA


_MISSING = object()


def _ours(engine: Engine, key: BindKey, requested: t.Mapping[BindKey, t.Any]) -> bool:
    return key in requested and _same_database(engine.url, requested[key])


def _masked(value: t.Any) -> str:
    return mask_url(value.get("url", "") if isinstance(value, dict) else value)


def _requested_urls(requested: t.Mapping[BindKey, t.Any]) -> list[t.Any]:
    return [v.get("url") if isinstance(v, dict) else v for v in requested.values()]


#: The fix for an app whose engines ignore the config handed over.
_FIX = (
    "Make the factory apply the config it is given before db.init_app(app) "
    "(app.config.update(config) there; for a factory that takes a config class or name, "
    "config_class() or registered_config()), or name an app built at import with flask_app "
    "so that the library points its engines at the test databases itself: see "
    "docs/guide/app-factory.rst and docs/guide/app-without-factory.rst."
)
_BIND_FIX = (
    "Set binds = {{{key!r}: '<a URL whose database name contains test>'}} on the class and make "
    "the factory apply {where} before db.init_app(app)."
)


def _same_database(url: URL, requested: t.Any) -> bool:
    """Whether ``url`` (an engine's) is the database ``requested`` names (query aside)."""
    if isinstance(requested, dict):
        requested = requested.get("url")
    try:
        wanted = make_url(requested)
    except Exception:  # noqa: BLE001 - anything unparseable is simply not the same
        return False
    return url.set(query={}) == wanted.set(query={})


def _is_instance(value: t.Any) -> bool:
    return isinstance(sa.inspect(value, raiseerr=False), InstanceState)


def _has_instances(value: t.Any) -> bool:
    return any(True for _ in _instances([value]))


def _instances(values: t.Iterable[t.Any]) -> t.Iterator[t.Any]:
    for value in values:
        if isinstance(value, (list, tuple, set, frozenset)):
            yield from (v for v in value if _is_instance(v))
        elif isinstance(value, dict):
            yield from (v for v in value.values() if _is_instance(v))
        elif _is_instance(value):
            yield value


def _merge(session: Session, value: t.Any) -> t.Any:
    if isinstance(value, (list, tuple)):
        return type(value)(_merge(session, v) for v in value)
    if isinstance(value, dict):
        return {k: _merge(session, v) for k, v in value.items()}
    if _is_instance(value):
        return session.merge(value, load=False)
    return value
