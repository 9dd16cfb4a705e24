"""The environment variables the library reads, in one place.

Each setting a whole run shares (keep databases, diagnostics, a worker's
name...) can be given without touching the test code, as Django's test
runner takes ``--keepdb``.
"""

from __future__ import annotations

import os

#: URL of the default test database when a class sets no ``database_url``.
DATABASE_URL = "TEST_DATABASE_URL"
#: Keep the test databases for the next run (every class's ``keepdb``).
KEEPDB = "TRANSACTIONAL_TESTCASE_KEEPDB"
#: ``0``: drop each process's templates at exit instead of keeping them.
KEEP_TEMPLATES = "TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES"
#: The worker name added to database names under a parallel runner.
WORKER = "TRANSACTIONAL_TESTCASE_WORKER"
#: Log each test's transaction steps (see :mod:`transactional_testcase.diagnostics`).
DIAGNOSTICS = "TRANSACTIONAL_TESTCASE_DIAGNOSTICS"
#: Folder of SQLite templates, keepdb markers and lock files.
CACHE = "TRANSACTIONAL_TESTCASE_CACHE"
#: ``1``: print what provisioning did, one line per database, to stderr (it is
#: always logged at INFO on the ``transactional_testcase`` logger).
VERBOSE = "TRANSACTIONAL_TESTCASE_VERBOSE"

_YES = ("1", "true", "yes", "on")
_NO = ("0", "false", "no", "off")


def flag(name: str, default: bool = False) -> bool:
    """Whether the environment variable ``name`` is set to yes (``1``, ``true``, ``yes``, ``on``).

    Unset, empty or unrecognised values give ``default``.
    """
    value = os.environ.get(name, "").strip().lower()
    if value in _YES:
        return True
    if value in _NO:
        return False
    return default
