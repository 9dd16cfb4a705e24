"""Migrations: Flask-Migrate and plain Alembic layouts, on every backend.

The generated ``<Name>_<backend>`` classes are TransactionalTestCases migrated
for real in their ``setUpClass``. The ``<Name>_<backend>`` classes built with
``@per_backend`` are plain unittest cases that run small inner
TransactionalTestCase classes programmatically, because what they check
(errors raised by setUpClass, how often migrations ran, what logging looks
like afterwards) can only be seen from outside the class under test.

Fixture apps: ``tests/apps/library`` (Flask-Migrate 4.1's own env.py) and
``tests/apps/plain_alembic`` (Alembic's cookbook env.py). Every class uses
databases of its own (``tt_mig_<purpose>_<driver>_test``, or
``mig_<purpose>_test.db`` for SQLite): the provisioner reuses databases by URL,
so sharing one with another module would hide whether migrations ran.
"""

from __future__ import annotations

import contextlib
import logging
import logging.config
import os
import shutil
import sys
import tempfile
import typing as t
import unittest
from unittest import mock

import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import event

from tests.apps import library, plain_alembic
from tests.apps.library import bare
from tests.matrix import (
    BACKENDS,
    BackendUnderTest,
    OuterCase,
    bind_url,
    generate_per_backend,
    on_all_backends,
)
from tests.running import RunnerRun, run_with_runner
from transactional_testcase import TransactionalTestCase
from transactional_testcase import schema as tt_schema
from transactional_testcase.alembic_runner import AlembicProject
from transactional_testcase.backends import (
    MySQLBackend,
    PostgreSQLBackend,
    SQLiteBackend,
)
from transactional_testcase.errors import ConfigurationError, MigrationError
from transactional_testcase.provisioning import provisioner

Factory = t.Callable[[t.Mapping[str, t.Any]], Flask]

if t.TYPE_CHECKING:
    # Mixins below are checked as the classes they end up in; at run time they
    # must not be TestCases themselves, or unittest would collect them.
    _CaseBase = TransactionalTestCase
else:
    _CaseBase = object

#: Inner classes claim a module that is not imported, so running them never
#: triggers this module's (or anyone's) module-level fixtures and cleanups.
INNER_MODULE = "tests.test_migrations_inner"

LIBRARY_INI = os.path.join(library.MIGRATIONS, "alembic.ini")
LIBRARY_TABLES = frozenset({"authors", "books", "alembic_version"})
PLAIN_TABLES = frozenset({"widgets", "parts", "alembic_version"})


def scripts(folder: str) -> ScriptDirectory:
    """The scripts in ``folder``, as Alembic reads them.

    Through the folder's alembic.ini when it has one: the library app's
    fixtures share revisions through ``version_locations``.
    """
    ini = os.path.join(folder, "alembic.ini")
    if not os.path.isfile(ini):
        return ScriptDirectory(folder)
    config = Config(ini)
    config.set_main_option("script_location", folder)
    return ScriptDirectory.from_config(config)


def heads(folder: str) -> frozenset[str]:
    """The head revisions of the scripts in ``folder``."""
    return frozenset(scripts(folder).get_heads())


LIBRARY_HEADS = heads(library.MIGRATIONS)
V2_HEADS = heads(library.variant("v2_loans"))
PLAIN_HEADS = heads(plain_alembic.SCRIPTS)


# -- helpers ---------------------------------------------------------------------------


@contextlib.contextmanager
def forced_build() -> t.Iterator[None]:
    """Migrate instead of cloning a saved template of the same schema.

    Templates are dropped when the test process ends, but a killed earlier run
    may leave one behind: tests that check what running the migrations did
    must not depend on that.
    """
    with contextlib.ExitStack() as stack:
        for backend_class in (SQLiteBackend, PostgreSQLBackend, MySQLBackend):
            stack.enter_context(mock.patch.object(backend_class, "has_template", return_value=False))
        yield


@contextlib.contextmanager
def counting_upgrades() -> t.Iterator[mock.MagicMock]:
    """Wrap ``AlembicProject.migrate``: ``.call_count`` is how often migrations ran."""
    with mock.patch.object(
        AlembicProject, "migrate", autospec=True, side_effect=AlembicProject.migrate
    ) as upgrade:
        yield upgrade


@contextlib.contextmanager
def empty_cwd() -> t.Iterator[str]:
    """Run from an empty folder: no ./alembic.ini or ./migrations to find by accident."""
    previous = os.getcwd()
    folder = tempfile.mkdtemp(prefix="tt_mig_cwd_")
    os.chdir(folder)
    try:
        yield folder
    finally:
        os.chdir(previous)
        shutil.rmtree(folder, ignore_errors=True)


def table_names(case: TransactionalTestCase) -> set[str]:
    return set(sa.inspect(case.session.connection()).get_table_names())


def versions(case: TransactionalTestCase) -> set[str]:
    return set(case.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


class ConnectionTally:
    """An app factory that counts pool checkouts minus checkins of the apps it builds."""

    def __init__(self, factory: Factory) -> None:
        self.factory = factory
        self.open = 0

    def __call__(self, config: t.Mapping[str, t.Any]) -> Flask:
        app = self.factory(config)
        with app.app_context():
            # Pool listeners survive engine.dispose() (the new pool copies them).
            for engine in app.extensions["sqlalchemy"].engines.values():
                event.listen(engine, "checkout", self._checkout)
                event.listen(engine, "checkin", self._checkin)
        return app

    def _checkout(self, *args: t.Any) -> None:
        self.open += 1

    def _checkin(self, *args: t.Any) -> None:
        self.open -= 1


class SchemaChecks(_CaseBase):
    """Tests of every inner class: the schema it expects, and a working app logger."""

    expected_tables: t.ClassVar[frozenset[str]]
    expected_heads: t.ClassVar[frozenset[str]]

    def test_schema(self) -> None:
        names = table_names(self)
        self.assertLessEqual(self.expected_tables, names)
        self.assertEqual(versions(self), self.expected_heads)

    def test_app_logger_enabled(self) -> None:
        # A logger disabled by env.py's fileConfig() drops records: assertLogs fails.
        with self.assertLogs(self.app.logger, "WARNING") as logs:
            self.app.logger.warning("logged after the migrations")
        self.assertEqual(logs.output, [f"WARNING:{self.app.logger.name}:logged after the migrations"])


def make_case(
    name: str,
    *,
    url: str,
    factory: Factory,
    alembic_config: t.Any,
    tables: frozenset[str] = LIBRARY_TABLES,
    expected_heads: frozenset[str] = LIBRARY_HEADS,
) -> type[TransactionalTestCase]:
    """An inner TransactionalTestCase class, run with :func:`run_case`."""
    namespace = {
        "__module__": INNER_MODULE,
        "__qualname__": name,
        "database_url": url,
        "alembic_config": alembic_config,
        "expected_tables": tables,
        "expected_heads": expected_heads,
        "create_app": classmethod(lambda cls, config: factory(config)),
    }
    return type(name, (SchemaChecks, TransactionalTestCase), namespace)


Run = RunnerRun[unittest.TextTestResult]


def run_case(case: type[unittest.TestCase]) -> Run:
    """Run ``case`` with a verbose runner, whose output names every test."""
    return run_with_runner(case, verbosity=2)


def qualified(error: type[BaseException]) -> str:
    return f"{error.__module__}.{error.__qualname__}"


class RunAssertions(unittest.TestCase):
    """Assertions on what an inner class's run reported."""

    def assertPassed(self, run: Run) -> None:
        self.assertTrue(run.result.testsRun > 0 and run.result.wasSuccessful(), run.output)

    def setup_error(self, run: Run, error: type[BaseException]) -> str:
        """The message of the one ``error`` the inner class's setUpClass raised."""
        result = run.result
        self.assertEqual((result.testsRun, len(result.errors), len(result.failures)), (0, 1, 0), run.output)
        holder, text = result.errors[0]
        self.assertIn("setUpClass", str(holder), run.output)
        # One clear error: not chained onto the exceptions it replaced.
        self.assertNotIn("During handling of the above exception", text)
        self.assertNotIn("The above exception was the direct cause", text)
        last = text.strip().splitlines()[-1]
        raised, _, message = last.partition(": ")
        self.assertEqual(raised, qualified(error), text)
        return message


if t.TYPE_CHECKING:
    _RunBase = RunAssertions
else:
    _RunBase = object


def per_backend(mixin: type) -> type:
    """Create ``<Mixin>_<backend>`` plain unittest classes (inner classes do the database work)."""
    return generate_per_backend(mixin, RunAssertions, OuterCase)


class PerBackend(_RunBase):
    backend: t.ClassVar[BackendUnderTest]

    def url(self, purpose: str) -> str:
        return bind_url(self.backend, f"mig_{purpose}")


# -- migrated TransactionalTestCases ---------------------------------------------------


class MigratedCase(_CaseBase):
    """A database of the class's own, really migrated (not cloned) in setUpClass."""

    backend: t.ClassVar[BackendUnderTest]
    purpose: t.ClassVar[str]
    #: How many times Alembic's upgrade ran during setUpClass.
    upgrades: t.ClassVar[int]

    @classmethod
    def get_database_url(cls) -> str:
        return bind_url(cls.backend, f"mig_{cls.purpose}")

    @classmethod
    def setUpClass(cls) -> None:
        with forced_build(), counting_upgrades() as upgrade:
            super().setUpClass()
        cls.upgrades = upgrade.call_count


class LibraryIsolation(_CaseBase):
    """The pair every migrated class carries: each commits, each expects an empty start."""

    def _commit_and_count(self) -> None:
        self.assertEqual((library.count(library.Author), library.count(library.Book)), (0, 0))
        author = library.Author(name="Le Guin")
        library.db.session.add(author)
        library.db.session.flush()
        library.db.session.add(library.Book(title="The Dispossessed", author_id=author.id))
        library.db.session.commit()
        self.assertEqual((library.count(library.Author), library.count(library.Book)), (1, 1))

    def test_commit_is_rolled_back_a(self) -> None:
        self._commit_and_count()

    def test_commit_is_rolled_back_b(self) -> None:
        self._commit_and_count()


@on_all_backends
class FlaskMigrateApp(MigratedCase, LibraryIsolation):
    """``Migrate(app, db)`` in the factory, ``alembic_config = None``: its folder is migrated."""

    purpose = "library"
    alembic_config = None

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return library.create_app(config)

    def test_migrated_to_head_in_setupclass(self) -> None:
        self.assertEqual(self.upgrades, 1)
        self.assertLessEqual(LIBRARY_TABLES, table_names(self))
        self.assertEqual(versions(self), LIBRARY_HEADS)

    def test_app_logger_created_before_migrations_still_logs(self) -> None:
        self.assertFalse(self.app.logger.disabled)
        with self.assertLogs(self.app.logger, "WARNING"):
            self.app.logger.warning("still here")


@on_all_backends
class FactoryWithoutMigrate(MigratedCase, LibraryIsolation):
    """Flask-Migrate registered in a ``manage.py`` the tests never import: the test registers it."""

    purpose = "bare"
    alembic_config = library.MIGRATIONS

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return bare.create_app(config)

    def test_migrated_to_head(self) -> None:
        self.assertNotIn("tests.apps.library.manage", sys.modules)
        self.assertEqual(self.upgrades, 1)
        self.assertLessEqual(LIBRARY_TABLES, table_names(self))
        self.assertEqual(versions(self), LIBRARY_HEADS)

    def test_flask_migrate_registered_for_the_test(self) -> None:
        self.assertIn("migrate", self.app.extensions)
        migrate = self.app.extensions["migrate"]
        self.assertEqual(os.path.abspath(migrate.directory), library.MIGRATIONS)
        self.assertIs(migrate.db, self.db)


@on_all_backends
class PlainAlembicLayout(MigratedCase):
    """alembic.ini with script_location, the cookbook's env.py, no Flask-Migrate at all."""

    purpose = "plain"
    alembic_config = plain_alembic.ALEMBIC_INI

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return plain_alembic.create_app(config)

    def test_migrated_to_head(self) -> None:
        self.assertEqual(self.upgrades, 1)
        self.assertLessEqual(PLAIN_TABLES, table_names(self))
        self.assertEqual(versions(self), PLAIN_HEADS)

    def test_no_flask_migrate_needed(self) -> None:
        self.assertNotIn("migrate", self.app.extensions)

    def _commit_and_count(self) -> None:
        self.assertEqual(plain_alembic.count(plain_alembic.Widget), 0)
        widget = plain_alembic.Widget(name="sprocket")
        plain_alembic.db.session.add(widget)
        plain_alembic.db.session.flush()
        plain_alembic.db.session.add(plain_alembic.Part(widget_id=widget.id, label="tooth"))
        plain_alembic.db.session.commit()
        self.assertEqual(plain_alembic.count(plain_alembic.Part), 1)

    def test_commit_is_rolled_back_a(self) -> None:
        self._commit_and_count()

    def test_commit_is_rolled_back_b(self) -> None:
        self._commit_and_count()


@on_all_backends
class OwnVersionTable(MigratedCase):
    """An env.py that names its own ``version_table``: migrated, its revision kept there."""

    purpose = "own_version"
    alembic_config = plain_alembic.OWN_VERSION_TABLE_INI

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return plain_alembic.create_app(config)

    def test_migrated_to_head_with_the_revision_in_the_named_table(self) -> None:
        self.assertEqual(self.upgrades, 1)
        tables = table_names(self)
        self.assertLessEqual({"widgets", "parts", "widgets_version"}, tables)
        self.assertNotIn("alembic_version", tables)
        found = self.session.execute(sa.text("SELECT version_num FROM widgets_version")).scalars()
        self.assertEqual(set(found), PLAIN_HEADS)


@on_all_backends
class CreateAllInsteadOfMigrations(MigratedCase, LibraryIsolation):
    """``alembic_config = False``: db.create_all(), Alembic never runs."""

    purpose = "create_all"
    alembic_config = False

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return library.create_app(config)

    def test_schema_from_the_models(self) -> None:
        self.assertEqual(self.upgrades, 0)
        names = table_names(self)
        self.assertLessEqual({"authors", "books"}, names)
        self.assertNotIn("alembic_version", names)


# -- programmatic runs -----------------------------------------------------------------


@per_backend
class AlembicConfigLookup(PerBackend):
    """``alembic_config``: None, a folder or alembic.ini; a clear error when nothing is there."""

    def test_none_folder_and_ini_all_find_the_migrations(self) -> None:
        url = self.url("config")
        settings = {"auto": None, "folder": library.MIGRATIONS, "ini": LIBRARY_INI}
        # From an empty folder: None can only have found Migrate's directory.
        with empty_cwd(), forced_build(), counting_upgrades() as upgrade:
            for label, setting in settings.items():
                with self.subTest(alembic_config=setting):
                    case = make_case(
                        f"Config_{label}", url=url, factory=library.create_app, alembic_config=setting
                    )
                    self.assertPassed(run_case(case))
        # The first migrated LIBRARY_INI's scripts; the others found the same
        # schema (anything else would have migrated the database again).
        self.assertEqual(upgrade.call_count, 1)
        project = upgrade.call_args.args[0]
        self.assertEqual(os.path.abspath(project.config.config_file_name), LIBRARY_INI)

    def test_config_not_found(self) -> None:
        cases = {
            "a path with no alembic.ini": (library.create_app, os.path.join(library.HERE, "no_such_folder")),
            "None, nothing to detect": (bare.create_app, None),
        }
        for label, (factory, setting) in cases.items():
            with self.subTest(label):
                case = make_case(
                    "NoConfig", url=self.url("no_config"), factory=factory, alembic_config=setting
                )
                with empty_cwd(), counting_upgrades() as upgrade:
                    run = run_case(case)
                message = self.setup_error(run, ConfigurationError)
                self.assertIn("alembic_config", message)
                self.assertIn("alembic_config = False", message)
                self.assertEqual(upgrade.call_count, 0)


@per_backend
class MigrateOnce(PerBackend):
    """A database at the same heads is reused by later classes; a new head rebuilds it."""

    def test_second_class_reuses_and_new_head_rebuilds(self) -> None:
        url = self.url("once")
        first, second = (
            make_case(name, url=url, factory=library.create_app, alembic_config=None)
            for name in ("First", "Second")
        )
        newer = make_case(
            "NewerHead",
            url=url,
            factory=library.create_app,
            alembic_config=library.variant("v2_loans"),
            tables=LIBRARY_TABLES | {"loans"},
            expected_heads=V2_HEADS,
        )
        with forced_build(), counting_upgrades() as upgrade:
            run = run_case(first)
            self.assertPassed(run)
            self.assertEqual(upgrade.call_count, 1, run.output)

            reused = provisioner.stats["reuse"]
            run = run_case(second)
            self.assertPassed(run)
            self.assertEqual(upgrade.call_count, 1, "the second class migrated again")
            self.assertEqual(provisioner.stats["reuse"], reused + 1)

            run = run_case(newer)
            self.assertPassed(run)  # loans exists, alembic_version holds the new head
            self.assertEqual(upgrade.call_count, 2, run.output)


@per_backend
class FailingMigrations(PerBackend):
    """A failed migration is one MigrationError naming the revision; the database stays usable."""

    def check_failure(self, variant: str, purpose: str) -> str:
        """Run a class whose migrations fail, then a good one on the same database."""
        folder = library.variant(variant)
        failing = scripts(folder).get_revision("head")
        assert failing is not None
        probe = logging.getLogger(f"tests.test_migrations.{purpose}")  # exists before the run
        url = self.url(purpose)
        tally = ConnectionTally(library.create_app)
        case = make_case(f"Failing_{purpose}", url=url, factory=tally, alembic_config=folder)
        with forced_build():
            run = run_case(case)  # a SystemExit would escape here and fail this test
        message = self.setup_error(run, MigrationError)
        self.assertIn(failing.revision, message)
        self.assertIn(os.path.relpath(failing.path, folder), message)
        # Nothing left half-open: every connection went back, logging is restored,
        # and the next class on the same database migrates it and runs.
        self.assertEqual(tally.open, 0, "connections still checked out after the failure")
        self.assertFalse(probe.disabled)
        after = make_case(f"After_{purpose}", url=url, factory=library.create_app, alembic_config=None)
        with forced_build(), counting_upgrades() as upgrade:
            run = run_case(after)
        self.assertPassed(run)
        self.assertEqual(upgrade.call_count, 1)
        return message

    def test_failed_migration_leaves_no_stale_database(self) -> None:
        """Good class, failing class, good class on one URL: the last is migrated again.

        The failing class dropped and recreated the database the first one
        built; the provisioner must not hand that one out as already migrated.
        """
        url = self.url("stale")
        before, after = (
            make_case(name, url=url, factory=library.create_app, alembic_config=None)
            for name in ("BeforeFailure", "AfterFailure")
        )
        failing = make_case(
            "Failing", url=url, factory=library.create_app, alembic_config=library.variant("failing_sql")
        )
        with forced_build(), counting_upgrades() as upgrade:
            self.assertPassed(run_case(before))
            self.setup_error(run_case(failing), MigrationError)
            run = run_case(after)
        self.assertPassed(run)  # authors, books and alembic_version at head
        self.assertEqual(upgrade.call_count, 3)

    def broken_revision(self, source: str) -> str:
        """A copy of the ``failing_sql`` variant whose head revision file is ``source``.

        Made at run time: a file with a syntax error cannot live in the
        repository (the linters would refuse it).
        """
        folder = tempfile.mkdtemp(prefix="tt-broken-")
        self.addCleanup(shutil.rmtree, folder)
        shutil.copytree(library.variant("failing_sql"), folder, dirs_exist_ok=True)
        ini = os.path.join(folder, "alembic.ini")
        shared = os.path.join(library.HERE, "shared_versions")
        with open(ini) as f:
            text = f.read().replace("%(here)s/../../shared_versions", shared)
        with open(ini, "w") as f:
            f.write(text)
        with open(os.path.join(folder, "versions", "0002_broken_sql.py"), "w") as f:
            f.write(source)
        return folder

    def check_unloadable(self, source: str, error: str, line: int) -> None:
        """A revision file that cannot be imported: one MigrationError naming it, its line and the error."""
        folder = self.broken_revision(source)
        case = make_case(
            f"Unloadable_{error}",
            url=self.url("unloadable"),
            factory=library.create_app,
            alembic_config=folder,
        )
        with forced_build(), counting_upgrades() as upgrade:
            run = run_case(case)
        message = self.setup_error(run, MigrationError)
        self.assertIn(f"{error}: ", message)
        self.assertIn(f"({os.path.join('versions', '0002_broken_sql.py')}, line {line})", message)
        self.assertEqual(upgrade.call_count, 0)
        # Said once, by the library: not through Alembic's loader frames.
        self.assertNotIn(os.path.join("alembic", "script"), run.output)

    def test_revision_with_a_syntax_error(self) -> None:
        source = 'revision = "0002_broken_sql"\ndown_revision = "0001_authors"\n\n\ndef upgrade(:\n    pass\n'
        self.check_unloadable(source, "SyntaxError", 5)

    def test_revision_with_a_failing_import(self) -> None:
        source = 'revision = "0002_broken_sql"\ndown_revision = "0001_authors"\nimport tt_no_such_module\n'
        self.check_unloadable(source, "ModuleNotFoundError", 3)

    def test_failing_sql(self) -> None:
        message = self.check_failure("failing_sql", "failing_sql")
        self.assertIn("authorz", message)  # the database's own complaint

    def test_sys_exit_in_a_migration(self) -> None:
        message = self.check_failure("failing_exit", "failing_exit")
        self.assertIn("sys.exit(1)", message)

    def test_several_heads(self) -> None:
        folder = library.variant("two_heads")
        both = heads(folder)
        self.assertEqual(len(both), 2)
        case = make_case(
            "TwoHeads", url=self.url("two_heads"), factory=library.create_app, alembic_config=folder
        )
        with counting_upgrades() as upgrade:
            message = self.setup_error(run_case(case), MigrationError)
        for head in both:
            self.assertIn(head, message)
        self.assertIn("merge", message)
        self.assertEqual(upgrade.call_count, 0)


@per_backend
class LoggingAfterMigrations(PerBackend):
    """env.py's fileConfig() disables existing loggers and swaps root handlers: all undone."""

    def test_loggers_and_root_handlers_restored(self) -> None:
        probe = logging.getLogger("tests.test_migrations.probe")  # created before setUpClass
        root = logging.getLogger()
        ours = logging.NullHandler()
        root.addHandler(ours)
        self.addCleanup(root.removeHandler, ours)
        handlers, level = list(root.handlers), root.level
        case = make_case("Logging", url=self.url("logging"), factory=library.create_app, alembic_config=None)
        with (
            forced_build(),
            mock.patch("logging.config.fileConfig", wraps=logging.config.fileConfig) as file_config,
        ):
            run = run_case(case)
        self.assertPassed(run)  # includes the app logger's check inside the class
        self.assertGreaterEqual(file_config.call_count, 1, "env.py did not reconfigure logging")
        self.assertFalse(probe.disabled)
        self.assertEqual([id(h) for h in root.handlers], [id(h) for h in handlers])
        self.assertEqual(root.level, level)


class LogFileOpenedBeforeMigrations(RunAssertions):
    """A log file opened before the migrations is still written after them (SQLite file).

    fileConfig() closes every existing handler, not only the root's; restoring
    the handler lists is not enough for a FileHandler opened with mode="w",
    which stays closed and silently drops every later record.
    """

    def test_file_handler_still_writes(self) -> None:
        folder = tempfile.mkdtemp(prefix="tt_mig_log_")
        self.addCleanup(shutil.rmtree, folder, True)
        path = os.path.join(folder, "test.log")
        handler = logging.FileHandler(path, mode="w")
        probe = logging.getLogger("tests.test_migrations.logfile")
        probe.addHandler(handler)
        probe.setLevel(logging.INFO)
        self.addCleanup(handler.close)
        self.addCleanup(probe.removeHandler, handler)
        probe.info("before the migrations")
        case = make_case(
            "LogFile",
            url=bind_url(BACKENDS["sqlite"], "logfile"),
            factory=library.create_app,
            alembic_config=None,
        )
        with forced_build():
            self.assertPassed(run_case(case))
        probe.info("after the migrations")
        handler.flush()
        with open(path, encoding="utf-8") as f:
            written = f.read().splitlines()
        self.assertEqual(written, ["before the migrations", "after the migrations"])


class InMemorySQLite(RunAssertions):
    """``database_url = "sqlite://"``: migrations must reach the app's own connection."""

    def test_flask_migrate_env(self) -> None:
        case = make_case(
            "MemoryFlaskMigrate", url="sqlite://", factory=library.create_app, alembic_config=None
        )
        with forced_build(), counting_upgrades() as upgrade:
            run = run_case(case)
        self.assertPassed(run)  # the class's tests see the tables and alembic_version
        self.assertEqual(upgrade.call_count, 1)

    def test_cookbook_env(self) -> None:
        case = make_case(
            "MemoryCookbook",
            url="sqlite://",
            factory=plain_alembic.create_app,
            alembic_config=plain_alembic.ALEMBIC_INI,
            tables=PLAIN_TABLES,
            expected_heads=PLAIN_HEADS,
        )
        with forced_build(), counting_upgrades() as upgrade:
            run = run_case(case)
        self.assertPassed(run)
        self.assertEqual(upgrade.call_count, 1)

    def test_env_with_its_own_engine_is_a_clear_error(self) -> None:
        case = make_case(
            "MemoryOwnEngine",
            url="sqlite://",
            factory=plain_alembic.create_app,
            alembic_config=plain_alembic.OWN_ENGINE_INI,
            tables=PLAIN_TABLES,
            expected_heads=PLAIN_HEADS,
        )
        with forced_build():
            message = self.setup_error(run_case(case), MigrationError)
        self.assertIn("in-memory", message)
        self.assertIn("config.attributes['connection']", message)


# -- the schema fingerprint --------------------------------------------------------------------

_REVISION = """
import os
revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None
# Importing this file leaves a trace: the fingerprint must not need to.
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imported_" + revision), "w").close()
def upgrade():
    pass
def downgrade():
    pass
"""


class Fingerprint(unittest.TestCase):
    """``AlembicSchema.fingerprint``: file contents of every version location, no revision imported."""

    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="tt_mig_fp_")
        self.addCleanup(shutil.rmtree, self.folder, True)
        os.makedirs(os.path.join(self.folder, "versions"))
        os.makedirs(os.path.join(self.folder, "extra_versions", "nested"))
        with open(os.path.join(self.folder, "env.py"), "w") as f:
            f.write("# not run by these tests\n")
        self.write("versions", "0001_a.py", "a", None)
        self.write("extra_versions", "0002_b.py", "b", "a")

    def write(self, where: str, name: str, rev: str, down: str | tuple[str, ...] | None) -> str:
        path = os.path.join(self.folder, where, name)
        with open(path, "w") as f:
            f.write(_REVISION.format(rev=rev, down=down))
        return path

    def schema(self, recursive: bool = False) -> tt_schema.AlembicSchema:
        ini = os.path.join(self.folder, "alembic.ini")
        with open(ini, "w") as f:
            f.write(
                "[alembic]\nscript_location = %(here)s\npath_separator = os\nversion_path_separator = os\n"
                f"version_locations = %(here)s/versions{os.pathsep}%(here)s/extra_versions\n"
                f"recursive_version_locations = {str(recursive).lower()}\n"
            )
        return tt_schema.AlembicSchema(AlembicProject.from_ini(ini))

    def imported(self) -> list[str]:
        return sorted(
            name for _, _, files in os.walk(self.folder) for name in files if name.startswith("imported_")
        )

    def test_no_revision_is_imported(self) -> None:
        schema = self.schema()
        self.assertEqual(len(schema.fingerprint()), 64)
        self.assertEqual(self.imported(), [])
        # What building does (and the trace works): every revision is imported.
        self.assertEqual(schema.heads(), ("b",))
        self.assertEqual(self.imported(), ["imported_a", "imported_b"])

    def test_every_version_location_counts_and_contents_not_mtimes(self) -> None:
        before = self.schema().fingerprint()
        path = os.path.join(self.folder, "extra_versions", "0002_b.py")
        os.utime(path, (1, 1))
        self.assertEqual(self.schema().fingerprint(), before, "a touched file is the same schema")
        with open(path, "a") as f:
            f.write("# changed\n")
        self.assertNotEqual(self.schema().fingerprint(), before, "a changed file in a second location")

    def test_nested_folders_count_only_when_recursive(self) -> None:
        flat, deep = self.schema().fingerprint(), self.schema(recursive=True).fingerprint()
        self.write("extra_versions/nested", "0003_c.py", "c", "b")
        self.assertEqual(self.schema().fingerprint(), flat, "Alembic ignores nested folders here")
        self.assertNotEqual(self.schema(recursive=True).fingerprint(), deep)

    def test_earlier_heads_are_named_by_the_project_as_it_was(self) -> None:
        """Nearest first, each with the fingerprint the project had at that head: its template's name."""
        later = os.path.join(self.folder, "extra_versions", "0002_b.py")
        os.rename(later, later + ".away")  # the project at head a
        at_a = self.schema().fingerprint()
        os.rename(later + ".away", later)
        at_b = self.schema().fingerprint()
        self.write("versions", "0003_c.py", "c", "b")
        at_c = self.schema().fingerprint()
        self.write("versions", "0004_d.py", "d", "c")
        self.assertEqual(
            self.schema().earlier_fingerprints(),
            [
                tt_schema.Earlier(at_c, "c"),
                tt_schema.Earlier(at_b, "b"),
                tt_schema.Earlier(at_a, "a"),
            ],
        )

    def test_a_head_below_which_a_later_revision_branches_off_is_not_earlier(self) -> None:
        """Migrating on from b would run x after b; a build from base may run it before: only a qualifies."""
        self.write("versions", "0003_x.py", "x", "a")
        self.write("versions", "0004_m.py", "m", ("b", "x"))
        self.assertEqual([earlier.reached for earlier in self.schema().earlier_fingerprints()], ["a"])

    def test_several_heads_refused_when_building(self) -> None:
        self.write("versions", "0003_c.py", "c", "a")  # a second branch from a
        schema = self.schema()
        schema.fingerprint()
        with self.assertRaisesRegex(MigrationError, "several heads"):
            schema.heads()
