"""The runner matrix on a Flask-SQLAlchemy-Lite app migrated by Flask-Alembic.

:mod:`tests.test_runners`'s sample suite with ``TT_RUNNER_SUITE_APP=lite_alembic``
(the shop's Lite twin, its two databases migrated by Flask-Alembic, found from
the app): every runner's passing run (unittest, nose2, nose2's mp plugin,
pytest, pytest-xdist, unittest-parallel) on SQLite, PostgreSQL and MariaDB,
checked alike: the summary, the exit code, databases of each process's own,
none left.
"""

from __future__ import annotations

import unittest

from tests.test_runners import RunnerMatrix, _add_tests


@_add_tests(passes_only=True)
class LiteAlembicRunnersOnSQLite(RunnerMatrix):
    backend, app, app_tag = "sqlite", "lite_alembic", "la"


@_add_tests(passes_only=True)
class LiteAlembicRunnersOnPsycopg2(RunnerMatrix):
    backend, app, app_tag = "psycopg2", "lite_alembic", "la"


@_add_tests(passes_only=True)
class LiteAlembicRunnersOnPyMySQL(RunnerMatrix):
    backend, app, app_tag = "pymysql", "lite_alembic", "la"


if __name__ == "__main__":
    unittest.main()
