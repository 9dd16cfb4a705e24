"""A one-table app whose Alembic migrations break half way.

``0001_gadgets`` creates the ``gadgets`` table; ``0002_broken`` then runs SQL
no database accepts. ``tests/test_faults.py`` uses it to show that a class whose
migrations fail leaves nothing open and that a later class on the same
database still works. ``env.py`` uses the connection the library hands over
(Alembic's cookbook recipe "Sharing a Connection").
"""

from __future__ import annotations

import os
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

HERE = os.path.dirname(os.path.abspath(__file__))
#: Revision id of the migration that fails.
BROKEN_REVISION = "0002_broken"

# The default model class, like the other fixture apps.
db = SQLAlchemy()


class Gadget(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "gadgets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))


def count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Gadget)) or 0


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://")
    app.config.update(config or {})
    db.init_app(app)
    return app
