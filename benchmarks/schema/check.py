"""Prove that the migrations build exactly the models, on every backend.

    python benchmarks/schema/check.py [--backends sqlite,psycopg2,psycopg,pymysql]

For each backend, in a fresh test database: ``flask db upgrade`` (via
Flask-Migrate's API) to head, then Alembic's autogenerate comparison against
the models must find nothing (tables, columns, types, nullability, indexes,
unique constraints, foreign keys); the reflected CHECK constraints and foreign
key ``ON DELETE`` rules, which autogenerate does not compare, must match the
models too; ``downgrade base`` must leave only ``alembic_version``; and
``db.create_all()`` in a second database must pass the same comparison.
Exits non-zero on any difference. The databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import typing as t
import warnings

import sqlalchemy as sa

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from benchmarks import servers
from benchmarks.schema import MIGRATIONS_DIR, create_app, db


@contextlib.contextmanager
def quiet() -> t.Iterator[None]:
    """Silence Alembic's INFO lines and Flask-Migrate's env.py deprecation warning."""
    logging.disable(logging.INFO)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logging.disable(logging.NOTSET)


def model_checks() -> dict[str, set[str]]:
    return {
        table.name: {c.name for c in table.constraints if isinstance(c, sa.CheckConstraint)}  # type: ignore[misc]
        for table in db.metadata.sorted_tables
    }


def model_fks() -> set[tuple[str, str, str]]:
    return {
        (table.name, str(fk.name), (fk.ondelete or "").upper())
        for table in db.metadata.sorted_tables
        for fk in table.foreign_key_constraints
    }


def differences(engine: sa.Engine) -> list[str]:
    """Everything that differs between the database and the models."""
    problems: list[str] = []
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        problems += [f"autogenerate: {d!r}" for d in compare_metadata(context, db.metadata)]
        inspector = sa.inspect(conn)
        for table, expected in model_checks().items():
            found = {c["name"] for c in inspector.get_check_constraints(table)}
            if found != expected:
                problems.append(f"CHECKs of {table}: database {sorted(found)}, models {sorted(expected)}")
        fks = {
            (table, str(fk["name"]), (fk.get("options", {}).get("ondelete") or "").upper())
            for table in db.metadata.tables
            for fk in inspector.get_foreign_keys(table)
        }
        # NO ACTION is the default, reflected as such on some backends.
        fks = {(a, b, "" if c == "NO ACTION" else c) for a, b, c in fks}
        if fks != model_fks():
            problems.append(
                f"foreign keys: missing {sorted(model_fks() - fks)}, extra {sorted(fks - model_fks())}"
            )
    return problems


def check_backend(driver: str, folder: str) -> list[str]:
    problems: list[str] = []
    migrated = servers.database_url(driver, f"tt_bench_check_{driver}_test", folder)
    created = servers.database_url(driver, f"tt_bench_check2_{driver}_test", folder)
    from flask_migrate import downgrade, upgrade

    try:
        servers.create_database(migrated)
        app = create_app({"SQLALCHEMY_DATABASE_URI": migrated})
        with app.app_context(), quiet():
            upgrade(directory=str(MIGRATIONS_DIR))
            problems += [f"upgrade head: {p}" for p in differences(db.engine)]
            downgrade(directory=str(MIGRATIONS_DIR), revision="base")
            left = set(sa.inspect(db.engine).get_table_names())
            if left != {"alembic_version"}:
                problems.append(f"downgrade base left {sorted(left)}")
            upgrade(directory=str(MIGRATIONS_DIR))
            problems += [f"upgrade after downgrade: {p}" for p in differences(db.engine)]
            db.engine.dispose()
        servers.create_database(created)
        app = create_app({"SQLALCHEMY_DATABASE_URI": created})
        with app.app_context(), quiet():
            db.create_all()
            problems += [f"create_all: {p}" for p in differences(db.engine)]
            db.engine.dispose()
    finally:
        servers.drop_database(migrated)
        servers.drop_database(created)
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,psycopg2,psycopg,pymysql")
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="tt_bench_check_") as folder:
        for driver in [b.strip() for b in args.backends.split(",") if b.strip()]:
            why = servers.unreachable(driver)
            if why:
                print(f"{driver}: SKIPPED, server unavailable: {why}")
                failed = True
                continue
            problems = check_backend(driver, folder)
            tables = len(db.metadata.tables)
            fks = len(model_fks())
            checks = sum(map(len, model_checks().values()))
            if problems:
                failed = True
                print(f"{driver}: {len(problems)} DIFFERENCES")
                for p in problems:
                    print("   ", p)
            else:
                print(
                    f"{driver}: OK ({servers.server_version(driver)}): upgrade head == models == "
                    f"create_all ({tables} tables, {fks} foreign keys, {checks} CHECKs), "
                    "downgrade base empties"
                )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
