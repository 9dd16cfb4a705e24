"""Benchmarks of transactional_testcase against its floors and its alternatives, in one run.

    python benchmarks/run.py [--backends sqlite,psycopg2,psycopg,pymysql] [--quick]
                             [--sections 1,2,3,4,5,6] [--profile]
    python -m benchmarks [the same options]

Every figure is measured in this run, on the 21-table, 15-migration app of
``benchmarks/schema``: variants are interleaved in blocks whose order rotates
every round, each block reports the median of its samples, and every ratio is
the median over rounds of the per-round ratio (its range over rounds in
brackets). Sections:

1. per-test cost of ``TransactionalTestCase`` (an empty test; a test that adds
   and commits one row through ``db.session``) against hand-written minimal
   fixtures run through the same unittest machinery: ``fsa_empty`` /
   ``fsa_commit`` (connect + begin + app context + a create_savepoint session in
   ``db.session``'s registry) and the Core floor (connect + begin + SAVEPOINT +
   INSERT + close);
2. against per-test alternatives: ``drop_all()`` + ``create_all()`` and
   TRUNCATE of every table (plus DELETE FROM every table);
3. provisioning: empty database, fresh database + ``upgrade head``, the
   library's cold build, template clone, kept database and in-process reuse;
   50 classes in one process; a warm second run with ``TRANSACTIONAL_TESTCASE_KEEPDB=1``;
4. one 400-test suite under pytest with no workers and with 2 (pytest-xdist),
   next to a CPU-bound control suite that shows what the machine allows;
5. the pytest plugin's cost to a run that does not use it: one trivial test
   with the plugin and with ``-p no:transactional_testcase`` (no database).

Every database it creates is named ``tt_bench_*_test`` (or is a library
template, ``tt_tpl_*_test``) and is dropped before it exits; SQLite files and
templates live in a temporary folder (``TRANSACTIONAL_TESTCASE_CACHE`` points
there). See ``benchmarks/README.rst`` (its Layout names the module of each section).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import glob
import importlib.metadata
import os
import platform
import shutil
import signal
import sys
import time
from collections.abc import Callable

import transactional_testcase
from benchmarks import (
    alternatives,
    class_costs,
    per_test,
    plugin_cost,
    provisioning,
    servers,
    small_suite,
    warm_run,
    workers,
    workspace,
)
from benchmarks.backend_run import BackendRun
from benchmarks.fixtures import MIGRATIONS, make_tt_class
from benchmarks.measuring import class_fixture
from benchmarks.profiling import profile
from benchmarks.schema import db
from benchmarks.settings import Settings
from benchmarks.workspace import WORK


def measure_provisioning(bench: BackendRun) -> None:
    """Section 3: one database (3a), 50 classes in one process (3b), a warm second run (3c)."""
    provisioning.measure(bench)
    class_costs.measure(bench)
    warm_run.measure(bench)


def render_provisioning(benches: dict[str, BackendRun], settings: Settings) -> str:
    """Section 3's three tables, a blank line between them."""
    parts = (provisioning.render, class_costs.render, warm_run.render)
    return "\n\n".join(render(benches, settings) for render in parts)


#: A section's measurement on one backend (it fills ``bench.results``).
Measure = Callable[[BackendRun], None]
#: A section's table over every backend that measured it.
Render = Callable[[dict[str, BackendRun], Settings], str]
#: Every section, by number, in the order they run and print.
SECTIONS: dict[int, tuple[Measure, Render]] = {
    1: (per_test.measure, per_test.render),
    2: (alternatives.measure, alternatives.render),
    3: (measure_provisioning, render_provisioning),
    4: (workers.measure, workers.render),
    5: (plugin_cost.measure, plugin_cost.render),
    6: (small_suite.measure, small_suite.render),
}


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_info(drivers: list[str]) -> list[str]:
    """The report's header lines: the machine, the versions of Python and the stack, the servers."""

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    packages = [
        "Flask",
        "Flask-SQLAlchemy",
        "SQLAlchemy",
        "alembic",
        "Flask-Migrate",
        "psycopg2-binary",
        "psycopg",
        "PyMySQL",
        "mysqlclient",
        "pytest",
        "pytest-xdist",
    ]
    lines = [
        (
            f"machine: {platform.node()}, {platform.system()} {platform.release()}, {cpu}, "
            f"{os.cpu_count()} cores ({affinity} usable), load average {os.getloadavg()[0]:.2f} at start"
        ),
        f"python {platform.python_version()}; transactional_testcase {transactional_testcase.__version__}"
        f" ({workspace.library_folder()}); " + ", ".join(f"{p} {version(p)}" for p in packages),
        "servers: " + "; ".join(f"{servers.TITLES[d]}: {servers.server_version(d)}" for d in drivers),
    ]
    return lines


def main(command: str = "benchmarks/run.py", prog: str | None = None) -> int:
    """Run the benchmark; ``command`` is how the report's header names it."""
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--backends",
        default="sqlite,psycopg2,psycopg,pymysql",
        help="comma-separated: sqlite, psycopg2, psycopg, pymysql, mysqlclient",
    )
    parser.add_argument("--quick", action="store_true", help="a short run (CI smoke test)")
    parser.add_argument("--sections", default="1,2,3,4,5,6", help="which sections to run")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of the benchmark, profile the per-test path on each backend",
    )
    args = parser.parse_args()
    # A terminated run still drops what it created (the finally blocks below).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    settings = Settings.make(args.quick)
    sections = {int(x) for x in args.sections.split(",") if x.strip()}
    drivers = [d.strip() for d in args.backends.split(",") if d.strip()]
    for d in drivers:
        servers.server_url(d)  # unknown names fail here
    started = time.monotonic()

    available, skipped = [], {}
    for d in drivers:
        why = servers.unreachable(d)
        if why:
            skipped[d] = why
        else:
            available.append(d)

    print(f"transactional_testcase benchmarks, {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print("command: python " + " ".join([command, *sys.argv[1:]]))
    for line in machine_info(available):
        print(line)
    print(
        f"schema: {len(db.metadata.tables)} tables, "
        f"{sum(len(tb.foreign_key_constraints) for tb in db.metadata.tables.values())} foreign keys, "
        f"{len(glob.glob(os.path.join(MIGRATIONS, 'versions', '*.py')))} Alembic revisions "
        f"({'quick' if args.quick else 'full'} run)"
    )
    for d, why in skipped.items():
        print(f"SKIPPED {servers.TITLES[d]}: {why}")
    print(flush=True)

    benches: dict[str, BackendRun] = {}
    try:
        for d in available:
            bench = benches[d] = BackendRun(d, settings)
            try:
                if args.profile:
                    with class_fixture(make_tt_class(bench.main_url, "Warm")):
                        pass
                    print(profile(bench))
                    continue
                for number, (measure, _) in SECTIONS.items():
                    if number in sections:
                        t0 = time.monotonic()
                        progress(f"{d}: section {number}...")
                        measure(bench)
                        progress(f"{d}: section {number} done in {time.monotonic() - t0:.0f} s")
            finally:
                bench.cleanup()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
    if args.profile:
        return 0

    for number, (_, render) in SECTIONS.items():
        if number in sections and benches:
            print(render(benches, settings))
            print()
    print(f"load average at end {os.getloadavg()[0]:.2f}; total time {time.monotonic() - started:.0f} s")
    return 0
