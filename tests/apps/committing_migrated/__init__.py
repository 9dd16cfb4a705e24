"""A tiny migrated app for the committing tests: ``alembic_version`` must survive emptying.

Its one migration creates ``tickets`` (an IDENTITY column on PostgreSQL, the
only model) and ``legacy_log``, a table no model maps, which the committing
test case must empty all the same. On PostgreSQL ``legacy_log.number`` takes
its default from ``ticket_numbers``, a sequence no column owns (so ``TRUNCATE
... RESTART IDENTITY`` does not reset it); on SQLite ``legacy_log`` is an
``AUTOINCREMENT`` table, whose counter lives in ``sqlite_sequence``.
"""

from __future__ import annotations

import os
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

#: The folder holding ``alembic.ini``: the test cases' ``alembic_config``.
MIGRATIONS = os.path.dirname(os.path.abspath(__file__))
#: The one revision, the head every provisioned database must stay at.
HEAD = "c0mm1771ng01"


# The default model class: the version matrix includes Flask-SQLAlchemy 3.0,
# which has no DeclarativeBase support.
db = SQLAlchemy()


class Ticket(db.Model):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(sa.Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(100))


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://")
    app.config.update(config or {})
    db.init_app(app)
    return app
