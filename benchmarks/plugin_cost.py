"""Section 5: what the library's pytest plugin costs a run that does not use it.

One trivial test (no database) under pytest in a fresh subprocess, with every
installed plugin autoloaded as usual (the library's through its ``pytest11``
entry point), against the same command with ``-p no:transactional_testcase``.
The two take turns, the order swapped every round; the figure is the median
over rounds of the per-round difference. No database and no backend is
involved: it is measured once per run, whichever backends are selected.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time

from benchmarks.backend_run import BackendRun
from benchmarks.formatting import ms, ms2, verdict
from benchmarks.measuring import med, rotated
from benchmarks.settings import Settings
from benchmarks.workspace import WORK, child_env

#: The plugin's name as an entry point (what ``-p no:`` takes).
PLUGIN = "transactional_testcase"
#: At most this much per pytest run.
TARGET = 0.005
TEST_MODULE = "def test_trivial():\n    assert True\n"
VARIANTS = {"plugin": [], "no plugin": ["-p", f"no:{PLUGIN}"]}
#: Set once the section has run (it needs no backend: once per run).
_measured: dict[str, list[tuple[float, float]]] = {}


def measure(bench: BackendRun) -> None:
    """Every round: one run of each variant, in rotated order; only the first backend measures."""
    if _measured:
        return
    folder = os.path.join(WORK, "plugin_cost")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "test_trivial.py"), "w") as f:
        f.write(TEST_MODULE)
    env = child_env()
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)  # the plugin loads as it does for users
    _check_variants(folder, env)
    runs: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    for r in range(bench.settings.s5_rounds):
        for variant in rotated(list(VARIANTS), r):
            runs[variant].append(_run(folder, env, VARIANTS[variant]))
    _measured.update(runs)
    bench.results["s5"] = runs


def _argv(args: list[str], *more: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, *more]


def _run(folder: str, env: dict[str, str], args: list[str]) -> tuple[float, float]:
    """One pytest command: its wall time and its CPU time (user + system)."""
    argv = _argv(args, "test_trivial.py")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, check=False, env=env, cwd=folder, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0 or "1 passed" not in proc.stdout:
        raise SystemExit(
            f"section 5: {' '.join(argv[2:])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    return elapsed, cpu


def _check_variants(folder: str, env: dict[str, str]) -> None:
    """Untimed: the plugin's fixtures are there in the first variant only (else the figure means nothing)."""
    for variant, args in VARIANTS.items():
        out = subprocess.run(
            _argv(args, "--fixtures", "test_trivial.py"),
            check=False,
            env=env,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
        if ("db_session" in out) != (variant == "plugin"):
            raise SystemExit(
                f"section 5: the {variant!r} run {'lacks' if variant == 'plugin' else 'has'} the plugin"
            )


def render(benches: dict[str, BackendRun], settings: Settings) -> str:
    runs = next((b.results["s5"] for b in benches.values() if "s5" in b.results), None)
    title = "5. The pytest plugin's cost to a run that does not use it (one trivial test, no database)"
    lines = [title, "-" * len(title)]
    if runs is None:
        return "\n".join([*lines, "not measured"])
    lines += [
        "`python -m pytest -q -p no:cacheprovider test_trivial.py` with installed plugins autoloaded, against",
        f"the same with `-p no:{PLUGIN}`, each in a fresh process, {len(runs['plugin'])} rounds taking turns.",
        "Wall time suffers from whatever else runs on the machine; CPU time (user + system of the",
        "pytest process, from getrusage) much less. The target is read on CPU time.",
        "",
    ]
    for index, what in ((0, "wall"), (1, "CPU")):
        with_plugin = [x[index] for x in runs["plugin"]]
        without = [x[index] for x in runs["no plugin"]]
        diffs = [a - b for a, b in zip(with_plugin, without, strict=True)]
        lines += [
            f"{f'{what}: with the plugin, whole command (median)':<52}{ms(med(with_plugin)):>14}",
            f"{f'{what}: without it (median)':<52}{ms(med(without)):>14}",
            f"{f'{what}: difference per round, median':<52}{ms2(med(diffs)):>14}",
            f"{f'{what}:   range over rounds':<52}{ms2(min(diffs)) + ' .. ' + ms2(max(diffs)):>14}",
        ]
        if what == "CPU":
            lines.append(
                f"{f'  target <= {TARGET * 1e3:.0f} ms (CPU)':<52}{verdict(med(diffs) <= TARGET):>14}"
            )
    return "\n".join(lines)
