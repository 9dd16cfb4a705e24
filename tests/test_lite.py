"""Flask-SQLAlchemy-Lite apps: migrated, checked, committing, built at import, on every backend.

The per-test isolation of a Lite app is proved where Flask-SQLAlchemy's is:
:mod:`tests.test_isolation_lite` and :mod:`tests.test_state_machine_lite` run
those suites again on a Lite twin of the shop app. This module covers the
rest: provisioning through plain Alembic, :class:`MigrationsTestCase` with
``metadata``, a committing case and a live server, a module-level app's
engines pointed at the test databases, an app found through ``FLASK_APP``,
what the handed ``config`` holds, the engines Lite's
``session_options["binds"]`` gets wrong for a second app, and the errors that
name ``metadata`` when the models are needed and unknown.
"""

from __future__ import annotations

import os
import tempfile
import typing as t
import unittest
from unittest import mock

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy_lite import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.admin import database_exists
from tests.apps import lite_widgets, plain_alembic, shop_lite
from tests.matrix import BackendTestCase, BackendUnderTest, OuterCase, bind_url, generate_per_backend
from tests.running import run_case, transcript
from tests.test_committing import BackendChecks, http
from tests.test_migration_checks import _ChecksOnBackend, checks_database
from transactional_testcase import (
    CommittingTestCase,
    ConfigurationError,
    LiveServerTestCase,
    MigrationsTestCase,
    TransactionalTestCase,
    UnsafeDatabaseError,
)
from transactional_testcase.alembic_runner import AlembicProject
from transactional_testcase.extension import FlaskSQLAlchemyLite, extension_of

Widget = lite_widgets.Widget
db = lite_widgets.db


def on_backends(*bases: type) -> t.Callable[[type], type]:
    return lambda mixin: generate_per_backend(mixin, *bases)


class _LiteWidgets:
    backend: t.ClassVar[BackendUnderTest]
    alembic_config = plain_alembic.ALEMBIC_INI
    metadata = lite_widgets.Base.metadata

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return lite_widgets.create_app(config)


@on_backends(BackendTestCase)
class LiteMigrated(_LiteWidgets):
    """Provisioned by plain Alembic; ``db.session``, ``db.engine`` and requests roll back."""

    @classmethod
    def get_database_url(cls) -> str:
        return bind_url(cls.backend, "lite")

    def test_a_migrated_to_head(self) -> None:
        self.assertIsInstance(self._tt_extension(), FlaskSQLAlchemyLite)
        with db.engine.connect() as conn:
            reached = conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        self.assertEqual((reached,), AlembicProject.from_ini(plain_alembic.ALEMBIC_INI).heads())
        self.assertEqual(
            set(sa.inspect(db.engine).get_table_names()), {"alembic_version", "widgets", "parts"}
        )
        self.assertEqual(db.engine.url.database, sa.make_url(self.get_database_url()).database)

    def test_b_session_commit_and_request_and_engine_write(self) -> None:
        db.session.add(Widget(name="session"))
        db.session.commit()
        response = self.client.post("/widgets", json={"name": "request"})
        self.assertEqual(response.get_json(), {"count": 2})
        with db.engine.begin() as conn:
            conn.execute(sa.insert(Widget).values(name="engine"))
        self.assertEqual(sorted(db.session.scalars(sa.select(Widget.name))), ["engine", "request", "session"])
        self.assertIs(self.session, db.session)

    def test_c_nothing_is_left(self) -> None:
        self.assertEqual(lite_widgets.count(Widget), 0)


@on_backends(MigrationsTestCase)
class LiteMigrationChecks(_ChecksOnBackend, _LiteWidgets):
    """The four checks pass on a Lite app whose models are named by ``metadata``."""

    fixture = "lite"


@on_backends(BackendChecks, CommittingTestCase)
class LiteCommitting(_LiteWidgets):
    """Commits are real and the tables are emptied after each test."""

    database = "committing_lite"

    def test_a_commits_for_real(self) -> None:
        db.session.add(Widget(name="kept until the test ends"))
        db.session.commit()
        with self.app.app_context():  # another session sees it: the commit was real
            self.assertEqual(lite_widgets.count(Widget), 1)

    def test_b_starts_empty(self) -> None:
        self.assertEqual(lite_widgets.count(Widget), 0)


@on_backends(BackendChecks, LiveServerTestCase)
class LiteLiveServer(_LiteWidgets):
    """A live server of a Lite app: its requests and the test see each other's commits."""

    database = "committing_lite_live"

    def test_a_a_request_commits_and_the_test_sees_it(self) -> None:
        live_server_url: str = self.live_server_url  # type: ignore[attr-defined]
        self.assertEqual(http(live_server_url + "/widgets", {"name": "posted"}), (201, {"count": 1}))
        self.assertEqual(db.session.scalars(sa.select(Widget.name)).all(), ["posted"])

    def test_b_starts_empty(self) -> None:
        self.assertEqual(lite_widgets.count(Widget), 0)


@on_backends(BackendTestCase)
class LiteBuiltAtImport:
    """``flask_app`` names a Lite app built at import: its engine and sessionmaker point at the test database."""

    backend: t.ClassVar[BackendUnderTest]
    flask_app = "tests.apps.lite_widgets:app"
    alembic_config = plain_alembic.ALEMBIC_INI

    @classmethod
    def get_database_url(cls) -> str:
        return bind_url(cls.backend, "lite_import")

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()  # type: ignore[misc]
        app = lite_widgets.app
        assert app.config["SQLALCHEMY_ENGINES"] == {"default": lite_widgets.OWN_URL}, app.config
        with app.app_context():
            assert str(db.engine.url) == lite_widgets.OWN_URL, db.engine.url
        assert not os.path.exists(os.path.dirname(sa.make_url(lite_widgets.OWN_URL).database or "x"))

    def test_pointed_at_the_test_database(self) -> None:
        test_case = t.cast(TransactionalTestCase, self)
        self.assertIs(test_case.app, lite_widgets.app)
        wanted = sa.make_url(test_case.get_database_url()).database
        self.assertEqual(db.engine.url.database, wanted)
        db.session.add(Widget(name="pointed"))
        db.session.commit()
        self.assertEqual(db.session.get_bind().engine.url.database, wanted)
        self.assertEqual(lite_widgets.count(Widget), 1)


# -- what the library makes of a Lite app, without a server -----------------------------------


class LiteConfiguration(unittest.TestCase):
    def test_config_names_every_database_in_both_extensions_keys(self) -> None:
        class Case(TransactionalTestCase):
            database_url = "postgresql+psycopg2://u:secret@h/app_test"
            binds = {"audit": "postgresql+psycopg2://u:secret@h/audit_test"}

        config = Case.get_app_config()
        self.assertEqual(
            config["SQLALCHEMY_ENGINES"],
            {"default": config["SQLALCHEMY_DATABASE_URI"], "audit": config["SQLALCHEMY_BINDS"]["audit"]},
        )

    def test_a_second_apps_string_binds_get_its_own_engines(self) -> None:
        class AuditBase(DeclarativeBase):
            pass

        class Entry(AuditBase):
            __tablename__ = "entries"
            id: Mapped[int] = mapped_column(primary_key=True)

        lite = SQLAlchemy(session_options={"binds": {AuditBase: "audit"}})
        apps = []
        for name in ("first", "second"):
            app = Flask(name)
            app.config["SQLALCHEMY_ENGINES"] = {"default": "sqlite://", "audit": f"sqlite:///{name}_audit.db"}
            lite.init_app(app)
            apps.append(app)
        with apps[1].app_context():
            # Lite's own result: the first app's engine (pallets-eco/flask-sqlalchemy-lite#41).
            self.assertIs(lite.sessionmaker.kw["binds"][AuditBase], lite_engine(lite, apps[0], "audit"))
            extension = extension_of(apps[1])
            assert extension is not None
            self.assertIs(lite.sessionmaker.kw["binds"][AuditBase], lite.get_engine("audit"))
            self.assertIs(extension.session_factory().kw["binds"][AuditBase], lite.get_engine("audit"))
        with apps[0].app_context():
            self.assertIs(lite.sessionmaker.kw["binds"][AuditBase], lite.get_engine("audit"))

    def test_create_all_without_metadata_names_the_setting(self) -> None:
        class Case(TransactionalTestCase):
            alembic_config = False

            @classmethod
            def create_app(cls, config: dict[str, t.Any]) -> Flask:
                return lite_widgets.create_app(config)

            def test_not_reached(self) -> None:
                self.fail("setUpClass should have refused the class")

        result = run_case(Case)
        [error] = [r.exception for r in result.raised if r.where.startswith("setUpClass")]
        self.assertIsInstance(error, ConfigurationError, transcript(result))
        self.assertIn("metadata = Base.metadata", str(error))
        self.assertIn("Flask-SQLAlchemy-Lite keeps no models", str(error))

    def test_found_as_the_flask_command_finds_it(self) -> None:
        """No ``create_app``, no ``flask_app``: ``FLASK_APP`` names the Lite factory, handed the config."""

        class Found(TransactionalTestCase):
            alembic_config = plain_alembic.ALEMBIC_INI

            def test_lite_on_the_test_database(self) -> None:
                self.assertIsInstance(self._tt_extension(), FlaskSQLAlchemyLite)
                self.assertEqual(db.engine.url.database, sa.make_url(self.get_database_url()).database)
                db.session.add(Widget(name="found"))
                db.session.commit()
                self.assertEqual(lite_widgets.count(Widget), 1)

        with tempfile.TemporaryDirectory() as folder:
            Found.database_url = "sqlite:///" + os.path.join(folder, "found_test.db")
            with mock.patch.dict(os.environ, {"FLASK_APP": "tests.apps.lite_widgets:create_app"}):
                result = run_case(Found)
        self.assertEqual((result.testsRun, result.errors, result.failures), (1, [], []), transcript(result))

    def test_async_engines_on_a_database_without_test_are_refused(self) -> None:
        """Left as they are, not isolated: one on the app's own database would be written to."""
        outcomes = {}
        for name in ("widgets_dev", "widgets_async_test"):

            class Case(TransactionalTestCase):
                alembic_config = plain_alembic.ALEMBIC_INI
                metadata = lite_widgets.Base.metadata
                async_url = f"postgresql+psycopg_async://app:pw-s3cret@db.example/{name}"

                @classmethod
                def create_app(cls, config: dict[str, t.Any]) -> Flask:
                    return lite_widgets.create_app(
                        {**config, "SQLALCHEMY_ASYNC_ENGINES": {"default": cls.async_url}}
                    )

                def test_runs(self) -> None:
                    self.assertEqual(lite_widgets.count(Widget), 0)

            with tempfile.TemporaryDirectory() as folder:
                Case.database_url = "sqlite:///" + os.path.join(folder, "async_test.db")
                outcomes[name] = run_case(Case)
        refused = outcomes["widgets_dev"]
        [error] = [r.exception for r in refused.raised if r.where.startswith("setUpClass")]
        self.assertIsInstance(error, UnsafeDatabaseError, transcript(refused))
        self.assertIn("SQLALCHEMY_ASYNC_ENGINES['default']", str(error))
        self.assertIn("widgets_dev", str(error))
        self.assertNotIn("pw-s3cret", transcript(refused))
        allowed = outcomes["widgets_async_test"]
        self.assertEqual(
            (allowed.testsRun, allowed.errors, allowed.failures), (1, [], []), transcript(allowed)
        )

    def test_create_all_with_metadata_per_engine(self) -> None:
        class Case(shop_lite.ShopCase, TransactionalTestCase):  # type: ignore[misc]
            @classmethod
            def bind_url(cls, name: str) -> str:
                return "sqlite:///" + os.path.join(cls.folder, f"{name}_test.db")

            def test_tables_of_both_engines(self) -> None:
                self.assertEqual(
                    set(sa.inspect(shop_lite.db.engine).get_table_names()), {"customers", "orders"}
                )
                self.assertEqual(
                    sa.inspect(shop_lite.db.get_engine("audit")).get_table_names(), ["audit_entries"]
                )

        with tempfile.TemporaryDirectory() as folder:
            Case.folder = folder  # type: ignore[attr-defined]
            Case.database_url = "sqlite:///" + os.path.join(folder, "shop_test.db")
            result = run_case(Case)
        self.assertEqual((result.testsRun, result.errors, result.failures), (1, [], []), transcript(result))


def lite_engine(lite: SQLAlchemy, app: Flask, name: str) -> sa.Engine:
    with app.app_context():
        return lite.get_engine(name)


@on_backends(OuterCase)
class LiteChecksWithoutMetadata:
    """Without ``metadata`` (and no Flask-Alembic), the model comparison fails naming the setting."""

    backend: t.ClassVar[BackendUnderTest]

    def test_compare_names_the_setting(self) -> None:
        backend = self.backend

        class Checks(MigrationsTestCase):
            alembic_config = plain_alembic.ALEMBIC_INI
            database_url = bind_url(backend, "checks_lite_nometa")

            @classmethod
            def create_app(cls, config: dict[str, t.Any]) -> Flask:
                return lite_widgets.create_app(config)

        result = run_case(Checks)
        case = t.cast(unittest.TestCase, self)
        case.assertEqual(result.testsRun, 4, transcript(result))
        failure = result.raised_by("test_models_match_migrations")
        case.assertIn("metadata = Base.metadata", str(failure), transcript(result))
        case.assertEqual(len(result.failures) + len(result.errors), 1, transcript(result))
        case.assertFalse(database_exists(checks_database(Checks.database_url)))
