"""Creating, migrating, cloning, reusing and finally dropping test databases.

Migrating is paid once per schema fingerprint, not per class or per run:

1. in one process, a database already built from the same fingerprint is
   reused by later classes as it is;
2. otherwise it is cloned from a migrated *template* kept per fingerprint
   (PostgreSQL ``CREATE DATABASE ... TEMPLATE``, a SQLite file copy, a replay of
   MySQL's ``SHOW CREATE TABLE``s), under a lock every process shares;
3. only when no template exists is the database migrated, and the template
   saved from it for every later run and worker.

With ``keepdb`` a database whose recorded fingerprint still matches is used as
it is, and not dropped at exit.

What it did is said once per database on the ``transactional_testcase``
logger at INFO (built, cloned, kept, rebuilt and why), and printed to stderr
with ``TRANSACTIONAL_TESTCASE_VERBOSE=1``.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import multiprocessing
import multiprocessing.util
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import typing as t

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import URL, Engine

from . import environment
from ._types import BindKey
from .backends import (
    Backend,
    admin_session,
    backend_for,
    check_safe,
    make_label,
    template_folder,
    unreachable,
)
from .connections import keeper
from .errors import MigrationError, first_line, mask_url

if t.TYPE_CHECKING:
    from .extension import Extension
    from .schema import SchemaSource

#: Environment variable that turns ``keepdb`` on for every class.
KEEPDB_ENV = environment.KEEPDB
#: Set to ``0`` to drop the templates this process used when it ends (kept by default,
#: so the next run clones instead of migrating).
KEEP_TEMPLATES_ENV = environment.KEEP_TEMPLATES
#: Environment variable naming this process's worker explicitly.
WORKER_ENV = environment.WORKER
#: Environment variable that prints what provisioning did to stderr.
VERBOSE_ENV = environment.VERBOSE
#: Seconds a terminated worker gets to start dropping before SIGTERM is repeated.
_SIGTERM_REPEAT = 1.0

#: The library's logger: one INFO line per database provisioned.
logger = logging.getLogger("transactional_testcase")


def say(message: str) -> None:
    """Log ``message`` at INFO; print it to stderr too with ``TRANSACTIONAL_TESTCASE_VERBOSE=1``.

    Printed only if no logging handler writes it to stdout or stderr already
    (``logging.basicConfig(level=logging.INFO)``, say): said once, not twice.

    .. versionchanged:: 0.6
       Not printed when logging already shows it.
    """
    logger.info(message)
    if environment.flag(VERBOSE_ENV) and not _shown_by_logging():
        print(f"transactional_testcase: {message}", file=sys.stderr, flush=True)


def _shown_by_logging() -> bool:
    """Whether an INFO line of :data:`logger` reaches a handler that writes to stdout or stderr."""
    if not logger.isEnabledFor(logging.INFO):
        return False
    terminal = {id(stream) for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)}
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            stream = getattr(handler, "stream", None)
            if handler.level <= logging.INFO and stream is not None and id(stream) in terminal:
                return True
        current = current.parent if current.propagate else None
    return False


def worker_id() -> str | None:
    """This process's worker name under a parallel runner, or None.

    pytest-xdist sets ``PYTEST_XDIST_WORKER`` (``gw0``...); nose2's mp plugin
    and unittest-parallel run workers as :mod:`multiprocessing` children
    (``ForkProcess-2``, ``SpawnPoolWorker-1``...), named here ``p2``, ``p1``.
    """
    explicit = os.environ.get(WORKER_ENV) or os.environ.get("PYTEST_XDIST_WORKER")
    if explicit:
        return re.sub(r"\W", "_", explicit)
    name = multiprocessing.current_process().name
    if name != "MainProcess":
        digits = re.findall(r"\d+", name)
        return "p" + ("_".join(digits) if digits else str(os.getpid()))
    return None


def worker_url(url: str | URL) -> URL:
    """``url`` with this worker's suffix on the database name (unchanged outside workers)."""
    parsed = sa.make_url(url)
    worker = worker_id()
    if worker is None:
        return parsed
    backend = backend_for(parsed)
    if backend.is_memory(parsed):
        return parsed
    return backend.with_suffix(parsed, f"_{worker}")


def keepdb_from_env() -> bool:
    return environment.flag(KEEPDB_ENV)


class _Wanted(t.NamedTuple):
    """One engine's database as a class wants it built."""

    #: The engine's bind key (None: the default database).
    key: BindKey
    url: URL
    backend: Backend
    #: Of the schema, the backend, the bind key and this library's version.
    fingerprint: str


class _Template(t.NamedTuple):
    """A template this process used: dropped at exit when templates are not kept."""

    url: URL
    backend: Backend
    #: The database cloned from it, whose name the template's lock is derived from.
    database: URL
    key: BindKey


class _Renamable(t.NamedTuple):
    """A database built in this run that becomes its own template when the run no longer needs it.

    See :meth:`Provisioner._rename_to_template`: a rename then replaces the copy a build
    would otherwise make at once, and the drop at exit.
    """

    template: URL
    key: BindKey
    #: The template's label (see :func:`~transactional_testcase.backends.make_label`).
    label: str
    #: What the backend compares the database with (see ``Backend.snapshot``).
    snapshot: t.Any


class _Pipe(t.NamedTuple):
    """Both ends of an ``os.pipe()``."""

    read: int
    write: int


class _Database(t.NamedTuple):
    """A database this process provisioned: reused while its fingerprint matches, dropped at exit."""

    url: URL
    backend: Backend
    fingerprint: str
    keep: bool
    #: Where its schema came from (a kept database's marker says it again when invalidated).
    source: str
    #: What classes planned from the database's schema (see ``Provisioner.plan``).
    plans: dict[t.Hashable, t.Any]


class Provisioner:
    """Builds each test database once per process and drops them at exit."""

    def __init__(self) -> None:
        self._databases: dict[str, _Database] = {}
        self._lock = threading.RLock()
        self._tempdir: str | None = None
        self._registered_in: int | None = None
        self._dropping = False
        self._sigterm_pipe: _Pipe | None = None  # _watch_sigterm's wakeup fd
        self._templates: dict[str, _Template] = {}
        #: The databases of this run that become their own templates, by URL.
        self._renamable: dict[str, _Renamable] = {}
        #: How many times each way of provisioning ran (reuse, keep, clone, build).
        self.stats: dict[str, int] = {"reuse": 0, "keep": 0, "clone": 0, "build": 0}

    def default_sqlite_url(self, keepdb: bool = False) -> str:
        """A SQLite file: in a temporary folder of this process, or a stable one for keepdb.

        .. versionchanged:: 0.4
           Named after the project (:func:`project_root`): two projects on one
           machine no longer share the kept file, nor evict each other's templates.
        """
        name = project_database_name() + ".db"
        if keepdb:
            folder = os.path.join(tempfile.gettempdir(), _TEMP_PREFIX + "keepdb")
            os.makedirs(folder, exist_ok=True)
            return "sqlite:///" + os.path.join(folder, name)
        if self._tempdir is None:
            self._tempdir = tempfile.mkdtemp(prefix=_TEMP_PREFIX)
            self._register_atexit()
        return "sqlite:///" + os.path.join(self._tempdir, name)

    def ensure(
        self,
        app: Flask,
        extension: Extension,
        engines: t.Mapping[str | None, Engine],
        schema: SchemaSource,
        settings: t.Mapping[str | None, str],
        keepdb: bool = False,
        commits: bool = False,
    ) -> str:
        """Make every database of ``engines`` exist and match ``schema``.

        ``settings`` names, per bind key, the setting a user would change to
        point that engine elsewhere (for the unsafe-name error). ``commits``:
        the class's tests commit for real, so its databases are no longer what
        their build made: a database still to become its template by a rename
        (see :meth:`_rename_to_template`) becomes it now, and is cloned back.
        Returns how the databases were provided: ``"reuse"``, ``"keep"``,
        ``"clone"`` or ``"build"``.

        .. versionchanged:: 0.5
           ``commits``.
        """
        targets: list[_Wanted] = []
        for key, engine in engines.items():
            url = engine.url
            check_safe(url, settings.get(key, "the app's database URL"))
            backend = backend_for(url)
            backend.prepare_engine(engine)
            targets.append(_Wanted(key, url, backend, _database_fingerprint(schema.fingerprint(), url, key)))
        with self._lock:
            renaming = commits and any(_key(target.url) in self._renamable for target in targets)
            if not renaming and all(
                not target.backend.is_memory(target.url)
                and (known := self._databases.get(_key(target.url))) is not None
                and known.fingerprint == target.fingerprint
                for target in targets
            ):
                for target in targets:
                    logger.debug("Test database %s: reused in this process", _where(target))
                return self._count("reuse")
            for target, engine in zip(targets, engines.values(), strict=False):
                keeper.discard(target.url)  # connections into a database about to be replaced
                engine.dispose()
            # Whatever happens next, these databases are no longer what was
            # recorded: a failed build must not be reused by a later class.
            for target in targets:
                self._databases.pop(_key(target.url), None)
            try:
                with admin_session():
                    for target in targets:  # about to be replaced: its template now, if it may be
                        self._rename_to_template(target.url, target.backend)
                    how = self._provision(app, extension, engines, schema, targets, keepdb, commits)
            except BaseException as exc:
                # Maybe created, half built: dropped at exit (unless kept), never reused.
                for target in targets:
                    if not target.backend.is_memory(target.url):
                        self._databases[_key(target.url)] = _Database(
                            target.url, target.backend, _INVALIDATED, keepdb, schema.describe(), {}
                        )
                self._register_atexit()
                if isinstance(exc, sa.exc.OperationalError):
                    raise unreachable(targets[0].url, exc, targets[0].backend) from None
                raise
            for target in targets:
                if not target.backend.is_memory(target.url):
                    self._databases[_key(target.url)] = _Database(
                        target.url, target.backend, target.fingerprint, keepdb, schema.describe(), {}
                    )
                    self._register_atexit()
            return self._count(how)

    def _provision(
        self,
        app: Flask,
        extension: Extension,
        engines: t.Mapping[str | None, Engine],
        schema: SchemaSource,
        targets: list[_Wanted],
        keepdb: bool,
        commits: bool,
    ) -> str:
        #: Why each kept database is not used as it is (said with what is done instead).
        why: dict[BindKey, str] = {}
        if keepdb:
            markers = {
                target.key: None
                if target.backend.is_memory(target.url)
                else target.backend.read_marker(target.url, engines[target.key])
                for target in targets
            }
            if all(markers[target.key] == target.fingerprint for target in targets):
                for target in targets:
                    say(
                        f"Test database {_where(target)}: using the kept database "
                        f"(schema fingerprint {target.fingerprint[:12]} unchanged)"
                    )
                return "keep"
            for target in targets:
                why[target.key] = _why_rebuilt(markers[target.key], target.fingerprint)
            for engine in engines.values():
                engine.dispose()  # its connections point at a database about to be replaced
        templates = {
            target.key: target.backend.template_url(
                target.url, _template_name(target.url, target.key, target.fingerprint, schema.kind)
            )
            for target in targets
        }
        for target in targets:
            template = templates[target.key]
            self._templates[_key(template)] = _Template(template, target.backend, target.url, target.key)
        self._register_atexit()
        started = time.perf_counter()
        stale: dict[BindKey, list[str]] = {}
        started_from: dict[BindKey, URL] | None = None
        # Complete templates are cloned without the lock: parallel workers
        # clone at the same time (a template is complete or absent, never
        # half built). Only a template that went away meanwhile (a run of
        # other migrations dropped it as stale) sends this one to the lock.
        how = self._clone(engines, targets, templates, locked=False)
        if how is None:
            with contextlib.ExitStack() as locks:
                # Same order in every process: no deadlock between two of them.
                for target in sorted(targets, key=lambda target: str(target.key)):
                    locks.enter_context(target.backend.lock(target.url, _lock_name(target.url, target.key)))
                how = self._clone(engines, targets, templates, locked=True)
                if how is None:
                    started_from = self._build(app, extension, engines, schema, targets)
                    source = f"{schema.describe()}, {schema.reached()}"
                    for target in targets:
                        template = templates[target.key]
                        label = make_label(target.fingerprint, source)
                        snapshot = (
                            target.backend.snapshot(engines[target.key])
                            if self._renames_to_templates(target.backend, keepdb, commits, template)
                            else None
                        )
                        if snapshot is None:
                            target.backend.save_template(target.url, template, engines[target.key], label)
                        else:
                            self._renamable[_key(target.url)] = _Renamable(
                                template, target.key, label, snapshot
                            )
                        stale[target.key] = target.backend.drop_templates(
                            template, _template_prefix(target.url, target.key, schema.kind)
                        )
                        for name in stale[target.key]:
                            forget_refused_rename(name)
                    how = "build"
        seconds = time.perf_counter() - started
        if keepdb:
            for target in targets:
                target.backend.write_marker(target.url, target.fingerprint, schema.describe())
        for target in targets:
            template_name = _shown_name(templates[target.key])
            if how == "build":
                origin = (
                    "" if started_from is None else f" from template {_shown_name(started_from[target.key])}"
                )
                done = f"{schema.reached()}{origin} in {seconds:.2f}s; " + (
                    f"to be renamed to template {template_name} once this process is done with it, "
                    "unless a test committed into it"
                    if _key(target.url) in self._renamable
                    else f"saved as template {template_name}"
                )
                dropped = stale.get(target.key)
                if dropped:
                    done += f" (dropped the stale {', '.join(dropped)})"
            else:
                done = f"cloned from template {template_name} in {seconds:.2f}s"
            if target.key in why:
                done = f"{why[target.key]}; {done}"
            if keepdb:
                done += "; kept for the next run"
            say(f"Test database {_where(target)}: {done}")
        return how

    def _renames_to_templates(self, backend: Backend, keepdb: bool, commits: bool, template: URL) -> bool:
        """Whether a database built now becomes its template later (:meth:`_rename_to_template`), not a copy now.

        Not for a kept database (it outlives the run), nor for a class whose
        tests commit for real (they change it), nor when templates are
        dropped at exit anyway, nor under a parallel runner: the other
        workers clone the template while this one runs its tests. Nor when
        an earlier run's database of this template could not be renamed (a
        test committed into it): a suite that does so every run would
        otherwise migrate every run.

        .. versionchanged:: 0.6
           Not after a rename of this template was refused.
        """
        return (
            backend.renames_to_templates
            and not keepdb
            and not commits
            and worker_id() is None
            and environment.flag(KEEP_TEMPLATES_ENV, default=True)
            and not os.path.exists(_copy_record(template.database or ""))
        )

    def _rename_to_template(self, url: URL, backend: Backend) -> bool:
        """Rename ``url``'s database to its template, if it is to become one and nothing was committed into it.

        At exit, or when a class is about to replace the database. Under the
        template's lock, and only while no template of that name exists.
        Returns whether it was renamed; if not, the caller drops (or
        replaces) the database as any other, and the next run migrates and
        copies the template at once (:func:`_copy_record`).
        """
        renamable = self._renamable.pop(_key(url), None)
        if renamable is None:
            return False
        name = _shown_name(renamable.template)
        with backend.lock(url, _lock_name(url, renamable.key)):
            exists = backend.has_template(renamable.template, url)
            if exists:
                why: str | None = f"a template {name} exists already"
            else:
                why = backend.rename_to_template(url, renamable.template, renamable.snapshot, renamable.label)
        if why is None:
            say(f"Test database {mask_url(url)}: renamed to template {name}")
            return True
        if exists:
            say(f"Test database {mask_url(url)}: not renamed to template {name}: {why}")
            return False
        with contextlib.suppress(OSError), open(_copy_record(renamable.template.database or ""), "w"):
            pass
        say(
            f"Test database {mask_url(url)}: not renamed to template {name}: {why}; "
            "the next build copies its template at once"
        )
        return False

    def _clone(
        self,
        engines: t.Mapping[str | None, Engine],
        targets: list[_Wanted],
        templates: t.Mapping[str | None, URL],
        locked: bool,
    ) -> str | None:
        """Clone every database from its template if all exist: ``"clone"``, else None.

        Unlocked, a template dropped while it was being copied is no error:
        None, and the caller tries again under the lock.
        """
        if not all(target.backend.has_template(templates[target.key], target.url) for target in targets):
            return None
        try:
            for target in targets:
                target.backend.clone(templates[target.key], target.url, engines[target.key])
        except (sa.exc.DBAPIError, OSError):
            if locked:
                raise
            return None
        return "clone"

    def _build(
        self,
        app: Flask,
        extension: Extension,
        engines: t.Mapping[str | None, Engine],
        schema: SchemaSource,
        targets: list[_Wanted],
    ) -> dict[BindKey, URL] | None:
        """Build the databases: from base, or on from the templates of an earlier schema (returned).

        .. versionchanged:: 0.6
           On from the templates of an earlier schema when they exist.
        """
        started_from = self._earlier_templates(schema, targets)
        for target in targets:
            if started_from is None:
                target.backend.recreate(target.url)
            else:
                target.backend.clone(started_from[target.key], target.url, engines[target.key])
        try:
            schema.build(app, extension, engines)
        except sa.exc.OperationalError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise MigrationError(
                f"building the schema of {mask_url(targets[0].url)} failed: "
                f"{type(exc).__name__}: {first_line(exc)}"
            ) from None
        return started_from

    def _earlier_templates(self, schema: SchemaSource, targets: list[_Wanted]) -> dict[BindKey, URL] | None:
        """The templates of the nearest earlier schema that every database has one of, or None.

        A migration added since the last run then runs alone, on a copy of the
        template the last run saved, instead of every migration from base
        (see :meth:`~transactional_testcase.schema.SchemaSource.earlier_fingerprints`).
        Not for in-memory SQLite: an ``env.py`` that builds its own engine
        migrates another database there, and the clone's version table would
        hide it from the check that the migrations reached this one.

        .. versionadded:: 0.6
        """
        if any(target.backend.is_memory(target.url) for target in targets):
            return None
        # One listing per database, not a question per earlier head.
        existing = {
            target.key: set(
                target.backend.template_names(
                    target.url, _template_prefix(target.url, target.key, schema.kind)
                )
            )
            for target in targets
        }
        if not all(existing.values()):
            return None  # a first run: nothing to start from
        for earlier in schema.earlier_fingerprints():
            found: dict[BindKey, URL] = {}
            for target in targets:
                fingerprint = _database_fingerprint(earlier.fingerprint, target.url, target.key)
                name = _template_name(target.url, target.key, fingerprint, schema.kind)
                template = target.backend.template_url(target.url, name)
                if name not in existing[target.key] or not target.backend.has_template(template, target.url):
                    break
                found[target.key] = template
            else:
                return found
        return None

    def plan(self, url: URL, key: t.Hashable, make: t.Callable[[], _T]) -> _T:
        """``make()``, remembered for ``url``'s database while its schema is unchanged.

        For what a class works out from the schema (which constraints are
        deferrable, which sequences exist): the next class on the same
        database asks nothing of the server. Forgotten when the database is
        rebuilt, invalidated, or its schema may have changed (:meth:`forget_plans`).
        """
        with self._lock:
            known = self._databases.get(_key(url))
            if known is None or known.fingerprint == _INVALIDATED:
                return make()
            if key not in known.plans:
                known.plans[key] = make()
            return t.cast(_T, known.plans[key])

    def forget_plans(self, urls: t.Iterable[URL]) -> None:
        """A test may have changed these databases' schema (committed DDL)."""
        with self._lock:
            for url in urls:
                known = self._databases.get(_key(url))
                if known is not None:
                    known.plans.clear()

    def invalidate(self, urls: t.Iterable[URL]) -> None:
        """Forget these databases: a test committed into them for real.

        The next class that needs them builds (or clones) them afresh.
        """
        with self._lock:
            for url in urls:
                known = self._databases.get(_key(url))
                if known is None:
                    continue
                # Kept (so it is still dropped at exit) but never reused.
                self._databases[_key(url)] = known._replace(fingerprint=_INVALIDATED)
                if known.keep:
                    with contextlib.suppress(Exception):
                        known.backend.write_marker(url, _INVALIDATED, known.source)

    def drop_all(self) -> None:
        """Drop every database this process created and does not keep (at exit)."""
        self._dropping = True
        keeper.close_all()
        with self._lock:
            databases, self._databases = list(self._databases.values()), {}
        with admin_session():
            self._drop(databases)
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None

    def _drop(self, databases: list[_Database]) -> None:
        """Drop ``databases`` but the kept ones, and the templates unless they are kept."""
        for database in databases:
            if database.keep:
                continue
            renamed = False
            with contextlib.suppress(Exception):  # the server may already be gone
                renamed = self._rename_to_template(database.url, database.backend)
            if not renamed:
                with contextlib.suppress(Exception):
                    database.backend.drop(database.url)
        if not environment.flag(KEEP_TEMPLATES_ENV, default=True):
            templates, self._templates = list(self._templates.values()), {}
            for template in templates:
                # Under the lock: another worker may be cloning it right now.
                with (
                    contextlib.suppress(Exception),
                    template.backend.lock(template.database, _lock_name(template.database, template.key)),
                ):
                    template.backend.drop(template.url)

    def _count(self, how: str) -> str:
        self.stats[how] += 1
        return how

    def _register_atexit(self) -> None:
        if self._registered_in != os.getpid():
            atexit.register(self.drop_all)
            # Workers forked by multiprocessing (nose2's mp plugin,
            # unittest-parallel) end with os._exit(): atexit never runs there,
            # multiprocessing's own finalizers do.
            multiprocessing.util.Finalize(None, self.drop_all, exitpriority=10)
            self._registered_in = os.getpid()
            self._drop_on_sigterm()

    def _drop_on_sigterm(self) -> None:
        """In a multiprocessing worker, drop the databases when terminated.

        A ``multiprocessing.Pool`` (unittest-parallel) may end its workers with
        SIGTERM, whose default action runs neither atexit nor finalizers.
        """
        if (
            multiprocessing.current_process().name == "MainProcess"
            or threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        ):
            return
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._watch_sigterm()

    def _on_sigterm(self, signum: int, frame: object) -> None:
        """SIGTERM in a worker: unwind, so that the finalizers drop the databases."""
        if self._dropping:
            return  # already on the way out: let that drop finish
        # Unwind rather than drop here: the worker may be inside a lock
        # (a Pool's queue) that its context managers must release. Its
        # finalizers then drop the databases on the way out.
        raise SystemExit(128 + signum)

    def _watch_sigterm(self) -> None:
        """Repeat a SIGTERM to the main thread until it starts dropping.

        CPython runs a Python handler between bytecodes, or when a blocking call
        fails with EINTR: a SIGTERM that lands just before the main thread
        blocks is never handled. A pool worker then waits for ever for the
        queue lock ``Pool.terminate()`` keeps, and the parent's ``join()`` for
        the worker. The handler's C part writes each signal to the wakeup fd
        whatever the main thread does: a thread reads it there.
        """
        read, write = os.pipe()
        os.set_blocking(write, False)
        previous = signal.set_wakeup_fd(write)
        if previous != -1:  # someone else's (asyncio's): keep theirs, unwatched
            signal.set_wakeup_fd(previous)
            os.close(read)
            os.close(write)
            return
        self._sigterm_pipe = _Pipe(read, write)
        main = threading.get_ident()

        def watch() -> None:
            while signal.SIGTERM not in os.read(read, 512):
                pass  # another signal with a Python handler (SIGINT...)
            while not self._dropping:
                time.sleep(_SIGTERM_REPEAT)
                if not self._dropping:  # blocked, unhandled: interrupt it again
                    signal.pthread_kill(main, signal.SIGTERM)

        threading.Thread(target=watch, name="transactional_testcase-sigterm", daemon=True).start()

    def _after_fork_in_child(self) -> None:
        # What the parent built is the parent's to drop, never the child's.
        self._databases = {}
        self._templates = {}
        self._renamable = {}
        self._tempdir = None
        self._registered_in = None
        self._dropping = False
        self._lock = threading.RLock()
        # The watching thread stayed in the parent: none of the child's
        # signals may reach its pipe. A child that builds databases of its
        # own installs its own handler and thread.
        if signal.getsignal(signal.SIGTERM) == self._on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if self._sigterm_pipe is not None:
            read, write = self._sigterm_pipe
            self._sigterm_pipe = None
            previous = signal.set_wakeup_fd(-1)
            if previous != write:  # replaced since: not ours to clear
                signal.set_wakeup_fd(previous)
            os.close(read)
            os.close(write)


_INVALIDATED = "invalidated"
#: The folders this library makes: one per process, and the keepdb one.
_TEMP_PREFIX = "transactional_testcase-"
#: The longest part of a template's name taken from the database's name.
_NAME_PART = 24
#: What marks a project's root folder.
_PROJECT_MARKS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
_T = t.TypeVar("_T")


def _key(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _database_fingerprint(schema_fingerprint: str, url: URL, key: BindKey) -> str:
    """What a database's template is named by: its schema, its backend, its bind and this library's version."""
    from . import __version__

    return _digest(schema_fingerprint, url.get_backend_name(), repr(key), __version__)


def _template_prefix(url: URL, key: str | None, kind: str = "alembic") -> str:
    """Names every template of one database, bind and kind of schema source, whatever its fingerprint.

    ``tt_tpl_<database>_<owner>_``: the database's name (shortened) says whose
    templates they are on a shared server; the hash of its server, name, bind
    and ``kind`` (``alembic``, ``create_all``: see
    :attr:`~transactional_testcase.schema.SchemaSource.kind`) tells apart those
    that would share a shortened name, and keeps a class with migrations and
    one with ``create_all()`` on the same database from evicting each
    other's template.

    .. versionchanged:: 0.2
       A SQLite file is named by its folder too (two ``test.db`` in two
       projects no longer share, nor drop, each other's templates), except in
       the folders this library makes itself, new for every run.
    .. versionchanged:: 0.4
       The database's name, and the kind of schema source, are in it.
    """
    name = url.database or ""
    if backend_for(url).is_file:
        name = _file_owner(name)
    worker = worker_id()
    if worker and name.endswith("_" + worker):
        name = name[: -len(worker) - 1]
    owner = _digest(
        url.get_backend_name(), str(url.host), str(url.port), str(url.username), name, repr(key), kind
    )
    return f"tt_tpl_{_readable(os.path.basename(name), _NAME_PART)}_{owner[:8]}_"


def _copy_record(template_name: str) -> str:
    """The cache folder's record that a database of the template ``template_name`` was not renamed to it.

    While it exists, a build of that template copies it at once (as
    :meth:`Backend.save_template`) instead of waiting for a rename at exit
    that a test's commit would stop again. Removed with the template when a
    build drops it as stale.
    """
    return os.path.join(template_folder(), os.path.basename(template_name) + ".copy")


def forget_refused_rename(template_name: str) -> None:
    """Remove the :func:`_copy_record` of a template that was dropped.

    .. versionadded:: 0.6
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_copy_record(template_name))


def _lock_name(url: URL, key: BindKey) -> str:
    """The lock every process takes to build, or drop, the templates of one database and bind.

    One lock for every kind of schema source: they build in the same database.
    """
    return _template_prefix(url, key, kind="") + "lock"


def _readable(name: str, limit: int) -> str:
    """``name`` as lowercase letters, digits and single underscores, at most ``limit`` long."""
    readable = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    return readable[:limit].rstrip("_") or "db"


def project_root(start: str | None = None) -> str:
    """The folder of the project under test: the nearest one up from ``start`` (the current
    folder) that holds ``pyproject.toml``, ``setup.py``, ``setup.cfg`` or ``.git``; else ``start``."""
    start = os.path.abspath(start or os.getcwd())
    folder = start
    while True:
        if any(os.path.exists(os.path.join(folder, mark)) for mark in _PROJECT_MARKS):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return start
        folder = parent


def project_database_name() -> str:
    """The default SQLite database's name: ``<project>_<hash of its folder>_test``."""
    root = project_root()
    return f"{_readable(os.path.basename(root), _NAME_PART)}_{_digest(root)[:8]}_test"


def _where(target: _Wanted) -> str:
    """A database in a log line: its URL, password masked, and its bind."""
    bind = f" (bind {target.key!r})" if target.key is not None else ""
    return mask_url(target.url) + bind


def _shown_name(template: URL) -> str:
    """A template's name as ``list`` shows it: the database, or the file's name without ``.db``."""
    name = os.path.basename(template.database or "")
    return name.removesuffix(".db") if backend_for(template).is_file else name


def _why_rebuilt(marker: str | None, fingerprint: str) -> str:
    """Why a kept database is not used as it is."""
    if marker is None:
        return "no kept database yet"
    if marker == _INVALIDATED:
        return "the kept database was rebuilt: a test committed into it"
    if marker == fingerprint:
        return "the kept database was rebuilt with the other binds"
    return f"the kept database was rebuilt: schema fingerprint changed ({marker[:12]} -> {fingerprint[:12]})"


def _file_owner(path: str) -> str:
    """A database file's path without its extension; its file name alone in our own folders.

    The per-process temporary folder (``transactional_testcase-XXXX``) changes
    every run and the keepdb one is ours: there the file name stands for the
    database, so later runs find the templates earlier ones saved.
    """
    folder, file = os.path.split(os.path.abspath(path))
    stem = os.path.splitext(file)[0]
    ours = os.path.dirname(folder) == os.path.abspath(tempfile.gettempdir()) and (
        os.path.basename(folder).startswith(_TEMP_PREFIX)
    )
    return stem if ours else os.path.join(folder, stem)


def _template_name(url: URL, key: str | None, fingerprint: str, kind: str = "alembic") -> str:
    """``tt_tpl_<database>_<owner>_<fingerprint>_test``: at most 58 characters.

    Within PostgreSQL's 63-byte names and MySQL's 64, and a test database by name.
    """
    return f"{_template_prefix(url, key, kind)}{fingerprint[:12]}_test"


#: The process-wide provisioner every test case class shares.
provisioner = Provisioner()
os.register_at_fork(after_in_child=provisioner._after_fork_in_child)
