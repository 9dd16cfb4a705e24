"""Running an app's Alembic migrations in-process: the one runner.

Provisioning migrates fresh test databases to head with it, and the
migration checks upgrade and downgrade their own databases step by step with
it: both go through :meth:`AlembicProject.migrate`, which

* runs the project's own ``env.py`` inside an app context of the app, with
  ``db.engines`` pointed at the databases to migrate (Flask-Migrate's
  ``env.py`` takes ``current_app``'s ``db.engine``) and the connection shared
  in ``config.attributes['connection']`` (Alembic's "sharing a connection"
  recipe, for a plain ``env.py``);
* keeps the test run's logging as it was (``env.py`` calls ``fileConfig``) and
  its output free of Alembic's INFO lines;
* turns whatever the migrations raise, ``SystemExit`` included, into a
  :class:`MigrationFailure` that names the revision, its file and line, with
  every password scrubbed.

An app that registers Flask-Alembic has no ``env.py``:
:class:`FlaskAlembicProject` runs its migrations through the extension itself,
with the same logging and the same failures.

.. versionadded:: 0.4
   Replaces the two runners of ``migrations`` and ``migration_checks``.

.. versionchanged:: 0.5
   Flask-Alembic's migrations (:class:`FlaskAlembicProject`).
"""

from __future__ import annotations

import configparser
import contextlib
import logging
import os
import re
import types
import typing as t
import warnings

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import URL, Connection, Engine

from ._compat import (
    flask_alembic_engines,
    handlers_out_of_reach_of_fileconfig,
    revision_steps,
    version_locations,
)
from ._types import BindKey
from .errors import ConfigurationError, TransactionalTestCaseError, first_line, scrub

if t.TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy import MetaData

    from .extension import Extension

AlembicSetting = t.Union[str, "os.PathLike[str]", bool, None]

#: What autogenerate compares one database with: a MetaData, or several (Flask-Alembic).
TargetMetadata = t.Union["MetaData", t.Sequence["MetaData"]]

#: Where ``alembic_config = None`` looks, relative to the current directory,
#: after Flask-Migrate's registered directory.
DEFAULT_LOCATIONS = ("alembic.ini", os.path.join("migrations", "alembic.ini"))


class MigrationFailure(Exception):
    """Alembic failed; ``str()`` is ``ErrorType: first line (revision R, file, line N)``."""


class VersionTable(t.NamedTuple):
    """Where a migrated database keeps its revisions: what ``env.py`` passed to ``context.configure``.

    ``alembic_version`` unless ``env.py`` says ``version_table=`` (and
    ``version_table_schema=``): known once migrations ran, from the
    ``MigrationContext`` Alembic hands to the steps function.

    .. versionadded:: 0.6
    """

    name: str
    schema: str | None

    def exists(self, connection: Connection) -> bool:
        """Whether the database of ``connection`` has this table (the migrations reached it)."""
        return sa.inspect(connection).has_table(self.name, schema=self.schema)


def reached(engine: Engine, tables: t.Iterable[VersionTable]) -> bool:
    """Whether migrations that kept their revisions in ``tables`` reached ``engine``'s database.

    An ``env.py`` that builds its own engine from ``sqlalchemy.url`` migrates
    another database than the one handed over (for in-memory SQLite, a second
    empty one): then none of its version tables is in this one.

    .. versionadded:: 0.6
    """
    with engine.connect() as connection:
        return any(table.exists(connection) for table in tables)


class AlembicProject:
    """An Alembic configuration and its script directory, loaded once per process.

    Finding the project imports no Alembic: ``alembic.ini`` is read with
    :mod:`configparser`, enough to know the script folder and the files a
    revision may come from (the schema fingerprint). Alembic itself (its
    ``Config`` and ``ScriptDirectory``) is imported on first use of
    :attr:`config` or :attr:`script`, that is only when a database is
    migrated or checked; the revisions are imported later still. A run that
    reuses or clones its databases never imports Alembic.

    .. versionchanged:: 0.4
       Alembic is imported on first use, not when the project is found.
    """

    def __init__(
        self, ini: str | None, location: str, uses_flask_migrate: bool, layout: _Layout | None
    ) -> None:
        #: The absolute path of ``alembic.ini`` (None: Flask-Alembic's, from the app's config).
        self.ini = ini
        #: The absolute path of the script folder (``env.py``'s).
        self.location = location
        #: Whether ``env.py`` takes the engine from ``current_app`` (Flask-Migrate's).
        self.uses_flask_migrate = uses_flask_migrate
        #: Where revisions are read from, as ``alembic.ini`` says without Alembic
        #: (None: only Alembic can tell, a package resource say).
        self._layout = layout
        self._config: Config | None = None
        self._script: ScriptDirectory | None = None

    @property
    def config(self) -> Config:
        """Alembic's ``Config`` of ``alembic.ini`` (imports Alembic on first use)."""
        if self._config is None:
            with quiet_alembic():
                from alembic.config import Config

                config = Config(self.ini)
                config.set_main_option("script_location", self.location)
            self._config = config
        return self._config

    @property
    def script(self) -> ScriptDirectory:
        """Alembic's ``ScriptDirectory`` (imports Alembic on first use, no revision yet)."""
        if self._script is None:
            with quiet_alembic():
                from alembic.script import ScriptDirectory

                self._script = ScriptDirectory.from_config(self.config)
        return self._script

    @classmethod
    def from_ini(cls, ini: str) -> AlembicProject:
        """The project of ``ini`` (an ``alembic.ini``), read without importing Alembic.

        A relative ``script_location`` is taken relative to the ini file when it
        does not exist from the current directory; Flask-Migrate's layout (no
        ``script_location``: the ini sits in the script folder) works as is.
        """
        folder = os.path.dirname(ini)
        try:
            main = _read_main_section(ini)
            location = main.get("script_location")
        except (configparser.Error, OSError, UnicodeError):
            # What Alembic makes of it (an error worth its own words, usually).
            main, location = None, cls._alembic_location(ini)
        if not location:
            location = folder
        elif not os.path.isabs(location) and not os.path.isdir(location):
            location = os.path.join(folder, location)
        location = os.path.abspath(location)
        env_py = os.path.join(location, "env.py")
        try:
            with open(env_py, encoding="utf-8") as f:
                uses_flask_migrate = "current_app" in f.read()
        except OSError:
            raise ConfigurationError(
                f"alembic_config: {env_py} does not exist; point alembic_config at a "
                "folder holding alembic.ini and env.py, or at alembic.ini itself."
            ) from None
        layout = _layout(main, location) if main is not None else None
        return cls(ini, location, uses_flask_migrate, layout)

    @staticmethod
    def _alembic_location(ini: str) -> str | None:
        with quiet_alembic():
            from alembic.config import Config

            return Config(ini).get_main_option("script_location")

    # -- revisions -------------------------------------------------------------------

    def heads(self) -> tuple[str, ...]:
        """The head revisions (loads every revision file)."""
        with self.loading():
            return tuple(self.script.get_heads())

    def revisions(self) -> list[Script]:
        """Every revision, each after the revisions it depends on (base to head)."""
        with self.loading():
            return list(reversed(list(self.script.walk_revisions("base", "heads"))))

    @contextlib.contextmanager
    def loading(self) -> t.Iterator[None]:
        """Turn a revision file that cannot be imported into a :class:`MigrationFailure`.

        Alembic imports every revision file on first use: a syntax error or a
        failing import would otherwise surface as a long traceback through
        Alembic's loader, once per class.
        """
        try:
            with quiet_alembic():
                yield
        except TransactionalTestCaseError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as MigrationFailure
            raise MigrationFailure(
                f"cannot load the revisions in {self.location}: {type(exc).__name__}: "
                f"{_message(exc)}{self._file_and_line(exc)}"
            ) from None

    def _file_and_line(self, exc: BaseException) -> str:
        """`` (file, line N)`` of the revision file ``exc`` comes from, if one of this project's."""
        locations = [os.path.abspath(p) + os.sep for p in version_locations(self.script)]
        found: tuple[str, int | None] | None = None
        if isinstance(exc, SyntaxError) and exc.filename:
            found = (exc.filename, exc.lineno)
        tb = exc.__traceback__
        while tb is not None:
            name = os.path.abspath(tb.tb_frame.f_code.co_filename)
            if any(name.startswith(location) for location in locations):
                found = (name, tb.tb_lineno)
            tb = tb.tb_next
        if found is None:
            return ""
        path = os.path.abspath(found[0])
        shown = os.path.relpath(path, self.location) if path.startswith(self.location + os.sep) else path
        return f" ({shown}, line {found[1]})"

    def revision_files(self) -> list[str]:
        """Every file Alembic may load a revision from, found without importing one.

        The files of each version location (recursively if the config says so),
        ``.pyc`` ones included for a ``sourceless`` script directory. Extra files
        (``__init__.py``, helpers) only make a fingerprint stricter. Read from
        ``alembic.ini`` alone where it can be (no Alembic import); a package
        resource location asks Alembic.
        """
        layout = self._layout
        if layout is None:
            script = self.script
            layout = _Layout(
                tuple(os.path.normpath(p) for p in version_locations(script)),
                script.recursive_version_locations,
                script.sourceless,
            )
        suffixes = (".py", ".pyc", ".pyo") if layout.sourceless else (".py",)
        found: list[str] = []
        for location in layout.locations:
            if not os.path.isdir(location):
                continue  # as Alembic: a version location that does not exist holds nothing
            for root, dirs, files in os.walk(location):
                dirs.sort()
                if os.path.basename(root) == "__pycache__" and not layout.sourceless:
                    continue
                found.extend(os.path.join(root, name) for name in sorted(files) if name.endswith(suffixes))
                if not layout.recursive:
                    dirs[:] = ["__pycache__"] if layout.sourceless and "__pycache__" in dirs else []
        return found

    def schema_files(self) -> list[str]:
        """The files whose contents make the schema, in order: the revision files, then ``env.py``.

        .. versionadded:: 0.5
        """
        return [*sorted(self.revision_files()), os.path.join(self.location, "env.py")]

    def where(self, script: Script) -> str:
        """``script``'s file, relative to the migrations folder when it is inside it."""
        path = os.path.abspath(script.path)
        if path.startswith(self.location + os.sep):
            return os.path.relpath(path, self.location)
        return path

    def revision_frame(self, tb: types.TracebackType | None) -> tuple[Script, int] | None:
        """The innermost frame of ``tb`` inside a revision file, as (revision, line)."""
        try:
            by_path = {os.path.abspath(s.path): s for s in self.script.walk_revisions("base", "heads")}
        except Exception:  # noqa: BLE001 - the revisions do not load: no revision to name
            return None
        found: tuple[Script, int] | None = None
        while tb is not None:
            script = by_path.get(os.path.abspath(tb.tb_frame.f_code.co_filename))
            if script is not None:
                found = (script, tb.tb_lineno)
            tb = tb.tb_next
        return found

    # -- running -----------------------------------------------------------------------

    def migrate(
        self,
        app: Flask,
        extension: Extension,
        engines: t.Mapping[BindKey, Engine],
        destination: str = "heads",
        upgrade: bool = True,
    ) -> tuple[VersionTable, ...]:
        """``alembic upgrade destination`` (or ``downgrade``) on ``engines``, in-process.

        Returns the version tables of the databases it ran on (one per
        ``context.configure`` of ``env.py``). Raises :class:`MigrationFailure`
        for anything the migrations raise.

        .. versionchanged:: 0.6
           Returns the version tables.
        """
        from alembic.runtime.environment import EnvironmentContext

        script, config = self.script, self.config
        engine = engines[None]
        with app.app_context():
            if self.uses_flask_migrate and "migrate" not in app.extensions:
                register_flask_migrate(app, extension, self.location)
            config.set_main_option(
                "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
            )
            saved = extension.engines()
            extension.point(engines)
            tables: list[VersionTable] = []
            try:
                with self.running(engines.values()), engine.begin() as connection:
                    config.attributes["connection"] = connection
                    steps = self.steps(destination, upgrade, tables)
                    with EnvironmentContext(config, script, fn=steps, destination_rev=destination):
                        script.run_env()
            finally:
                config.attributes.pop("connection", None)
                extension.point(saved)
        return tuple(tables)

    def steps(
        self, destination: str, upgrade: bool, tables: list[VersionTable]
    ) -> t.Callable[[t.Any, MigrationContext], t.Any]:
        """Alembic's migration function to ``destination``: the steps from a database's revisions.

        Called once per database ``env.py`` migrates: each one's version table
        is added to ``tables``.

        .. versionadded:: 0.5

        .. versionchanged:: 0.6
           ``tables``.
        """
        script = self.script

        def steps(rev: t.Any, context: MigrationContext) -> t.Any:
            table = VersionTable(context.version_table, context.version_table_schema)
            if table not in tables:
                tables.append(table)
            return revision_steps(script, destination, rev, upgrade)

        return steps

    @contextlib.contextmanager
    def running(self, engines: t.Iterable[Engine]) -> t.Iterator[None]:
        """Run migrations on ``engines``: logging as it was and quiet, any error a :class:`MigrationFailure`.

        .. versionadded:: 0.5
        """
        urls = [engine.url for engine in engines]
        try:
            with preserved_logging(), quiet_migrations():
                yield
        except TransactionalTestCaseError:
            raise  # already said as the library says things
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - reported as MigrationFailure
            raise MigrationFailure(self.describe(exc, urls)) from None

    # -- comparing (the migration checks) ------------------------------------------------

    def target_metadatas(self, app: Flask, extension: Extension) -> dict[BindKey, tuple[MetaData, ...]]:
        """Per bind key, the metadata a new revision would be generated from (the models').

        .. versionadded:: 0.5
        """
        return extension.metadatas()

    def comparison_options(self, app: Flask) -> dict[str, t.Any]:
        """The options autogenerate compares with, as ``flask db migrate`` would (Flask-Migrate's).

        .. versionadded:: 0.5
        """
        options: dict[str, t.Any] = {"compare_type": True}
        migrate = app.extensions.get("migrate")
        options.update(getattr(migrate, "configure_args", None) or {})
        return options

    def describe(self, exc: BaseException, urls: t.Iterable[URL | str]) -> str:
        """``ErrorType: first line (revision R, file, line N)`` for an error the migrations raised."""
        if isinstance(exc, SystemExit):
            what = f"env.py or a migration called sys.exit({exc.code})"
        else:
            what = f"{type(exc).__name__}: {first_line(exc)}"
        what = scrub(what, *urls)
        frame = self.revision_frame(exc.__traceback__)
        if frame is not None:
            script, line = frame
            what += f" (revision {script.revision}, {self.where(script)}, line {line})"
        return what


class FlaskAlembicProject(AlembicProject):
    """The migrations of an app that registers Flask-Alembic (``app.extensions["alembic"]``).

    Flask-Alembic has no ``alembic.ini`` and no ``env.py``: its configuration
    is ``app.config["ALEMBIC"]`` (``script_location``, ``version_locations``),
    and the extension itself runs the migrations on every database it manages
    (one per key of its metadata), with ``app.config["ALEMBIC_CONTEXT"]``.
    This project reads the configuration the extension builds and migrates
    through the extension's own ``run_migrations``; what differs from an
    ``env.py`` project is said here, the rest is shared.

    .. versionadded:: 0.5
    """

    def __init__(self, config: Config) -> None:
        with quiet_alembic():
            from alembic.script import ScriptDirectory

            script = ScriptDirectory.from_config(config)
        # Alembic's own reading of the locations (a package resource included):
        # the revision files are found through ``script`` (no layout of ours).
        super().__init__(None, os.path.abspath(script.dir), False, None)
        self._config, self._script = config, script

    @classmethod
    def of(cls, app: Flask) -> FlaskAlembicProject:
        """The project of ``app``'s Flask-Alembic, loaded once per process and configuration."""
        extension = app.extensions["alembic"]
        if not hasattr(extension, "engines"):
            raise ConfigurationError(
                "the app registers a Flask-Alembic older than 3.1, which cannot be told which "
                "engines to migrate: pip install 'Flask-Alembic>=3.1' (or point alembic_config "
                "at an alembic.ini)."
            )
        with app.app_context(), quiet_alembic():
            config: Config = extension.config
        key = "flask-alembic " + repr(sorted((config.get_section(config.config_ini_section) or {}).items()))
        project = _projects.get(key)
        if not isinstance(project, FlaskAlembicProject):
            project = _projects[key] = cls(config)
        return project

    def schema_files(self) -> list[str]:
        """The revision files: Flask-Alembic has no ``env.py`` (its code is the extension's)."""
        return sorted(self.revision_files())

    def migrate(
        self,
        app: Flask,
        extension: Extension,
        engines: t.Mapping[BindKey, Engine],
        destination: str = "heads",
        upgrade: bool = True,
    ) -> tuple[VersionTable, ...]:
        """Flask-Alembic's ``run_migrations`` on ``engines``: ``upgrade``/``downgrade`` to ``destination``.

        Flask-Alembic is handed ``engines`` as its own (``Alembic.engines``,
        keyed as it keys Flask-SQLAlchemy's: ``"default"`` and the bind keys)
        for the run, so it migrates no engine but these, whatever the app gave
        it. The steps are :meth:`steps`, as for an ``env.py``
        (``destination`` read by this process's one ``ScriptDirectory``): the
        extension's ``upgrade()`` would load every revision again per app, and
        Flask-Alembic 3.1 reads a revision id made of digits (its default
        ids) as a relative step.
        """
        alembic = app.extensions["alembic"]
        own = {"default" if key is None else str(key): engine for key, engine in engines.items()}
        tables: list[VersionTable] = []
        with app.app_context(), self.running(engines.values()), flask_alembic_engines(alembic, app, own):
            alembic.run_migrations(self.steps(destination, upgrade, tables))
        return tuple(tables)

    def target_metadatas(self, app: Flask, extension: Extension) -> dict[BindKey, tuple[MetaData, ...]]:
        """Flask-Alembic's metadata per key (given to it, else the default engine's models, as it does)."""
        given: t.Mapping[str, TargetMetadata] = app.extensions["alembic"].metadatas
        if not given:
            default = extension.metadatas().get(None)
            return {None: default} if default else {}
        return {
            None if key == "default" else key: (value,) if isinstance(value, sa.MetaData) else tuple(value)
            for key, value in given.items()
        }

    def comparison_options(self, app: Flask) -> dict[str, t.Any]:
        """``app.config["ALEMBIC_CONTEXT"]``, as ``flask db revision`` compares.

        Flask-Alembic turns ``compare_server_default`` on there by default.
        """
        return {"compare_type": True, **app.config.get("ALEMBIC_CONTEXT", {})}


#: Loading a script directory's revisions imports each: once per process is enough.
#: Keyed by ``alembic.ini``, or by Flask-Alembic's configuration.
_projects: dict[str, AlembicProject] = {}


def alembic_project(setting: str | os.PathLike[str] | None, app: Flask) -> AlembicProject:
    """The project an ``alembic_config`` setting means, loaded once.

    ``None`` means the app's own: Flask-Alembic's when the app registers it
    (an app that does keeps its migrations there, even next to an
    ``alembic.ini``), else the ``alembic.ini`` :func:`find_alembic_ini` finds.
    A path always means ``alembic.ini``.

    .. versionchanged:: 0.5
       Flask-Alembic's migrations for ``None``.
    """
    if setting is None and "alembic" in app.extensions:
        return FlaskAlembicProject.of(app)
    ini = find_alembic_ini(setting, app)
    project = _projects.get(ini)
    if project is None:
        project = _projects[ini] = AlembicProject.from_ini(ini)
    return project


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


def _message(exc: BaseException) -> str:
    """A SyntaxError's message without its own ``(file, line N)`` (said once, by the caller)."""
    if isinstance(exc, SyntaxError):
        return str(exc.msg)
    return first_line(exc)


def register_flask_migrate(app: Flask, extension: Extension, directory: str) -> None:
    """Register Flask-Migrate on ``app``, which its ``env.py`` needs and the app did not do."""
    try:
        from flask_migrate import Migrate
    except ImportError:
        raise ConfigurationError(
            f"the migrations in {directory} use Flask-Migrate's env.py, but Flask-Migrate "
            "is not installed: pip install Flask-Migrate."
        ) from None
    Migrate(app, extension.db, directory=directory)


@contextlib.contextmanager
def quiet_alembic() -> t.Iterator[None]:
    """Keep Alembic's INFO lines out of a test run's output while Alembic works.

    Importing Alembic logs each plugin it sets up (``alembic.runtime.plugins``)
    and a migration each step (``alembic.runtime.migration``), at INFO: an
    app that sets the root logger to INFO would print them between the
    tests. Warnings and errors still get through.
    """
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.INFO))
    try:
        yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def quiet_migrations() -> t.Iterator[None]:
    """Keep a test run's output clean while migrations run.

    Alembic logs every revision at INFO, and Flask-Migrate's stock env.py calls
    Flask-SQLAlchemy 3's deprecated ``db.get_engine()`` before falling back.
    """
    with quiet_alembic(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*get_engine.*", category=DeprecationWarning)
        yield


class _Layout(t.NamedTuple):
    """Where a project's revisions are read from, as ``ScriptDirectory`` would find them."""

    #: Absolute folders (Alembic skips those that do not exist).
    locations: tuple[str, ...]
    recursive: bool
    sourceless: bool


#: Alembic's legacy splitting of ``version_locations`` when no separator is configured.
_LEGACY_SPLIT = re.compile(r", *|(?: +)")
#: Alembic's values of ``path_separator`` (and the deprecated ``version_path_separator``).
_SEPARATORS = {"space": " ", "newline": "\n", "os": os.pathsep, ":": ":", ";": ";"}


def _read_main_section(ini: str) -> dict[str, str]:
    """The ``[alembic]`` section of ``ini`` as Alembic's ``Config`` reads it (``%(here)s`` too)."""
    parser = configparser.ConfigParser({"here": os.path.dirname(os.path.abspath(ini)).replace(os.sep, "/")})
    with open(ini, encoding="utf-8") as f:
        parser.read_file(f, ini)
    if not parser.has_section("alembic"):
        raise configparser.NoSectionError("alembic")
    return {key: parser.get("alembic", key) for key in parser.options("alembic")}


def _layout(main: t.Mapping[str, str], location: str) -> _Layout | None:
    """The revision folders ``main`` (``[alembic]``) names; None where only Alembic can tell."""
    raw = main.get("version_locations")
    if raw:
        separator: str | None = None
        for option in ("path_separator", "version_path_separator"):
            if option in main:
                separator = _SEPARATORS.get(main[option])
                if separator is None:
                    return None  # Alembic's error to say
                break
        parts = (
            _LEGACY_SPLIT.split(raw) if separator is None else [p.strip() for p in raw.split(separator) if p]
        )
        locations = []
        for part in parts:
            if not os.path.isabs(part) and ":" in part:
                return None  # a package resource: Alembic resolves it
            locations.append(os.path.abspath(part))
    else:
        locations = [os.path.join(location, "versions")]
    return _Layout(
        tuple(locations),
        main.get("recursive_version_locations") == "true",
        main.get("sourceless") == "true",
    )


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
