"""Sample TransactionalTestCase classes run by ``tests/test_runners.py`` in subprocesses.

Not collected by the project's own discovery (see ``__init__.py``). What each
run may vary through the environment:

``TEST_DATABASE_URL``
    the default database (unset: a SQLite file per process); the ``audit``
    bind goes next to it, in a database whose name adds ``_audit``.
``TT_RUNNER_SUITE_FAIL=1``
    makes :data:`DELIBERATE_FAILURE` fail, to prove runners report failures.
``TT_RUNNER_SUITE_REPORT``
    a file each class appends ``<pid> <url>`` lines to, one per database it
    used, so the parent can check which databases a run used and that they are
    gone when it ends.
``TT_RUNNER_SUITE_WORKERS``
    a folder, set for parallel runners: each class waits there (up to
    :data:`WORKER_WAIT` seconds) until :data:`PARALLEL_WORKERS` processes
    have started one. A runner that hands out classes as workers ask for them
    (unittest-parallel's pool) would otherwise let the first worker take every
    class when the second one starts late on a loaded machine.
``TT_RUNNER_SUITE_APP=lite_alembic``
    the shop app's Flask-SQLAlchemy-Lite twin, its schema migrated by
    Flask-Alembic (``tests/apps/shop_lite.py``), instead of the
    Flask-SQLAlchemy app built with ``create_all()``.

Every test that commits first asserts the tables are empty, so any order of
tests (and any split over workers) passes only when each test is rolled back.
"""

from __future__ import annotations

import importlib
import os
import time
import typing as t

import sqlalchemy as sa
from flask import Flask

import transactional_testcase as tt
from tests.admin import leftover_rows
from transactional_testcase.provisioning import provisioner

FAIL_ENV = "TT_RUNNER_SUITE_FAIL"
REPORT_ENV = "TT_RUNNER_SUITE_REPORT"
APP_ENV = "TT_RUNNER_SUITE_APP"
WORKERS_ENV = "TT_RUNNER_SUITE_WORKERS"
#: How many workers the parallel runners are started with.
PARALLEL_WORKERS = 2
#: How long a class waits for the other workers before it goes on alone
#: (then the parent's check that two workers ran fails, as it should).
WORKER_WAIT = 60.0
#: The Lite twin migrated by Flask-Alembic.
LITE_ALEMBIC = os.environ.get(APP_ENV) == "lite_alembic"

shop: t.Any = importlib.import_module("tests.apps.shop_lite" if LITE_ALEMBIC else "tests.apps.shop")
#: The ``audit`` bind's database is the default one's name plus this.
AUDIT_SUFFIX = "_audit"

#: ``Class.method`` of the one test that fails when ``TT_RUNNER_SUITE_FAIL=1``.
DELIBERATE_FAILURE = "FailureIsReportedTest.test_a_deliberate_failure"
#: What that failure says, so the parent can find it in the runner's output.
FAILURE_MESSAGE = "deliberate failure requested by TT_RUNNER_SUITE_FAIL=1"


def wait_for_workers() -> None:
    """Check this process in under ``TT_RUNNER_SUITE_WORKERS`` and wait for the others."""
    folder = os.environ.get(WORKERS_ENV)
    if not folder:
        return
    open(os.path.join(folder, str(os.getpid())), "w").close()
    deadline = time.monotonic() + WORKER_WAIT
    while len(os.listdir(folder)) < PARALLEL_WORKERS and time.monotonic() < deadline:
        time.sleep(0.05)


def audit_url() -> str:
    """The ``audit`` bind's test database, on the same backend as the default one."""
    default = sa.make_url(os.environ.get("TEST_DATABASE_URL") or provisioner.default_sqlite_url())
    if default.get_backend_name() == "sqlite":
        folder = os.path.dirname(default.database or "")
        return "sqlite:///" + os.path.join(folder, "audit_test.db")
    return default.set(database=f"{default.database}{AUDIT_SUFFIX}").render_as_string(hide_password=False)


class SampleCase(tt.TransactionalTestCase):
    """Base of the sample classes: the shop app, both binds, and an independent leftover check."""

    alembic_config = None if LITE_ALEMBIC else False  # None: Flask-Alembic's migrations

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        if LITE_ALEMBIC:
            app: Flask = shop.create_app(config, migrated=True)
            assert type(app.extensions["sqlalchemy"]).__module__.startswith("flask_sqlalchemy_lite")
            return app
        return shop.create_app(config)

    @classmethod
    def setUpClass(cls) -> None:
        # Through ``binds`` (not get_app_config) so that the library gives the
        # bind a per-worker name under parallel runners, as users would see it.
        cls.binds = {"audit": audit_url()}
        wait_for_workers()
        super().setUpClass()
        cls._urls = [e.url.render_as_string(hide_password=False) for e in cls.db.engines.values()]
        report = os.environ.get(REPORT_ENV)
        if report:
            with open(report, "a", encoding="utf-8") as f:
                f.write("".join(f"{os.getpid()} {url}\n" for url in cls._urls))

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        # With a connection of our own: whatever the tests committed must be gone.
        for url in cls._urls:
            left = leftover_rows(url)
            if left:
                raise AssertionError(f"{cls.__name__} left rows behind in {url}: {left}")

    def assertEmpty(self) -> None:
        self.assertEqual(shop.count(shop.Customer), 0)
        self.assertEqual(shop.count(shop.AuditEntry), 0)


class ClientCommitPairTest(SampleCase):
    """Two tests that commit through test-client requests; each needs empty tables."""

    def test_a_commit_through_request(self) -> None:
        self.assertEmpty()
        response = self.client.post("/customers", json={"email": "a@example.com"})
        self.assertEqual(response.status_code, 201)
        self.assertEqual(response.get_json(), {"count": 1})
        self.assertEqual(shop.count(shop.Customer), 1)

    def test_b_commit_through_request(self) -> None:
        self.assertEmpty()
        self.client.post("/customers", json={"email": "a@example.com"})
        self.client.post("/audit", json={"message": "b"})
        self.assertEqual((shop.count(shop.Customer), shop.count(shop.AuditEntry)), (1, 1))


class SessionCommitPairTest(SampleCase):
    """Two tests that commit through the session and the engine, on both binds."""

    def test_a_session_commit(self) -> None:
        self.assertEmpty()
        shop.session.add_all([shop.Customer(email="a@example.com"), shop.AuditEntry(message="a")])
        shop.session.commit()
        self.assertEqual((shop.count(shop.Customer), shop.count(shop.AuditEntry)), (1, 1))

    def test_b_engine_commit(self) -> None:
        self.assertEmpty()
        with self.db.engine.begin() as conn:
            conn.execute(shop.Customer.__table__.insert().values(email="b@example.com"))
        self.assertEqual(shop.count(shop.Customer), 1)


class ClassDataTest(SampleCase):
    """setUpTestData: every test starts from the class data, whatever the previous one committed."""

    customer: t.Any

    @classmethod
    def setUpTestData(cls) -> None:
        cls.customer = shop.Customer(email="class@example.com")
        shop.session.add(cls.customer)

    def test_a_changes_class_data(self) -> None:
        self.assertEqual(shop.count(shop.Customer), 1)
        self.assertEqual(self.customer.email, "class@example.com")
        self.customer.email = "changed@example.com"
        shop.session.add(shop.Customer(email="extra@example.com"))
        shop.session.commit()
        self.assertEqual(shop.count(shop.Customer), 2)

    def test_b_sees_class_data_unchanged(self) -> None:
        self.assertEqual(shop.count(shop.Customer), 1)
        emails = shop.session.scalars(sa.select(shop.Customer.email)).all()
        self.assertEqual(emails, ["class@example.com"])
        self.assertEqual(self.customer.email, "class@example.com")


class FailureIsReportedTest(SampleCase):
    """A test that commits and then fails on request; the next one must still see empty tables."""

    def test_a_deliberate_failure(self) -> None:
        self.assertEmpty()
        shop.session.add(shop.Customer(email="a@example.com"))
        shop.session.commit()
        self.assertEqual(shop.count(shop.Customer), 1)
        if os.environ.get(FAIL_ENV) == "1":
            self.fail(FAILURE_MESSAGE)

    def test_b_tables_empty_after_it(self) -> None:
        self.assertEmpty()
