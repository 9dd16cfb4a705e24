"""The version matrix: ``nox -f .ci/noxfile.py``.

SQLAlchemy 2.0 and 2.1 x Flask-SQLAlchemy 3.0 and 3.1 x Flask 2.3 and 3.1,
each running the test suite on SQLite and PostgreSQL (all but the process
plumbing of ``PROCESS_MODULES``), plus the newest combination on every backend
with the whole suite. Each session writes its outcome to
``.ci/matrix/<session>.json``; ``python .ci/matrix_table.py`` turns those into
the table of ``docs/versions.rst``.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess

import nox

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".ci" / "matrix"

nox.options.reuse_existing_virtualenvs = True
nox.options.envdir = str(ROOT / ".nox")
nox.options.error_on_missing_interpreters = True

#: Process plumbing (runners' worker pools, child processes racing for a
#: template): the newest combination runs them on every backend; the older
#: combinations skip them to keep CI short.
PROCESS_MODULES = ("test_runners", "test_provisioning")

SQLALCHEMY = ["2.0", "2.1"]
FLASK_SQLALCHEMY = ["3.0", "3.1"]
FLASK = ["2.3", "3.1"]


def _run_suite(session: nox.Session, backends: str, pins: dict[str, str], skip: tuple[str, ...] = ()) -> None:
    session.chdir(ROOT)
    session.install("-e", f"{ROOT}[test,mysqlclient]", *(f"{k}=={v}.*" for k, v in pins.items()))
    versions = session.run(
        "python",
        "-c",
        "import importlib.metadata as m;"
        "print(' '.join(f'{p}=={m.version(p)}' for p in "
        "('Flask', 'Flask-SQLAlchemy', 'SQLAlchemy', 'alembic', 'Flask-Migrate', 'Werkzeug')))",
        silent=True,
    )
    # Each session gets database names (and a SQLite template cache) of its own,
    # so sessions can run side by side against the same servers.
    tag = hashlib.sha1(session.name.encode()).hexdigest()[:6]
    env = {
        "TT_TEST_BACKENDS": backends,
        "CI": os.environ.get("CI", "true"),
        "TRANSACTIONAL_TESTCASE_CACHE": str(ROOT / ".nox" / f"cache-{tag}"),
        "TT_TEST_PSYCOPG2_URL": f"postgresql+psycopg2://postgres@127.0.0.1/tt_{tag}_pg2_test",
        "TT_TEST_PSYCOPG_URL": f"postgresql+psycopg://postgres@127.0.0.1/tt_{tag}_pg3_test",
        "TT_TEST_PYMYSQL_URL": f"mysql+pymysql://root@127.0.0.1/tt_{tag}_my_test",
        "TT_TEST_MYSQLCLIENT_URL": f"mysql+mysqldb://root@127.0.0.1/tt_{tag}_mc_test",
    }
    env.update({k: v for k, v in os.environ.items() if k.startswith("TT_TEST_") and k.endswith("_URL")})
    outcome = {"session": session.name, "backends": backends, "versions": (versions or "").strip()}
    modules = sorted(
        f"tests.{path.stem}" for path in (ROOT / "tests").glob("test_*.py") if path.stem not in skip
    )
    if skip:
        outcome["skipped_modules"] = [f"tests.{name}" for name in skip]
    try:
        session.run("python", "-m", "tests", *(modules if skip else []), env=env)
        outcome["result"] = "passed"
    except nox.command.CommandFailed:
        outcome["result"] = "failed"
        raise
    finally:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{session.name.replace('/', '_')}.json").write_text(json.dumps(outcome))


@nox.session(python="3.11")
@nox.parametrize("sqlalchemy", SQLALCHEMY)
@nox.parametrize("flask_sqlalchemy", FLASK_SQLALCHEMY)
@nox.parametrize("flask", FLASK)
def matrix(session: nox.Session, sqlalchemy: str, flask_sqlalchemy: str, flask: str) -> None:
    """The suite (but its process plumbing) on SQLite and PostgreSQL for one combination."""
    _run_suite(
        session,
        "sqlite,psycopg2",
        {"SQLAlchemy": sqlalchemy, "Flask-SQLAlchemy": flask_sqlalchemy, "Flask": flask},
        skip=PROCESS_MODULES,
    )


@nox.session(python="3.11")
def newest(session: nox.Session) -> None:
    """The newest combination on every backend, MariaDB included."""
    _run_suite(
        session,
        "sqlite,psycopg2,psycopg,pymysql,mysqlclient",
        {"SQLAlchemy": SQLALCHEMY[-1], "Flask-SQLAlchemy": FLASK_SQLALCHEMY[-1], "Flask": FLASK[-1]},
    )


if __name__ == "__main__":  # pragma: no cover
    subprocess.run(["nox", "-f", __file__], check=False)
