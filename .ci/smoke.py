"""Smoke test of an installed wheel or sdist: one class, two isolated tests.

Run from outside the repository so the installed package is imported.
"""

from __future__ import annotations

import sys
import unittest

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

import transactional_testcase
from transactional_testcase import TransactionalTestCase

db = SQLAlchemy()


class Note(db.Model):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.String(50), unique=True)


def create_app(config: dict) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    db.init_app(app)

    @app.post("/notes/<text>")
    def add(text: str) -> str:
        db.session.add(Note(text=text))
        db.session.commit()
        return "ok"

    return app


class SmokeTest(TransactionalTestCase):
    alembic_config = False

    @classmethod
    def create_app(cls, config: dict) -> Flask:
        return create_app(config)

    def test_a_commit_is_rolled_back(self) -> None:
        self.assert200(self.client.post("/notes/a"))
        self.assertEqual(Note.query.count(), 1)

    def test_b_table_is_empty_again(self) -> None:
        self.assertEqual(Note.query.count(), 0)
        self.assert200(self.client.post("/notes/a"))


if __name__ == "__main__":
    assert "site-packages" in transactional_testcase.__file__, transactional_testcase.__file__
    result = unittest.main(exit=False).result
    sys.exit(0 if result.wasSuccessful() and result.testsRun == 2 else 1)
