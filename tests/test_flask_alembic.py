"""Flask-Alembic: the app's migrations found from the extension and run in-process, on every backend.

Fixture apps: ``tests/apps/greenhouse`` (Flask-SQLAlchemy with a ``sensors``
bind, Flask-Alembic given the metadata of both databases, its revisions in
Flask-Alembic's default ``migrations/`` folder) and ``greenhouse/leaky.py``
(one database, a revision that fails). Nothing points the test classes at the
migrations: ``alembic_config`` is left ``None``.

* ``FlaskAlembicApp_<backend>``: both databases provisioned (migrated once, by
  Flask-Alembic's project) and each test's commits rolled back in both.
* ``FlaskAlembicChecks_<backend>``: ``MigrationsTestCase``'s four checks pass,
  and the models compared are the metadata Flask-Alembic was given.
* ``AssertionsInTransactionalCase_<backend>``: the checks run from a test of
  the provisioned app migrate their own databases, not the test's again
  (Flask-Alembic keeps the engines it migrated per app).
* ``FailingFlaskAlembicRevision_<backend>``: a failing revision is one
  ``MigrationError`` naming the revision, its file and line; the extension is
  left as it was.
* ``LiteFlaskAlembicApp_<backend>``, ``LiteFlaskAlembicChecks_<backend>``: the
  greenhouse's Flask-SQLAlchemy-Lite twin (``greenhouse/lite.py``), whose
  models the library knows only from Flask-Alembic's ``metadatas``: migrated,
  isolated, and checked.
* ``InMemorySQLite``: ``sqlite://`` is migrated in the app's own connection,
  which must stay open.
* Finding the project (``None`` means Flask-Alembic's, a path an
  ``alembic.ini``) and its fingerprint (the revision files' contents) need no
  database.

* ``<Kind>ErrorMessages``: the failing revision's error, for each kind of
  test case, with the other error messages' checks (``tests/test_error_messages.py``):
  no password anywhere, the revision's file and line named.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import typing as t
import unittest
from unittest import mock

import sqlalchemy as sa
from flask import Flask
from flask_alembic import Alembic

from tests import test_error_messages, test_migrations
from tests.admin import database_exists
from tests.apps import greenhouse, leaky_migrations
from tests.apps.greenhouse import leaky
from tests.apps.greenhouse import lite as greenhouse_lite
from tests.matrix import BackendTestCase, BackendUnderTest, OuterCase, bind_url, generate_per_backend, require
from tests.test_migration_checks import check_backends, checks_database
from tests.test_migrations import empty_cwd, forced_build, make_case, run_case
from transactional_testcase import MigrationError
from transactional_testcase import migration_checks as mc
from transactional_testcase import schema as tt_schema
from transactional_testcase.alembic_runner import (
    AlembicProject,
    FlaskAlembicProject,
    MigrationFailure,
    alembic_project,
)
from transactional_testcase.errors import ConfigurationError
from transactional_testcase.extension import FlaskSQLAlchemyLite

if t.TYPE_CHECKING:
    # Mixins below are checked as the classes they end up in; at run time they
    # must not be TestCases themselves, or unittest would collect them.
    _CaseBase = BackendTestCase
    _RunBase = test_migrations.RunAssertions
else:
    _CaseBase = _RunBase = object

HEAD = greenhouse.REVISIONS[-1]
DEFAULT_TABLES = frozenset({"plants", "alembic_version"})
SENSORS_TABLES = frozenset({"sensors", "readings", "alembic_version"})


@contextlib.contextmanager
def counting_migrations() -> t.Iterator[mock.MagicMock]:
    """Wrap ``FlaskAlembicProject.migrate``: ``.call_count`` is how often Flask-Alembic migrated."""
    with mock.patch.object(
        FlaskAlembicProject, "migrate", autospec=True, side_effect=FlaskAlembicProject.migrate
    ) as migrate:
        yield migrate


class _Greenhouse(_CaseBase):
    """The greenhouse app on databases of the class's own: ``<main>_<purpose>`` and its ``_sensors``."""

    backend: t.ClassVar[BackendUnderTest]
    purpose: t.ClassVar[str]

    def __init_subclass__(cls, **kwargs: t.Any) -> None:
        super().__init_subclass__(**kwargs)
        if "backend" in cls.__dict__:  # a generated per-backend class
            cls.binds = {greenhouse.SENSORS: bind_url(cls.backend, f"{cls.purpose}_sensors")}

    @classmethod
    def get_database_url(cls) -> str:
        return bind_url(cls.backend, cls.purpose)

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return greenhouse.create_app(config)


# -- provisioning and isolation --------------------------------------------------------------------


class FlaskAlembicApp(_Greenhouse):
    """``alembic_config = None`` and Flask-Alembic registered by the factory: its migrations, both binds."""

    purpose = "fa_app"
    migrations: t.ClassVar[list[AlembicProject]]

    @classmethod
    def setUpClass(cls) -> None:
        with forced_build(), counting_migrations() as migrate:
            super().setUpClass()
        cls.migrations = [call.args[0] for call in migrate.call_args_list]

    def connection(self, model: type[greenhouse.db.Model]) -> sa.Connection:  # type: ignore[name-defined]
        return self.session.connection(bind_arguments={"mapper": sa.inspect(model)})

    def test_both_databases_migrated_once_by_flask_alembic(self) -> None:
        self.assertEqual(len(self.migrations), 1, "Flask-Alembic's project did not migrate exactly once")
        project = self.migrations[0]
        self.assertIsInstance(project, FlaskAlembicProject)
        self.assertEqual(project.location, greenhouse.MIGRATIONS)
        for model, tables in ((greenhouse.Plant, DEFAULT_TABLES), (greenhouse.Sensor, SENSORS_TABLES)):
            with self.subTest(table=model.__tablename__):
                conn = self.connection(model)
                self.assertEqual(set(sa.inspect(conn).get_table_names()), tables)
                versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
                self.assertEqual(list(versions), [HEAD])

    def test_extension_left_on_the_apps_own_engines(self) -> None:
        self.assertEqual(greenhouse.alembic.engines, {})  # what the app gave it: none

    def _commit_in_both_and_count(self) -> None:
        counted = (greenhouse.Plant, greenhouse.Sensor, greenhouse.Reading)
        self.assertEqual([greenhouse.count(m) for m in counted], [0, 0, 0])
        sensor = greenhouse.Sensor(label="bench 1")
        greenhouse.db.session.add_all([greenhouse.Plant(name="fern", species="Nephrolepis"), sensor])
        greenhouse.db.session.flush()
        greenhouse.db.session.add(greenhouse.Reading(sensor_id=sensor.id, value=21))
        greenhouse.db.session.commit()
        self.assertEqual([greenhouse.count(m) for m in counted], [1, 1, 1])

    def test_commit_is_rolled_back_a(self) -> None:
        self._commit_in_both_and_count()

    def test_commit_is_rolled_back_b(self) -> None:
        self._commit_in_both_and_count()


generate_per_backend(FlaskAlembicApp, BackendTestCase)


# -- the migration checks --------------------------------------------------------------------------


class FlaskAlembicChecks(_Greenhouse):
    """The four checks pass; the models compared are those Flask-Alembic migrates."""

    purpose = "fa_checks"

    @classmethod
    def setUpClass(cls) -> None:
        require(cls.backend.name)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        for url in (cls.get_database_url(), *cls.binds.values()):
            if database_exists(checks_database(url)):
                raise AssertionError(f"{cls.__name__} left {checks_database(url)} behind")

    def test_compares_the_metadata_flask_alembic_was_given(self) -> None:
        # A table only Flask-Alembic's metadata has (db.metadatas does not): a
        # list of metadata for one key, as Flask-Alembic accepts.
        extra = sa.MetaData()
        sa.Table("calibrations", extra, sa.Column("id", sa.Integer, primary_key=True))
        given = [greenhouse.db.metadatas[greenhouse.SENSORS], extra]
        with (
            mock.patch.dict(greenhouse.alembic.metadatas, {greenhouse.SENSORS: given}),
            self.assertRaises(self.failureException) as caught,
        ):
            self.assertModelsMatchMigrations()
        lines = str(caught.exception).splitlines()[1:]
        self.assertEqual([line.strip() for line in lines], ["[bind 'sensors'] add_table 'calibrations'"])


generate_per_backend(FlaskAlembicChecks, mc.MigrationsTestCase, backends=check_backends())


class AssertionsInTransactionalCase(_Greenhouse, mc.MigrationAssertionsMixin):
    """The same app migrated twice onto other databases: provisioned, then checked from a test.

    Flask-Alembic keeps the engines it migrated per app: the checks must
    migrate their own empty databases, not the test's again.
    """

    purpose = "fa_tt_checks"

    def test_checks_pass_and_leave_the_test_database_alone(self) -> None:
        greenhouse.db.session.add(greenhouse.Plant(name="moss"))
        greenhouse.db.session.flush()

        self.assertUpgradeFromBase()
        self.assertModelsMatchMigrations()
        self.assertUpDownRoundTrip()

        names = greenhouse.db.session.scalars(sa.select(greenhouse.Plant.name)).all()
        self.assertEqual(names, ["moss"])
        self.assertEqual(greenhouse.alembic.engines, {})


generate_per_backend(AssertionsInTransactionalCase, BackendTestCase, backends=check_backends())


# -- a failing revision ----------------------------------------------------------------------------


class FailingFlaskAlembicRevision(_RunBase):
    """A revision that raises: one MigrationError naming it, its file and line; the extension restored."""

    backend: t.ClassVar[BackendUnderTest]

    def test_failure_names_revision_file_and_line(self) -> None:
        url = bind_url(self.backend, "fa_failing")
        case = make_case(
            "FailingFlaskAlembic",
            url=url,
            factory=leaky.create_app,
            alembic_config=None,
            tables=frozenset(),
            expected_heads=frozenset(),
        )
        with forced_build(), counting_migrations() as migrate:
            message = self.setup_error(run_case(case), MigrationError)
        self.assertEqual(migrate.call_count, 1)
        self.assertIn(f"RuntimeError: {leaky_migrations.MESSAGE}", message)
        self.assertRegex(
            message, rf"\(revision {leaky_migrations.LEAKING_REVISION}, 0001_leaks_url\.py, line \d+\)"
        )
        self.assertEqual(leaky.alembic.engines, {}, "the engines handed to Flask-Alembic were left in it")


generate_per_backend(FailingFlaskAlembicRevision, test_migrations.RunAssertions, OuterCase)


class InMemorySQLite(test_migrations.RunAssertions):
    """``database_url = "sqlite://"``: the database lives in the app's one connection, which must survive."""

    def test_migrated_in_the_apps_own_connection(self) -> None:
        case = make_case(
            "MemoryFlaskAlembic",
            url="sqlite://",
            factory=greenhouse.create_app,
            alembic_config=None,
            tables=DEFAULT_TABLES,
            expected_heads=frozenset({HEAD}),
        )
        with forced_build(), counting_migrations() as migrate:
            run = run_case(case)
        self.assertPassed(run)  # the class's tests see plants and alembic_version at head
        self.assertEqual(migrate.call_count, 1)


# -- finding the project, and its fingerprint (no database) ---------------------------------------

_REVISION = """
import os
revision = {rev!r}
down_revision = {down!r}
# Importing this file leaves a trace: the fingerprint must not need to.
open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "imported_" + revision), "w").close()
def upgrade():
    pass
def downgrade():
    pass
"""


class FlaskAlembicProjectLookup(unittest.TestCase):
    def setUp(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="tt_fa_")
        self.addCleanup(shutil.rmtree, self.folder, True)

    def app(self, **alembic: t.Any) -> Flask:
        app = Flask(__name__)
        app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", ALEMBIC=alembic)
        greenhouse.db.init_app(app)
        Alembic(run_mkdir=False).init_app(app)
        return app

    def write(self, name: str, rev: str, down: str | None) -> str:
        path = os.path.join(self.folder, name)
        with open(path, "w") as f:
            f.write(_REVISION.format(rev=rev, down=down))
        return path

    def test_none_means_flask_alembic_even_beside_an_alembic_ini(self) -> None:
        with empty_cwd() as cwd:
            with open(os.path.join(cwd, "alembic.ini"), "w") as f:
                f.write("[alembic]\nscript_location = elsewhere\n")
            project = alembic_project(None, greenhouse.create_app())
        self.assertIsInstance(project, FlaskAlembicProject)
        self.assertEqual(project.location, greenhouse.MIGRATIONS)
        self.assertIs(alembic_project(None, greenhouse.create_app()), project, "loaded once per process")

    def test_a_path_still_means_alembic_ini(self) -> None:
        with self.assertRaisesRegex(ConfigurationError, "no alembic.ini found there"):
            alembic_project(greenhouse.MIGRATIONS, greenhouse.create_app())

    def test_flask_alembic_older_than_3_1_is_refused(self) -> None:
        app = self.app(script_location=self.folder)
        del app.extensions["alembic"].engines  # as Flask-Alembic 3.0's extension: it has none
        with self.assertRaisesRegex(ConfigurationError, re.escape("pip install 'Flask-Alembic>=3.1'")):
            alembic_project(None, app)

    def test_revision_that_cannot_be_imported_names_its_file_and_line(self) -> None:
        with open(os.path.join(self.folder, "0001_a.py"), "w") as f:
            f.write('revision = "a"\ndown_revision = None\n\n\ndef upgrade(:\n    pass\n')
        project = FlaskAlembicProject.of(self.app(script_location=self.folder))
        with self.assertRaisesRegex(
            MigrationFailure, r"^cannot load the revisions in .*: SyntaxError: .*\(0001_a\.py, line 5\)$"
        ):
            project.heads()

    def test_fingerprint_follows_the_revision_files_without_importing_them(self) -> None:
        first = self.write("0001_a.py", "a", None)
        extra = os.path.join(self.folder, "more")
        os.makedirs(extra)
        app = self.app(script_location=self.folder, version_locations=[extra])

        def fingerprint() -> str:
            return tt_schema.AlembicSchema(FlaskAlembicProject.of(app)).fingerprint()

        before = fingerprint()
        self.assertEqual(len(before), 64)
        os.utime(first, (1, 1))
        self.assertEqual(fingerprint(), before, "a touched file is the same schema")
        with open(first, "a") as f:
            f.write("# changed\n")
        changed = fingerprint()
        self.assertNotEqual(changed, before, "a changed revision file")
        with open(os.path.join(extra, "0002_b.py"), "w") as f:
            f.write(_REVISION.format(rev="b", down="a"))
        self.assertNotEqual(fingerprint(), changed, "a revision in another version location")
        self.assertEqual(sorted(n for n in os.listdir(self.folder) if n.startswith("imported_")), [])
        # What migrating does (and the trace works): every revision is imported.
        self.assertEqual(FlaskAlembicProject.of(app).heads(), ("b",))
        self.assertIn("imported_a", os.listdir(self.folder))


# -- Flask-SQLAlchemy-Lite with Flask-Alembic --------------------------------------------------------


class _LiteGreenhouse(_Greenhouse):
    """The greenhouse's Lite twin: its models known to the library only through Flask-Alembic."""

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return greenhouse_lite.create_app(config)


class LiteFlaskAlembicApp(_LiteGreenhouse):
    """Both engines migrated by Flask-Alembic; each test's commits rolled back in both."""

    purpose = "fa_lite_app"

    def test_a_migrated_and_isolated(self) -> None:
        self.assertIsInstance(self._tt_extension(), FlaskSQLAlchemyLite)
        for engine, tables in (
            (greenhouse_lite.db.engine, DEFAULT_TABLES),
            (greenhouse_lite.db.get_engine(greenhouse.SENSORS), SENSORS_TABLES),
        ):
            with self.subTest(engine=engine.url.database), engine.connect() as conn:
                self.assertEqual(set(sa.inspect(conn).get_table_names()), tables)
                self.assertEqual(
                    conn.scalars(sa.text("SELECT version_num FROM alembic_version")).all(), [HEAD]
                )
        sensor = greenhouse_lite.Sensor(label="bench 1")
        greenhouse_lite.db.session.add_all([greenhouse_lite.Plant(name="fern"), sensor])
        greenhouse_lite.db.session.flush()
        greenhouse_lite.db.session.add(greenhouse_lite.Reading(sensor_id=sensor.id, value=21))
        greenhouse_lite.db.session.commit()
        counted = (greenhouse_lite.Plant, greenhouse_lite.Sensor, greenhouse_lite.Reading)
        self.assertEqual([greenhouse_lite.count(m) for m in counted], [1, 1, 1])

    def test_b_nothing_left(self) -> None:
        counted = (greenhouse_lite.Plant, greenhouse_lite.Sensor, greenhouse_lite.Reading)
        self.assertEqual([greenhouse_lite.count(m) for m in counted], [0, 0, 0])


generate_per_backend(LiteFlaskAlembicApp, BackendTestCase)


class LiteFlaskAlembicChecks(_LiteGreenhouse):
    """The four checks pass, comparing the metadata Flask-Alembic was given (no ``metadata`` setting)."""

    purpose = "fa_lite_checks"

    @classmethod
    def setUpClass(cls) -> None:
        require(cls.backend.name)
        super().setUpClass()

    def test_a_model_missing_from_the_migrations_is_found(self) -> None:
        extra = sa.MetaData()
        sa.Table("calibrations", extra, sa.Column("id", sa.Integer, primary_key=True))
        given = [greenhouse_lite.SensorBase.metadata, extra]
        with (
            mock.patch.dict(greenhouse_lite.alembic.metadatas, {greenhouse.SENSORS: given}),
            self.assertRaises(self.failureException) as caught,
        ):
            self.assertModelsMatchMigrations()
        lines = str(caught.exception).splitlines()[1:]
        self.assertEqual([line.strip() for line in lines], ["[bind 'sensors'] add_table 'calibrations'"])


generate_per_backend(LiteFlaskAlembicChecks, mc.MigrationsTestCase, backends=check_backends())


test_error_messages.generate(("failing_flask_alembic_migration",), globals())


if __name__ == "__main__":
    unittest.main()
