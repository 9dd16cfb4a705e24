"""Creating, migrating, reusing and finally dropping test databases.

One :class:`Provisioner` per process remembers which databases it built and
from which schema fingerprint, so later test classes reuse a database at the
same heads instead of migrating again, and everything it created is dropped
when the process ends.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import typing as t

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import URL, Engine

from .backends import Backend, backend_for, check_safe, unreachable
from .errors import MigrationError, mask_url

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

    from .migrations import SchemaSource


class _Database(t.NamedTuple):
    url: URL
    backend: Backend
    fingerprint: str


class Provisioner:
    """Builds each test database once per process and drops them at exit."""

    def __init__(self) -> None:
        self._databases: dict[str, _Database] = {}
        self._lock = threading.Lock()
        self._tempdir: str | None = None
        self._atexit_registered = False

    def default_sqlite_url(self) -> str:
        """A SQLite file in a temporary folder owned by this process."""
        if self._tempdir is None:
            self._tempdir = tempfile.mkdtemp(prefix="transactional_testcase-")
            self._register_atexit()
        return "sqlite:///" + os.path.join(self._tempdir, "test.db")

    def ensure(
        self,
        app: Flask,
        db: SQLAlchemy,
        engines: t.Mapping[str | None, Engine],
        schema: SchemaSource,
        settings: t.Mapping[str | None, str],
    ) -> bool:
        """Make every database of ``engines`` exist and match ``schema``.

        ``settings`` names, per bind key, the setting a user would change to
        point that engine elsewhere (used in the unsafe-name error). Returns
        True when databases were (re)built, False when all were reused.
        """
        fingerprint = schema.fingerprint()
        targets: list[tuple[URL, Backend]] = []
        for key, engine in engines.items():
            url = engine.url
            check_safe(url, settings.get(key, "the app's SQLALCHEMY_DATABASE_URI"))
            backend = backend_for(url)
            backend.prepare_engine(engine)
            targets.append((url, backend))
        with self._lock:
            reusable = all(
                not backend.is_memory(url)
                and (known := self._databases.get(_key(url))) is not None
                and known.fingerprint == fingerprint
                for url, backend in targets
            )
            if reusable:
                return False
            for engine in engines.values():
                engine.dispose()
            for url, backend in targets:
                self._databases.pop(_key(url), None)
                try:
                    backend.recreate(url)
                except sa.exc.OperationalError as exc:
                    raise unreachable(url, exc, backend) from None
            try:
                schema.build(app, db, engines)
            except sa.exc.OperationalError as exc:
                url, backend = targets[0]
                raise unreachable(url, exc, backend) from None
            except sa.exc.SQLAlchemyError as exc:
                raise MigrationError(
                    f"building the schema of {mask_url(targets[0][0])} failed: "
                    f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
                ) from None
            for url, backend in targets:
                if not backend.is_memory(url):
                    self._databases[_key(url)] = _Database(url, backend, fingerprint)
                    self._register_atexit()
            return True

    def forget(self, engines: t.Iterable[Engine]) -> None:
        """Stop reusing these databases (their build failed half way)."""
        with self._lock:
            for engine in engines:
                self._databases.pop(_key(engine.url), None)

    def drop_all(self) -> None:
        """Drop every database this process created (called at exit)."""
        with self._lock:
            databases, self._databases = list(self._databases.values()), {}
        for database in databases:
            try:
                database.backend.drop(database.url)
            except Exception:  # the server may already be gone at exit
                pass
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    def _register_atexit(self) -> None:
        if not self._atexit_registered:
            atexit.register(self.drop_all)
            self._atexit_registered = True


def _key(url: URL) -> str:
    return url.render_as_string(hide_password=False)


#: The process-wide provisioner every test case class shares.
provisioner = Provisioner()
