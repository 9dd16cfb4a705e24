"""pytest plugin: fixtures for function-style tests, and dropping the session's databases at its end.

pytest loads this module by itself through the package's ``pytest11`` entry
point (with ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` set, pass ``-p
transactional_testcase.pytest_plugin``), in every run of every project where
the package is installed. It therefore imports nothing but pytest and the
standard library: Flask, SQLAlchemy and the library are imported when a test
first asks for one of the fixtures (or a test imports them itself).

Fixtures (see ``docs/guide/pytest.rst``), configured by naming one
:class:`~transactional_testcase.TransactionalTestCase` subclass, in
``conftest.py``::

    @pytest.fixture(scope="session")
    def transactional_testcase_class():
        return MyBaseCase

or with the ini option ``transactional_testcase_class = tests.base:MyBaseCase``:

``app``, ``client``, ``db_session``, ``assert_num_queries``
    the class's app, a test client, the test's ``db.session``, and
    ``assertNumQueries`` as a context manager; asking for any of them runs the
    test in its own rolled-back transaction;
``transactional_testcase``
    the test's instance of the class (its class data, request assertions...).

Dropping: everywhere else the databases a process created are dropped at exit.
A pytest-xdist worker exits only when the controller tells it to, and the
controller kills every worker still running ten seconds later (execnet's
``Group.terminate``): on a busy machine dropping can take longer, and a killed
worker leaves its databases behind. Dropping in ``pytest_sessionfinish`` runs
before the worker reports that it finished, so no clock is running yet. A
process that never imported the library's provisioning made no database, and
has nothing to drop.

.. versionadded:: 0.3
.. versionchanged:: 0.4
   Imports nothing heavy at startup; the fixtures.
"""

from __future__ import annotations

import sys
import typing as t

import pytest

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager

    from flask import Flask
    from flask.testing import FlaskClient
    from sqlalchemy.orm import Session

    from .pytest_fixtures import SessionCase
    from .testcase import TransactionalTestCase

#: The modules whose presence in ``sys.modules`` means that this process used the library.
_PROVISIONING = "transactional_testcase.provisioning"
_FIXTURES = "transactional_testcase.pytest_fixtures"
#: The ini option naming the class.
INI_CLASS = "transactional_testcase_class"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI_CLASS,
        "the TransactionalTestCase subclass (package.module:ClassName) that configures the "
        "app, client, db_session and assert_num_queries fixtures",
        default="",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A unittest class of the library is about to run: the function tests' class steps aside."""
    fixtures = sys.modules.get(_FIXTURES)
    if fixtures is not None:
        fixtures.before_item(item)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every test of this process has run: its databases are no longer needed."""
    fixtures = sys.modules.get(_FIXTURES)
    try:
        if fixtures is not None:
            fixtures.stop(session.config)  # normally done by the session fixture's teardown
    finally:
        provisioning = sys.modules.get(_PROVISIONING)
        if provisioning is not None:
            provisioning.provisioner.drop_all()


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def transactional_testcase_class(pytestconfig: pytest.Config) -> type[TransactionalTestCase]:
    """The TransactionalTestCase subclass the fixtures run (override it in ``conftest.py``).

    By default the class the ``transactional_testcase_class`` ini option names.
    """
    spec = pytestconfig.getini(INI_CLASS)
    if not spec:
        pytest.fail(
            "the transactional_testcase fixtures need a TransactionalTestCase subclass to run: "
            "define the session fixture transactional_testcase_class in conftest.py "
            "(returning your class), or set the ini option "
            "'transactional_testcase_class = package.module:ClassName'.",
            pytrace=False,
        )
    from .pytest_fixtures import load_class

    return load_class(spec)


@pytest.fixture(scope="session")
def _transactional_testcase_session(
    pytestconfig: pytest.Config, transactional_testcase_class: type[TransactionalTestCase]
) -> Iterator[SessionCase]:
    """The configured class, set up on first use and torn down at the session's end."""
    from .pytest_fixtures import session_case

    case = session_case(pytestconfig, transactional_testcase_class)
    yield case
    case.stop()


@pytest.fixture
def transactional_testcase(
    request: pytest.FixtureRequest, _transactional_testcase_session: SessionCase
) -> Iterator[TransactionalTestCase]:
    """The test's instance of the configured class, between its ``setUp`` and its cleanups.

    The test runs in its own transaction, rolled back after it, with
    ``db.session`` (and ``db.engine``, ``Model.query``) redirected into it; an
    app context is pushed. The class data of ``setUpTestData`` are attributes
    of the instance.
    """
    case = _transactional_testcase_session.start_test(request.node.nodeid)
    yield case
    _transactional_testcase_session.end_test(case)


@pytest.fixture
def app(transactional_testcase: TransactionalTestCase) -> Flask:
    """The configured class's app (one per session), the test's transaction open."""
    return transactional_testcase.app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``: its requests run inside the test's transaction."""
    return app.test_client()


@pytest.fixture
def db_session(transactional_testcase: TransactionalTestCase) -> Session:
    """The test's ``db.session``: its commits are savepoints of the test's transaction."""
    return transactional_testcase.session


@pytest.fixture
def assert_num_queries(
    transactional_testcase: TransactionalTestCase,
) -> Callable[[int], AbstractContextManager[list[str]]]:
    """``with assert_num_queries(2): ...``: the block sends exactly that many statements.

    Counted on every engine of the app, test-client requests included;
    transaction control is not counted. On failure every statement is listed.
    """
    return transactional_testcase.assertNumQueries
