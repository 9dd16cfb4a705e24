"""The migration checks: ``MigrationsTestCase`` and ``MigrationAssertionsMixin``.

Fixtures live in ``tests/apps/checks_blog``. Correct migrations must pass all
four checks on SQLite, PostgreSQL (psycopg2) and MariaDB (PyMySQL); each
broken variant must fail exactly the check that catches it, with a message
naming what broke. The failing variants run as inner ``MigrationsTestCase``
subclasses through ``unittest.TextTestRunner``, so what a user would see in
their own report is what is asserted. Every ``_migrations`` database a check
creates must be gone afterwards.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import typing as t
import unittest

import sqlalchemy as sa
from flask import Flask

from tests.admin import database_exists
from tests.apps import checks_blog, plain_alembic
from tests.apps.checks_blog import drift, multidb
from tests.matrix import (
    BACKENDS,
    BackendTestCase,
    BackendUnderTest,
    OuterCase,
    bind_url,
    generate_per_backend,
    require,
    selected_backends,
)
from tests.running import method_name, run_with_runner
from transactional_testcase import ConfigurationError, UnsafeDatabaseError
from transactional_testcase import migration_checks as mc
from transactional_testcase.provisioning import worker_url

#: The backends the migration checks are exercised on (TT_TEST_BACKENDS narrows them).
CHECK_BACKENDS = ("sqlite", "psycopg2", "pymysql")

#: Exists before any check runs: env.py's fileConfig() must not disable it.
LOGGER = logging.getLogger("tests.test_migration_checks")


def check_backends() -> list[BackendUnderTest]:
    return [b for b in selected_backends() if b.name in CHECK_BACKENDS]


def per_backend(base: type) -> t.Callable[[type], type]:
    """Decorator: create ``<Mixin>_<backend>`` classes of ``(mixin, base)`` in the mixin's module.

    The mixin itself is no TestCase, so only the generated classes are collected.
    """

    return lambda mixin: generate_per_backend(mixin, base, backends=check_backends())


def checks_database(url: str) -> sa.URL:
    """The ``_migrations`` database a MigrationsTestCase with ``database_url = url`` uses."""
    return mc.migrations_url(worker_url(url))


class InnerRun(t.NamedTuple):
    result: unittest.TestResult
    #: Failure message per failed test method.
    failures: dict[str, str]
    output: str


def run_case(case: type[unittest.TestCase], names: t.Sequence[str] = ()) -> InnerRun:
    """Run ``case`` (only tests ``names`` if given) as a user's runner would.

    Returns the result and the failure message of each failed test method.
    """
    result, output = run_with_runner(case, verbosity=0, names=names)
    failures = {}
    for test, traceback in result.failures:
        _, _, message = traceback.rpartition("AssertionError: ")
        failures[method_name(test)] = message.strip()
    return InnerRun(result, failures, output)


def checks_case(
    name: str,
    database_url: str,
    alembic_config: str | bool,
    create_app: t.Callable[[dict[str, t.Any]], Flask],
    **attrs: t.Any,
) -> type[mc.MigrationsTestCase]:
    """A user's MigrationsTestCase subclass, built for one inner run."""

    def factory(cls: type, config: dict[str, t.Any]) -> Flask:
        return create_app(config)

    return type(
        name,
        (mc.MigrationsTestCase,),
        {
            "database_url": database_url,
            "alembic_config": alembic_config,
            "create_app": classmethod(factory),
            **attrs,
        },
    )


# -- correct migrations: the four inherited tests pass ------------------------------


class _ChecksOnBackend:
    """Skips an unavailable backend; after the class, its databases must be gone."""

    backend: t.ClassVar[BackendUnderTest]
    fixture: t.ClassVar[str]

    @classmethod
    def get_database_url(cls) -> str:
        return bind_url(cls.backend, f"checks_{cls.fixture}")

    @classmethod
    def setUpClass(cls) -> None:
        require(cls.backend.name)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        url = checks_database(cls.get_database_url())
        if database_exists(url):
            raise AssertionError(f"{cls.__name__} left {url} behind")


@per_backend(mc.MigrationsTestCase)
class GoodMigrations(_ChecksOnBackend):
    """Three revisions that match the models, run by a Flask-Migrate-style env.py."""

    fixture = "good"
    alembic_config = checks_blog.GOOD

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return checks_blog.create_app(config)

    def test_app_is_pointed_at_the_migrations_database(self) -> None:
        url = sa.make_url(self.app.config["SQLALCHEMY_DATABASE_URI"])
        self.assertEqual(url, checks_database(self.get_database_url()))
        self.assertIn("_migrations", url.database or "")

    def test_env_py_logging_config_leaves_existing_loggers_alone(self) -> None:
        handlers = list(logging.getLogger().handlers)
        self.assertUpgradeFromBase()
        self.assertFalse(LOGGER.disabled, "env.py's fileConfig() disabled an existing logger")
        self.assertEqual(logging.getLogger().handlers, handlers)


@per_backend(mc.MigrationsTestCase)
class PlainEnvMigrations(_ChecksOnBackend):
    """The same revisions through a plain env.py sharing config.attributes['connection']."""

    fixture = "plain"
    alembic_config = checks_blog.PLAIN

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return checks_blog.create_app(config, migrate=False)

    def test_plain_env_needs_no_flask_migrate(self) -> None:
        self.assertUpDownRoundTrip()
        self.assertNotIn("migrate", self.app.extensions)


@per_backend(mc.MigrationsTestCase)
class OwnVersionTableMigrations(_ChecksOnBackend):
    """Revisions kept in a version table env.py names (``widgets_version``): the four checks pass.

    Upgrading from base looks for that table, not ``alembic_version``, and
    autogenerate leaves it out of the comparison with the models.
    """

    fixture = "own_version"
    alembic_config = plain_alembic.OWN_VERSION_TABLE_INI

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return plain_alembic.create_app(config)

    def test_the_named_table_holds_the_revision(self) -> None:
        migrations = self.get_migrations()
        with self._tt_databases() as databases:
            tables = self._tt_upgrade_from_base(migrations, databases)
            with databases.engines[None].connect() as conn:
                names = set(sa.inspect(conn).get_table_names())
                version = conn.execute(sa.text("SELECT version_num FROM widgets_version")).scalars().all()
        self.assertEqual([table.name for table in tables], ["widgets_version"])
        self.assertIn("widgets_version", names)
        self.assertNotIn("alembic_version", names)
        self.assertEqual(version, list(migrations.heads()))


@per_backend(mc.MigrationsTestCase)
class MergedMigrations(_ChecksOnBackend):
    """A branch merged back by a merge revision: one head, and it round-trips."""

    fixture = "merged"
    alembic_config = checks_blog.MERGED

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return checks_blog.create_app(config)


# -- the assertions inside a TransactionalTestCase ---------------------------------


class _TransactionalOnBackend:
    """A database of this module's own (other modules use the backend's default name)."""

    backend: t.ClassVar[BackendUnderTest]

    @classmethod
    def get_database_url(cls) -> str:
        return bind_url(cls.backend, "checks_tt")


@per_backend(BackendTestCase)
class AssertionsInTransactionalCase(_TransactionalOnBackend, mc.MigrationAssertionsMixin):
    """The mixin on a TransactionalTestCase: checks run beside the test's transaction."""

    alembic_config = checks_blog.GOOD

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return checks_blog.create_app(config)

    def test_checks_pass_and_leave_the_test_database_alone(self) -> None:
        self.session.add(checks_blog.User(username="ada", email="ada@example.com"))
        self.session.flush()

        self.assertSingleHead()
        self.assertUpgradeFromBase()
        self.assertModelsMatchMigrations()
        self.assertUpDownRoundTrip()

        # The test's own transaction and database are as they were.
        names = self.session.scalars(sa.select(checks_blog.User.username)).all()
        self.assertEqual(names, ["ada"])
        with self.app.app_context():
            test_db = self.db.engines[None].url
            scratch = mc.migrations_url(test_db)
        self.assertNotEqual(scratch, test_db)
        self.assertFalse(database_exists(scratch), f"{scratch} was not dropped after the checks")


@per_backend(BackendTestCase)
class DriftInTransactionalCase(_TransactionalOnBackend, mc.MigrationAssertionsMixin):
    """Models that drifted from the migrations, checked from inside a test."""

    alembic_config = checks_blog.GOOD

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return drift.create_app(config)

    def test_assertion_names_every_difference(self) -> None:
        with self.assertRaises(self.failureException) as caught:
            self.assertNoPendingMigrations(msg="write a migration")
        message = str(caught.exception)
        self.assertTrue(message.endswith(" : write a migration"), message)  # unittest's longMessage
        lines = message.removesuffix(" : write a migration").splitlines()[1:]
        self.assertEqual(
            sorted(line.strip() for line in lines),
            [
                "add_column 'posts.summary' VARCHAR(300)",
                "add_table 'tags'",
                "modify_nullable 'users.email' False -> True",
                "modify_type 'posts.title' VARCHAR(200) -> VARCHAR(250)",
            ],
        )


# -- broken migrations: inner runs fail exactly the check that catches them -----------


@per_backend(OuterCase)
class FailingChecks:
    """Each broken fixture, run as a user's MigrationsTestCase subclass."""

    backend: t.ClassVar[BackendUnderTest]

    def run_checks(
        self,
        fixture: str,
        alembic_config: str,
        create_app: t.Callable[[dict[str, t.Any]], Flask] = checks_blog.create_app,
        fail: t.Sequence[str] = (),
        focus: t.Sequence[str] = (),
        **attrs: t.Any,
    ) -> dict[str, str]:
        """Run the checks on ``alembic_config``: exactly the tests ``fail`` must fail.

        On SQLite all four run, which shows the other checks pass; on the
        servers only ``focus`` (default: ``fail``; all four if both are empty),
        since each fresh server database costs a DROP DATABASE. Returns the
        failure messages.
        """
        names: t.Sequence[str] = () if self.backend.name == "sqlite" else (focus or fail)
        url = bind_url(self.backend, f"checks_{fixture}")
        case = checks_case(f"{fixture}_checks", url, alembic_config, create_app, **attrs)
        run = run_case(case, names)
        self.assertEqual([str(error) for _, error in run.result.errors], [], "the checks raised errors")
        self.assertEqual(run.result.testsRun, len(names) or 4, run.output)
        self.assertEqual(sorted(run.failures), sorted(fail), run.output)
        self.assertFalse(database_exists(checks_database(url)), "the checks left their database")
        return run.failures

    def test_drift_fails_models_match_listing_each_difference(self) -> None:
        failures = self.run_checks(
            "drift", checks_blog.GOOD, drift.create_app, fail=["test_models_match_migrations"]
        )
        message = failures["test_models_match_migrations"]
        for line in (
            "add_table 'tags'",
            "add_column 'posts.summary' VARCHAR(300)",
            "modify_type 'posts.title' VARCHAR(200) -> VARCHAR(250)",
            "modify_nullable 'users.email' False -> True",
        ):
            self.assertIn("\n  " + line, message)
        self.assertNotIn("modify_default", message)  # compare_server_default is off

    def test_server_defaults_are_compared_when_asked(self) -> None:
        failures = self.run_checks(
            "drift_defaults",
            checks_blog.GOOD,
            drift.create_app,
            fail=["test_models_match_migrations"],
            focus=["test_models_match_migrations"],
            compare_server_default=True,
        )
        self.assertIn("\n  modify_default 'posts.views' '0' -> '1'", failures["test_models_match_migrations"])

    def test_two_heads_fail_single_head_naming_both(self) -> None:
        # A branched history still upgrades and round-trips: only the head count fails.
        failures = self.run_checks(
            "two_heads",
            checks_blog.TWO_HEADS,
            fail=["test_single_head"],
            focus=["test_single_head", "test_up_down_round_trip"],
        )
        message = failures["test_single_head"]
        self.assertIn("2 heads", message)
        self.assertIn("0003_post_views (", message)
        self.assertIn(
            "0004_lowercase_emails (versions/0004_lowercase_emails.py, revises 0002_posts)", message
        )
        self.assertIn("merge heads", message)

    def test_broken_downgrade_fails_round_trip_naming_it(self) -> None:
        failures = self.run_checks(
            "broken_downgrade", checks_blog.BROKEN_DOWNGRADE, fail=["test_up_down_round_trip"]
        )
        message = failures["test_up_down_round_trip"]
        self.assertTrue(
            message.startswith(
                "revision 0004_reset_views (versions/0004_reset_views.py) does not round-trip: "
                "downgrading it to 0003_post_views failed: "
            ),
            message,
        )
        self.assertIn("post_archive", message)  # the driver's error
        self.assertIn("versions/0004_reset_views.py, line ", message)

    def test_leaky_downgrade_fails_round_trip_on_upgrading_again(self) -> None:
        failures = self.run_checks(
            "leaky_downgrade", checks_blog.LEAKY_DOWNGRADE, fail=["test_up_down_round_trip"]
        )
        message = failures["test_up_down_round_trip"]
        self.assertIn(
            "revision 0004_admin_user (versions/0004_admin_user.py) does not round-trip: "
            "upgrading it again after its downgrade failed: IntegrityError",
            message,
        )

    def test_leaky_downgrade_can_be_declared_irreversible(self) -> None:
        failures = self.run_checks(
            "irreversible",
            checks_blog.LEAKY_DOWNGRADE,
            focus=["test_up_down_round_trip"],
            irreversible_revisions=["0004_admin_user"],
        )
        self.assertEqual(failures, {})

    def test_broken_upgrade_fails_upgrade_naming_it(self) -> None:
        # Head cannot be reached: nothing to compare, nothing to round-trip either.
        failures = self.run_checks(
            "broken_upgrade",
            checks_blog.BROKEN_UPGRADE,
            fail=["test_models_match_migrations", "test_up_down_round_trip", "test_upgrade_from_base"],
        )
        message = failures["test_upgrade_from_base"]
        self.assertIn("to head failed: ", message)
        self.assertIn("slug", message)  # the driver's error
        self.assertIn("(revision 0004_slug_index, versions/0004_slug_index.py, line ", message)
        self.assertIn(
            "upgrading to revision 0004_slug_index (versions/0004_slug_index.py) failed",
            failures["test_up_down_round_trip"],
        )

    def test_every_bind_migrated_by_env_is_compared(self) -> None:
        audit = bind_url(self.backend, "checks_multidb_audit")
        good = self.run_checks("multidb", multidb.MULTIDB, multidb.build(), binds={"audit": audit})
        self.assertEqual(good, {})
        self.assertFalse(database_exists(checks_database(audit)), "the audit bind's copy was left")

        failures = self.run_checks(
            "multidb_drift",
            multidb.MULTIDB,
            multidb.build(drift=True),
            fail=["test_models_match_migrations"],
            binds={"audit": audit},
        )
        lines = failures["test_models_match_migrations"].splitlines()[1:]
        self.assertEqual(
            [line.strip() for line in lines], ["[bind 'audit'] add_column 'audit_entries.detail' TEXT"]
        )


# -- configuration errors and helpers (no server needed) --------------------------------


class MigrationsTestCaseConfiguration(unittest.TestCase):
    def test_base_class_runs_nothing(self) -> None:
        run = run_case(mc.MigrationsTestCase)
        # Collected as is (imported into a test module), it has no test: no skip either.
        self.assertEqual((run.result.testsRun, run.result.failures, run.result.errors), (0, [], []))
        self.assertEqual(run.result.skipped, [])

    def test_refuses_a_database_whose_name_lacks_test(self) -> None:
        folder = tempfile.mkdtemp(prefix="tt_checks_")
        self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
        precious = os.path.join(folder, "production_migrations.db")
        with open(precious, "wb") as f:
            f.write(b"precious")
        case = checks_case(
            "unsafe",
            "sqlite:///" + os.path.join(folder, "production.db"),
            checks_blog.GOOD,
            checks_blog.create_app,
        )
        run = run_case(case)
        self.assertEqual(len(run.result.errors), 1, run.output)
        self.assertIn(UnsafeDatabaseError.__name__, run.result.errors[0][1])
        self.assertIn("does not contain 'test'", run.result.errors[0][1])
        with open(precious, "rb") as f:
            self.assertEqual(f.read(), b"precious")

    def test_alembic_config_false_is_a_configuration_error(self) -> None:
        case = checks_case(
            "create_all",
            bind_url(BACKENDS["sqlite"], "checks_false"),
            False,
            checks_blog.create_app,
        )
        run = run_case(case)
        self.assertEqual(len(run.result.errors), 1, run.output)
        self.assertIn(ConfigurationError.__name__, run.result.errors[0][1])
        self.assertIn("alembic_config = False", run.result.errors[0][1])

    def test_migrations_url_appends_the_suffix_once(self) -> None:
        pg = sa.make_url("postgresql+psycopg2://u:secret@db/myapp_test")
        self.assertEqual(mc.migrations_url(pg).database, "myapp_test_migrations")
        self.assertEqual(mc.migrations_url(mc.migrations_url(pg)), mc.migrations_url(pg))
        self.assertEqual(mc.migrations_url(pg).password, "secret")
        lite = mc.migrations_url("sqlite:////tmp/x/test.db")
        self.assertEqual(lite.database, "/tmp/x/test_migrations.db")
        memory = mc.migrations_url("sqlite://", "audit")
        self.assertTrue(os.path.isabs(memory.database or ""))
        self.assertTrue((memory.database or "").endswith("_migrations.db"))
        self.assertIn("audit", memory.database or "")

    def test_revision_outside_the_script_folder_is_named(self) -> None:
        url = bind_url(BACKENDS["sqlite"], "checks_external")
        case = checks_case("external", url, checks_blog.EXTERNAL_VERSIONS, checks_blog.create_app)
        run = run_case(case, ["test_upgrade_from_base"])
        self.assertEqual(run.result.errors, [])
        message = run.failures["test_upgrade_from_base"]
        where = os.path.join(checks_blog.BROKEN_UPGRADE, "versions", "0004_slug_index.py")
        self.assertIn(f"(revision 0004_slug_index, {where}, line ", message)

    def test_describe_difference_renders_one_line_per_operation(self) -> None:
        metadata = sa.MetaData()
        users = sa.Table(
            "users",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("email", sa.String(20)),
        )
        posts = sa.Table(
            "posts",
            metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("author_id", sa.Integer),
            sa.ForeignKeyConstraint(["author_id"], ["users.id"], name="fk_posts_users"),
            sa.UniqueConstraint("author_id", name="uq_posts_author"),
        )
        index = sa.Index("ix_users_email", users.c.email, unique=True)
        (fk,) = posts.foreign_key_constraints
        (unique,) = [c for c in posts.constraints if isinstance(c, sa.UniqueConstraint)]
        diffs = [
            ("add_index", index),
            ("remove_fk", fk),
            ("add_constraint", unique),
            [
                ("modify_default", None, "posts", "views", {}, None, sa.DefaultClause(sa.text("0"))),
                ("modify_nullable", None, "posts", "views", {}, True, False),
            ],
            ("remove_column", "audit", "log", sa.Column("at", sa.DateTime())),
        ]
        dialect = sa.create_engine("sqlite://").dialect
        lines = [line for diff in diffs for line in mc.describe_difference(diff, dialect)]
        self.assertEqual(
            lines,
            [
                "add_index 'ix_users_email' on 'users' (email) UNIQUE",
                "remove_fk 'fk_posts_users' on 'posts' (author_id) -> users.id",
                "add_constraint 'uq_posts_author' on 'posts' UniqueConstraint (author_id)",
                "modify_default 'posts.views' None -> '0'",
                "modify_nullable 'posts.views' True -> False",
                "remove_column 'audit.log.at' DATETIME",
            ],
        )


class MigrationErrorNamesRevisionsOutsideTheScriptFolder(unittest.TestCase):
    """Library bug (fails until fixed): TransactionalTestCase's MigrationError.

    ``AlembicProject.revision_frame`` names the failing revision only when its
    file lies under the script folder (``filename.startswith(location)``), so a
    revision reached through ``version_locations`` elsewhere goes unnamed. The
    migration checks name it (``AlembicProject.revision_frame`` matches the frame
    against the revision map's own paths).
    """

    def test_migration_error_names_the_failing_revision(self) -> None:
        from transactional_testcase import TransactionalTestCase

        def factory(cls: type, config: dict[str, t.Any]) -> Flask:
            return checks_blog.create_app(config)

        case = type(
            "ExternalVersions",
            (TransactionalTestCase,),
            {
                "alembic_config": checks_blog.EXTERNAL_VERSIONS,
                "database_url": bind_url(BACKENDS["sqlite"], "checks_external_tt"),
                "create_app": classmethod(factory),
                "test_nothing": lambda self: None,
            },
        )
        run = run_case(case)
        self.assertEqual(len(run.result.errors), 1, run.output)
        error = run.result.errors[0][1]
        self.assertIn("MigrationError", error)
        self.assertIn("(revision 0004_slug_index, ", error)


class ImportingAddsNothing(unittest.TestCase):
    """``from transactional_testcase import MigrationsTestCase`` in a test module adds no test to a run."""

    MODULE = textwrap.dedent(
        """
        import unittest

        from transactional_testcase import MigrationsTestCase, TransactionalTestCase


        class Plain(unittest.TestCase):
            def test_plain(self):
                pass
        """
    )

    def run_in(self, *command: str) -> str:
        folder = tempfile.mkdtemp(prefix="tt-import-")
        self.addCleanup(shutil.rmtree, folder)
        with open(os.path.join(folder, "test_module.py"), "w") as f:
            f.write(self.MODULE)
        proc = subprocess.run(
            [sys.executable, "-m", *command],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(proc.returncode, 0, proc.stdout + proc.stderr)
        return proc.stdout + proc.stderr

    def test_unittest_runs_one_test_and_skips_nothing(self) -> None:
        output = self.run_in("unittest", "-v", "test_module")
        self.assertIn("Ran 1 test", output)
        self.assertNotIn("skip", output.lower())

    def test_pytest_collects_one_test(self) -> None:
        output = self.run_in("pytest", "-p", "no:cacheprovider", "test_module.py")
        self.assertRegex(output, r"\b1 passed\b")
        self.assertNotIn("skipped", output)

    def test_nose2_runs_one_test(self) -> None:
        output = self.run_in("nose2", "-v", "test_module")
        self.assertIn("Ran 1 test", output)
        self.assertNotIn("skip", output.lower())

    def test_a_subclass_gets_the_four_checks(self) -> None:
        from transactional_testcase import MigrationsTestCase

        class Checks(MigrationsTestCase):
            pass

        class Narrower(Checks):
            test_up_down_round_trip = None  # type: ignore[assignment]  # a subclass may drop one

        names = unittest.TestLoader().getTestCaseNames
        self.assertEqual(names(MigrationsTestCase), [])
        self.assertEqual(
            names(Checks),
            [
                "test_models_match_migrations",
                "test_single_head",
                "test_up_down_round_trip",
                "test_upgrade_from_base",
            ],
        )
        self.assertEqual(
            names(Narrower), ["test_models_match_migrations", "test_single_head", "test_upgrade_from_base"]
        )
