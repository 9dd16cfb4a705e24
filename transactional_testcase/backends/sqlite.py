"""SQLite: databases are files (or live in one pool), templates are file copies.

There is no server: locks are file locks, keepdb markers are files next to
the database, and pysqlite's transaction handling is replaced so that
SAVEPOINTs isolate at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import math
import os
import shutil
import sqlite3
import typing as t

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from .. import environment
from ..errors import ConfigurationError, mask_url
from . import register
from .base import (
    TEMPLATE_NAME,
    Backend,
    ConstraintChecker,
    Leftover,
    TableEmptier,
    TableRef,
    empty_nothing,
    make_label,
    parse_label,
    quoted_names,
    reset_nothing,
)

#: Added to a database file's path to name the file holding its keepdb fingerprint.
MARKER_SUFFIX = ".tt-fingerprint"
#: Next to a template ``<name>.db`` in the cache folder: its label.
LABEL_SUFFIX = ".label"
#: The cache folder's subfolder naming every kept database (one file each, holding its path).
KEPT_FOLDER = "kept"


@register("sqlite")
class SQLiteBackend(Backend):
    title = "SQLite"
    can_lose_connections = False  # a file: no server to lose it
    is_file = True

    def database_name(self, url: URL) -> str:
        return os.path.basename(url.database or "")

    def is_memory(self, url: URL) -> bool:
        db = url.database or ""
        return db in ("", ":memory:") or db.startswith("file::memory:") or (url.query.get("mode") == "memory")

    def with_suffix(self, url: URL, suffix: str) -> URL:
        # Before the extension: ``test_p1.db``, still a ``.db`` file.
        root, ext = os.path.splitext(url.database or "")
        return url.set(database=f"{root}{suffix}{ext}")

    def prepare_engine(self, engine: Engine) -> None:
        # pysqlite's legacy transaction control emits no BEGIN before SAVEPOINT,
        # so a released savepoint would commit for real. SQLAlchemy's documented
        # fix: let the driver do nothing and emit BEGIN ourselves.
        if event.contains(engine, "connect", _sqlite_on_connect):
            return
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        # Connections pooled before the fix lack it: start again.
        engine.dispose()

    def recreate(self, url: URL) -> None:
        if self.is_memory(url):
            return
        self.drop(url)
        directory = os.path.dirname(os.path.abspath(url.database or ""))
        if not os.path.isdir(directory):
            raise ConfigurationError(
                f"SQLite test database {mask_url(url)}: folder {directory!r} does "
                "not exist; create it or point database_url elsewhere."
            )

    def drop(self, url: URL) -> None:
        if self.is_memory(url):
            return
        path = url.database or ""
        for suffix in ("", "-journal", "-wal", "-shm", MARKER_SUFFIX, LABEL_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path + suffix)

    def template_url(self, url: URL, name: str) -> URL:
        return url.set(database=os.path.join(template_folder(), name + ".db"), query={})

    def save_template(self, url: URL, template: URL, engine: Engine, label: str = "") -> None:
        path = template.database or ""
        partial = f"{path}.{os.getpid()}.partial"
        if label:  # first: a template never lacks the label its fingerprint says
            _write_atomically(path + LABEL_SUFFIX, label)
        if self.is_memory(url):
            raw = engine.raw_connection()
            try:
                target = sqlite3.connect(partial)
                try:
                    raw.dbapi_connection.backup(target)  # type: ignore[union-attr]
                finally:
                    target.close()
            finally:
                raw.close()
        else:
            shutil.copyfile(url.database or "", partial)
        os.replace(partial, path)  # atomic: a template is complete or absent

    def has_template(self, template: URL, url: URL) -> bool:
        return os.path.isfile(template.database or "")

    def clone(self, template: URL, url: URL, engine: Engine) -> None:
        if self.is_memory(url):
            source = sqlite3.connect(template.database or "")
            raw = engine.raw_connection()
            try:
                source.backup(raw.dbapi_connection)  # type: ignore[arg-type]
            finally:
                raw.close()
                source.close()
            return
        self.recreate(url)
        shutil.copyfile(template.database or "", url.database or "")

    def template_names(self, url: URL, prefix: str) -> list[str]:
        folder = template_folder()
        return [
            name[: -len(".db")]
            for name in sorted(os.listdir(folder))
            if name.startswith(prefix) and name.endswith(".db")
        ]

    def drop_templates(self, template: URL, prefix: str) -> list[str]:
        dropped: list[str] = []
        for name in self.template_names(template, prefix):
            path = self.template_url(template, name).database or ""
            if path == template.database:
                continue
            with contextlib.suppress(OSError):
                os.unlink(path)
                dropped.append(name)
            with contextlib.suppress(OSError):
                os.unlink(path + LABEL_SUFFIX)
        return dropped

    def read_marker(self, url: URL, engine: Engine) -> str | None:
        if self.is_memory(url) or not os.path.isfile(url.database or ""):
            return None
        try:
            with open(_marker_path(url), encoding="utf-8") as f:
                label = parse_label(f.read())
        except OSError:
            return None
        return label.fingerprint if label is not None else None

    def write_marker(self, url: URL, fingerprint: str, source: str = "") -> None:
        if self.is_memory(url):
            return
        with open(_marker_path(url), "w", encoding="utf-8") as f:
            f.write(make_label(fingerprint, source))
        # Named in the cache folder too, for python -m transactional_testcase list.
        path = os.path.abspath(url.database or "")
        kept = os.path.join(template_folder(), KEPT_FOLDER)
        os.makedirs(kept, exist_ok=True)
        _write_atomically(os.path.join(kept, _kept_record(path)), path)

    def inventory(self, url: URL) -> list[Leftover]:
        """The templates of the cache folder, and the kept databases it names."""
        folder = template_folder()
        found: list[Leftover] = []
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if not (name.endswith(".db") and TEMPLATE_NAME.match(name[: -len(".db")])):
                continue
            label = parse_label(_read(path + LABEL_SUFFIX))
            found.append(
                Leftover(
                    "template",
                    path,
                    url.set(database=path, query={}),
                    label.source if label else "",
                    _size(path),
                    label.made if label else _mtime(path),
                )
            )
        kept = os.path.join(folder, KEPT_FOLDER)
        for record in sorted(os.listdir(kept)) if os.path.isdir(kept) else []:
            path = (_read(os.path.join(kept, record)) or "").strip()
            label = parse_label(_read(path + MARKER_SUFFIX)) if path else None
            if label is None or not os.path.isfile(path):
                # Dropped (or rebuilt without keepdb) since: forget it.
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(kept, record))
                continue
            found.append(
                Leftover(
                    "kept", path, url.set(database=path, query={}), label.source, _size(path), label.made
                )
            )
        return found

    def drop_leftover(self, leftover: Leftover) -> None:
        self.drop(leftover.url)
        if leftover.kind == "kept":
            record = os.path.join(template_folder(), KEPT_FOLDER, _kept_record(leftover.name))
            with contextlib.suppress(OSError):
                os.unlink(record)

    @contextlib.contextmanager
    def lock(self, url: URL, name: str) -> t.Iterator[None]:
        with _file_lock(os.path.join(template_folder(), name + ".lock")):
            yield

    def constraint_checker(self, connection: Connection) -> ConstraintChecker | None:
        deferred = connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' "
            "AND sql LIKE '%DEFERRABLE%INITIALLY%DEFERRED%' LIMIT 1"
        ).first()
        if deferred is None:
            return None

        def check(conn: Connection) -> str | None:
            # Deferred foreign keys are checked at COMMIT only while enforcement is on.
            if not conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
                return None
            rows = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            if not rows:
                return None
            return "; ".join(f"{r[0]} rowid {r[1]} references missing {r[2]} row" for r in rows)

        return check

    def sequence_resetter(self, connection: Connection) -> t.Callable[[Connection], None]:
        # Rowids (and AUTOINCREMENT's sqlite_sequence) are transactional in
        # SQLite: a rolled-back test already leaves them where they were.
        return reset_nothing

    def table_emptier(
        self, connection: Connection, tables: t.Sequence[TableRef], lock_timeout: float
    ) -> TableEmptier:
        if not tables:
            return empty_nothing
        quoted = quoted_names(connection, tables)
        probe = " UNION ALL ".join(
            f"SELECT {i} WHERE EXISTS (SELECT 1 FROM {name})" for i, name in enumerate(quoted)
        )
        has_counters = (
            connection.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'"
            ).first()
            is not None
        )
        connection.rollback()
        own = {name for schema, name in tables if schema is None}
        timeout_ms = max(1, math.ceil(lock_timeout * 1000))

        def empty(conn: Connection) -> list[str]:
            # Through the DBAPI connection: PRAGMA foreign_keys is ignored inside a
            # transaction, and the engine's begin listener would open one first.
            raw: t.Any = conn.connection.dbapi_connection
            cursor = raw.cursor()
            try:
                dirty = [row[0] for row in cursor.execute(probe)]
                counters = (
                    sorted(
                        row[0] for row in cursor.execute("SELECT name FROM sqlite_sequence") if row[0] in own
                    )
                    if has_counters
                    else []
                )
                if not dirty and not counters:
                    return []
                enforced = cursor.execute("PRAGMA foreign_keys").fetchone()[0]
                busy = cursor.execute("PRAGMA busy_timeout").fetchone()[0]
                cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
                if enforced:
                    cursor.execute("PRAGMA foreign_keys = OFF")
                try:
                    cursor.execute("BEGIN")
                    try:
                        for i in dirty:
                            cursor.execute(f"DELETE FROM {quoted[i]}")
                        if counters:
                            marks = ", ".join("?" * len(counters))
                            cursor.execute(f"DELETE FROM sqlite_sequence WHERE name IN ({marks})", counters)
                        cursor.execute("COMMIT")
                    except BaseException:
                        with contextlib.suppress(Exception):
                            cursor.execute("ROLLBACK")
                        raise
                finally:
                    if enforced:
                        cursor.execute("PRAGMA foreign_keys = ON")
                    cursor.execute(f"PRAGMA busy_timeout = {int(busy)}")
            finally:
                cursor.close()
            return sorted({tables[i][1] for i in dirty} | set(counters))

        return empty


def template_folder() -> str:
    """Where SQLite templates are kept between runs."""
    folder = os.environ.get(environment.CACHE) or os.path.join(
        os.path.expanduser("~"), ".cache", "transactional_testcase"
    )
    os.makedirs(folder, exist_ok=True)
    return folder


def _marker_path(url: URL) -> str:
    return (url.database or "") + MARKER_SUFFIX


def _kept_record(path: str) -> str:
    """The name of the cache folder's record of the kept database ``path``."""
    return hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16] + ".path"


def _write_atomically(path: str, text: str) -> None:
    partial = f"{path}.{os.getpid()}.partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(partial, path)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _mtime(path: str) -> float | None:
    try:
        return os.path.getmtime(path)
    except OSError:
        return None


@contextlib.contextmanager
def _file_lock(path: str) -> t.Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing), across processes.

    The library's only use of :mod:`fcntl`, which exists on POSIX alone:
    imported here, not with the package, so that importing never fails
    elsewhere. Where it is missing (Windows), :func:`msvcrt.locking` locks the
    file's first byte instead.

    On POSIX the holder removes the file before it lets go, so that lock
    files do not pile up in the cache folder (one per database ever
    provisioned). A process that was waiting then holds a lock on a file
    that is gone: it sees that the path no longer leads to the file it
    locked, and locks the one there now (or creates it), as any newcomer.

    .. versionchanged:: 0.6
       The lock file is removed on release (POSIX).
    """
    try:
        import fcntl
    except ImportError:
        with open(path, "a+") as f:
            _msvcrt_lock(f)
            try:
                yield
            finally:
                _msvcrt_unlock(f)
        return
    while True:
        with open(path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                here = os.stat(path)
            except FileNotFoundError:
                continue  # removed by the holder this one waited for
            locked = os.fstat(f.fileno())
            if (here.st_dev, here.st_ino) != (locked.st_dev, locked.st_ino):
                continue  # removed, and made again by another process since
            try:
                yield
            finally:
                with contextlib.suppress(FileNotFoundError):  # while still held: no one finds it current
                    os.unlink(path)
                fcntl.flock(f, fcntl.LOCK_UN)
            return


def _msvcrt_lock(f: t.IO[str]) -> None:
    """Lock ``f``'s first byte, waiting as long as it takes.

    ``LK_LOCK`` gives up with an :class:`OSError` after ten tries a second
    apart: tried again until it succeeds, as ``flock`` would wait.
    """
    msvcrt: t.Any = importlib.import_module("msvcrt")  # Windows only: not in every platform's stubs
    while True:
        f.seek(0)  # the region locked starts at the file's position
        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_LOCK, 1)
        except OSError:
            continue
        return


def _msvcrt_unlock(f: t.IO[str]) -> None:
    msvcrt: t.Any = importlib.import_module("msvcrt")
    f.seek(0)
    msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)


def _sqlite_on_connect(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_on_begin(conn: Connection) -> None:
    # An app that applies the same fix itself has already emitted BEGIN.
    if not conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN")
