"""Where a test database's schema comes from: Alembic migrations or ``create_all()``.

Both are a :class:`SchemaSource`: something with a fingerprint (so a database
already built from the same source is reused) and a way to build the schema
into the app's engines.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import types
import typing as t
import warnings

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine

from ._compat import handlers_out_of_reach_of_fileconfig, version_locations
from .errors import ConfigurationError, MigrationError, mask_url, scrub

if t.TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from flask_sqlalchemy import SQLAlchemy

AlembicSetting = t.Union[str, "os.PathLike[str]", bool, None]

#: Where ``alembic_config = None`` looks, relative to the current directory,
#: after Flask-Migrate's registered directory.
DEFAULT_LOCATIONS = ("alembic.ini", os.path.join("migrations", "alembic.ini"))


class SchemaSource:
    """Builds the schema of a freshly created set of test databases."""

    def fingerprint(self) -> str:
        """Changes whenever the schema this source builds changes."""
        raise NotImplementedError

    def build(self, app: Flask, db: SQLAlchemy, engines: t.Mapping[str | None, Engine]) -> None:
        """Create the schema in ``engines`` (inside an app context of ``app``)."""
        raise NotImplementedError


class CreateAllSchema(SchemaSource):
    """``alembic_config = False``: ``db.create_all()`` for every bind."""

    def __init__(self, db: SQLAlchemy) -> None:
        self.db = db

    def fingerprint(self) -> str:
        digest = hashlib.sha256(b"create_all")
        for key, metadata in sorted(self.db.metadatas.items(), key=lambda kv: str(kv[0])):
            digest.update(repr(key).encode())
            for table in metadata.sorted_tables:
                digest.update(repr(table).encode())
        return digest.hexdigest()

    def build(self, app: Flask, db: SQLAlchemy, engines: t.Mapping[str | None, Engine]) -> None:
        db.create_all()


class AlembicSchema(SchemaSource):
    """Alembic migrations, run in-process inside the app context.

    The fingerprint hashes the revision files without importing them; the
    revisions are loaded (and checked for a single head) only when a database
    is actually migrated, so a warm run never imports them.
    """

    def __init__(self, config: Config, uses_flask_migrate: bool) -> None:
        from alembic.script import ScriptDirectory

        self.config = config
        self.uses_flask_migrate = uses_flask_migrate
        # Reads no revision yet: Alembic loads them on first use.
        self.script = ScriptDirectory.from_config(config)
        self.location = self.script.dir
        self._fingerprint: str | None = None

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            # File contents, not mtimes: a fresh checkout of the same
            # migrations is the same schema.
            digest = hashlib.sha256(b"alembic")
            paths = sorted(revision_files(self.script))
            paths.append(os.path.join(self.location, "env.py"))
            for path in paths:
                digest.update(os.path.relpath(path, self.location).encode())
                with open(path, "rb") as f:
                    digest.update(hashlib.sha256(f.read()).digest())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def heads(self) -> tuple[str, ...]:
        """The head revisions (loads every revision): refused unless there is one."""
        heads = self.script.get_heads()
        if len(heads) > 1:
            raise MigrationError(
                f"the migrations in {self.location} have several heads "
                f"({', '.join(sorted(heads))}): merge them first with "
                "'flask db merge heads' or 'alembic merge heads'."
            )
        return tuple(heads)

    def build(self, app: Flask, db: SQLAlchemy, engines: t.Mapping[str | None, Engine]) -> None:
        from alembic import command

        heads = self.heads()
        if self.uses_flask_migrate and "migrate" not in app.extensions:
            register_flask_migrate(app, db, self.location)
        engine = engines[None]
        url = engine.url
        self.config.set_main_option(
            "sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%")
        )
        try:
            with preserved_logging(), quiet_migrations(), engine.begin() as connection:
                # A plain env.py shares this connection (Alembic's cookbook);
                # Flask-Migrate's env.py takes db.engine from current_app.
                self.config.attributes["connection"] = connection
                command.upgrade(self.config, "heads")
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported as MigrationError
            raise self._failure(exc, url) from None
        finally:
            self.config.attributes.pop("connection", None)
        if heads and not sa.inspect(engine).has_table("alembic_version"):
            # An env.py that builds its own engine from sqlalchemy.url migrates
            # a second, empty in-memory database instead of the app's.
            raise MigrationError(
                f"the migrations in {self.location} did not reach {mask_url(url)}: "
                "for in-memory SQLite, env.py must use config.attributes['connection'] "
                "(Alembic's 'sharing a connection' recipe) or current_app's db.engine."
            )

    def _failure(self, exc: BaseException, url: t.Any) -> MigrationError:
        where = failing_revision(exc.__traceback__, self.script)
        if isinstance(exc, SystemExit):
            what = f"env.py or a migration called sys.exit({exc.code})"
        else:
            lines = str(exc).strip().splitlines()
            what = f"{type(exc).__name__}: {lines[0] if lines else ''}"
        return MigrationError(f"migrating {mask_url(url)} to head failed{where}: {scrub(what, url)}")


def schema_source(
    setting: AlembicSetting, app: Flask, db: SQLAlchemy, engines: t.Mapping[str | None, Engine]
) -> SchemaSource:
    """Turn the ``alembic_config`` class attribute into a :class:`SchemaSource`."""
    if setting is False:
        return CreateAllSchema(db)
    if setting is True:
        setting = None
    ini = find_alembic_ini(setting, app)
    cached = _alembic_schemas.get(ini)
    if cached is not None:
        return cached
    config, uses_flask_migrate = load_alembic_config(ini)
    schema = _alembic_schemas[ini] = AlembicSchema(config, uses_flask_migrate)
    return schema


def load_alembic_config(ini: str) -> tuple[Config, bool]:
    """The Alembic ``Config`` of ``ini``, and whether its ``env.py`` needs Flask-Migrate.

    A relative ``script_location`` is taken relative to the ini file when it
    does not exist from the current directory; Flask-Migrate's layout (no
    ``script_location``: the ini sits in the script folder) works as is.
    """
    from alembic.config import Config

    folder = os.path.dirname(ini)
    config = Config(ini)
    location = config.get_main_option("script_location")
    if not location:
        location = folder
    elif not os.path.isabs(location) and not os.path.isdir(location):
        location = os.path.join(folder, location)
    config.set_main_option("script_location", os.path.abspath(location))
    env_py = os.path.join(location, "env.py")
    try:
        with open(env_py, encoding="utf-8") as f:
            uses_flask_migrate = "current_app" in f.read()
    except OSError:
        raise ConfigurationError(
            f"alembic_config: {env_py} does not exist; point alembic_config at a "
            "folder holding alembic.ini and env.py, or at alembic.ini itself."
        ) from None
    return config, uses_flask_migrate


#: Loading a script directory's revisions imports each: once per process is enough.
_alembic_schemas: dict[str, AlembicSchema] = {}


def revision_files(script: ScriptDirectory) -> list[str]:
    """Every file Alembic may load a revision from, found without importing one.

    The files of each version location (recursively if the config says so),
    ``.pyc`` ones included for a ``sourceless`` script directory. Extra files
    (``__init__.py``, helpers) only make the fingerprint stricter.
    """
    suffixes = (".py", ".pyc", ".pyo") if script.sourceless else (".py",)
    found: list[str] = []
    for location in version_locations(script):
        for root, dirs, files in os.walk(location):
            dirs.sort()
            if os.path.basename(root) == "__pycache__" and not script.sourceless:
                continue
            found.extend(os.path.join(root, name) for name in files if name.endswith(suffixes))
            if not script.recursive_version_locations:
                dirs[:] = ["__pycache__"] if script.sourceless and "__pycache__" in dirs else []
    return found


def find_alembic_ini(setting: str | os.PathLike[str] | None, app: Flask) -> str:
    """The absolute path of the ``alembic.ini`` an ``alembic_config`` setting means."""
    if setting is not None:
        path = os.fspath(setting)
        ini = os.path.join(path, "alembic.ini") if os.path.isdir(path) else path
        if not os.path.isfile(ini):
            raise ConfigurationError(
                f"alembic_config = {path!r}: no alembic.ini found there. Give the path "
                "of alembic.ini or of the folder that holds it, or set "
                "alembic_config = False to build the schema with db.create_all()."
            )
        return os.path.abspath(ini)
    candidates: list[str] = []
    migrate = app.extensions.get("migrate")
    if migrate is not None and getattr(migrate, "directory", None):
        candidates.append(os.path.join(str(migrate.directory), "alembic.ini"))
    candidates.extend(DEFAULT_LOCATIONS)
    for candidate in candidates:
        if os.path.isfile(candidate):
            return os.path.abspath(candidate)
    raise ConfigurationError(
        "no Alembic configuration found (looked for "
        + ", ".join(candidates)
        + f" from {os.getcwd()}). Set alembic_config to the path of alembic.ini or "
        "of the migrations folder, or alembic_config = False to build the schema "
        "with db.create_all()."
    )


def register_flask_migrate(app: Flask, db: SQLAlchemy, directory: str) -> None:
    try:
        from flask_migrate import Migrate
    except ImportError:
        raise ConfigurationError(
            f"the migrations in {directory} use Flask-Migrate's env.py, but Flask-Migrate "
            "is not installed: pip install Flask-Migrate."
        ) from None
    Migrate(app, db, directory=directory)


def failing_revision(tb: types.TracebackType | None, script: ScriptDirectory) -> str:
    """' in revision X (file, line N)' for the innermost revision frame of ``tb``."""
    paths = {os.path.abspath(s.path): s.revision for s in script.walk_revisions()}
    found = ""
    while tb is not None:
        filename = os.path.abspath(tb.tb_frame.f_code.co_filename)
        revision = paths.get(filename)
        if revision is not None:
            shown = os.path.relpath(filename, script.dir)
            if shown.startswith(".."):
                shown = filename
            found = f" in revision {revision} ({shown}, line {tb.tb_lineno})"
        tb = tb.tb_next
    return found


@contextlib.contextmanager
def quiet_migrations() -> t.Iterator[None]:
    """Keep a test run's output clean while migrations run.

    Alembic logs every revision at INFO, and Flask-Migrate's stock env.py calls
    Flask-SQLAlchemy 3's deprecated ``db.get_engine()`` before falling back.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*get_engine.*", category=DeprecationWarning)
            yield
    finally:
        logging.disable(previous)


class _LoggerState(t.NamedTuple):
    disabled: bool
    level: int
    propagate: bool
    handlers: list[logging.Handler]


@contextlib.contextmanager
def preserved_logging() -> t.Iterator[None]:
    """Undo what an ``env.py``'s ``logging.config.fileConfig()`` does to logging.

    ``fileConfig`` disables every logger that already exists and replaces the
    root logger's handlers; a test suite's own logging must survive migrations.
    """
    manager = logging.Logger.manager
    saved: dict[str, _LoggerState] = {}
    for name, logger in list(manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            saved[name] = _LoggerState(logger.disabled, logger.level, logger.propagate, list(logger.handlers))
    root = logging.getLogger()
    root_state = _LoggerState(root.disabled, root.level, root.propagate, list(root.handlers))
    try:
        with handlers_out_of_reach_of_fileconfig():
            yield
    finally:
        for name, logger in list(manager.loggerDict.items()):
            if not isinstance(logger, logging.Logger):
                continue
            state = saved.get(name)
            if state is None:
                continue
            logger.disabled, logger.propagate = state.disabled, state.propagate
            logger.setLevel(state.level)
            logger.handlers[:] = state.handlers
        root.disabled = root_state.disabled
        root.setLevel(root_state.level)
        root.handlers[:] = root_state.handlers
