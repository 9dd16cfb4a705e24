"""Section 1: the per-test cost of TransactionalTestCase against the hand-written floors."""

from __future__ import annotations

import gc
import unittest

from benchmarks.backend_run import BackendRun
from benchmarks.databases import count_rows
from benchmarks.fixtures import CoreFloor, FsaFloor, Plain, make_tt_class
from benchmarks.formatting import Table, ratio_text, us, verdict
from benchmarks.measuring import class_fixture, med, run_interleaved, run_tests
from benchmarks.settings import Settings

LABELS = {
    "unittest": "unittest alone (empty TestCase)",
    "core_empty": "Core floor, empty (connect+begin+SAVEPOINT+close)",
    "core_insert": "Core floor, + one INSERT",
    "fsa_empty": "fsa_empty: minimal Flask fixture, empty test",
    "fsa_commit": "fsa_commit: minimal Flask fixture, add+commit",
    "tt_empty": "TransactionalTestCase, empty test",
    "tt_commit": "TransactionalTestCase, add+commit",
}


def measure(bench: BackendRun) -> None:
    """The 7 variants taking turns test by test; per round, each variant's median."""
    s = bench.settings
    tt = make_tt_class(bench.main_url)
    floor_app, engine = bench.floor_app()
    core = type("Core", (CoreFloor,), {"app": floor_app, "engine": engine})
    fsa = type("Fsa", (FsaFloor,), {"app": floor_app, "engine": engine})
    variants: dict[str, tuple[type[unittest.TestCase], str]] = {
        "unittest": (Plain, "test_empty"),
        "core_empty": (core, "test_empty"),
        "core_insert": (core, "test_insert"),
        "fsa_empty": (fsa, "test_empty"),
        "fsa_commit": (fsa, "test_commit"),
        "tt_empty": (tt, "test_empty"),
        "tt_commit": (tt, "test_commit"),
    }
    # Provision (migrate) once, untimed.
    with class_fixture(tt):
        run_tests(tt, "test_commit", 1, 0, "provisioning")
    rounds: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(s.s1_rounds):
        gc.collect()
        # A new TransactionalTestCase class every round (untimed), as a suite has many.
        with class_fixture(tt):
            samples = run_interleaved(variants, s.s1_tests, s.s1_warmup, f"{bench.driver} section 1")
        for name in variants:
            rounds[name].append(med(samples[name]))
        left = count_rows(bench.main_url)
        if left:
            raise SystemExit(f"{bench.driver}: {left} rows were left behind by committing tests")
    bench.results["s1"] = rounds


def render(benches: dict[str, BackendRun], settings: Settings) -> str:
    drivers = [d for d in benches if "s1" in benches[d].results]
    tbl = Table(
        "1. Per-test cost (setUp + test + cleanup through unittest's TestCase.run)",
        drivers,
        f"Median per test; per round {settings.s1_tests} timed tests of each variant after {settings.s1_warmup} "
        f"untimed, the 7 variants taking turns test by test (order rotated every test), {settings.s1_rounds} "
        "rounds, a new TransactionalTestCase class each. Ratios: median of per-round ratios [min-max]. 'net' "
        "ratios subtract unittest's own per-test cost from both sides.",
    )
    r = {d: benches[d].results["s1"] for d in drivers}

    def ratio(a: str, b: str, minus: str | None = None) -> dict[str, list[float]]:
        """Per-round ``a / b`` of each backend, ``minus`` subtracted from both sides first."""
        out = {}
        for d in drivers:
            base = r[d][minus] if minus else [0.0] * len(r[d][a])
            out[d] = [(x - z) / (y - z) for x, y, z in zip(r[d][a], r[d][b], base, strict=False)]
        return out

    def difference(a: str, b: str) -> dict[str, float]:
        """The median over rounds of ``a - b``, per backend."""
        return {d: med([x - y for x, y in zip(r[d][a], r[d][b], strict=False)]) for d in drivers}

    for v, label in LABELS.items():
        tbl.row(label, us, {d: med(r[d][v]) for d in drivers})
    tbl.blank()
    empty, commit = ratio("tt_empty", "fsa_empty"), ratio("tt_commit", "fsa_commit")
    tbl.row("tt_empty / fsa_empty", ratio_text, empty)
    tbl.row("  target <= 1.2x", verdict, {d: med(empty[d]) <= 1.2 for d in drivers})
    tbl.row("tt_commit / fsa_commit", ratio_text, commit)
    tbl.row("  target <= 1.1x", verdict, {d: med(commit[d]) <= 1.1 for d in drivers})
    tbl.row("tt_empty - fsa_empty", us, difference("tt_empty", "fsa_empty"))
    tbl.row("tt_commit - fsa_commit", us, difference("tt_commit", "fsa_commit"))
    for label, (a, b) in {
        "net: (tt_empty - unittest) / (fsa_empty - unittest)": ("tt_empty", "fsa_empty"),
        "net: (tt_commit - unittest) / (fsa_commit - unittest)": ("tt_commit", "fsa_commit"),
    }.items():
        tbl.row(label, ratio_text, ratio(a, b, "unittest"))
    for label, (a, b) in {
        "tt_empty / core_insert": ("tt_empty", "core_insert"),
        "tt_commit / core_insert": ("tt_commit", "core_insert"),
        "tt_empty / unittest alone": ("tt_empty", "unittest"),
    }.items():
        tbl.row(label, ratio_text, ratio(a, b))
    return tbl.render()
