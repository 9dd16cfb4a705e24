"""Section 3b: what a class costs: 50 TransactionalTestCase classes run as one unittest suite.

Twice per repeat: classes sharing their base class's ``create_app``, and
classes that each define their own (a new function calling the same project
factory, as a factory per test module does).
"""

from __future__ import annotations

import gc
import tracemalloc
import typing as t
import unittest

from benchmarks import servers
from benchmarks.backend_run import BackendRun
from benchmarks.databases import drop_templates
from benchmarks.fixtures import MIGRATIONS
from benchmarks.formatting import Table, ms, ms2, verdict
from benchmarks.measuring import BenchResult, med, pc
from benchmarks.schema import create_app
from benchmarks.settings import Settings
from transactional_testcase import TransactionalTestCase
from transactional_testcase import provisioning as tt_provisioning


def fifty_classes(
    bench: BackendRun, repeat: int, n: int = 50, trace_memory: bool = False, own_factory: bool = False
) -> dict[str, t.Any]:
    """n TransactionalTestCase classes of one empty test each, through a unittest suite.

    ``trace_memory``: a separate, untimed repeat under tracemalloc that
    measures what the classes after the tenth leave allocated (after full
    collections), divided by their number.
    """
    url = bench.url(f"tt_bench_cls{'own' if own_factory else ''}{repeat}_{{d}}_test")
    servers.drop_database(url)
    drop_templates(url)  # cold: this run must migrate once
    spans: dict[int, dict[str, float]] = {}

    class Base(TransactionalTestCase):
        """What a suite's classes share, as in a real suite: the factory and the settings."""

        database_url = url
        alembic_config = MIGRATIONS

        @classmethod
        def create_app(cls, config: dict[str, t.Any]) -> t.Any:
            t0 = pc()
            app = create_app(config)
            factory_times.append(pc() - t0)
            return app

    factory_times: list[float] = []
    memory: dict[int, int] = {}

    def make(i: int) -> type[TransactionalTestCase]:
        def setUpClass(cls: type[TransactionalTestCase]) -> None:
            spans[i] = {"start": pc()}
            super(klass, cls).setUpClass()
            spans[i]["setup"] = pc() - spans[i]["start"]

        def tearDownClass(cls: type[TransactionalTestCase]) -> None:
            t0 = pc()
            super(klass, cls).tearDownClass()
            spans[i]["teardown"] = pc() - t0
            spans[i]["end"] = pc()
            if trace_memory and i in (9, n - 1):
                for _ in range(3):  # cycles take more than one pass
                    gc.collect()
                memory[i] = tracemalloc.get_traced_memory()[0]

        def test_empty(self: TransactionalTestCase) -> None:
            pass

        def own_create_app(cls: type, config: dict[str, t.Any]) -> t.Any:
            t0 = pc()
            app = create_app(config)
            factory_times.append(pc() - t0)
            return app

        own = {"create_app": classmethod(own_create_app)} if own_factory else {}

        klass = type(
            f"Class{i:02d}",
            (Base,),
            {
                "setUpClass": classmethod(setUpClass),
                "tearDownClass": classmethod(tearDownClass),
                "test_empty": test_empty,
                "__module__": __name__,
                **own,
            },
        )
        return klass

    classes = [make(i) for i in range(n)]
    loader = unittest.TestLoader()
    suite = unittest.TestSuite(loader.loadTestsFromTestCase(c) for c in classes)
    stats_before = dict(tt_provisioning.provisioner.stats)
    result = BenchResult()
    gc.collect()
    if trace_memory:
        tracemalloc.start()
    t0 = pc()
    try:
        suite.run(result)
    finally:
        if trace_memory:
            tracemalloc.stop()
    total = pc() - t0
    result.check(f"{bench.driver} 50 classes")
    if result.testsRun != n:
        raise SystemExit(f"{bench.driver}: 50 classes ran {result.testsRun} tests")
    stats = {k: v - stats_before.get(k, 0) for k, v in tt_provisioning.provisioner.stats.items()}
    first = spans[0]["end"] - spans[0]["start"]
    rest = [spans[i]["end"] - spans[i]["start"] for i in range(1, n)]
    return {
        "total": total,
        "first_class": first,
        "first_setup": spans[0]["setup"],
        "per_class": (total - first) / (n - 1),
        "setup_rest": med([spans[i]["setup"] for i in range(1, n)]),
        "teardown_rest": med([spans[i]["teardown"] for i in range(1, n)]),
        "factory_rest": med(factory_times[1:]),
        "class_rest": med(rest),
        "stats": stats,
        "memory": (memory[n - 1] - memory[9]) / (n - 10) if trace_memory else None,
    }


def measure(bench: BackendRun) -> None:
    """The timed repeats, then one more under tracemalloc for the memory a class leaves."""
    repeats = bench.settings.s3_class_repeats
    shared, own = [], []
    for i in range(repeats):  # the two kinds take turns
        shared.append(fifty_classes(bench, i))
        own.append(fifty_classes(bench, i, own_factory=True))
    bench.results["s3_classes"], bench.results["s3_classes_own"] = shared, own
    bench.results["s3_memory"] = fifty_classes(bench, repeats, trace_memory=True)["memory"]


def render(benches: dict[str, BackendRun], settings: Settings) -> str:
    drivers = [d for d in benches if "s3_classes" in benches[d].results]
    c = {d: benches[d].results["s3_classes"] for d in drivers}
    reps = settings.s3_class_repeats
    tbl = Table(
        "3b. 50 TransactionalTestCase classes of one empty test each, one process (unittest suite)",
        drivers,
        f"Cold start (no template); median of {reps} repeat(s). 'per class after the first' = "
        "(suite total - first class) / 49: create_app, provisioner reuse, the previous class's engines "
        "taken over (their idle connections checked), the test, teardown, and any garbage collection "
        "that falls in the suite; the median class shows it without the slowest classes.",
    )

    def median(key: str) -> dict[str, float]:
        """The median over repeats of ``key``, per backend."""
        return {d: med([x[key] for x in c[d]]) for d in drivers}

    tbl.row("suite total", ms, median("total"))
    tbl.row("first class (migrates: build + template)", ms, median("first_class"))
    tbl.row("per class after the first", ms2, median("per_class"))
    tbl.row("  a class, start to end (median, classes 2-50)", ms2, median("class_rest"))
    tbl.row("  setUpClass (median, classes 2-50)", ms2, median("setup_rest"))
    tbl.row("    of which the app's create_app (median)", ms2, median("factory_rest"))
    tbl.row("  tearDownClass (median, classes 2-50)", ms2, median("teardown_rest"))
    own = {d: med([x["per_class"] for x in benches[d].results["s3_classes_own"]]) for d in drivers}
    own_class = {d: med([x["class_rest"] for x in benches[d].results["s3_classes_own"]]) for d in drivers}
    tbl.row("per class after the first, each class its own create_app", ms2, own)
    tbl.row("  a class, start to end (median, classes 2-50)", ms2, own_class)
    tbl.add(
        "  own create_app / shared (per class after the first)",
        {d: f"{own[d] / median('per_class')[d]:.2f}x" for d in drivers},
    )
    tbl.add(
        "memory left per class (classes 11-50, tracemalloc)",
        {d: f"{benches[d].results['s3_memory'] / 1024:.1f} KiB" for d in drivers},
    )
    tbl.add(
        "provisioner: builds / reuses (per repeat)",
        {d: ", ".join(f"{x['stats']['build']}/{x['stats']['reuse']}" for x in c[d]) for d in drivers},
    )
    per_class = median("per_class")
    tbl.row(
        "target: one upgrade + <= 5 ms per class",
        verdict,
        {d: all(x["stats"]["build"] == 1 for x in c[d]) and per_class[d] <= 0.005 for d in drivers},
    )
    tbl.row(
        "target: <= 5 ms per class with its own create_app",
        verdict,
        {d: own[d] <= 0.005 for d in drivers},
    )
    return tbl.render()
