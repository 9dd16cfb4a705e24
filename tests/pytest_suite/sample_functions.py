"""Function-style tests of the shop app, through the plugin's fixtures.

Every test asserts what it starts from (the session data alone), so any order
and any split over xdist workers passes only when each test is rolled back.
The environment, as in ``tests/runner_suite/sample_cases.py``:

``TEST_DATABASE_URL``
    the default database (unset: a SQLite file per process); the ``audit``
    bind goes next to it.
``TT_PYTEST_SUITE_FAIL=1``
    makes :func:`test_a_deliberate_failure` fail.
``TT_PYTEST_SUITE_REPORT``
    a file the class appends ``<pid> <url>`` lines to, one per database it used.
``TT_PYTEST_SUITE_EXTENSION=lite``
    the shop app's Flask-SQLAlchemy-Lite twin (``tests/apps/shop_lite.py``)
    instead of the Flask-SQLAlchemy app.
"""

from __future__ import annotations

import importlib
import os
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

import transactional_testcase as tt
from tests.admin import leftover_rows
from tests.runner_suite.sample_cases import audit_url

FAIL_ENV = "TT_PYTEST_SUITE_FAIL"
REPORT_ENV = "TT_PYTEST_SUITE_REPORT"
EXTENSION_ENV = "TT_PYTEST_SUITE_EXTENSION"

shop: t.Any = importlib.import_module(
    "tests.apps.shop_lite" if os.environ.get(EXTENSION_ENV) == "lite" else "tests.apps.shop"
)
FAILURE_MESSAGE = "deliberate failure requested by TT_PYTEST_SUITE_FAIL=1"
SESSION_EMAIL = "session@example.com"

CountQueries = t.Callable[[int], t.ContextManager[list[str]]]


class FunctionsBase(tt.TransactionalTestCase):
    """The one source of configuration: the unittest classes' settings and hooks."""

    alembic_config = False
    metadata = getattr(shop.ShopCase, "metadata", None)  # the Lite twin's models
    customer: t.Any

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return shop.create_app(config)

    @classmethod
    def setUpClass(cls) -> None:
        cls.binds = {"audit": audit_url()}
        super().setUpClass()
        cls._urls = [e.url.render_as_string(hide_password=False) for e in cls.db.engines.values()]
        report = os.environ.get(REPORT_ENV)
        if report:
            with open(report, "a", encoding="utf-8") as f:
                f.write("".join(f"{os.getpid()} {url}\n" for url in cls._urls))

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        # With a connection of our own: the session data and every commit are gone.
        for url in cls._urls:
            left = leftover_rows(url)
            if left:
                raise AssertionError(f"the session left rows behind in {url}: {left}")

    @classmethod
    def setUpTestData(cls) -> None:
        cls.customer = shop.Customer(email=SESSION_EMAIL)
        shop.session.add(cls.customer)


def assert_session_data_only(db_session: Session) -> None:
    assert db_session.scalars(sa.select(shop.Customer.email)).all() == [SESSION_EMAIL]
    assert shop.count(shop.AuditEntry) == 0


def test_a_commit(db_session: Session) -> None:
    assert_session_data_only(db_session)
    db_session.add(shop.Customer(email="a@example.com"))
    shop.db.session.commit()
    assert shop.count(shop.Customer) == 2


def test_b_commit(db_session: Session) -> None:
    assert_session_data_only(db_session)
    shop.session.add_all([shop.Customer(email="b@example.com"), shop.AuditEntry(message="b")])
    shop.session.commit()
    assert (shop.count(shop.Customer), shop.count(shop.AuditEntry)) == (2, 1)


def test_c_engine_commit(db_session: Session) -> None:
    assert_session_data_only(db_session)
    with shop.db.engine.begin() as conn:
        conn.execute(shop.Customer.__table__.insert().values(email="c@example.com"))
    assert shop.count(shop.Customer) == 2


def test_session_data(transactional_testcase: FunctionsBase, db_session: Session) -> None:
    customer = transactional_testcase.customer
    assert customer.email == SESSION_EMAIL
    assert customer in db_session
    customer.email = "changed@example.com"
    db_session.commit()
    assert db_session.scalars(sa.select(shop.Customer.email)).all() == ["changed@example.com"]


def test_client_request_in_the_transaction(client: FlaskClient, db_session: Session) -> None:
    assert_session_data_only(db_session)
    response = client.post("/customers", json={"email": "client@example.com"})
    assert response.status_code == 201
    assert response.get_json() == {"count": 2}
    assert shop.count(shop.Customer) == 2
    assert client.get("/customers/count").get_json() == {"count": 2}


def test_query_counting(assert_num_queries: CountQueries, client: FlaskClient) -> None:
    with assert_num_queries(1) as statements:
        shop.count(shop.Customer)
    assert "count" in statements[0].lower()
    with assert_num_queries(1):
        client.get("/customers/count")
    with pytest.raises(AssertionError, match="2"), assert_num_queries(2):
        shop.count(shop.Customer)


def test_app(app: Flask, transactional_testcase: FunctionsBase) -> None:
    assert app is transactional_testcase.app
    assert app.config["TESTING"] is True
    assert set(shop.engines()) == {None, "audit"}
    assert type(transactional_testcase.db).__module__.startswith(shop.db.__module__.split(".")[0])


def test_without_fixtures() -> None:
    assert 1 + 1 == 2


def test_a_deliberate_failure(db_session: Session) -> None:
    assert_session_data_only(db_session)
    db_session.add(shop.Customer(email="failing@example.com"))
    db_session.commit()
    if os.environ.get(FAIL_ENV) == "1":
        pytest.fail(FAILURE_MESSAGE)


def test_z_after_the_failure(db_session: Session) -> None:
    assert_session_data_only(db_session)
