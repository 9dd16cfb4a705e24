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
import sys
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
#: A checkout of another version of the library, to measure instead of this
#: one's (a before-and-after with the same benchmark code): ``BENCH_LIBRARY=<path>``.
LIBRARY_ENV = "BENCH_LIBRARY"
for _name in (
    "TRANSACTIONAL_TESTCASE_KEEPDB",
    "TRANSACTIONAL_TESTCASE_WORKER",
    "PYTEST_XDIST_WORKER",
    "TEST_DATABASE_URL",
):
    os.environ.pop(_name, None)


def _import_library() -> None:
    """Import the library from ``$BENCH_LIBRARY`` if set: only the package, not that checkout's ``benchmarks``."""
    folder = os.environ.get(LIBRARY_ENV)
    if not folder:
        return
    sys.path.insert(0, os.path.abspath(folder))
    try:
        import transactional_testcase  # noqa: F401 - later imports find it in sys.modules
    finally:
        sys.path.pop(0)
    if not library_folder().startswith(os.path.abspath(folder) + os.sep):
        raise SystemExit(f"{LIBRARY_ENV}={folder}: the library was already imported from {library_folder()}")


def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for a subprocess, plus ``extra``.

    A subprocess imports the very library this process measures (with
    ``BENCH_LIBRARY``, an older checkout's), then this repository's
    ``benchmarks``: a folder of our own holding only a link to the library
    comes first on its path, so an older checkout's own ``benchmarks`` never
    shadows these.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([_library_only(), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    env.update(extra)
    return env


def library_folder() -> str:
    """The folder of the ``transactional_testcase`` package this process imports."""
    import transactional_testcase

    return os.path.dirname(os.path.abspath(transactional_testcase.__file__))


def _library_only() -> str:
    """A folder in :data:`WORK` whose one entry links to :func:`library_folder`."""
    folder = os.path.join(WORK, "library")
    if not os.path.isdir(folder):
        os.mkdir(folder)
        os.symlink(library_folder(), os.path.join(folder, "transactional_testcase"))
    return folder


_import_library()
