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
_measured: dict[str, list[float]] = {}


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
    runs: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(bench.settings.s5_rounds):
        for variant in rotated(list(VARIANTS), r):
            runs[variant].append(_run(folder, env, VARIANTS[variant]))
    _measured.update(runs)
    bench.results["s5"] = runs


def _argv(args: list[str], *more: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, *more]


def _run(folder: str, env: dict[str, str], args: list[str]) -> float:
    argv = _argv(args, "test_trivial.py")
    t0 = time.perf_counter()
    proc = subprocess.run(argv, check=False, env=env, cwd=folder, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0 or "1 passed" not in proc.stdout:
        raise SystemExit(
            f"section 5: {' '.join(argv[2:])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
        )
    return elapsed


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
    diffs = [a - b for a, b in zip(runs["plugin"], runs["no plugin"], strict=True)]
    lines += [
        "`python -m pytest -q -p no:cacheprovider test_trivial.py` with installed plugins autoloaded, against",
        f"the same with `-p no:{PLUGIN}`, each in a fresh process, {len(diffs)} rounds taking turns.",
        "",
        f"{'with the plugin, whole command (median)':<52}{ms(med(runs['plugin'])):>12}",
        f"{'without it, whole command (median)':<52}{ms(med(runs['no plugin'])):>12}",
        f"{'difference per round: median':<52}{ms2(med(diffs)):>12}",
        f"{'  range over rounds':<52}{ms2(min(diffs)) + ' .. ' + ms2(max(diffs)):>12}",
        f"{f'  target <= {TARGET * 1e3:.0f} ms':<52}{verdict(med(diffs) <= TARGET):>12}",
    ]
    return "\n".join(lines)
