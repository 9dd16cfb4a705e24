"""The pytest fixtures on Flask-SQLAlchemy-Lite: :mod:`tests.test_pytest_plugin`'s runs on the Lite shop.

The same pytest and ``pytest -n 2`` runs over
``tests/pytest_suite/sample_functions.py``, with
``TT_PYTEST_SUITE_EXTENSION=lite``: the fixtures drive the shop app's
Flask-SQLAlchemy-Lite twin, and every run is checked alike.
"""

from __future__ import annotations

import unittest

from tests.test_pytest_plugin import FixtureRuns


class LiteFixturesOnSQLite(FixtureRuns, unittest.TestCase):
    backend, extension = "sqlite", "lite"


class LiteFixturesOnPsycopg2(FixtureRuns, unittest.TestCase):
    backend, extension = "psycopg2", "lite"


class LiteFixturesOnPyMySQL(FixtureRuns, unittest.TestCase):
    backend, extension = "pymysql", "lite"
