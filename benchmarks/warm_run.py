"""Section 3c: a cold run and a warm second run of one class in fresh processes (keepdb)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import typing as t

from benchmarks import servers
from benchmarks.backend_run import BackendRun
from benchmarks.databases import drop_templates
from benchmarks.formatting import Table, ms, ms2, percent, verdict
from benchmarks.generated_suites import WARM_MODULE
from benchmarks.measuring import med, run_script
from benchmarks.settings import Settings
from benchmarks.workspace import WORK, child_env


def warm_pair(bench: BackendRun, repeat: int) -> dict[str, t.Any]:
    """The same one-class module run twice in fresh processes with TRANSACTIONAL_TESTCASE_KEEPDB=1."""
    url = bench.url(f"tt_bench_warm{repeat}_{{d}}_test")
    servers.drop_database(url)
    drop_templates(url)
    cache = tempfile.mkdtemp(prefix="cache_", dir=WORK)
    module = os.path.join(WORK, "warm_case.py")
    with open(module, "w") as f:
        f.write(WARM_MODULE)
    runs = []
    for run in range(2):
        out = os.path.join(WORK, f"warm_{bench.driver}_{repeat}_{run}.json")
        env = child_env(
            TRANSACTIONAL_TESTCASE_KEEPDB="1",
            TRANSACTIONAL_TESTCASE_CACHE=cache,
            TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES="0",
            BENCH_URL=url,
            BENCH_OUT=out,
        )
        wall = run_script(module, env, WORK, f"{bench.driver}: warm run")
        with open(out) as f:
            data = json.load(f)
        data["wall"] = wall
        runs.append(data)
    servers.drop_database(url)  # kept on purpose by the runs
    drop_templates(url)
    shutil.rmtree(cache, ignore_errors=True)
    if (runs[0]["how"], runs[1]["how"]) != ("build", "keep"):
        raise SystemExit(f"{bench.driver}: warm pair provisioned by {runs[0]['how']}, {runs[1]['how']}")
    return {"cold": runs[0], "warm": runs[1]}


def measure(bench: BackendRun) -> None:
    bench.results["s3_warm"] = [warm_pair(bench, i) for i in range(bench.settings.s3_warm_pairs)]


def render(benches: dict[str, BackendRun], settings: Settings) -> str:
    drivers = [d for d in benches if "s3_warm" in benches[d].results]
    w = {d: benches[d].results["s3_warm"] for d in drivers}
    tbl = Table(
        "3c. Warm second run: one class, a fresh process twice, TRANSACTIONAL_TESTCASE_KEEPDB=1",
        drivers,
        f"Median of {settings.s3_warm_pairs} pair(s). Run 1 migrates (no template, no kept database); "
        "run 2 finds the kept database with a matching fingerprint. The dialect and driver are imported "
        "before timing (a cost of any process). The rest of setUpClass is the library's: checks, the "
        "schema fingerprint (hashing the migration files), provisioning (reading the kept database's "
        "fingerprint through the app's engine: its first connection), the session redirect.",
    )

    def median(run: str, key: str) -> dict[str, float]:
        """The median over pairs of ``key`` of run ``cold`` or ``warm``, per backend."""
        return {d: med([p[run][key] for p in w[d]]) for d in drivers}

    tbl.row("run 1 setUpClass (cold)", ms, median("cold", "setup_class"))
    tbl.row("run 1   of which provisioning (ensure)", ms, median("cold", "ensure"))
    tbl.row("run 1   of which the app's create_app", ms2, median("cold", "create_app"))
    tbl.row("run 2 setUpClass (warm)", ms2, median("warm", "setup_class"))
    tbl.row("run 2   of which the app's create_app", ms2, median("warm", "create_app"))
    tbl.row("run 2   of which provisioning (ensure)", ms2, median("warm", "ensure"))
    cold_wall, warm_wall = median("cold", "wall"), median("warm", "wall")
    tbl.add(
        "whole process, run 1 / run 2",
        {d: f"{cold_wall[d]:.2f} s / {warm_wall[d]:.2f} s" for d in drivers},
    )
    # The target is the issue's: the warm run's provisioning against the cold run's. The whole
    # setUpClass (the app's own create_app included) is shown too.
    pct = {d: med([p["warm"]["ensure"] / p["cold"]["ensure"] for p in w[d]]) for d in drivers}
    tbl.row("warm provisioning / cold provisioning", percent, pct)
    tbl.row("  target <= 5%", verdict, {d: v <= 0.05 for d, v in pct.items()})
    whole = {d: med([p["warm"]["setup_class"] / p["cold"]["setup_class"] for p in w[d]]) for d in drivers}
    tbl.row("warm setUpClass / cold setUpClass", percent, whole)
    return tbl.render()
