"""How tests are run and timed: unittest's own machinery, rotated turns, medians."""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import sys
import time
import unittest
from collections.abc import Iterator, Sequence

pc = time.perf_counter


class BenchResult(unittest.TestResult):
    """unittest's own result class; a benchmark whose tests fail measures nothing."""

    def check(self, what: str) -> None:
        problems = self.errors + self.failures
        if problems:
            raise SystemExit(f"{what}: a benchmark test failed: {problems[0][0]}\n{problems[0][1]}")
        if self.unexpectedSuccesses:
            raise SystemExit(f"{what}: unexpected success: {self.unexpectedSuccesses[0]}")


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Per-round ratios (rounds paired in order)."""
    return [a / b for a, b in zip(numerators, denominators, strict=False)]


def rotated(items: Sequence[str], round_index: int) -> list[str]:
    k = round_index % len(items)
    return list(items[k:]) + list(items[:k])


def run_tests(cls: type[unittest.TestCase], method: str, n: int, warmup: int, what: str) -> list[float]:
    """Run ``n + warmup`` instances of ``cls.method`` through ``TestCase.run``; the last ``n`` timings."""
    cases = [cls(method) for _ in range(n + warmup)]
    result = BenchResult()
    samples: list[float] = []
    for i, case in enumerate(cases):
        t0 = pc()
        case.run(result)
        elapsed = pc() - t0
        if i >= warmup:
            samples.append(elapsed)
    result.check(what)
    if result.testsRun != n + warmup or result.skipped:
        raise SystemExit(f"{what}: {result.testsRun} tests ran, {len(result.skipped)} skipped")
    return samples


def run_interleaved(
    variants: dict[str, tuple[type[unittest.TestCase], str]], n: int, warmup: int, what: str
) -> dict[str, list[float]]:
    """``n + warmup`` tests of every variant, taking turns test by test; the last ``n`` timings of each.

    The order of the variants rotates with every test, so whatever the
    machine does meanwhile (another tenant, a checkpoint, a frequency change)
    hits every variant alike.
    """
    names = list(variants)
    result = BenchResult()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n + warmup):
        for name in rotated(names, i):
            cls, method = variants[name]
            case = cls(method)
            t0 = pc()
            case.run(result)
            elapsed = pc() - t0
            if i >= warmup:
                samples[name].append(elapsed)
    result.check(what)
    expected = (n + warmup) * len(names)
    if result.testsRun != expected or result.skipped:
        raise SystemExit(f"{what}: {result.testsRun} of {expected} tests ran, {len(result.skipped)} skipped")
    return samples


@contextlib.contextmanager
def class_fixture(cls: type[unittest.TestCase]) -> Iterator[None]:
    """What a unittest suite does around a class's tests (untimed here)."""
    cls.setUpClass()
    try:
        yield
    finally:
        cls.tearDownClass()


def run_script(path: str, env: dict[str, str], cwd: str, what: str) -> float:
    """Run the generated script ``path`` in a fresh interpreter; its wall time. Stops the benchmark if it fails."""
    t0 = pc()
    proc = subprocess.run(
        [sys.executable, path], check=False, env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    wall = pc() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{what}: the subprocess failed:\n{proc.stdout}\n{proc.stderr}")
    return wall
