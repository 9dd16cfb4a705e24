"""The test databases and templates the sections make, provision, count and drop."""

from __future__ import annotations

import os

import flask_migrate
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from benchmarks.fixtures import MIGRATIONS
from benchmarks.measuring import pc
from benchmarks.schema import create_app, db
from benchmarks.schema.check import quiet
from transactional_testcase import provisioning as tt_provisioning
from transactional_testcase.backends import backend_for
from transactional_testcase.extension import extension_of
from transactional_testcase.schema import schema_source


def template_prefix(url: str) -> str:
    """Name prefix of every library template of the database ``url`` (private helper, on purpose)."""
    return tt_provisioning._template_prefix(sa.make_url(url), None)


def drop_templates(url: str) -> None:
    """Drop every library template built for ``url`` (cold starts, and cleanup)."""
    parsed = sa.make_url(url)
    backend = backend_for(parsed)
    prefix = template_prefix(url)
    backend.drop_templates(backend.template_url(parsed, prefix + "none_test"), prefix)


class BenchProvisioner(tt_provisioning.Provisioner):
    """The library's provisioner, minus its exit hooks.

    Section 3 makes a fresh provisioner per sample (so that each one clones,
    builds or keeps instead of reusing), and drops what they made itself;
    without this, each would drop the same database and template again at exit.
    """

    def _register_atexit(self) -> None:  # overrides a private hook, on purpose
        pass


if not hasattr(tt_provisioning.Provisioner, "_register_atexit"):
    raise SystemExit(
        "transactional_testcase.provisioning.Provisioner._register_atexit is gone: update "
        "BenchProvisioner in benchmarks/databases.py"
    )


def provision(url: str, prov: BenchProvisioner, keepdb: bool = False, timed: str = "") -> tuple[float, str]:
    """Provision ``url`` with ``prov`` for a fresh app; time it until ``alembic_version`` is read.

    Returns the time and how ``prov`` provisioned (``build``, ``clone``,
    ``keep``, ``reuse``). ``timed`` names a reference method instead:
    ``create`` (an empty database), ``upgrade`` (a fresh database +
    Flask-Migrate's upgrade) or ``connect`` (only the fresh app's first
    connection to a migrated database).
    """
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    how = timed
    with app.app_context():
        engines = dict(db.engines)
        engine = engines[None]
        backend = backend_for(engine.url)
        extension = extension_of(app)
        assert extension is not None
        schema = schema_source(MIGRATIONS, app, extension, "bench")
        t0 = pc()
        if timed == "connect":
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
        elif timed == "create":
            backend.recreate(engine.url)
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        else:
            if timed == "upgrade":
                backend.recreate(engine.url)
                with quiet():
                    flask_migrate.upgrade(directory=MIGRATIONS)
            else:
                how = prov.ensure(app, extension, engines, schema, {None: "bench"}, keepdb=keepdb)
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
        elapsed = pc() - t0
        if timed == "connect":
            how = "connect"
        for e in engines.values():
            e.dispose()
    return elapsed, how


def count_rows(url: str) -> int:
    """Rows in every table but alembic_version, through a connection of our own."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            names = [n for n in sa.inspect(conn).get_table_names() if n != "alembic_version"]
            q = conn.dialect.identifier_preparer.quote
            return sum(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {q(n)}").scalar_one() for n in names)
    finally:
        engine.dispose()


def worker_urls(url: str) -> list[str]:
    """The databases pytest-xdist workers ``gw0``-``gw2`` would make of ``url``."""
    parsed = sa.make_url(url)
    out = []
    for worker in ("gw0", "gw1", "gw2"):
        name = parsed.database or ""
        if parsed.get_backend_name() == "sqlite":
            root, ext = os.path.splitext(name)
            out.append(parsed.set(database=f"{root}_{worker}{ext}").render_as_string(hide_password=False))
        else:
            out.append(parsed.set(database=f"{name}_{worker}").render_as_string(hide_password=False))
    return out
