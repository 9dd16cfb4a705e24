"""Checks of an app's Alembic migrations, as unittest assertions and tests.

What pytest-alembic's built-in tests check, for plain unittest:

* the migrations have a single head (no unmerged branches);
* an empty database upgrades to head;
* the models match the migrations (Alembic's autogenerate comparison finds
  nothing to generate);
* every revision downgrades and upgrades again.

:class:`MigrationAssertionsMixin` gives any test case with ``cls.app`` and
``cls.db`` the four checks as assertion methods; :class:`MigrationsTestCase`
runs them as ordinary tests. Every check that needs a database works on its own
*migrations database*: each database of the app with ``_migrations`` appended
to its name (``myapp_test`` -> ``myapp_test_migrations``), created empty for
the check and dropped after it, so the checks never touch the databases the
other tests use. Like the test databases, its name must contain ``test``.

Alembic runs in-process inside an app context, through the project's own
``env.py``: a plain ``env.py`` gets the connection in
``config.attributes['connection']`` (Alembic's "sharing a connection" recipe),
and Flask-Migrate's gets it from ``current_app``'s ``db.engine``, which points
at the migrations database while Alembic runs. An app that registers
Flask-Alembic is migrated by the extension, handed the migrations databases
as its engines.

Binds: every engine of the app gets a migrations database. The models of a
bind are compared with it when the migrations reached it (it has their
version table after the upgrade: ``alembic_version``, or what ``env.py`` names
``version_table``; as with Flask-Migrate's multi-db ``env.py``); binds that ``env.py`` does not migrate are left out of the
comparison, since their schema does not come from the migrations.
"""

from __future__ import annotations

import contextlib
import os
import typing as t
import unittest

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine
from sqlalchemy.pool import NullPool

from ._types import BindKey
from .alembic_runner import (
    AlembicProject,
    AlembicSetting,
    MigrationFailure,
    VersionTable,
    alembic_project,
    quiet_alembic,
    reached,
)
from .app_testcase import AppTestCase
from .backends import backend_for, check_driver, check_safe
from .errors import ConfigurationError, mask_url
from .provisioning import provisioner, worker_url
from .state import ClassState

if t.TYPE_CHECKING:
    from flask import Flask

    from .extension import Extension

    _TestCaseBase = unittest.TestCase
else:
    _TestCaseBase = object

_T = t.TypeVar("_T")

#: Appended to each database's name to name its migrations database.
MIGRATIONS_SUFFIX = "_migrations"


#: The app's Alembic project, as :meth:`MigrationAssertionsMixin.get_migrations` returns it.
#:
#: .. versionchanged:: 0.4
#:    The same object provisioning migrates with
#:    (:class:`~transactional_testcase.alembic_runner.AlembicProject`), loaded
#:    once per process.
Migrations = AlembicProject


def load_migrations(setting: AlembicSetting, app: Flask) -> AlembicProject:
    """Resolve an ``alembic_config`` setting the way TransactionalTestCase does."""
    if setting is False:
        raise ConfigurationError(
            "alembic_config = False builds the schema with db.create_all(): there are "
            "no migrations to check. Point alembic_config at alembic.ini or the "
            "migrations folder (or leave it None to find Flask-Migrate's)."
        )
    return alembic_project(None if setting is True else setting, app)


def migrations_url(url: str | URL, key: BindKey = None, suffix: str = MIGRATIONS_SUFFIX) -> URL:
    """The migrations database of the database ``url``: its name plus ``suffix``.

    A name that already ends with ``suffix`` is kept. In-memory SQLite gets a
    file in this process's temporary folder (each connection of an in-memory
    database would see another, empty one).
    """
    parsed = sa.make_url(url)
    backend = backend_for(parsed)
    if backend.is_file:
        if backend.is_memory(parsed):
            folder = os.path.dirname(sa.make_url(provisioner.default_sqlite_url()).database or "")
            name = f"{key or 'default'}_memory_test{suffix}.db"
            return parsed.set(database=os.path.join(folder, name), query={})
        root, ext = os.path.splitext(parsed.database or "")
        if root.endswith(suffix):
            return parsed
        return parsed.set(database=f"{root}{suffix}{ext or '.db'}")
    name = parsed.database or ""
    if name.endswith(suffix):
        return parsed
    return parsed.set(database=name + suffix)


def describe_difference(diff: t.Any, dialect: sa.Dialect | None = None) -> list[str]:
    """One readable line per difference of ``alembic.autogenerate.compare_metadata``.

    ``add_table 'tags'``, ``add_column 'posts.views' INTEGER``,
    ``modify_nullable 'users.email' True -> False``...
    """
    if isinstance(diff, list):  # modify_* differences of one column come grouped
        return [line for item in diff for line in describe_difference(item, dialect)]
    kind = diff[0]

    def type_(value: t.Any) -> str:
        if value is None:
            return "None"
        try:
            return str(value.compile(dialect=dialect))
        except Exception:  # noqa: BLE001 - a failure message must not raise
            return repr(value)

    def default(value: t.Any) -> str:
        arg = getattr(value, "arg", value)
        text = getattr(arg, "text", arg)
        return repr(str(text)) if text is not None else "None"

    if kind in ("add_table", "remove_table"):
        return [f"{kind} {_qualified(diff[1].schema, diff[1].name)!r}"]
    if kind in ("add_column", "remove_column"):
        _, schema, table, column = diff
        return [f"{kind} {_qualified(schema, table, column.name)!r} {type_(column.type)}"]
    if kind in ("add_index", "remove_index"):
        index = diff[1]
        columns = ", ".join(str(getattr(c, "name", c)) for c in index.expressions)
        unique = " UNIQUE" if index.unique else ""
        return [f"{kind} {index.name!r} on {_table_name(index.table)!r} ({columns}){unique}"]
    if kind in ("add_constraint", "remove_constraint"):
        constraint = diff[1]
        columns = ", ".join(c.name for c in constraint.columns)
        what = type(constraint).__name__
        return [f"{kind} {constraint.name!r} on {_table_name(constraint.table)!r} {what} ({columns})"]
    if kind in ("add_fk", "remove_fk"):
        fk = diff[1]
        columns = ", ".join(c.name for c in fk.columns)
        target = ", ".join(e.target_fullname for e in fk.elements)
        return [f"{kind} {fk.name!r} on {_table_name(fk.table)!r} ({columns}) -> {target}"]
    if kind in ("modify_nullable", "modify_type", "modify_default", "modify_comment"):
        _, schema, table, column, _info, old, new = diff
        where = _qualified(schema, table, column)
        if kind == "modify_type":
            return [f"{kind} {where!r} {type_(old)} -> {type_(new)}"]
        if kind == "modify_default":
            return [f"{kind} {where!r} {default(old)} -> {default(new)}"]
        return [f"{kind} {where!r} {old!r} -> {new!r}"]
    if kind in ("add_table_comment", "remove_table_comment"):
        return [f"{kind} {_qualified(diff[1].schema, diff[1].name)!r}"]
    return [" ".join(str(part) for part in diff)]


def _qualified(*parts: str | None) -> str:
    return ".".join(p for p in parts if p)


def _table_name(table: t.Any) -> str:
    return _qualified(getattr(table, "schema", None), getattr(table, "name", str(table)))


class _Failure(Exception):
    """A check's failure message, raised inside the helpers and turned into self.fail()."""


class _MigrationsDatabases:
    """The empty migrations databases of one check, and engines on them."""

    def __init__(self, urls: t.Mapping[BindKey, URL]) -> None:
        self.urls = dict(urls)
        self.engines: dict[BindKey, Engine] = {}

    def create(self, created: t.Callable[[URL], None] = lambda url: None) -> None:
        """Recreate each database empty; ``created(url)`` after each one exists."""
        for key, url in self.urls.items():
            backend_for(url).recreate(url)
            created(url)
            self.engines[key] = sa.create_engine(url, poolclass=NullPool)

    def drop(self) -> None:
        for engine in self.engines.values():
            engine.dispose()
        self.engines.clear()
        for url in self.urls.values():
            backend_for(url).drop(url)

    def describe(self) -> str:
        return mask_url(self.urls[None])


class MigrationAssertionsMixin(_TestCaseBase):
    """Assertions on the app's Alembic migrations, for any test case class.

    Needs ``cls.app`` (the Flask app, with its Flask-SQLAlchemy or
    Flask-SQLAlchemy-Lite extension), as :class:`~transactional_testcase.TransactionalTestCase` and
    :class:`MigrationsTestCase` provide, and reads ``alembic_config`` with the
    same meaning. Each check that needs a database creates the migrations
    databases (see :func:`migrations_url`) empty and drops them afterwards.
    """

    #: Also compare server defaults (Alembic's ``compare_server_default``);
    #: off by default because databases render defaults differently.
    compare_server_default: t.ClassVar[bool] = False

    #: Revisions whose downgrade is deliberately not supported: the round trip
    #: upgrades through them without downgrading them.
    irreversible_revisions: t.ClassVar[t.Collection[str]] = ()

    app: t.ClassVar[Flask]
    db: t.ClassVar[t.Any]
    alembic_config: t.ClassVar[AlembicSetting]

    @classmethod
    def _tt_extension(cls) -> Extension:
        """The app's SQLAlchemy extension (the running class's, else found on ``cls.app``)."""
        from .extension import extension_of

        state = getattr(cls, "_tt_state", None)
        if state is not None and state.extension is not None:
            return t.cast("Extension", state.extension)
        extension = extension_of(cls.app, getattr(cls, "metadata", None))
        if extension is None:
            raise ConfigurationError(
                f"{cls.__qualname__}.app has no Flask-SQLAlchemy or Flask-SQLAlchemy-Lite extension."
            )
        return extension

    # -- hooks -----------------------------------------------------------------

    @classmethod
    def migrations_database_urls(cls) -> dict[BindKey, URL]:
        """Per bind key, the database the checks recreate: the app's, plus ``_migrations``."""
        with cls.app.app_context():
            return {key: migrations_url(e.url, key) for key, e in cls._tt_extension().engines().items()}

    @classmethod
    def get_migrations(cls) -> AlembicProject:
        """The class's Alembic project (loaded once per process and ``alembic.ini``)."""
        with cls.app.app_context():
            return load_migrations(getattr(cls, "alembic_config", None), cls.app)

    # -- assertions --------------------------------------------------------------

    def assertSingleHead(self, msg: str | None = None) -> None:
        """Fail when the migrations have several heads (unmerged branches) or none."""
        migrations = self.get_migrations()
        heads = sorted(self._tt_load(msg, migrations.heads))
        if len(heads) == 1:
            return
        if not heads:
            self.fail(
                self._formatMessage(msg, f"the migrations in {migrations.location} have no revision at all.")
            )
        described = []
        for head in heads:
            script = migrations.script.get_revision(head)
            assert script is not None
            parent = script.down_revision
            revises = ", ".join(parent) if isinstance(parent, tuple) else (parent or "base")
            described.append(f"  {head} ({migrations.where(script)}, revises {revises})")
        self.fail(
            self._formatMessage(
                msg,
                f"the migrations in {migrations.location} have {len(heads)} heads, not one:\n"
                + "\n".join(described)
                + "\nMerge them: 'flask db merge heads' (or 'alembic merge heads').",
            )
        )

    def assertUpgradeFromBase(self, msg: str | None = None) -> None:
        """Fail when an empty database cannot be upgraded to head."""
        migrations = self.get_migrations()
        with self._tt_databases() as databases:
            self._tt_check(msg, lambda: self._tt_upgrade_from_base(migrations, databases))

    def assertModelsMatchMigrations(self, msg: str | None = None) -> None:
        """Fail when Alembic's autogenerate finds differences between models and migrations.

        An empty database is upgraded to head and compared with the models as
        a new revision would be generated: ``db.metadatas`` with
        ``compare_type=True`` and Flask-Migrate's ``configure_args`` (``flask db
        migrate``), or Flask-Alembic's metadata and ``ALEMBIC_CONTEXT`` (``flask
        db revision``); the message lists one difference per line, the
        operations a new migration would need.

        .. versionchanged:: 0.5
           Flask-Alembic's metadata and options for an app that registers it.
        """
        migrations = self.get_migrations()
        with self._tt_databases() as databases:
            self._tt_check(msg, lambda: self._tt_compare(migrations, databases))

    assertNoPendingMigrations = assertModelsMatchMigrations

    def assertUpDownRoundTrip(self, msg: str | None = None) -> None:
        """Fail when a revision does not downgrade and upgrade again.

        From an empty database, each revision in turn (base to head) is
        upgraded to, downgraded one step and upgraded to again; the message
        names the first revision and file that broke, and the error.
        """
        migrations = self.get_migrations()
        with self._tt_databases() as databases:
            self._tt_check(msg, lambda: self._tt_round_trip(migrations, databases))

    # -- implementation -------------------------------------------------------------

    def _tt_load(self, msg: str | None, load: t.Callable[[], _T]) -> _T:
        """``load()`` of the revisions; a failure of the check if a revision file cannot be imported."""
        try:
            return load()
        except MigrationFailure as failure:
            self.fail(self._formatMessage(msg, str(failure)))

    def _tt_check(self, msg: str | None, check: t.Callable[[], object]) -> None:
        try:
            check()
        except _Failure as failure:
            message = str(failure)
        else:
            return
        self.fail(self._formatMessage(msg, message))

    @contextlib.contextmanager
    def _tt_databases(self) -> t.Iterator[_MigrationsDatabases]:
        urls = self.migrations_database_urls()
        for key, url in urls.items():
            check_driver(url)
            check_safe(
                url,
                "database_url (the migration checks recreate a copy named after it)"
                if key is None
                else f"the {key!r} bind's URL (the migration checks recreate a copy named after it)",
            )
        databases = _MigrationsDatabases(urls)
        state = getattr(type(self), "_tt_state", None)

        def created(url: URL) -> None:
            # Dropped after the class too, in case the test is interrupted.
            if state is not None and url not in state.databases_to_drop:
                state.databases_to_drop.append(url)

        try:
            databases.create(created)
            yield databases
        except BaseException:
            with contextlib.suppress(Exception):  # keep the original error
                databases.drop()
            raise
        databases.drop()

    def _tt_run(
        self,
        migrations: AlembicProject,
        databases: _MigrationsDatabases,
        destination: str,
        upgrade: bool,
        doing: str,
    ) -> tuple[VersionTable, ...]:
        """``alembic upgrade/downgrade destination`` on the migrations databases; a failure if it fails.

        Returns the version tables the migrations used.
        """
        try:
            return migrations.migrate(self.app, self._tt_extension(), databases.engines, destination, upgrade)
        except MigrationFailure as failure:
            raise _Failure(f"{doing} failed: {failure}") from None

    def _tt_upgrade_from_base(
        self, migrations: AlembicProject, databases: _MigrationsDatabases
    ) -> tuple[VersionTable, ...]:
        """Upgrade the empty databases to head: the version tables used, which must be in them."""
        tables = self._tt_run(
            migrations,
            databases,
            "heads",
            True,
            f"upgrading the empty database {databases.describe()} to head",
        )
        if migrations.heads() and not reached(databases.engines[None], tables):
            names = ", ".join(table.name for table in tables) or "alembic_version"
            raise _Failure(
                f"upgrading {databases.describe()} to head left no {names} table "
                f"in it: the env.py in {migrations.location} migrated another database. "
                "It must use config.attributes['connection'] (Alembic's 'sharing a "
                "connection' recipe) or current_app's db.engine."
            )
        return tables

    def _tt_compare(self, migrations: AlembicProject, databases: _MigrationsDatabases) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        tables = self._tt_upgrade_from_base(migrations, databases)
        opts = migrations.comparison_options(self.app)
        opts.pop("process_revision_directives", None)
        if tables:  # else autogenerate would report env.py's own version table as not in the models
            opts.setdefault("version_table", tables[0].name)
            opts.setdefault("version_table_schema", tables[0].schema)
        if self.compare_server_default:
            opts["compare_server_default"] = True
        lines: list[str] = []
        extension = self._tt_extension()
        metadatas = migrations.target_metadatas(self.app, extension)
        if not metadatas:
            raise _Failure(
                f"there are no models to compare the migrated database with: {extension.name} keeps "
                f"none. Set metadata = Base.metadata on {type(self).__qualname__} (the MetaData of your "
                "declarative base), or {bind: MetaData} for several engines."
            )
        for key, engine in databases.engines.items():
            found = metadatas.get(key, ())
            # Quiet: Flask-Alembic gives the alembic logger a handler at INFO.
            with quiet_alembic(), engine.connect() as conn:
                if key is not None and not any(table.exists(conn) for table in tables):
                    continue  # env.py does not migrate this bind
                metadata: t.Any = found[0] if len(found) == 1 else list(found) or sa.MetaData()
                context = MigrationContext.configure(connection=conn, opts=dict(opts))
                # Alembic compares a sequence of MetaData too (Flask-Alembic's), typed or not.
                diffs = compare_metadata(context, t.cast(sa.MetaData, metadata))
                prefix = "" if key is None else f"[bind {key!r}] "
                lines.extend(
                    prefix + line for diff in diffs for line in describe_difference(diff, conn.dialect)
                )
        if lines:
            raise _Failure(
                "the models differ from the database the migrations build (a new "
                "migration would need these operations; 'flask db migrate' generates "
                "one):\n" + "\n".join("  " + line for line in lines)
            )

    def _tt_round_trip(self, migrations: AlembicProject, databases: _MigrationsDatabases) -> None:
        for script in self._tt_load(None, migrations.revisions):
            name = f"revision {script.revision} ({migrations.where(script)})"
            parent = script.down_revision
            if isinstance(parent, (tuple, list)):
                parent = parent[0] if parent else None
            below = parent or "base"
            self._tt_run(migrations, databases, script.revision, True, f"upgrading to {name}")
            if script.revision in self.irreversible_revisions:
                continue
            self._tt_run(
                migrations,
                databases,
                below,
                False,
                f"{name} does not round-trip: downgrading it to {below}",
            )
            self._tt_run(
                migrations,
                databases,
                script.revision,
                True,
                f"{name} does not round-trip: upgrading it again after its downgrade",
            )


class MigrationsTestCase(MigrationAssertionsMixin, AppTestCase):
    """The migration checks as four ordinary tests.

    Subclass it with the same ``create_app`` and ``alembic_config`` as the
    project's :class:`~transactional_testcase.TransactionalTestCase`::

        class MigrationTests(MigrationsTestCase):
            @classmethod
            def create_app(cls, config):
                return myapp.create_app(config)

    The app is built once per class with its databases pointed at the
    migrations databases (the configured names plus ``_migrations``), which
    each test creates empty and drops; ``tearDownClass`` drops them again in
    case a test was interrupted.

    .. versionchanged:: 0.4
       The four tests are added to each subclass, not defined on this class:
       importing it into a test module adds nothing to a run.
       Built by the same class setup as the other test cases
       (:class:`~transactional_testcase.app_testcase.AppTestCase`): the same
       errors with the same masked URLs, the same cleanup when a subclass's
       ``setUpClass`` fails, and the app released after the class.
    """

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        # The four checks become tests of subclasses only: a test module that
        # imports MigrationsTestCase adds nothing to its run (no skipped base
        # class under unittest, no four skips under pytest).
        super().__init_subclass__(**kwargs)
        for name, check in _CHECKS.items():
            if not hasattr(cls, name):
                setattr(cls, name, check)

    @classmethod
    def _tt_database_url(cls, url: str | URL, key: BindKey) -> URL:
        """The migrations database of ``url``: the checks' own copy, named after it."""
        return migrations_url(worker_url(url), key)

    @classmethod
    def _tt_check_urls(cls, requested: t.Mapping[BindKey, t.Any]) -> None:
        """Drivers installed, and names safe to drop: each test recreates the databases."""
        super()._tt_check_urls(requested)
        for key, value in requested.items():
            check_safe(
                sa.make_url(value if isinstance(value, str | URL) else value["url"]),
                "database_url (or the TEST_DATABASE_URL environment variable)"
                if key is None
                else f"binds[{key!r}]",
            )

    @classmethod
    def _tt_set_up_class(cls, state: ClassState, config: t.Mapping[str, t.Any]) -> None:
        with cls.app.app_context():
            state.own_engines = cls._tt_extension().engines()
        cls.get_migrations()


def _test_single_head(self: MigrationsTestCase) -> None:
    self.assertSingleHead()


def _test_upgrade_from_base(self: MigrationsTestCase) -> None:
    self.assertUpgradeFromBase()


def _test_models_match_migrations(self: MigrationsTestCase) -> None:
    self.assertModelsMatchMigrations()


def _test_up_down_round_trip(self: MigrationsTestCase) -> None:
    self.assertUpDownRoundTrip()


#: The tests every subclass of MigrationsTestCase gets (see its ``__init_subclass__``).
_CHECKS: dict[str, t.Callable[[MigrationsTestCase], None]] = {
    "test_single_head": _test_single_head,
    "test_upgrade_from_base": _test_upgrade_from_base,
    "test_models_match_migrations": _test_models_match_migrations,
    "test_up_down_round_trip": _test_up_down_round_trip,
}
