"""Section 3a: provisioning one migrated database, cold, cloned, kept and reused, against its floors."""

from __future__ import annotations

from benchmarks import servers
from benchmarks.backend_run import BackendRun
from benchmarks.databases import BenchProvisioner, drop_templates, provision
from benchmarks.formatting import Table, ms, ms2, ratio_text
from benchmarks.measuring import med, ratios, rotated
from benchmarks.settings import Settings

LABELS = {
    "create": "empty database (drop/create + connect)",
    "upgrade": "fresh database + flask db upgrade (no library)",
    "cold": "library cold: build (upgrade) + save template",
    "clone": "library: clone of the template",
    "keep": "library keepdb: kept database, fingerprint ok",
    "reuse": "library: same process, next class (reuse)",
    "connect": "  of which: a new app's first connection",
}
#: In the order of the first round (it rotates every round).
METHODS = ["create", "upgrade", "cold", "clone", "keep", "reuse", "connect"]


def provision_once(bench: BackendRun, method: str) -> float:
    """One sample of ``method``; the untimed preparation it needs comes first."""
    url = bench.prov_url
    prov = BenchProvisioner()
    keepdb = False
    if method in ("create", "upgrade", "cold", "clone"):
        servers.drop_database(url)  # as in a fresh run: no database yet
    if method == "cold":
        drop_templates(url)
    elif method == "keep":
        provision(url, BenchProvisioner(), keepdb=True)  # a kept database to find
        keepdb = True
    elif method == "reuse":
        provision(url, prov)  # this process has provisioned it already
    elif method == "connect":
        provision(url, BenchProvisioner())  # a migrated database to connect to
    if method in ("create", "upgrade", "connect"):
        return provision(url, prov, timed=method)[0]
    elapsed, how = provision(url, prov, keepdb=keepdb)
    expected = {"cold": "build", "clone": "clone", "keep": "keep", "reuse": "reuse"}[method]
    if how != expected:
        raise SystemExit(f"{bench.driver}: provisioning by {method!r} did {how!r} instead of {expected!r}")
    return elapsed


def measure(bench: BackendRun) -> None:
    """Every method once per round, the order rotated every round."""
    provision_once(bench, "cold")  # a template to clone from; warms imports
    rounds: dict[str, list[float]] = {m: [] for m in METHODS}
    for r in range(bench.settings.s3_rounds):
        for method in rotated(METHODS, r):
            rounds[method].append(provision_once(bench, method))
    servers.drop_database(bench.prov_url)
    drop_templates(bench.prov_url)
    bench.results["s3"] = rounds


def render(benches: dict[str, BackendRun], settings: Settings) -> str:
    drivers = [d for d in benches if "s3" in benches[d].results]
    r = {d: benches[d].results["s3"] for d in drivers}
    tbl = Table(
        "3a. Provisioning one migrated database (ms until alembic_version is read)",
        drivers,
        f"Fresh app per sample, the library's Provisioner in-process; methods interleaved, "
        f"{settings.s3_rounds} rounds.",
    )
    for v, label in LABELS.items():
        tbl.row(label, ms2 if v in ("reuse", "connect") else ms, {d: med(r[d][v]) for d in drivers})
    tbl.blank()
    for a, b in (("upgrade", "clone"), ("cold", "clone"), ("cold", "keep"), ("clone", "create")):
        tbl.row(f"{a} / {b}", ratio_text, {d: ratios(r[d][a], r[d][b]) for d in drivers})
    return tbl.render()
