"""Section 2: committing tests against per-test alternatives (drop_all + create_all, TRUNCATE, DELETE)."""

from __future__ import annotations

import contextlib
import gc
import unittest

from benchmarks import servers
from benchmarks.backend_run import BackendRun
from benchmarks.fixtures import CoreFloor, DropCreate, FsaFloor, ResetTables, make_tt_class, reset_statements
from benchmarks.formatting import Table, ms2, ratio_text, verdict
from benchmarks.measuring import class_fixture, med, ratios, rotated, run_tests
from benchmarks.schema import db
from benchmarks.settings import Settings
from transactional_testcase import TransactionalTestCase

LABELS = {
    "tt_commit": "TransactionalTestCase, add+commit",
    "fsa_commit": "fsa_commit: minimal Flask fixture, add+commit",
    "core_insert": "Core floor, one INSERT",
    "delete_all": "DELETE FROM all 21 tables",
    "truncate": "TRUNCATE all 21 tables",
    "drop_create": "drop_all() + create_all()",
}
#: drop_create / tt_commit must reach this, per database family.
TARGETS = {"sqlite": 30.0, "postgresql": 150.0, "mysql": 250.0}


def measure(bench: BackendRun) -> None:
    """Interleaved blocks of each variant, the order of the blocks rotated every round."""
    s = bench.settings
    tt = make_tt_class(bench.main_url, "BenchTT2")
    floor_app, engine = bench.floor_app()
    core = type("Core2", (CoreFloor,), {"app": floor_app, "engine": engine})
    fsa = type("Fsa2", (FsaFloor,), {"app": floor_app, "engine": engine})
    servers.create_database(bench.alt_url)
    alt_app = bench.app(bench.alt_url)
    # Each variant: its class, its test and the tables its block starts from (None: the library's).
    variants: dict[str, tuple[type[unittest.TestCase], str, str | None]] = {
        "tt_commit": (tt, "test_commit", None),
        "fsa_commit": (fsa, "test_commit", None),
        "core_insert": (core, "test_insert", None),
        "drop_create": (type("DC", (DropCreate,), {"app": alt_app}), "test_commit", "absent"),
        "truncate": (
            type(
                "TR",
                (ResetTables,),
                {"app": alt_app, "reset_statements": reset_statements(bench.family, "truncate")},
            ),
            "test_commit",
            "present",
        ),
    }
    if bench.family != "sqlite":  # on SQLite "truncate" already is DELETE FROM every table
        variants["delete_all"] = (
            type(
                "DA",
                (ResetTables,),
                {"app": alt_app, "reset_statements": reset_statements(bench.family, "delete")},
            ),
            "test_commit",
            "present",
        )
    rounds: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(s.s2_rounds):
        for name in rotated(list(variants), r):
            cls, method, tables = variants[name]
            if tables is not None:  # untimed: the state the block starts from
                with alt_app.app_context():
                    if tables == "absent":
                        db.drop_all()
                    else:
                        db.create_all()
            fixture = (
                class_fixture(cls) if issubclass(cls, TransactionalTestCase) else contextlib.nullcontext()
            )
            warmup = 5 if tables is None else 1
            gc.collect()
            with fixture:
                samples = run_tests(cls, method, s.s2_tests[name], warmup, f"{bench.driver} {name}")
            rounds[name].append(med(samples))
    with alt_app.app_context():
        db.drop_all()
        db.engine.dispose()
    servers.drop_database(bench.alt_url)
    bench.results["s2"] = rounds


def render(benches: dict[str, BackendRun], settings: Settings) -> str:
    drivers = [d for d in benches if "s2" in benches[d].results]
    n = settings.s2_tests
    tbl = Table(
        "2. Against per-test alternatives (each test commits one row; ms per test)",
        drivers,
        f"Interleaved blocks, {settings.s2_rounds} rounds; tests per block: "
        + ", ".join(f"{k} {v}" for k, v in n.items())
        + ". Ratios: per-round ratio to TransactionalTestCase's committing test (tt_commit). On SQLite "
        "'TRUNCATE' is DELETE FROM every table; PostgreSQL: one TRUNCATE ... RESTART IDENTITY CASCADE; "
        "MariaDB: FOREIGN_KEY_CHECKS=0 + TRUNCATE TABLE each.",
    )
    r = {d: benches[d].results["s2"] for d in drivers}

    def ratio(a: str, b: str) -> dict[str, list[float]]:
        """Per-round ``a / b`` of each backend that measured ``a``."""
        return {d: ratios(r[d][a], r[d][b]) for d in drivers if a in r[d]}

    for v, label in LABELS.items():
        tbl.row(label, ms2, {d: med(r[d][v]) for d in drivers if v in r[d]})
    tbl.blank()
    for v in ("delete_all", "truncate", "drop_create"):
        values = ratio(v, "tt_commit")
        tbl.row(f"{v} / tt_commit", ratio_text, values)
        if v == "drop_create":
            tbl.row(
                "  target >= 30x SQLite, 150x PG, 250x MariaDB",
                verdict,
                {d: med(x) >= TARGETS[benches[d].family] for d, x in values.items()},
            )
    # What the minimal fixture reaches on this machine: no transactional test
    # can do its add+commit in fewer round trips, so a target above this ratio
    # is out of any library's reach here.
    tbl.row(
        "drop_create / fsa_commit (the floor's own ratio)", ratio_text, ratio("drop_create", "fsa_commit")
    )
    tbl.row("tt_commit / fsa_commit", ratio_text, ratio("tt_commit", "fsa_commit"))
    tbl.row("drop_create / core_insert", ratio_text, ratio("drop_create", "core_insert"))
    return tbl.render()
