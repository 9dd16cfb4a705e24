"""The version matrix: ``nox -f .ci/noxfile.py``.

* ``matrix``: SQLAlchemy 2.0 and 2.1 x Flask-SQLAlchemy 3.0 and 3.1 x Flask
  2.3 and 3.1 (each series' newest release), on Python 3.11, each running the
  test suite on SQLite and PostgreSQL (all but the process plumbing of
  ``PROCESS_MODULES``);
* ``lowest``: the lowest version of every dependency that ``setup.cfg``
  allows (``LOWEST``), on Python 3.11, on SQLite and PostgreSQL with both
  PostgreSQL drivers and on MariaDB with both MySQL drivers (all but the
  process plumbing);
* ``newest``: the newest release of everything on Python 3.11, 3.12 and 3.13,
  on the backends given by ``TT_MATRIX_BACKENDS`` (every backend, MariaDB
  included, when unset) with the whole suite.

Flask-SQLAlchemy-Lite and Flask-Alembic need Flask 3: the combinations with
Flask 2.3 install neither and skip their modules (``FLASK3_MODULES``, listed in
their outcome); those with Flask 3.1 pin Lite's lowest release (``LITE_LOWEST``),
the newest sessions take the newest of both.

Each session writes its outcome to ``.ci/matrix/<name>.json``, named after the
session without quotes or parentheses (:func:`evidence_name`);
``python .ci/matrix_table.py --write`` turns those into the table of
``docs/versions.rst``.

``nox -f .ci/noxfile.py -s lowest -- alembic==1.11.0`` runs the lowest set
with some versions replaced, to look for a lower bound: such a run writes its
outcome to ``.nox/probes/`` instead, as it is no evidence for a row.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import pathlib
import re
import subprocess

import nox

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / ".ci" / "matrix"
PROBES = ROOT / ".nox" / "probes"

nox.options.reuse_existing_virtualenvs = True
nox.options.envdir = str(ROOT / ".nox")
nox.options.error_on_missing_interpreters = True

#: Process plumbing (runners' worker pools, child processes racing for a
#: template): the newest combination runs them on every backend; the older
#: combinations skip them to keep CI short.
PROCESS_MODULES = ("test_runners", "test_runners_lite", "test_provisioning")
#: Flask-SQLAlchemy-Lite imports ``flask.sansio`` and Flask-Alembic 3.1 requires
#: Flask 3.0 (and Alembic 1.13): with Flask 2.3 neither is installed and these
#: modules cannot run (recorded as skipped in the outcome).
FLASK3_MODULES = (
    "test_lite",
    "test_isolation_lite",
    "test_state_machine_lite",
    "test_pytest_plugin_lite",
    "test_runners_lite",
    "test_flask_alembic",
)
#: The hypothesis state machines' examples per backend in a matrix session:
#: the main suite runs the full count on every backend; here they check that a
#: combination of versions works, and CI's two cores run six sessions.
MATRIX_STATE_MACHINE_EXAMPLES = "20"
#: The ``test`` extra's requirements left out with Flask 2.3.
FLASK3_REQUIREMENTS = ("Flask-SQLAlchemy-Lite", "Flask-Alembic")
#: The Flask-SQLAlchemy-Lite release the older combinations with Flask 3 pin
#: (the newest sessions take the newest one).
LITE_LOWEST = "0.1.0"

PYTHONS = ["3.11", "3.12", "3.13"]
SQLALCHEMY = ["2.0", "2.1"]
FLASK_SQLALCHEMY = ["3.0", "3.1"]
FLASK = ["2.3", "3.1"]

#: The lower bounds of ``setup.cfg``, exactly: what a user pinning the oldest
#: allowed release of each gets (Werkzeug: the lowest Flask 2.3.0 accepts).
LOWEST = {
    "Flask": "2.3.0",
    "Werkzeug": "2.3.0",
    "Flask-SQLAlchemy": "3.0.0",
    "SQLAlchemy": "2.0.0",
    "alembic": "1.10.0",
    "Flask-Migrate": "3.1.0",
    "psycopg": "3.1.4",
    "psycopg-binary": "3.1.4",
    "psycopg2-binary": "2.9.5",
    "PyMySQL": "1.0.2",
    "mysqlclient": "2.2.0",
}

#: What each outcome records, as installed.
RECORDED = (
    "Flask",
    "Flask-SQLAlchemy",
    "SQLAlchemy",
    "alembic",
    "Flask-Migrate",
    "Flask-SQLAlchemy-Lite",
    "Flask-Alembic",
    "Werkzeug",
    "psycopg",
    "psycopg2-binary",
    "PyMySQL",
    "mysqlclient",
)

ALL_BACKENDS = "sqlite,psycopg2,psycopg,pymysql,mysqlclient"


def _test_extra() -> list[str]:
    """The requirements of ``setup.cfg``'s ``test`` extra."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    return [line.strip() for line in parser["options.extras_require"]["test"].splitlines() if line.strip()]


def evidence_name(session_name: str) -> str:
    """``matrix(flask='2.3', sqlalchemy='2.0')`` -> ``matrix-flask-2.3-sqlalchemy-2.0``: a plain file name."""
    return re.sub(r"[^A-Za-z0-9._]+", "-", session_name).strip("-")


def _run_suite(
    session: nox.Session,
    backends: str,
    requirements: list[str],
    skip: tuple[str, ...] = (),
    results: pathlib.Path = RESULTS,
    flask3: bool = True,
) -> None:
    session.chdir(ROOT)
    if flask3:
        session.install("-e", f"{ROOT}[test,mysqlclient]", *requirements)
    else:  # the test extra but what needs Flask 3
        wanted = [r for r in _test_extra() if not r.startswith(FLASK3_REQUIREMENTS)]
        session.install("-e", f"{ROOT}[mysqlclient]", *wanted, *requirements)
    versions = session.run(
        "python",
        "-c",
        "import importlib.metadata as m, platform, re;"
        "name = lambda n: re.sub(r'[-_.]+', '-', n).lower();"  # PEP 503's normalized name
        "installed = {name(d.metadata['Name']): d.version for d in m.distributions()};"
        f"print('Python==' + platform.python_version(), *(f'{{p}}=={{installed[name(p)]}}' "
        f"for p in {RECORDED!r} if name(p) in installed))",
        silent=True,
    )
    # Each session gets database names (and a SQLite template cache) of its own,
    # so sessions can run side by side against the same servers.
    tag = hashlib.sha1(session.name.encode()).hexdigest()[:6]
    env = {
        "TT_TEST_BACKENDS": backends,
        "TT_STATE_MACHINE_EXAMPLES": MATRIX_STATE_MACHINE_EXAMPLES,
        "CI": os.environ.get("CI", "true"),
        "TRANSACTIONAL_TESTCASE_CACHE": str(ROOT / ".nox" / f"cache-{tag}"),
        "TT_TEST_PSYCOPG2_URL": f"postgresql+psycopg2://postgres@127.0.0.1/tt_{tag}_pg2_test",
        "TT_TEST_PSYCOPG_URL": f"postgresql+psycopg://postgres@127.0.0.1/tt_{tag}_pg3_test",
        "TT_TEST_PYMYSQL_URL": f"mysql+pymysql://root@127.0.0.1/tt_{tag}_my_test",
        "TT_TEST_MYSQLCLIENT_URL": f"mysql+mysqldb://root@127.0.0.1/tt_{tag}_mc_test",
    }
    env.update({k: v for k, v in os.environ.items() if k.startswith("TT_TEST_") and k.endswith("_URL")})
    skip = tuple(dict.fromkeys(skip))  # a module may be left out for two reasons
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
        results.mkdir(parents=True, exist_ok=True)
        (results / f"{evidence_name(session.name)}.json").write_text(json.dumps(outcome))


@nox.session(python="3.11")
@nox.parametrize("sqlalchemy", SQLALCHEMY)
@nox.parametrize("flask_sqlalchemy", FLASK_SQLALCHEMY)
@nox.parametrize("flask", FLASK)
def matrix(session: nox.Session, sqlalchemy: str, flask_sqlalchemy: str, flask: str) -> None:
    """The suite (but its process plumbing) on SQLite and PostgreSQL for one combination."""
    pins = {"SQLAlchemy": sqlalchemy, "Flask-SQLAlchemy": flask_sqlalchemy, "Flask": flask}
    requirements = [f"{k}=={v}.*" for k, v in pins.items()]
    if flask.startswith("2."):
        _run_suite(
            session, "sqlite,psycopg2", requirements, skip=PROCESS_MODULES + FLASK3_MODULES, flask3=False
        )
    else:
        requirements.append(f"Flask-SQLAlchemy-Lite=={LITE_LOWEST}")
        _run_suite(session, "sqlite,psycopg2", requirements, skip=PROCESS_MODULES)


@nox.session(python="3.11")
def lowest(session: nox.Session) -> None:
    """The lowest allowed version of everything, on every backend (but the process plumbing).

    ``-- NAME==VERSION ...`` replaces some of them (a probe, kept out of the table).
    """
    pins = dict(LOWEST)
    for arg in session.posargs:
        name, _, version = arg.partition("==")
        pins[next((k for k in pins if k.lower() == name.lower()), name)] = version
    flask2 = pins["Flask"].startswith("2.")
    _run_suite(
        session,
        os.environ.get("TT_MATRIX_BACKENDS", ALL_BACKENDS),
        [f"{k}=={v}" for k, v in pins.items()],
        skip=PROCESS_MODULES + (FLASK3_MODULES if flask2 else ()),
        flask3=not flask2,
        results=PROBES if session.posargs else RESULTS,
    )


@nox.session(python=PYTHONS)
def newest(session: nox.Session) -> None:
    """The newest release of everything, with the whole suite.

    On Python 3.12 without the process plumbing: 3.11 (the main suite) and
    3.13 run it on either side of it.
    """
    _run_suite(
        session,
        os.environ.get("TT_MATRIX_BACKENDS", ALL_BACKENDS),
        ["--upgrade", "--upgrade-strategy", "eager"],
        skip=PROCESS_MODULES if session.python == "3.12" else (),
    )


if __name__ == "__main__":  # pragma: no cover
    subprocess.run(["nox", "-f", __file__], check=False)
