"""Section 6: a small suite from its first run: the original (``create_all`` per test) against the library.

Four tests on the 21-table, 15-revision benchmark app, each run in a fresh
process: the original suite, the library's first run (no template: it
migrates and saves one), its second run (it clones the template) and a run
after a 16th revision was added (it starts from a clone of the template and
runs that revision alone), taking turns every round. The library's first run reports where its fixed cost went:
importing the library, its share of ``setUpClass`` (all but the app's
``create_app`` and Alembic's migrations; of it, the server's ``CREATE
DATABASE`` for the test database), ``tearDownClass``, and dropping the
databases at exit (PostgreSQL: renaming the database to its template). The
database driver is imported before any of it is timed: every process using
the driver pays for that import, the original's too.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import typing as t

from benchmarks import servers
from benchmarks.backend_run import BackendRun
from benchmarks.databases import drop_templates
from benchmarks.formatting import Table, ms, ratio_text, secs, verdict
from benchmarks.generated_suites import SMALL_LIBRARY_MODULE, SMALL_ORIGINAL_MODULE
from benchmarks.measuring import med, pc, run_script
from benchmarks.schema import MIGRATIONS_DIR
from benchmarks.settings import Settings
from benchmarks.workspace import WORK, child_env, library_folder

#: The library's own share of a first run's fixed cost, at most (seconds): SQLite, then the servers.
TARGETS = {"sqlite": 0.100, "server": 0.300}


def one_round(bench: BackendRun, repeat: int, cleanups: list[t.Callable[[], None]]) -> dict[str, t.Any]:
    """The original, the library's first run, its second run: each a fresh process.

    What the round leaves (the original's database, the template, the cache)
    is dropped by ``cleanups`` after the last round, not between the runs: a
    server whose file system makes files slowly right after others were
    deleted (ext4 without a journal, as here) would otherwise time the
    harness's own drops into the library's ``CREATE DATABASE``.
    """
    modules = {}
    for name, text in (("small_original", SMALL_ORIGINAL_MODULE), ("small_library", SMALL_LIBRARY_MODULE)):
        modules[name] = os.path.join(WORK, f"{name}.py")
        with open(modules[name], "w") as f:
            f.write(text)
    url = bench.url(f"tt_bench_small{repeat}_{{d}}_test")
    original_url = bench.url(f"tt_bench_small{repeat}_original_{{d}}_test")
    cache = tempfile.mkdtemp(prefix="cache_", dir=WORK)
    for each in (url, original_url):
        for cleanup in (
            functools.partial(servers.drop_database, each),
            functools.partial(drop_templates, each),
        ):
            cleanup()  # what an interrupted earlier run left
            cleanups.append(cleanup)
    cleanups.append(functools.partial(shutil.rmtree, cache, ignore_errors=True))
    # The library's runs use a copy of the migrations, to which the last run adds a revision.
    migrations = os.path.join(WORK, f"migrations_{bench.driver}_{repeat}")
    shutil.rmtree(migrations, ignore_errors=True)
    shutil.copytree(MIGRATIONS_DIR, migrations)
    cleanups.append(functools.partial(shutil.rmtree, migrations, ignore_errors=True))
    out = os.path.join(WORK, f"small_{bench.driver}_{repeat}.json")
    started = pc()
    servers.create_database(original_url)  # the original suite expects its database to exist
    control = pc() - started  # the server's CREATE DATABASE, as the harness sees it
    original = run_script(
        modules["small_original"],
        bytecode_cached(child_env(BENCH_URL=original_url)),
        WORK,
        "small suite, original",
    )
    # Templates kept, as a user's runs keep them (this run's own setting is
    # 0): else the second run would migrate again instead of cloning.
    env = bytecode_cached(
        child_env(
            BENCH_URL=url,
            BENCH_OUT=out,
            TRANSACTIONAL_TESTCASE_CACHE=cache,
            TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES="1",
            BENCH_MIGRATIONS=migrations,
        )
    )
    first = run_script(modules["small_library"], env, WORK, "small suite, first run")
    with open(out) as f:
        times = json.load(f)
    measured = times.pop("library")
    if os.path.realpath(measured) != os.path.realpath(library_folder()):
        raise SystemExit(f"the small suite measured the library in {measured}, not {library_folder()}")
    second = run_script(modules["small_library"], env, WORK, "small suite, second run")
    with open(os.path.join(migrations, "versions", "0016_added.py"), "w") as f:
        f.write(ADDED_REVISION)
    added = run_script(modules["small_library"], env, WORK, "small suite, a revision added")
    with open(out) as f:
        added_times = json.load(f)
    if not added_times["started_from_template"]:
        raise SystemExit("the run after a revision was added did not start from the earlier template")
    own = (
        times["import_library"]
        + times["setup_class"]
        - times["create_app"]
        - times["migrate"]
        + times["teardown_class"]
        + times["exit"]
    )
    return {
        "original": original,
        "first": first,
        "second": second,
        "added": added,
        "added_migrate": added_times["migrate"],
        "own": own,
        "control_create_database": control,
        **times,
    }


#: The revision added before the fourth run: one table more.
ADDED_REVISION = '''"""added

Revision ID: 0016_added
Revises: 0015_batch_alters
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_added"
down_revision = "0015_batch_alters"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("added", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)))


def downgrade():
    op.drop_table("added")
'''


def bytecode_cached(env: dict[str, str]) -> dict[str, str]:
    """``env`` with Python's bytecode cache on, in a folder of the run's own, filled before timing.

    As a user's processes run: pip compiles what it installs, a checkout's
    first import writes ``__pycache__``. An environment that turns the cache off
    (``PYTHONDONTWRITEBYTECODE``, as some containers do) would otherwise make
    every process compile the library, the app and Flask from source.
    """
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = os.path.join(WORK, "pycache")
    return env


@functools.cache
def _fill_bytecode_cache() -> None:
    """Import, untimed, what the small suites import, so that no round compiles it (once a run)."""
    script = os.path.join(WORK, "fill_bytecode_cache.py")
    with open(script, "w") as f:
        f.write(
            "import contextlib, importlib, pkgutil\n"
            "import alembic.command, benchmarks.schema, transactional_testcase\n"
            "for m in pkgutil.walk_packages(transactional_testcase.__path__, 'transactional_testcase.'):\n"
            "    with contextlib.suppress(Exception):  # an optional dependency missing\n"
            "        importlib.import_module(m.name)\n"
        )
    run_script(script, bytecode_cached(child_env()), WORK, "filling the bytecode cache")


def measure(bench: BackendRun) -> None:
    _fill_bytecode_cache()
    cleanups: list[t.Callable[[], None]] = []
    try:
        bench.results["s6_small"] = [one_round(bench, i, cleanups) for i in range(bench.settings.s6_rounds)]
    finally:
        for cleanup in cleanups:
            cleanup()


def render(benches: dict[str, BackendRun], settings: Settings) -> str:
    drivers = [d for d in benches if "s6_small" in benches[d].results]
    rounds = {d: benches[d].results["s6_small"] for d in drivers}
    tbl = Table(
        "6. A small suite from its first run: four tests, each a fresh process",
        drivers,
        f"Median of {settings.s6_rounds} round(s), the four runs taking turns. The original makes the 21 "
        "tables with create_all() and drops them around every test; the library's first run migrates "
        "(15 revisions) and saves a template (PostgreSQL: renames its database to it at exit), its second "
        "run clones it; then a 16th revision is added, and the next run starts from a clone of that "
        "template and runs it alone. 'library's own' is its fixed "
        "cost: importing it, setUpClass less the app's create_app and Alembic's migrations, "
        "tearDownClass and dropping the databases at exit. Python's bytecode cache is on, filled "
        "before the first round, as pip leaves it.",
    )

    def median(key: str) -> dict[str, float]:
        return {d: med([r[key] for r in rounds[d]]) for d in drivers}

    tbl.row("original (create_all/drop_all per test), whole process", secs, median("original"))
    tbl.row("library, first run, whole process", secs, median("first"))
    tbl.row("library, second run, whole process", secs, median("second"))
    tbl.row("library, a revision added since, whole process", secs, median("added"))
    tbl.row("first run: Alembic's migrations", ms, median("migrate"))
    tbl.row("a revision added: Alembic's migrations", ms, median("added_migrate"))
    tbl.row("first run: the library's own fixed cost", ms, median("own"))
    tbl.row("  importing the library", ms, median("import_library"))
    tbl.row(
        "  setUpClass less create_app and migrations",
        ms,
        {d: med([r["setup_class"] - r["create_app"] - r["migrate"] for r in rounds[d]]) for d in drivers},
    )
    tbl.row("    of which the server's CREATE DATABASE", ms, median("create_database"))
    tbl.row(
        "  (control: the harness's CREATE DATABASE of the original's)", ms, median("control_create_database")
    )
    tbl.row(
        "  tearDownClass + dropping at exit",
        ms,
        {d: med([r["teardown_class"] + r["exit"] for r in rounds[d]]) for d in drivers},
    )
    own = median("own")
    tbl.row(
        "  target <= 100 ms (SQLite), 300 ms (servers)",
        verdict,
        {d: own[d] <= TARGETS["sqlite" if benches[d].family == "sqlite" else "server"] for d in drivers},
    )
    ratios = {d: [r["second"] / r["original"] for r in rounds[d]] for d in drivers}
    tbl.add("second run / original", {d: ratio_text(ratios[d]) for d in drivers})
    tbl.row("  target < 1 (the second run is faster)", verdict, {d: med(ratios[d]) < 1 for d in drivers})
    return tbl.render()
