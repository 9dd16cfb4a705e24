"""``TransactionalTestCase``: the class lifecycle.

``setUpClass``
    :meth:`~TransactionalTestCase.get_app_config` → :meth:`~TransactionalTestCase.create_app`
    → provision and migrate every engine of ``db.engines`` (once per process and
    schema) → redirect ``db.session`` and ``db.engines`` → run
    :meth:`~TransactionalTestCase.setUpTestData` in a class transaction.
``setUp``
    push an app context, open the test's transaction (a SAVEPOINT of the class
    transaction when there is class data), and route the session into it.
cleanup (after ``tearDown``, whatever happened)
    remove the sessions, roll everything back, close connections, pop the context.
``tearDownClass``
    roll back the class data, restore ``db``, dispose the app's engines.
"""

from __future__ import annotations

import contextlib
import os
import typing as t
import unittest

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.orm import Session
from sqlalchemy.orm.state import InstanceState

from .backends import DRIVER_EXTRAS, backend_for, check_driver
from .errors import (
    ConfigurationError,
    IsolationError,
    MissingDriverError,
    TransactionalTestCaseError,
    mask_url,
)
from .isolation import SessionRedirect
from .migrations import AlembicSetting, schema_source
from .provisioning import provisioner
from .queries import QueryRecorder, describe
from .transaction import TestTransaction

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient
    from flask_sqlalchemy import SQLAlchemy

BindKey = t.Optional[str]
_F = t.TypeVar("_F")


class _ClassState:
    """Everything a test case class holds between ``setUpClass`` and ``tearDownClass``."""

    def __init__(self) -> None:
        self.stack = contextlib.ExitStack()
        self.engines: dict[BindKey, Engine] = {}
        self.redirect: SessionRedirect | None = None
        self.recorder = QueryRecorder()
        self.class_transaction: TestTransaction | None = None
        self.class_data: dict[str, t.Any] = {}
        self.resetters: list[tuple[BindKey, t.Callable[[Connection], None]]] = []


class TransactionalTestCase(unittest.TestCase):
    """A :class:`unittest.TestCase` whose tests each run in a rolled-back transaction.

    Subclasses implement :meth:`create_app`. The class provisions fresh test
    databases for every engine the app creates (migrated to Alembic head, or
    built with ``create_all()``), and every test sees them exactly as
    :meth:`setUpTestData` left them, whatever the previous test committed.
    """

    #: URL of the test database. ``None``: the ``TEST_DATABASE_URL`` environment
    #: variable, else a SQLite file in a temporary folder.
    database_url: t.ClassVar[str | None] = None

    #: Path of ``alembic.ini`` or of the folder holding it (Flask-Migrate's
    #: layout). ``None``: Flask-Migrate's registered directory, ``./alembic.ini``
    #: or ``./migrations/alembic.ini``. ``False``: ``db.create_all()``.
    alembic_config: t.ClassVar[AlembicSetting] = None

    #: ``{bind_key: url}``: more test databases, passed as ``SQLALCHEMY_BINDS``.
    binds: t.ClassVar[t.Mapping[str, str]] = {}

    #: Make primary keys start from ``max(id) + 1`` in every test, where the
    #: backend can do that inside a transaction (PostgreSQL; SQLite always does).
    reset_sequences: t.ClassVar[bool] = False

    #: The app built by :meth:`create_app`, with an app context pushed per test.
    app: t.ClassVar[Flask]
    #: The app's Flask-SQLAlchemy extension.
    db: t.ClassVar[SQLAlchemy]

    _tt_state: t.ClassVar[_ClassState | None] = None

    # -- hooks ---------------------------------------------------------------------

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        """Build the app under test from ``config`` (called once per class).

        ``config`` holds ``TESTING``, ``SQLALCHEMY_DATABASE_URI`` and, when
        :attr:`binds` is set, ``SQLALCHEMY_BINDS``.
        """
        raise ConfigurationError(
            f"{cls.__qualname__} must define the classmethod create_app(cls, config) "
            "that returns the Flask app built from config, e.g. "
            "'return myapp.create_app(config)'."
        )

    @classmethod
    def get_database_url(cls) -> str:
        """The default database's URL: :attr:`database_url`, ``TEST_DATABASE_URL`` or SQLite."""
        return (
            cls.database_url
            or os.environ.get("TEST_DATABASE_URL")
            or provisioner.default_sqlite_url()
        )

    @classmethod
    def get_app_config(cls) -> dict[str, t.Any]:
        """The ``config`` handed to :meth:`create_app`; override to add keys."""
        config: dict[str, t.Any] = {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": cls.get_database_url(),
        }
        if cls.binds:
            config["SQLALCHEMY_BINDS"] = dict(cls.binds)
        return config

    @classmethod
    def setUpTestData(cls) -> None:
        """Create data every test of the class sees, once per class.

        It runs inside the class's own transaction, rolled back after the
        class. Pending objects are committed (into that transaction) when it
        returns. Mapped objects assigned to class attributes here are handed to
        each test merged into that test's session, so a test may change them
        freely.
        """

    # -- class lifecycle -------------------------------------------------------------

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        state = _ClassState()
        cls._tt_state = state
        try:
            cls._tt_setup_class(state)
        except BaseException:
            cls._tt_state = None
            state.stack.close()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        state, cls._tt_state = cls._tt_state, None
        try:
            if state is not None:
                state.stack.close()
        finally:
            super().tearDownClass()

    @classmethod
    def _tt_setup_class(cls, state: _ClassState) -> None:
        config = cls.get_app_config()
        requested = {None: config["SQLALCHEMY_DATABASE_URI"], **config.get("SQLALCHEMY_BINDS", {})}
        for value in requested.values():
            check_driver(make_url(value if isinstance(value, (str, URL)) else value["url"]))
        app = cls._tt_build_app(config)
        db = app.extensions.get("sqlalchemy")
        if db is None:
            raise ConfigurationError(
                f"the app built by {cls.__qualname__}.create_app() has no Flask-SQLAlchemy "
                "extension: create_app must call db.init_app(app) (or SQLAlchemy(app))."
            )
        cls.app, cls.db = app, db
        stack = state.stack
        stack.enter_context(app.app_context())
        engines = state.engines = dict(db.engines)
        # Engines are the app's: dispose them last, whatever else happens.
        stack.callback(_dispose, list(engines.values()))
        missing = sorted(set(cls.binds) - {k for k in engines if k is not None})
        if missing:
            raise ConfigurationError(
                f"{cls.__qualname__}.binds names {', '.join(map(repr, missing))}, but the app "
                "created no engine for it: make create_app apply config['SQLALCHEMY_BINDS'] "
                "(app.config.update(config) before db.init_app(app))."
            )
        settings = cls._tt_settings(engines, requested)
        schema = schema_source(cls.alembic_config, app, db, engines)
        provisioner.ensure(app, db, engines, schema, settings)
        if cls.reset_sequences:
            for key, engine in engines.items():
                with engine.connect() as conn:
                    state.resetters.append((key, backend_for(engine.url).sequence_resetter(conn)))
        state.recorder.listen(engines.values())
        stack.callback(state.recorder.remove)
        redirect = state.redirect = SessionRedirect(db)
        redirect.apply()
        stack.callback(redirect.restore)
        if cls._tt_has_class_data():
            cls._tt_run_setup_test_data(state, redirect)

    @classmethod
    def _tt_build_app(cls, config: dict[str, t.Any]) -> Flask:
        try:
            app = cls.create_app(config)
        except TransactionalTestCaseError:
            raise
        except ImportError as exc:
            extra = {"psycopg2": "psycopg2", "psycopg": "postgresql", "pymysql": "mysql",
                     "MySQLdb": "mysqlclient"}.get(exc.name or "")
            if extra is None:
                raise
            raise MissingDriverError(
                f"{cls.__qualname__}.create_app() needs the {exc.name!r} driver, which is "
                f"not installed: pip install 'transactional_testcase[{extra}]'."
            ) from None
        except Exception as exc:
            raise ConfigurationError(
                f"{cls.__qualname__}.create_app(config) raised {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(app, Flask):
            raise ConfigurationError(
                f"{cls.__qualname__}.create_app(config) returned {app!r}, not a Flask app: "
                "it must return the application it built."
            )
        return app

    @classmethod
    def _tt_settings(
        cls, engines: t.Mapping[BindKey, Engine], requested: t.Mapping[BindKey, t.Any]
    ) -> dict[BindKey, str]:
        """Name, per engine, the setting that chose its URL (for safety errors)."""
        settings: dict[BindKey, str] = {}
        for key in engines:
            ours = key in requested and (key is None or key in cls.binds)
            if key is None:
                settings[key] = (
                    "database_url (or the TEST_DATABASE_URL environment variable)"
                    if ours
                    else "the SQLALCHEMY_DATABASE_URI that create_app sets"
                )
            else:
                settings[key] = (
                    f"binds[{key!r}]" if ours else f"the app's SQLALCHEMY_BINDS[{key!r}] (or binds[{key!r}])"
                )
        return settings

    @classmethod
    def _tt_has_class_data(cls) -> bool:
        return getattr(cls.setUpTestData, "__func__", None) is not (
            TransactionalTestCase.setUpTestData.__func__  # type: ignore[attr-defined]
        )

    @classmethod
    def _tt_run_setup_test_data(cls, state: _ClassState, redirect: SessionRedirect) -> None:
        transaction = state.class_transaction = TestTransaction.begin(state.engines)
        state.stack.callback(transaction.end)
        redirect.attach(transaction.connections)
        before = dict(vars(cls))
        try:
            cls.setUpTestData()
            session = cls.db.session()
            session.commit()
            state.class_data = {
                name: value
                for name, value in vars(cls).items()
                if before.get(name, _MISSING) is not value and _has_instances(value)
            }
            for obj in _instances(state.class_data.values()):
                if obj in session:
                    session.refresh(obj)
        finally:
            cls.db.session.remove()
            redirect.attach(None)

    # -- per test ------------------------------------------------------------------

    def setUp(self) -> None:
        super().setUp()
        state = type(self)._tt_state
        if state is None or state.redirect is None:
            raise ConfigurationError(
                f"{type(self).__qualname__}.setUpClass did not run: a setUpClass override "
                "must call super().setUpClass()."
            )
        ctx = self.app.app_context()
        ctx.push()
        try:
            if state.class_transaction is not None:
                transaction = state.class_transaction.begin_nested()
            else:
                transaction = TestTransaction.begin(state.engines)
        except BaseException:
            ctx.pop()
            raise
        self.addCleanup(self._tt_teardown, state, transaction, ctx)
        state.redirect.attach(transaction.connections)
        for key, reset in state.resetters:
            reset(transaction.connections[key])
        if state.class_data:
            session = self.db.session()
            for name, value in state.class_data.items():
                setattr(self, name, _merge(session, value))

    def _tt_teardown(
        self, state: _ClassState, transaction: TestTransaction, ctx: t.Any
    ) -> None:
        try:
            with contextlib.suppress(Exception):
                self.db.session.remove()
            ended = transaction.end()
        finally:
            assert state.redirect is not None
            state.redirect.attach(None)
            ctx.pop()
        if ended:
            names = ", ".join("default" if k is None else repr(k) for k in ended)
            raise IsolationError(
                f"the test ended its own transaction on the {names} database "
                "(Connection.commit()/rollback() on db.session.connection(), or a "
                "statement that commits implicitly such as DDL on MySQL/MariaDB): "
                "what it wrote before that may have been committed for real. Commit "
                "through db.session, or use engine.connect(), whose commits are savepoints."
            )

    # -- conveniences ----------------------------------------------------------------

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
        return self.db.session()

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

        Counted on every engine of the app; transaction control (BEGIN,
        SAVEPOINT, RELEASE, ROLLBACK, COMMIT) is not counted.
        """
        context = self._tt_count(num)
        if func is None:
            return context
        with context:
            func(*args, **kwargs)
        return None

    @contextlib.contextmanager
    def _tt_count(self, num: int) -> t.Iterator[list[str]]:
        state = type(self)._tt_state
        if state is None:
            raise ConfigurationError("assertNumQueries needs setUpClass to have run.")
        with state.recorder.capture() as statements:
            yield statements
        if len(statements) != num:
            self.fail(describe(statements, num))


_MISSING = object()


def _dispose(engines: list[Engine]) -> None:
    for engine in engines:
        with contextlib.suppress(Exception):
            engine.dispose()


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


