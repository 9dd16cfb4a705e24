"""Section 5: what the library's pytest plugin costs a run that does not use it.

One trivial test (no database) under pytest in a fresh subprocess, with every
installed plugin autoloaded as usual (the library's through its ``pytest11``
entry point), against the same command with ``-p no:transactional_testcase``.
The two take turns, the order swapped every round; the figure is the median
over rounds of the per-round difference. No database and no backend is
involved: it is measured once per run, whichever backends are selected.

Wall and CPU time on a shared 2-core machine vary by more than the target
from one run of pytest to the next. Where valgrind is installed (and not
``--quick``), each variant also runs once under ``valgrind --tool=callgrind``
with ``PYTHONHASHSEED=0``: the instructions it executes are the same from one
run to the next whatever else the machine does, and their difference,
turned into time at the rate the uninstrumented "no plugin" runs executed
them, is what the target is read on.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
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
    if bench.settings.s5_callgrind and shutil.which("valgrind"):
        bench.results["s5_instructions"] = {v: _instructions(folder, env, VARIANTS[v]) for v in VARIANTS}


def _instructions(folder: str, env: dict[str, str], args: list[str]) -> int:
    """The instructions one pytest command executes, counted by callgrind (the same every run)."""
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *_argv(args, "test_trivial.py")]
    proc = subprocess.run(
        argv,
        check=False,
        env={**env, "PYTHONHASHSEED": "0"},
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
    )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or found is None or "1 passed" not in proc.stdout:
        raise SystemExit(f"section 5: {' '.join(argv)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return int(found.group(1))


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
        "pytest process, from getrusage) less, but still by more than the target from run to run.",
        "The target is read on the instructions callgrind counts (below) where valgrind is installed,",
        "else on CPU time.",
        "",
    ]
    counted = next(
        (b.results["s5_instructions"] for b in benches.values() if "s5_instructions" in b.results), None
    )
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
        if what == "CPU" and counted is None:
            lines.append(
                f"{f'  target <= {TARGET * 1e3:.0f} ms (CPU)':<52}{verdict(med(diffs) <= TARGET):>14}"
            )
    if counted is not None:
        extra = counted["plugin"] - counted["no plugin"]
        rate = counted["no plugin"] / med([x[1] for x in runs["no plugin"]])  # instructions per CPU second
        lines += [
            "",
            "instructions (valgrind --tool=callgrind, PYTHONHASHSEED=0, one run each, repeatable to 0.01 %):",
            f"{'  with the plugin':<52}{counted['plugin']:>14,}",
            f"{'  without it':<52}{counted['no plugin']:>14,}",
            f"{'  difference':<52}{extra:>14,}",
            f"{'  as time, at the no-plugin runs rate (CPU)':<52}{ms2(extra / rate):>14}",
            f"{f'  target <= {TARGET * 1e3:.0f} ms (instructions as time)':<52}{verdict(extra / rate <= TARGET):>14}",
        ]
    return "\n".join(lines)
