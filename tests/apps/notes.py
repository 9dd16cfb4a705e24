"""A one-table app whose schema differs from the shop's.

The lifecycle tests use it to show that a database built for one schema is
rebuilt, not reused, when a class with another schema takes over its URL.
Built with ``db.create_all()`` (tests set ``alembic_config = False``).
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

# The default model class: the version matrix includes Flask-SQLAlchemy 3.0,
# which has no DeclarativeBase support.
db = SQLAlchemy()


class Note(db.Model):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.String(200))


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://")
    app.config.update(config or {})
    db.init_app(app)
    return app
