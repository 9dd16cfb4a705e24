"""Handing server connections on from one test case class to the next.

Every class builds a new app, whose engines would each open new connections:
a PostgreSQL backend process or a MySQL login costs 4 to 40 ms, more than the
rest of a class's setup. When a class ends, its engines' idle connections are
kept (their session reset where the server can do it); the next class built by
the same ``create_app`` with the same config, on the same database, gets them
through SQLAlchemy's ``do_connect`` event instead of connecting again. The
pool still treats each as a new connection: the dialect initializes and the
app's own ``connect`` listeners run on it, as on any fresh connection.

Connections are never shared by two engines at once, never reused after the
database they point at is dropped or rebuilt, never handed to a forked child,
and closed when the process ends.
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

from .backends import Backend, backend_for

#: Idle connections kept per process, over every database and app (the oldest
#: are closed first): enough for a few factories of two or three binds each,
#: and well under a server's connection limit even with several workers.
MAX_KEPT = 8

#: What makes two engines' connections interchangeable: the app factory, the
#: config it was given, the bind key, and the URL (password included); last,
#: the database it names, whatever the driver and options.
Key: t.TypeAlias = tuple[t.Hashable, str | None, str, str]


class ConnectionKeeper:
    """Idle DBAPI connections of finished classes, waiting for the next one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[tuple[Key, t.Any]] = []  # oldest first
        self._keys: weakref.WeakKeyDictionary[Engine, Key] = weakref.WeakKeyDictionary()
        #: Connections inherited by a forked child: the parent's, never used
        #: nor closed here (closing would end the parent's server session).
        self._inherited: list[t.Any] = []
        #: How many connections were kept when a class ended, and handed on.
        self.stats: dict[str, int] = {"kept": 0, "reused": 0}

    def adopt(self, engines: t.Mapping[str | None, Engine], app_key: t.Hashable) -> None:
        """Let ``engines`` take kept connections instead of connecting anew."""
        for bind, engine in engines.items():
            if not _reusable(engine):
                continue
            # An app built once for many classes keeps its engines: one
            # listener each, whose key the latest class sets.
            listening = engine in self._keys
            self._keys[engine] = _key(app_key, bind, engine)
            if not listening:
                event.listen(engine, "do_connect", self._listener(engine))

    def _listener(self, engine: Engine) -> t.Callable[..., t.Any]:
        ref = weakref.ref(engine)

        def take(dialect: t.Any, record: t.Any, cargs: t.Any, cparams: t.Any) -> t.Any:
            engine = ref()
            key = self._keys.get(engine) if engine is not None else None
            if engine is None or key is None:
                return None  # the dialect connects as usual
            return self._take_alive(key, dialect, backend_for(engine.url))

        return take

    def release(
        self, engines: t.Mapping[str | None, Engine], app_key: t.Hashable
    ) -> None:
        """Keep the idle connections of ``engines`` (before they are disposed)."""
        for bind, engine in engines.items():
            if not _reusable(engine):
                continue
            key = _key(app_key, bind, engine)
            pool = t.cast(QueuePool, engine.pool)
            for _ in range(pool.checkedin()):
                proxied = pool.connect()
                dbapi_connection = proxied.dbapi_connection
                # Out of the pool's hands: it neither closes nor returns it now.
                proxied.detach()
                if dbapi_connection is None:
                    continue
                try:
                    backend_for(engine.url).reset_session(dbapi_connection)
                except Exception:  # noqa: BLE001 - a broken connection is simply not kept
                    _close(dbapi_connection)
                    continue
                self._keep(key, dbapi_connection)

    def discard(self, url: str | URL) -> None:
        """Close the kept connections to ``url``'s database (about to be dropped)."""
        name = _database(make_url(url))
        with self._lock:
            gone = [c for key, c in self._idle if key[3] == name]
            self._idle = [(key, c) for key, c in self._idle if key[3] != name]
        for connection in gone:
            _close(connection)

    def close_all(self) -> None:
        """Close every kept connection (at exit, before the databases are dropped)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for _, connection in idle:
            _close(connection)

    def _take_alive(self, key: Key, dialect: t.Any, backend: Backend) -> t.Any:
        # One round trip: a server restarted between two classes must cost a
        # reconnection, not the next class.
        while (connection := self._take(key)) is not None:
            alive = False
            with contextlib.suppress(Exception):  # dead: connect anew
                alive = backend.ping(dialect, connection)
            if alive:
                self.stats["reused"] += 1
                return connection
            _close(connection)
        return None

    def _take(self, key: Key) -> t.Any:
        with self._lock:
            for i, (kept, connection) in enumerate(self._idle):
                if kept == key:
                    del self._idle[i]
                    return connection
        return None

    def _keep(self, key: Key, connection: t.Any) -> None:
        with self._lock:
            self._idle.append((key, connection))
            self.stats["kept"] += 1
            evicted, self._idle = self._idle[:-MAX_KEPT], self._idle[-MAX_KEPT:]
        for _, old in evicted:
            _close(old)

    def _after_fork_in_child(self) -> None:
        self._inherited.extend(c for _, c in self._idle)
        self._idle = []
        self._lock = threading.Lock()


def _reusable(engine: Engine) -> bool:
    return isinstance(engine.pool, QueuePool) and backend_for(engine.url).keeps_connections


def _render(url: URL) -> str:
    return str(url.render_as_string(hide_password=False))


def _database(url: URL) -> str:
    return f"{url.get_backend_name()}://{url.host}:{url.port}/{url.database}"


def _key(app_key: t.Hashable, bind: str | None, engine: Engine) -> Key:
    return (app_key, bind, _render(engine.url), _database(engine.url))


def _close(connection: t.Any) -> None:
    with contextlib.suppress(Exception):  # the server may have closed it already
        connection.close()


#: The process-wide keeper every test case class shares.
keeper = ConnectionKeeper()
os.register_at_fork(after_in_child=keeper._after_fork_in_child)
