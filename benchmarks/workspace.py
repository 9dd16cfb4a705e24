"""The run's temporary folder and the environment it measures in.

Imported before the library (``benchmarks/run.py`` and ``python -m benchmarks``
import it first): templates and kept SQLite files go to our own temporary
folder, templates are dropped at exit, and nothing inherited from the
environment (a worker name, keepdb, a database URL) changes what we measure.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

#: The repository's root (on ``PYTHONPATH`` of every subprocess).
ROOT = Path(__file__).resolve().parent.parent

#: The run's temporary folder: SQLite files, templates, generated suites, subprocess output.
WORK = tempfile.mkdtemp(prefix="tt_bench_")
# Registered before the library's own exit hooks, so it runs after them (``--help`` exits early too).
atexit.register(shutil.rmtree, WORK, ignore_errors=True)
os.environ["TRANSACTIONAL_TESTCASE_CACHE"] = os.path.join(WORK, "cache")
os.environ["TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES"] = "0"
for _name in (
    "TRANSACTIONAL_TESTCASE_KEEPDB",
    "TRANSACTIONAL_TESTCASE_WORKER",
    "PYTEST_XDIST_WORKER",
    "TEST_DATABASE_URL",
):
    os.environ.pop(_name, None)


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for a subprocess, the repository on its path, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env
