"""A two-database app migrated by a multi-database env.py (``multidb_migrations/``).

``users`` lives in the default database, ``audit_entries`` in the ``audit``
bind; each revision has an ``upgrade_<bind>()`` per database, as Flask-Migrate's
multi-database template writes them. ``build(drift=True)`` gives the audit
model a column no migration creates.
"""

from __future__ import annotations

import os
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from . import HERE, NAMING_CONVENTION

MULTIDB = os.path.join(HERE, "multidb_migrations")


def build(drift: bool = False) -> t.Callable[[t.Mapping[str, t.Any]], Flask]:
    """A fresh ``db`` and models; returns the app factory that uses them."""

    # The default model class (Flask-SQLAlchemy 3.0 has no DeclarativeBase support).
    db = SQLAlchemy(metadata=sa.MetaData(naming_convention=NAMING_CONVENTION))

    class User(db.Model):  # type: ignore[name-defined]
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        username: Mapped[str] = mapped_column(sa.String(80), unique=True)

    class AuditEntry(db.Model):  # type: ignore[name-defined]
        __bind_key__ = "audit"
        __tablename__ = "audit_entries"
        id: Mapped[int] = mapped_column(primary_key=True)
        message: Mapped[str] = mapped_column(sa.String(200))

    if drift:
        AuditEntry.__table__.append_column(sa.Column("detail", sa.Text(), nullable=True))

    def create_app(config: t.Mapping[str, t.Any]) -> Flask:
        app = Flask(__name__)
        app.config.update(config)
        db.init_app(app)
        Migrate(app, db, directory=MULTIDB)
        return app

    return create_app
