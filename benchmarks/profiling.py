"""``--profile``: where the library's per-test time goes, against the fsa floor, under cProfile."""

from __future__ import annotations

import cProfile
import pstats
import time
import typing as t

from benchmarks import servers
from benchmarks.backend_run import BackendRun
from benchmarks.fixtures import FsaFloor, make_tt_class
from benchmarks.formatting import us
from benchmarks.measuring import BenchResult, class_fixture, pc, run_tests
from benchmarks.workspace import ROOT


def _short(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    for marker in ("site-packages/", "lib/python3.11/", str(ROOT) + "/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({name})"


_DBAPI_DIRS = ("/psycopg2/", "/psycopg/", "/pymysql/", "/MySQLdb/")
_DBAPI_CALLS = ("execute", "executemany", "commit", "rollback")


def _round_trips(stats: dict[tuple[str, int, str], t.Any]) -> float:
    """DBAPI execute/executemany/commit/rollback calls (psycopg skips an idle rollback's round trip)."""
    total = 0
    for (filename, _, name), row in stats.items():
        if filename == "~":
            builtin = any(f"'{m}' of '" in name for m in _DBAPI_CALLS)
            if builtin and any(k in name for k in ("sqlite3.", "psycopg2.", "_mysql.", "MySQLdb.")):
                total += row[1]
        elif name in _DBAPI_CALLS and any(d in filename for d in _DBAPI_DIRS):
            total += row[1]
    return total


def profile(bench: BackendRun, n: int = 3000) -> str:
    """Where the library's per-test time goes, against the fsa floor, under cProfile.

    For an empty and a committing test: wall and CPU time per test without the
    profiler, Python function calls and DBAPI round trips per test, then the
    functions whose own time (tottime) grows most from the floor to the library,
    and the cumulative time of every function of transactional_testcase.
    """
    tt = make_tt_class(bench.main_url, "ProfTT")
    floor_app, engine = bench.floor_app()
    fsa = type("ProfFsa", (FsaFloor,), {"app": floor_app, "engine": engine})
    out = []
    with class_fixture(tt):
        for method, floor_method in (("test_empty", "test_empty"), ("test_commit", "test_commit")):
            for cls in (fsa, tt):
                run_tests(cls, floor_method if cls is fsa else method, 100, 0, "profile warm-up")
            plain: dict[str, tuple[float, float]] = {}
            for cls in (fsa, tt, fsa, tt):
                cases = [cls(method) for _ in range(n)]
                result = BenchResult()
                w0, c0 = pc(), time.process_time()
                for case in cases:
                    case.run(result)
                wall, cpu = (pc() - w0) / n, (time.process_time() - c0) / n
                result.check("profile")
                best = plain.get(cls.__name__)
                plain[cls.__name__] = (wall, cpu) if best is None else (min(best[0], wall), min(best[1], cpu))
            stats: dict[str, dict[tuple[str, int, str], t.Any]] = {}
            for cls in (fsa, tt):
                prof = cProfile.Profile()
                cases = [cls(method) for _ in range(n)]
                result = BenchResult()
                prof.enable()
                for case in cases:
                    case.run(result)
                prof.disable()
                result.check("profile")
                stats[cls.__name__] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
            a, b = stats["ProfFsa"], stats["ProfTT"]
            out.append(
                f"== {servers.TITLES[bench.driver]}, {method}: fsa floor vs TransactionalTestCase, "
                f"{n} tests each =="
            )
            for name, label in (("ProfFsa", "fsa floor"), ("ProfTT", "TransactionalTestCase")):
                st = stats[name]
                out.append(
                    f"  {label:22} wall {us(plain[name][0]):>9}, CPU {us(plain[name][1]):>9} per test "
                    f"(best of 2, no profiler); {sum(r[1] for r in st.values()) / n:6.0f} Python calls and "
                    f"{_round_trips(st) / n:.1f} DBAPI execute/commit/rollback calls per test"
                )
            rows = []
            for key in set(a) | set(b):
                ra, rb = a.get(key), b.get(key)
                extra = ((rb[2] if rb else 0.0) - (ra[2] if ra else 0.0)) / n * 1e6
                calls = ((rb[1] if rb else 0) - (ra[1] if ra else 0)) / n
                rows.append((extra, calls, key))
            rows.sort(key=lambda r: r[0], reverse=True)
            out.append("  functions whose own time grows most (profiled us per test, calls per test):")
            for extra, calls, key in rows[:15]:
                out.append(f"    {extra:+7.1f} us {calls:+5.1f}  {_short(key)}")
            ours = sorted(
                (
                    (row[3] / n * 1e6, row[1] / n, key)
                    for key, row in b.items()
                    if "transactional_testcase" in key[0]
                ),
                reverse=True,
            )
            out.append(
                "  transactional_testcase functions, cumulative (profiled us per test, calls per test):"
            )
            for cum, calls, key in ours[:14]:
                out.append(f"    {cum:7.1f} us {calls:5.1f}  {_short(key)}")
            out.append("")
    return "\n".join(out)
