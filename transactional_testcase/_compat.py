"""The one place that reaches into other packages' non-public names.

Every function or class here says which private attribute it touches and the
versions it was checked against; nothing else in the package touches one.
The versions, as ``setup.cfg`` declares them (lowest first) and as the version
matrix (``.ci/noxfile.py``) ran them: SQLAlchemy 2.0.0, 2.0.58 and 2.1.9,
Flask-SQLAlchemy 3.0.0, 3.0.5 and 3.1.1, Alembic 1.10.0 and 1.20.1, PyMySQL
1.0.2 and 1.2.4, CPython 3.11.7, 3.12.1 and 3.13.0's ``logging``; Flask-Alembic
3.1.0 and 3.3.0.

.. versionchanged:: 0.4
   Also the live engine map of Flask-SQLAlchemy (:func:`live_engines`), the
   connection facade (:class:`ConnectionFacade`) and the execution context's
   root connection (:func:`root_connection`), which other modules used to reach
   themselves.

.. versionchanged:: 0.4
   Flask-SQLAlchemy's per-app engine map read without an app context
   (:func:`app_engine_map`) and its engine creation (:func:`make_app_engine`),
   for apps built at import.

.. versionchanged:: 0.5
   Flask-Alembic's per-app cache of the engines it migrates
   (:func:`flask_alembic_engines`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import typing as t
import weakref

from sqlalchemy.engine import Connection, Engine, NestedTransaction

# ``Engine.execution_options()`` returns an ``OptionEngine``: an Engine that
# shares its parent's pool, dialect, URL and event dispatch. It is public in
# behaviour but only importable from ``sqlalchemy.engine.base``.
from sqlalchemy.engine.base import OptionEngine
from sqlalchemy.event import registry as _event_registry
from sqlalchemy.event.attr import _ListenerCollection

__all__ = [
    "ConnectionFacade",
    "OptionEngine",
    "SavepointSparingConnection",
    "app_engine_map",
    "engine_listeners",
    "flask_alembic_engines",
    "handlers_out_of_reach_of_fileconfig",
    "close_lite_sessions",
    "lite_async_engines",
    "lite_state",
    "make_app_engine",
    "make_lite_engine",
    "repair_lite_binds",
    "revision_steps",
    "rewind",
    "root_connection",
    "savepoint_counter",
    "socket_fileno",
    "version_locations",
]


@contextlib.contextmanager
def handlers_out_of_reach_of_fileconfig() -> t.Iterator[None]:
    """Keep ``logging.config.fileConfig()`` from closing the handlers that exist now.

    ``fileConfig`` (called by every stock Alembic ``env.py``) shuts down every
    handler in ``logging._handlerList`` before installing its own; a test
    suite's open log files would stay closed. Hiding the list while migrations
    run leaves only the handlers created meanwhile to be closed.
    Checked against CPython 3.11.7, 3.12.1 and 3.13.0's ``logging`` module.
    """
    saved_list = logging._handlerList[:]  # type: ignore[attr-defined]
    saved_map = dict(logging._handlers)  # type: ignore[attr-defined]
    del logging._handlerList[:]  # type: ignore[attr-defined]
    try:
        yield
    finally:
        logging._handlerList[:0] = saved_list  # type: ignore[attr-defined]
        for name, handler in saved_map.items():
            logging._handlers.setdefault(name, handler)  # type: ignore[attr-defined]


@contextlib.contextmanager
def flask_alembic_engines(extension: t.Any, app: t.Any, engines: dict[str, Engine]) -> t.Iterator[None]:
    """Flask-Alembic (``extension``) migrates ``app`` on ``engines``, and only them, in the block.

    ``Alembic.engines`` (public: the engines given to its constructor, by
    key) is set to ``engines``. But the extension caches, per app, the engines
    and metadata it migrates (``Alembic._cache[app]``, a private ``_Cache``:
    ``engines``, ``metadatas``, and the ``contexts`` and ``ops`` holding open
    connections), and an app context's teardown clears only the last two: a
    second migration of the same app, onto other databases, would run on the
    first one's. The cache is emptied before the block and after it, the
    connections of its migration contexts closed first (not invalidated as
    Flask-Alembic 3.3's teardown does: an in-memory SQLite database lives in
    its one connection). Checked against Flask-Alembic 3.1.0 and 3.3.0.
    """
    cache = extension._cache[app]
    saved = extension.engines
    try:
        extension.engines = engines
        _empty_flask_alembic_cache(cache)
        yield
    finally:
        _empty_flask_alembic_cache(cache)
        extension.engines = saved


def _empty_flask_alembic_cache(cache: t.Any) -> None:
    for context in (cache.contexts or {}).values():
        if context.connection is not None:
            context.connection.close()
    cache.engines = cache.metadatas = cache.contexts = cache.ops = None


def revision_steps(script: t.Any, destination: str, current: t.Any, upgrade: bool) -> t.Any:
    """The steps ``alembic upgrade/downgrade destination`` would run from ``current``.

    What ``alembic.command.upgrade``/``downgrade`` pass to ``EnvironmentContext``
    (``ScriptDirectory._upgrade_revs``/``_downgrade_revs``); calling them with
    one ``ScriptDirectory`` avoids re-reading every revision file per step.
    Checked against Alembic 1.10.0 and 1.20.1.
    """
    if upgrade:
        return script._upgrade_revs(destination, current)
    return script._downgrade_revs(destination, current)


def savepoint_counter(connection: t.Any) -> int:
    """How many SAVEPOINTs ``connection`` has begun so far.

    SQLAlchemy numbers them per Connection (``sa_savepoint_N``) in the private,
    name-mangled ``Connection.__savepoint_seq``. Checked against SQLAlchemy
    2.0.0, 2.0.58 and 2.1.9.
    """
    return int(getattr(connection, "_Connection__savepoint_seq", 0))


def version_locations(script: t.Any) -> list[str]:
    """The folders ``script`` (an Alembic ``ScriptDirectory``) reads revisions from.

    ``ScriptDirectory._version_locations``: ``version_locations`` resolved
    (package resources included), or ``<script_location>/versions``; folders
    that do not exist are left out, as Alembic does. Checked against Alembic
    1.10.0 and 1.20.1.
    """
    return [str(path) for path in script._version_locations if os.path.isdir(path)]


def engine_listeners(
    engine: Engine, ignore: t.Callable[[t.Any], bool]
) -> frozenset[tuple[str, str, t.Hashable]]:
    """The listeners registered on ``engine``, its dialect and its pool.

    ``(target, event name, listener)``, where the listener is identified as
    SQLAlchemy's event registry identifies the function given to
    ``event.listen()`` (``id(fn)``, or the ids of a bound method's function
    and object): two engines have the same set when the same functions
    listen on them, wherever they were registered (on the engine, its pool or
    its dialect). Class-level listeners (on ``Engine``, ``Pool``...) are
    shared by every engine and left out; so are the listeners
    ``create_engine()`` adds to every pool of its own, and those for which
    ``ignore(listener function)`` is true.

    Reads each dispatcher's instance-level collections (``_event_names``,
    ``_ListenerCollection.listeners``; an event without any is an
    ``_EmptyListener``) and the registry's ``_collection_to_key``. Checked
    against SQLAlchemy 2.0.0, 2.0.58 and 2.1.9.
    """
    found: set[tuple[str, str, t.Hashable]] = set()
    for role, target in (("engine", engine), ("dialect", engine.dialect), ("pool", engine.pool)):
        dispatch: t.Any = target.dispatch
        name: str
        for name in dispatch._event_names:
            collection = getattr(dispatch, name)
            if type(collection) is not _ListenerCollection or not collection.listeners:
                continue  # no instance-level listener for this event
            keys = _event_registry._collection_to_key.get(collection.ref, {})
            for fn in collection.listeners:
                key = keys.get(weakref.ref(fn))
                if key is None or _made_by_create_engine(fn) or ignore(fn):
                    continue
                found.add((role, name, key[2]))
    return frozenset(found)


def _made_by_create_engine(fn: t.Any) -> bool:
    """``create_engine()``'s own pool listeners (``on_connect``, ``first_connect``).

    ``first_connect`` is wrapped by ``util.only_once``, whose closure holds it.
    """
    if getattr(fn, "__module__", None) == _CREATE_ENGINE_MODULE:
        return True
    if getattr(fn, "__qualname__", "") == "only_once.<locals>.go":
        cells = getattr(fn, "__closure__", None) or ()
        return any(
            getattr(_cell_contents(cell), "__module__", None) == _CREATE_ENGINE_MODULE for cell in cells
        )
    return False


def _cell_contents(cell: t.Any) -> t.Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


_CREATE_ENGINE_MODULE = "sqlalchemy.engine.create"


class SavepointSparingConnection(Connection):
    """A Connection whose first SAVEPOINT in an untouched transaction is the transaction itself.

    A savepoint begun when nothing has been sent since the transaction began
    (and no other savepoint is open) marks the same state as the transaction's
    start: rolling back to it is rolling the transaction back, releasing it
    is nothing at all. Such a savepoint sends nothing; its rollback sends one
    ROLLBACK, after which the driver begins the next transaction by itself.
    SQLAlchemy sees, numbers and dispatches the events of every savepoint as
    usual: only the SQL is spared.

    Subclasses say, with :meth:`_tt_untouched`, whether the transaction is
    untouched. SQLAlchemy has no hook between a ``NestedTransaction`` and the
    SQL it sends: this overrides ``Connection._savepoint_impl``,
    ``_release_savepoint_impl`` and ``_rollback_to_savepoint_impl`` and
    numbers savepoints with the name-mangled ``Connection.__savepoint_seq``,
    as they do. Checked against SQLAlchemy 2.0.0, 2.0.58 and 2.1.9.
    """

    #: The savepoint that stands for the transaction's start (nothing sent), or None.
    _tt_spared: str | None = None

    def _tt_untouched(self) -> bool:
        """Whether nothing was sent since the current transaction began."""
        return False

    def _tt_restarted(self) -> None:
        """Called when a spared savepoint's rollback began the transaction anew."""

    def _savepoint_impl(self, name: str | None = None) -> str:
        if name is not None or self.get_nested_transaction() is not None or not self._tt_untouched():
            return str(super()._savepoint_impl(name))
        # Named before the event, so that listeners can tell it is spared.
        spared = self._tt_spared = f"sa_savepoint_{self._Connection__savepoint_seq + 1}"  # type: ignore[attr-defined]
        if self._has_events or self.engine._has_events:
            self.dispatch.savepoint(self, name)
        self._Connection__savepoint_seq += 1  # type: ignore[attr-defined]
        return spared

    def _release_savepoint_impl(self, name: str) -> None:
        if name != self._tt_spared:
            super()._release_savepoint_impl(name)
            return
        if self._has_events or self.engine._has_events:
            self.dispatch.release_savepoint(self, name, None)

    def _rollback_to_savepoint_impl(self, name: str) -> None:
        if name != self._tt_spared:
            super()._rollback_to_savepoint_impl(name)
            return
        if self._has_events or self.engine._has_events:
            self.dispatch.rollback_savepoint(self, name, None)
        # Still the transaction's start (see rewind()); names are never reused.
        if self._still_open_and_dbapi_connection_is_valid:
            try:
                self.engine.dialect.do_rollback(self.connection)
            except BaseException as e:  # noqa: BLE001 - wrapped as SQLAlchemy wraps any DBAPI error
                self._handle_dbapi_exception(e, None, None, None, None)
            self._tt_restarted()


def rewind(savepoint: NestedTransaction) -> None:
    """Roll back to ``savepoint`` and keep it open, as the database does.

    ``ROLLBACK TO SAVEPOINT`` leaves the savepoint established (PostgreSQL,
    MySQL and SQLite alike), but ``NestedTransaction.rollback()`` also ends it
    in SQLAlchemy, so the next one would be a new SAVEPOINT on top. Calls
    ``Connection._rollback_to_savepoint_impl`` with
    ``NestedTransaction._savepoint``, as ``rollback()`` does, and leaves the
    transaction active. Checked against SQLAlchemy 2.0.0, 2.0.58 and 2.1.9.
    """
    savepoint.connection._rollback_to_savepoint_impl(savepoint._savepoint)


def socket_fileno(dbapi_connection: t.Any) -> int | None:
    """The file descriptor of a DBAPI connection's socket, or None.

    psycopg2, psycopg 3 and mysqlclient show it with ``fileno()``; PyMySQL
    keeps its socket in ``Connection._sock`` (checked against PyMySQL 1.0.2 and
    1.2.4). None when the connection is closed or the driver hides it.
    """
    try:
        fileno = getattr(dbapi_connection, "fileno", None)
        if callable(fileno):
            return int(fileno())
        sock = getattr(dbapi_connection, "_sock", None)
        return int(sock.fileno()) if sock is not None else None
    except Exception:  # noqa: BLE001 - closed: no socket to look at
        return None


def root_connection(context: t.Any) -> Connection:
    """The Connection a statement's execution context runs on.

    ``DefaultExecutionContext.root_connection``: the dialect-level events
    (``do_execute``) hand over the context, not the connection. Checked
    against SQLAlchemy 2.0.0, 2.0.58 and 2.1.9.
    """
    return t.cast(Connection, context.root_connection)


class ConnectionFacade(Connection):
    """A :class:`~sqlalchemy.engine.Connection` that runs everything on another one.

    SQLAlchemy accepts it wherever a Connection goes (``inspect()``,
    ``has_table()``, reflection, DDL), while its state (dialect, DBAPI
    connection, transactions, execution state) is read from ``self._facade_target``
    on every access, so the two never diverge. Subclasses decide what its
    transactions are.

    ``Connection.__init__`` is deliberately not called (it would check out a
    connection of its own), and ``Connection._run_ddl_visitor`` is overridden so
    that DDL (``metadata.create_all(conn)``) sends its statements through this
    object's ``execute``. Checked against SQLAlchemy 2.0.0, 2.0.58 and 2.1.9.
    """

    def __init__(self, engine: Engine, target: Connection) -> None:
        self.__dict__.update(engine=engine, _facade_target=target)

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self.__dict__["_facade_target"], name)

    def _facade_begin(self) -> Connection:
        """Make sure a transaction of this facade is open; return the target connection."""
        return t.cast(Connection, self.__dict__["_facade_target"])

    def _run_ddl_visitor(self, visitorcallable: t.Any, element: t.Any, **kwargs: t.Any) -> None:
        # The visitor's statements come back through self.execute().
        self._facade_begin()
        visitorcallable(dialect=self.dialect, connection=self, **kwargs).traverse_single(element)


def app_engine_map(db: t.Any, app: t.Any) -> dict[t.Any, Engine] | None:
    """The engine map Flask-SQLAlchemy keeps for ``app``, or None if ``db`` never met it.

    ``SQLAlchemy._app_engines[app]``: what :attr:`db.engines` returns in an app
    context of ``app``, read here without one (a class's app is pointed at its
    test databases before its app context is pushed). Writing its values is
    what :func:`live_engines` does. Checked against Flask-SQLAlchemy 3.0.5 and
    3.1.1.
    """
    engines: dict[t.Any, Engine] | None = db._app_engines.get(app)
    return engines


def make_app_engine(db: t.Any, app: t.Any, key: str | None, value: t.Any) -> Engine:
    """A new engine for bind ``key`` of ``app``, made as ``db.init_app(app)`` makes it.

    ``value`` is what ``SQLALCHEMY_DATABASE_URI`` (``key`` None) or
    ``SQLALCHEMY_BINDS[key]`` would hold: a URL, or a dict of engine options
    with ``url``. The options are built as ``SQLAlchemy.init_app`` builds them
    (the extension's ``_engine_options``, ``SQLALCHEMY_ENGINE_OPTIONS`` for the
    default bind, ``SQLALCHEMY_ECHO``), then passed through the extension's
    ``_apply_driver_defaults`` (SQLite paths under the instance folder,
    in-memory SQLite on a ``StaticPool``, MySQL's ``utf8mb4``) and
    ``_make_engine`` (which a subclass of ``SQLAlchemy`` may override), and
    ``SQLALCHEMY_RECORD_QUERIES`` listens on it (``record_queries._listen``).
    Nothing connects. Checked against Flask-SQLAlchemy 3.0.5 and 3.1.1, whose
    ``init_app`` builds engines identically.
    """
    options: dict[str, t.Any] = dict(db._engine_options)
    if key is None:
        options.update(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if isinstance(value, dict):
        options.update(value)
    else:
        options["url"] = value
    echo = app.config.get("SQLALCHEMY_ECHO", False)
    options.setdefault("echo", echo)
    options.setdefault("echo_pool", echo)
    db._apply_driver_defaults(options, app)
    engine: Engine = db._make_engine(key, options, app)
    if app.config.get("SQLALCHEMY_RECORD_QUERIES", False):
        from flask_sqlalchemy import record_queries

        record_queries._listen(engine)
    return engine


def lite_state(db: t.Any, app: t.Any) -> t.Any:
    """What Flask-SQLAlchemy-Lite keeps for ``app``: ``engines`` and ``sessionmaker``.

    ``SQLAlchemy._app_state[app]``, a ``_State`` whose ``engines`` dict is
    what :attr:`db.engines` returns in an app context of ``app`` and whose
    ``sessionmaker`` is :attr:`db.sessionmaker`; read here without one (a
    class's app is pointed at its test databases before its app context is
    pushed). Checked against Flask-SQLAlchemy-Lite 0.1.0 and 0.2.1.
    """
    state = db._app_state.get(app)
    if state is None:
        raise KeyError(app)
    return state


def lite_async_engines(db: t.Any, app: t.Any) -> dict[str, t.Any]:
    """Flask-SQLAlchemy-Lite's async engines of ``app`` (``SQLALCHEMY_ASYNC_ENGINES``), by name.

    The ``async_engines`` of :func:`lite_state`, what :attr:`db.async_engines`
    returns in an app context. Checked against Flask-SQLAlchemy-Lite 0.1.0
    and 0.2.1.
    """
    engines: dict[str, t.Any] = getattr(lite_state(db, app), "async_engines", None) or {}
    return engines


def make_lite_engine(db: t.Any, app: t.Any, name: str, value: t.Any) -> Engine:
    """A new engine for ``SQLALCHEMY_ENGINES[name]`` of ``app``, made as ``db.init_app(app)`` makes it.

    ``value`` is what the config entry would hold (a URL, or engine options
    with ``url``): merged with the extension's ``engine_options`` and given
    its per-backend defaults by ``_make._prepare_engine_options`` (SQLite
    paths under the instance folder, MySQL's ``utf8mb4``), then built with
    ``engine_from_config`` as ``_make._make_engines`` does. Nothing connects.
    Checked against Flask-SQLAlchemy-Lite 0.1.0 and 0.2.1.
    """
    import sqlalchemy as sa
    from flask_sqlalchemy_lite._make import _prepare_engine_options

    options = _prepare_engine_options(app, f'SQLALCHEMY_ENGINES["{name}"]', db._engine_options, value)
    engine: Engine = sa.engine_from_config(options, prefix="")
    return engine


def close_lite_sessions() -> None:
    """Close the current app context's Flask-SQLAlchemy-Lite sessions, as its teardown does.

    ``db.get_session()`` keeps them in ``g._sqlalchemy_sessions``; popping
    it makes the next ``db.session`` a new session. Checked against
    Flask-SQLAlchemy-Lite 0.1.0 and 0.2.1.
    """
    from flask import g

    sessions = g.pop("_sqlalchemy_sessions", None) or {}
    for session in sessions.values():
        session.close()


#: The name of every Flask-SQLAlchemy-Lite engine seen, for :func:`repair_lite_binds`.
_lite_engine_names: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def repair_lite_binds(db: t.Any, app: t.Any) -> list[str]:
    """Give ``app``'s Lite sessionmaker its own engines in ``binds``; the bound names repaired.

    Flask-SQLAlchemy-Lite turns the engine names of
    ``session_options["binds"]`` into engines by writing into the extension's
    own dict (pallets-eco/flask-sqlalchemy-lite#41): every app initialised
    after the first gets the first app's engines for its bound models. A test
    run builds an app per class, so its writes to those models would land in
    the first class's databases. The engines of every app registered so far
    are remembered by name; an engine in ``app``'s ``binds`` that is not one
    of its own is replaced by its engine of the same name. Raises KeyError
    with the model's name when none can be found. Reads
    ``SQLAlchemy._app_state``; checked against Flask-SQLAlchemy-Lite 0.1.0
    and 0.2.1.
    """
    for state in list(db._app_state.values()):
        for name, engine in state.engines.items():
            _lite_engine_names.setdefault(engine, name)
    state = lite_state(db, app)
    kw = state.sessionmaker.kw
    binds = kw.get("binds")
    own = set(map(id, state.engines.values()))
    if not binds or all(id(bind) in own for bind in binds.values()):
        return []
    repaired: dict[t.Any, t.Any] = {}
    names: list[str] = []
    for model, bind in binds.items():
        if id(bind) not in own and isinstance(bind, Engine):
            name = _lite_engine_names.get(bind)
            if name is None or name not in state.engines:
                raise KeyError(getattr(model, "__name__", repr(model)))
            bind = state.engines[name]
            names.append(f"{getattr(model, '__name__', model)} -> {name}")
        repaired[model] = bind
    kw["binds"] = repaired  # this app's sessionmaker only: the extension's dict is shared
    return names
