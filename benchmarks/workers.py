"""Section 4: one 400-test suite under pytest with 0, 1 and 2 xdist workers, and a CPU-bound control."""

from __future__ import annotations

import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import typing as t

from benchmarks import servers
from benchmarks.backend_run import BackendRun
from benchmarks.databases import BenchProvisioner, drop_templates, provision
from benchmarks.formatting import Table, ratio_text, secs, verdict
from benchmarks.generated_suites import CONTROL_MODULE, SUITE_MODULE
from benchmarks.measuring import med, ratios, rotated
from benchmarks.settings import Settings
from benchmarks.workspace import WORK, child_env

#: pytest-xdist's options for one and for two workers.
N1 = ["-n", "1", "--dist", "loadscope"]
N2 = ["-n", "2", "--dist", "loadscope"]


def measure(bench: BackendRun) -> None:
    """Every mode once per round, the order rotated every round; every run clones the template."""
    s = bench.settings
    url = bench.url("tt_bench_suite_{d}_test")
    folder = os.path.join(WORK, f"suite_{bench.driver}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "test_bench_suite.py"), "w") as f:
        f.write(SUITE_MODULE)
    with open(os.path.join(folder, "test_cpu_control.py"), "w") as f:
        f.write(CONTROL_MODULE)
    # Untimed: build the template (in-process), so that every run below clones it.
    drop_templates(url)
    provision(url, BenchProvisioner())
    servers.drop_database(url)
    modes = {
        "n0": (["-n", "0"], "test_bench_suite.py"),
        "n1": (N1, "test_bench_suite.py"),
        "n2": (N2, "test_bench_suite.py"),
    }
    if s.s4_control:
        modes.update({"c1": (N1, "test_cpu_control.py"), "c2": (N2, "test_cpu_control.py")})
    runs: dict[str, list[dict[str, t.Any]]] = {m: [] for m in modes}
    for r in range(s.s4_rounds):
        for mode in rotated(list(modes), r):
            runs[mode].append(run_pytest(bench.driver, folder, url, *modes[mode]))
    drop_templates(url)
    bench.results["s4"] = runs


def run_pytest(driver: str, folder: str, url: str, args: list[str], module: str) -> dict[str, t.Any]:
    """One pytest command over ``module``: its wall and CPU time, and the phases its processes recorded."""
    out = tempfile.mkdtemp(prefix="phase_", dir=WORK)
    # Only xdist: other installed plugins (hypothesis, Faker, pytest-benchmark...) would add
    # their own startup and per-test costs to what is measured.
    env = child_env(
        BENCH_URL=url,
        BENCH_OUT=out,
        TRANSACTIONAL_TESTCASE_KEEP_TEMPLATES="1",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
    )
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "xdist.plugin",
        *args,
        module,
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    proc = subprocess.run(argv, check=False, env=env, cwd=folder, capture_output=True, text=True, timeout=600)
    t1 = time.monotonic()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(
            f"{driver}: {' '.join(argv[2:])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    phases = []
    for path in glob.glob(os.path.join(out, "phase-*.json")):
        with open(path) as f:
            phases.append(json.load(f))
    shutil.rmtree(out, ignore_errors=True)
    tests = sum(p["tests"] for p in phases)
    if tests != 400:
        raise SystemExit(f"{driver}: {' '.join(argv[2:])} ran {tests} tests, not 400")
    start, end = min(p["start"] for p in phases), max(p["end"] for p in phases)
    return {
        "wall": t1 - t0,
        "phase": end - start,
        "startup": start - t0,
        "tail": t1 - end,
        "cpu": cpu,
        "workers": sorted(
            (p["end"] - p["start"], p["tests"], p["setup"], p["cpu_end"] - p["cpu_start"]) for p in phases
        ),
        "phase_cpu": sum(p["cpu_end"] - p["cpu_start"] for p in phases),
    }


def render(benches: dict[str, BackendRun], settings: Settings) -> str:
    drivers = [d for d in benches if "s4" in benches[d].results]
    r = {d: benches[d].results["s4"] for d in drivers}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    tbl = Table(
        "4. One 400-test suite (20 classes x 20 ORM tests) under pytest: 1 and 2 xdist workers",
        drivers,
        f"`python -m pytest -n 1 --dist loadscope` vs `-n 2 --dist loadscope`, and `-n 0` (no xdist) for "
        f"reference (PYTEST_DISABLE_PLUGIN_AUTOLOAD=1, -p xdist.plugin), {settings.s4_rounds} round(s), "
        "median. 'test phase' = first setUpClass to last tearDownClass over all workers (includes cloning "
        "each worker's database); 'startup' = command start to the first setUpClass (interpreter, "
        "imports, collection, xdist workers). The control suite (full runs only) runs the same way in the "
        "same rounds: 400 CPU-bound tests without a database, the speedup this machine allows right now "
        f"({cores} usable cores, shared with the database servers).",
    )

    def median(mode: str, key: str) -> dict[str, float]:
        """The median over rounds of ``key`` in ``mode``, per backend that ran it."""
        return {d: med([x[key] for x in r[d][mode]]) for d in drivers if mode in r[d]}

    def speedup(a: str, b: str, key: str) -> dict[str, list[float]]:
        """Per-round ``key`` of mode ``a`` over mode ``b``, per backend that ran ``a``."""
        return {d: ratios([x[key] for x in r[d][a]], [y[key] for y in r[d][b]]) for d in drivers if a in r[d]}

    for mode, label in (("n0", "-n 0"), ("n1", "-n 1"), ("n2", "-n 2")):
        if not any(mode in r[d] for d in drivers):
            continue
        tbl.row(f"{label}: whole command", secs, median(mode, "wall"))
        tbl.row(f"{label}:   startup", secs, median(mode, "startup"))
        tbl.row(f"{label}:   test phase", secs, median(mode, "phase"))
        tbl.row(f"{label}:   exit (drop databases, stop workers)", secs, median(mode, "tail"))
        tbl.row(f"{label}: CPU time of the pytest processes", secs, median(mode, "cpu"))
        tbl.row(f"{label}:   of which in the test phase", secs, median(mode, "phase_cpu"))
        if mode == "n2":
            tbl.add(
                f"{label}:   per worker: phase s (tests, setUpClass s, CPU s)",
                {
                    d: " ".join(f"{w[0]:.2f}({w[1]},{w[2]:.2f},{w[3]:.2f})" for w in r[d][mode][0]["workers"])
                    for d in drivers
                },
            )
    tbl.blank()
    control = speedup("c1", "c2", "phase")
    if control:
        tbl.row("control: 400 CPU-bound tests, no database, -n 1", secs, median("c1", "phase"))
        tbl.row("control: same with -n 2", secs, median("c2", "phase"))
        tbl.row("control speedup, test phase (the machine's ceiling)", ratio_text, control)
        tbl.blank()

    phase = speedup("n1", "n2", "phase")
    tbl.row("speedup 1 -> 2 workers, test phase", ratio_text, phase)
    if control:
        # The target as it holds on any machine: the suite's speedup as a share of what
        # a CPU-bound suite gets in the same rounds (the machine's ceiling right now).
        share = {d: med(ratios(v, control[d])) for d, v in phase.items() if d in control}
        tbl.add("  as a share of the control's speedup", {d: f"{100 * v:.0f}%" for d, v in share.items()})
        tbl.row("  target >= 95% of the control's", verdict, {d: v >= 0.95 for d, v in share.items()})
    else:
        tbl.row(
            "  target >= 1.6x (quick runs have no control)",
            verdict,
            {d: med(v) >= 1.6 for d, v in phase.items()},
        )
    tbl.row("speedup 1 -> 2 workers, whole command", ratio_text, speedup("n1", "n2", "wall"))
    tbl.row("speedup no xdist -> 2 workers, test phase", ratio_text, speedup("n0", "n2", "phase"))
    tbl.row("speedup no xdist -> 2 workers, whole command", ratio_text, speedup("n0", "n2", "wall"))
    return tbl.render()
