"""Handing engines, or their connections, on from one test case class to the next.

Every class builds a new app, whose engines would each connect again and
initialize their dialect: a PostgreSQL backend process or a MySQL login costs
2 to 60 ms, the dialect's first-connect queries 1 to 6 ms more, more than the
rest of a class's setup. So when a class ends its engines are kept, with their
idle connections in their pools, and the next class whose app has the same
Flask-SQLAlchemy extension and engine settings, on the same database, whatever
its ``create_app`` (each test module's own factory calling the project's, say):

* **uses the kept engine itself** when the engine its own app made is
  interchangeable with it: the same listeners (the same functions, on the
  engine, its pool and its dialect) and the same execution options. The
  dialect is initialized, the compiled-statement cache warm, and the pooled
  connections are as the previous class left them (a rolled-back test leaves
  nothing behind on PostgreSQL but session advisory locks and ``PREPARE``\\d
  statements; on MySQL ``SET SESSION`` variables stay, as between the tests of
  one class). Their sockets are looked at first: one the server closed
  between classes (a restart, a timeout) is replaced by a new connection, not
  handed to a test.
* otherwise (an app whose factory registers a new closure as a listener each
  time, say) **takes the kept engine's idle connections** through
  SQLAlchemy's ``do_connect`` event: its own dialect initializes on them and
  its ``connect`` listeners run, as on any new connection. On PostgreSQL their
  session is reset first (``DISCARD ALL``), since those listeners will set it
  up again; on MySQL/MariaDB, which has no such reset, they go only to a class
  of the same ``create_app`` and config, whose listeners set the same.

Engines and connections are never shared by two classes at once, never
reused after the database they point at is dropped or rebuilt, never touched
by a forked child, and closed when the process ends.

.. versionchanged:: 0.2
   Engines are handed on, not only their connections: a later class skips
   the dialect's initialization too.

.. versionchanged:: 0.4
   Handed on between classes of different factories too, when their engines
   are interchangeable (:class:`AppKey`).
"""

from __future__ import annotations

import contextlib
import os
import threading
import typing as t
import weakref

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import QueuePool

from ._compat import engine_listeners
from ._types import BindKey
from .backends import backend_for, quiet_socket

#: Idle connections kept per process, over every kept engine and database (the
#: oldest engines are disposed first): enough for a few factories of two or
#: three binds each, and well under a server's connection limit even with
#: several workers.
MAX_KEPT = 8


class AppKey(t.NamedTuple):
    """What a class's app is, for handing its engines on."""

    #: The Flask-SQLAlchemy extension the engines came from (its engine
    #: options) and the engine settings of the app's config: what must match
    #: for two classes' engines to be interchangeable, with their signatures.
    engines: t.Hashable
    #: The factory and the config it was given: connections whose session a
    #: backend cannot reset go only to a class of the same.
    factory: t.Hashable


class Key(t.NamedTuple):
    """What makes two engines interchangeable (compared whole, as a tuple)."""

    #: :attr:`AppKey.engines` of the class that made them.
    app: t.Hashable
    bind: BindKey
    #: The engine's URL, password included.
    url: str
    #: The database it names, whatever the driver and options (see ``discard``).
    database: str


class Signature(t.NamedTuple):
    """What an app's factory set up on an engine (compared whole, as a tuple)."""

    #: Its own listeners: where (engine, dialect or pool), the event, and the listener's identity.
    listeners: frozenset[tuple[str, str, t.Hashable]]
    #: Its execution options, rendered.
    options: str


class _Kept(t.NamedTuple):
    """An engine kept whole for the next class of the same key."""

    key: Key
    engine: Engine
    #: The factory of the class that used it (see :attr:`AppKey.factory`).
    factory: t.Hashable


class _Loose(t.NamedTuple):
    """A DBAPI connection detached from a kept engine, for the next engine of ``key``."""

    key: Key
    connection: t.Any
    #: The factory of the class whose engine it came from.
    factory: t.Hashable


class ConnectionKeeper:
    """Engines of finished classes (and loose connections), waiting for the next class."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._engines: list[_Kept] = []  # oldest first
        #: DBAPI connections detached from a kept engine that could not be
        #: reused, for the engine of the same key to take through ``do_connect``.
        self._idle: list[_Loose] = []
        #: Each engine's signature as its app built it (before this library
        #: listened on it), and the key of the engines that take loose connections.
        self._signatures: weakref.WeakKeyDictionary[Engine, Signature] = weakref.WeakKeyDictionary()
        self._keys: weakref.WeakKeyDictionary[Engine, tuple[Key, t.Hashable]] = weakref.WeakKeyDictionary()
        #: The connection records each engine's pool got back (see ``_check``).
        self._returned: weakref.WeakKeyDictionary[Engine, weakref.WeakSet[t.Any]] = (
            weakref.WeakKeyDictionary()
        )
        #: What a forked child inherited: the parent's, never used nor closed
        #: here (closing would end the parent's server sessions).
        self._inherited: list[t.Any] = []
        #: Engines handed on whole, and loose connections kept and taken.
        self.stats: dict[str, int] = {"engines": 0, "kept": 0, "reused": 0}

    # -- a class starts ----------------------------------------------------------

    def adopt(self, engines: t.Mapping[BindKey, Engine], app_key: AppKey) -> dict[BindKey, Engine]:
        """The engines a class should use instead of ``engines``, the ones its app made.

        Call it right after the app is built, before anything listens on its
        engines. Each is replaced by a kept engine it is interchangeable with,
        or else takes that engine's idle connections.
        """
        chosen = dict(engines)
        for bind, engine in engines.items():
            if not _keepable(engine):
                continue
            signature = self._signature_of(engine)
            key = _key(app_key.engines, bind, engine)
            kept = self._take_engine(key)
            # The app's own engine again (an app built once for many classes),
            # or one it is interchangeable with.
            if kept is not None and (kept.engine is engine or self._signatures.get(kept.engine) == signature):
                self._check(kept.engine)
                self.stats["engines"] += 1
                chosen[bind] = kept.engine
                continue
            if kept is not None:
                self._loosen(kept)
            if backend_for(engine.url).keeps_connections:
                self._take_loose(engine, key, app_key.factory)
            self._watch_checkins(engine)
        return chosen

    def _watch_checkins(self, engine: Engine) -> None:
        """Note the connections ``engine``'s pool gets back: idle ones, checked later without a checkout."""
        if engine in self._returned:
            return
        returned = self._returned[engine] = weakref.WeakSet()

        def on_checkin(dbapi_connection: t.Any, record: t.Any) -> None:
            returned.add(record)

        event.listen(engine.pool, "checkin", on_checkin)

    def _check(self, engine: Engine) -> None:
        """Make sure a kept engine's idle connections survived the pause between two classes.

        Each one's socket is looked at (no round trip): one the server closed
        (a restart, a terminated session, a timeout) is invalidated, and the
        pool opens a new one in its place when it is next checked out. Only
        idle connections whose sockets cannot be seen (never seen returned, or
        a driver that hides them) cost a checkout and a ping; a dead one there
        means a restart: the pool starts afresh.
        """
        backend = backend_for(engine.url)
        pool = t.cast(QueuePool, engine.pool)
        unseen = pool.checkedin()
        if not unseen or not backend.can_lose_connections:
            return
        for record in list(self._returned.get(engine, ())):
            if record.dbapi_connection is None:  # closed already: connects anew when next used
                unseen -= 1
                continue
            quiet = quiet_socket(record.dbapi_connection)
            if quiet is not None:
                unseen -= 1
                if not quiet:
                    record.invalidate()
        if unseen <= 0:
            return
        proxied = pool.connect()
        try:
            backend.ping(engine.dialect, proxied.dbapi_connection)
        except Exception:  # noqa: BLE001 - the server dropped it (restart): the others are gone too
            proxied.invalidate()
            proxied.close()
            engine.dispose()
            return
        proxied.close()

    def _signature_of(self, engine: Engine) -> Signature:
        # First seen: as its app made it. An app built once for many classes
        # keeps its engines, and their first signature.
        signature = self._signatures.get(engine)
        if signature is None:
            signature = self._signatures[engine] = _signature(engine)
        return signature

    def signature(self, engine: Engine) -> Signature:
        """``engine``'s signature as its app made it: what the app set up on it."""
        return self._signature_of(engine)

    def _take_engine(self, key: Key) -> _Kept | None:
        with self._lock:
            for i, kept in enumerate(self._engines):
                if kept.key == key:
                    del self._engines[i]
                    return kept
        return None

    def _loosen(self, kept: _Kept) -> None:
        """Detach a kept engine's idle connections for another engine of its key; dispose it."""
        engine = kept.engine
        backend = backend_for(engine.url)
        if backend.keeps_connections:
            pool = t.cast(QueuePool, engine.pool)
            for _ in range(pool.checkedin()):
                proxied = pool.connect()
                dbapi_connection = proxied.dbapi_connection
                # Out of the pool's hands: it neither closes nor returns it now.
                proxied.detach()
                if dbapi_connection is None:
                    continue
                try:
                    backend.reset_session(dbapi_connection)
                except Exception:  # noqa: BLE001 - a broken connection is simply not kept
                    _close(dbapi_connection)
                    continue
                with self._lock:
                    self._idle.append(_Loose(kept.key, dbapi_connection, kept.factory))
                    self.stats["kept"] += 1
        _dispose(engine)

    def _take_loose(self, engine: Engine, key: Key, factory: t.Hashable) -> None:
        """Let ``engine`` take the loose connections of ``key`` instead of connecting."""
        listening = engine in self._keys
        self._keys[engine] = (key, factory)
        if not listening and any(self._fits(loose, key, factory) for loose in self._idle):
            event.listen(engine, "do_connect", self._listener(engine))

    def _listener(self, engine: Engine) -> t.Callable[..., t.Any]:
        ref = weakref.ref(engine)

        def take(dialect: t.Any, record: t.Any, cargs: t.Any, cparams: t.Any) -> t.Any:
            engine = ref()
            wanted = self._keys.get(engine) if engine is not None else None
            if engine is None or wanted is None:
                return None  # the dialect connects as usual
            return self._take_alive(*wanted, dialect)

        return take

    def _take_alive(self, key: Key, factory: t.Hashable, dialect: t.Any) -> t.Any:
        # One round trip: a server restarted between two classes must cost a
        # reconnection, not the next class.
        backend = backend_for(make_url(key.url))
        while (connection := self._take(key, factory)) is not None:
            alive = False
            with contextlib.suppress(Exception):  # dead: connect anew
                alive = backend.ping(dialect, connection)
            if alive:
                self.stats["reused"] += 1
                return connection
            _close(connection)
        return None

    def _take(self, key: Key, factory: t.Hashable) -> t.Any:
        with self._lock:
            for i, loose in enumerate(self._idle):
                if self._fits(loose, key, factory):
                    del self._idle[i]
                    return loose.connection
        return None

    @staticmethod
    def _fits(loose: _Loose, key: Key, factory: t.Hashable) -> bool:
        """Whether an engine of ``key`` made by ``factory`` may take ``loose``: its session is reset, or set up alike."""
        return loose.key == key and (
            loose.factory == factory or backend_for(make_url(key.url)).resets_sessions
        )

    # -- a class ends ------------------------------------------------------------

    def release(
        self,
        used: t.Mapping[BindKey, Engine],
        own: t.Iterable[Engine],
        app_key: AppKey | None,
    ) -> None:
        """Keep the engines a class ``used`` for the next one; dispose of the rest.

        ``own`` are the engines its app made (some perhaps replaced by kept
        ones). An engine whose listeners changed during the class (a test
        listened on its pool, say) is not kept. ``app_key`` None keeps nothing.
        """
        keeping: list[_Kept] = []
        if app_key is not None:
            for bind, engine in used.items():
                if _keepable(engine) and _signature(engine) == self._signatures.get(engine):
                    keeping.append(_Kept(_key(app_key.engines, bind, engine), engine, app_key.factory))
        kept_engines = {id(k.engine) for k in keeping}
        for engine in {id(e): e for e in (*own, *used.values())}.values():
            if id(engine) not in kept_engines:
                _dispose(engine)
        for kept in keeping:
            self._keep(kept)
        # Loose connections nobody took are not worth more than a new connection.
        self._limit()

    def _keep(self, kept: _Kept) -> None:
        with self._lock:
            # The same key twice (two classes of one factory at once, in
            # threads): the older engine goes.
            replaced = [k.engine for k in self._engines if k.key == kept.key and k.engine is not kept.engine]
            self._engines = [k for k in self._engines if k.key != kept.key]
            self._engines.append(kept)
        for engine in replaced:
            _dispose(engine)

    def _limit(self) -> None:
        """At most ``MAX_KEPT`` idle connections: dispose of the oldest engines, close the oldest loose ones."""
        with self._lock:
            idle = sum(_checked_in(k.engine) for k in self._engines) + len(self._idle)
            disposing: list[Engine] = []
            closing: list[t.Any] = []
            while idle > MAX_KEPT and self._idle:
                closing.append(self._idle.pop(0).connection)
                idle -= 1
            while idle > MAX_KEPT and len(self._engines) > 1:
                oldest = self._engines.pop(0).engine
                idle -= _checked_in(oldest)
                disposing.append(oldest)
        for connection in closing:
            _close(connection)
        for engine in disposing:
            _dispose(engine)

    # -- databases go away ---------------------------------------------------------

    def discard(self, url: str | URL) -> None:
        """Close what is kept for ``url``'s database (about to be dropped or rebuilt)."""
        name = _database(make_url(url))
        with self._lock:
            engines = [k.engine for k in self._engines if k.key.database == name]
            self._engines = [k for k in self._engines if k.key.database != name]
            gone = [loose.connection for loose in self._idle if loose.key.database == name]
            self._idle = [loose for loose in self._idle if loose.key.database != name]
        for engine in engines:
            _dispose(engine)
        for connection in gone:
            _close(connection)

    def close_all(self) -> None:
        """Close everything kept (at exit, before the databases are dropped)."""
        with self._lock:
            engines, self._engines = [k.engine for k in self._engines], []
            idle, self._idle = self._idle, []
        for engine in engines:
            _dispose(engine)
        for loose in idle:
            _close(loose.connection)

    def _after_fork_in_child(self) -> None:
        self._inherited.extend(loose.connection for loose in self._idle)
        self._inherited.extend(k.engine for k in self._engines)
        self._idle = []
        self._engines = []
        self._lock = threading.Lock()


def _keepable(engine: Engine) -> bool:
    # A QueuePool: a file or server database (in-memory SQLite gets another pool).
    return isinstance(engine.pool, QueuePool)


def _signature(engine: Engine) -> Signature:
    return Signature(
        engine_listeners(engine, _is_ours),
        repr(sorted(engine.get_execution_options().items(), key=repr)),
    )


def _is_ours(fn: t.Any) -> bool:
    """This library's listeners (SQLite's BEGIN fix, loose connections): not the app's."""
    return str(getattr(fn, "__module__", "")).startswith(__package__ or "transactional_testcase")


def _checked_in(engine: Engine) -> int:
    return int(t.cast(QueuePool, engine.pool).checkedin())


def _dispose(engine: Engine) -> None:
    pool = engine.pool
    if isinstance(pool, QueuePool) and not pool.checkedin() and not pool.checkedout():
        return  # nothing to close (an app's engine a kept one replaced never connected)
    with contextlib.suppress(Exception):  # the server may have closed its connections already
        engine.dispose()


def _render(url: URL) -> str:
    return str(url.render_as_string(hide_password=False))


def _database(url: URL) -> str:
    return f"{url.get_backend_name()}://{url.host}:{url.port}/{url.database}"


def _key(app_key: t.Hashable, bind: BindKey, engine: Engine) -> Key:
    return Key(app_key, bind, _render(engine.url), _database(engine.url))


def _close(connection: t.Any) -> None:
    with contextlib.suppress(Exception):  # the server may have closed it already
        connection.close()


#: The process-wide keeper every test case class shares.
keeper = ConnectionKeeper()
os.register_at_fork(after_in_child=keeper._after_fork_in_child)
