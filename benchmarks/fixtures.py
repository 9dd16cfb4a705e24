"""The tests that are timed: the library, the hand-written floors and the per-test alternatives."""

from __future__ import annotations

import typing as t
import unittest

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy.session import Session as FsaSession
from sqlalchemy import event

from benchmarks.schema import MIGRATIONS_DIR, create_app, db, models
from transactional_testcase import TransactionalTestCase

#: The benchmark app's Flask-Migrate directory, as the library takes it.
MIGRATIONS = str(MIGRATIONS_DIR)
TAG_INSERT = sa.insert(models.Tag.__table__).values(name="bench")


class Plain(unittest.TestCase):
    """unittest's own cost: an empty test without any fixture."""

    def test_empty(self) -> None:
        pass


class FloorSession(FsaSession):
    """Flask-SQLAlchemy's Session, bound to the test's connection.

    Flask-SQLAlchemy 3's ``get_bind`` ignores ``bind=`` and returns the
    engine, which would run outside the test's transaction.
    """

    def get_bind(self, *args: t.Any, **kwargs: t.Any) -> t.Any:
        return self.bind


class FloorCase(unittest.TestCase):
    """Base of the hand-written fixtures; ``app`` and ``engine`` are set per backend."""

    app: t.ClassVar[Flask]
    engine: t.ClassVar[sa.Engine]


class CoreFloor(FloorCase):
    """The Core floor: connect + begin + SAVEPOINT (+ INSERT) + close (close rolls back)."""

    def setUp(self) -> None:
        self.conn = self.engine.connect()
        self.conn.begin()
        self.conn.begin_nested()

    def tearDown(self) -> None:
        self.conn.close()

    def test_empty(self) -> None:
        pass

    def test_insert(self) -> None:
        self.conn.execute(TAG_INSERT)


class FsaFloor(FloorCase):
    """A good minimal Flask fixture: connect + begin + app context + create_savepoint session in the registry."""

    def setUp(self) -> None:
        self.conn = self.engine.connect()
        self.conn.begin()
        self.ctx = self.app.app_context()
        self.ctx.push()
        db.session.registry.set(
            FloorSession(db=db, query_cls=db.Query, bind=self.conn, join_transaction_mode="create_savepoint")
        )

    def tearDown(self) -> None:
        db.session.remove()
        self.conn.close()
        self.ctx.pop()

    def test_empty(self) -> None:
        pass

    def test_commit(self) -> None:
        db.session.add(models.Tag(name="bench"))
        db.session.commit()


def make_tt_class(url: str, name: str = "BenchTT") -> type[TransactionalTestCase]:
    """The library under test: a TransactionalTestCase of the benchmark app."""

    def test_empty(self: TransactionalTestCase) -> None:
        pass

    def test_commit(self: TransactionalTestCase) -> None:
        db.session.add(models.Tag(name="bench"))
        db.session.commit()

    return type(
        name,
        (TransactionalTestCase,),
        {
            "database_url": url,
            "alembic_config": MIGRATIONS,
            "create_app": classmethod(lambda cls, config: create_app(config)),
            "test_empty": test_empty,
            "test_commit": test_commit,
            "__module__": __name__,
            "__qualname__": name,
        },
    )


class AltCase(unittest.TestCase):
    """Per-test alternatives: every test commits one row for real, then the database is reset."""

    app: t.ClassVar[Flask]
    reset_statements: t.ClassVar[list[str]] = []

    def test_commit(self) -> None:
        db.session.add(models.Tag(name="bench"))
        db.session.commit()


class DropCreate(AltCase):
    """Flask-Testing style: ``create_all()`` in setUp, ``drop_all()`` in tearDown."""

    def setUp(self) -> None:
        self.ctx = self.app.app_context()
        self.ctx.push()
        db.create_all()

    def tearDown(self) -> None:
        db.session.remove()
        db.drop_all()
        self.ctx.pop()


class ResetTables(AltCase):
    """Empty every table after each test with ``reset_statements`` (TRUNCATE or DELETE)."""

    def setUp(self) -> None:
        self.ctx = self.app.app_context()
        self.ctx.push()

    def tearDown(self) -> None:
        db.session.remove()
        with db.engine.begin() as conn:
            for statement in self.reset_statements:
                conn.exec_driver_sql(statement)
        self.ctx.pop()


def reset_statements(family: str, kind: str) -> list[str]:
    tables = [tbl.name for tbl in reversed(db.metadata.sorted_tables)]
    if kind == "delete" or family == "sqlite":
        return [f"DELETE FROM {name}" for name in tables]
    if family == "postgresql":
        return ["TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"]
    return [
        "SET FOREIGN_KEY_CHECKS = 0",
        *(f"TRUNCATE TABLE {name}" for name in tables),
        "SET FOREIGN_KEY_CHECKS = 1",
    ]


def sqlite_begin_recipe(engine: sa.Engine) -> None:
    """SQLAlchemy's documented pysqlite fix (what any correct fixture must do on Python 3.11)."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: t.Any, record: t.Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")
