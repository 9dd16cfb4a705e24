"""A two-table blog whose Flask-Migrate migrations the migration-check tests use.

``good/`` holds three revisions that match the models here. The other folders
reuse them through ``version_locations`` and add what each failing check must
catch: a second head, a revision whose downgrade breaks, one whose upgrade
breaks, one whose downgrade leaves its row behind; ``merged/`` merges the two
heads again; ``plain/`` runs the same revisions through a plain ``env.py``
(Alembic's shared-connection recipe); ``external_versions/`` has no revision
of its own, only ``version_locations`` elsewhere. ``drift.py`` is the same blog with
models that no migration describes; ``multidb.py`` a two-database app.
"""

from __future__ import annotations

import os
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

HERE = os.path.dirname(os.path.abspath(__file__))
GOOD = os.path.join(HERE, "good")
PLAIN = os.path.join(HERE, "plain")
TWO_HEADS = os.path.join(HERE, "two_heads")
BROKEN_DOWNGRADE = os.path.join(HERE, "broken_downgrade")
BROKEN_UPGRADE = os.path.join(HERE, "broken_upgrade")
LEAKY_DOWNGRADE = os.path.join(HERE, "leaky_downgrade")
MERGED = os.path.join(HERE, "merged")
EXTERNAL_VERSIONS = os.path.join(HERE, "external_versions")

#: Named constraints, as the migrations name them (SQLite's batch mode needs names).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# The default model class (Flask-SQLAlchemy 3.0 has no DeclarativeBase support).
db = SQLAlchemy(metadata=sa.MetaData(naming_convention=NAMING_CONVENTION))


class User(db.Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(80), unique=True)
    email: Mapped[str] = mapped_column(sa.String(255))


class Post(db.Model):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    views: Mapped[int] = mapped_column(default=0, server_default=sa.text("0"))


def create_app(config: t.Mapping[str, t.Any] | None = None, migrate: bool = True) -> Flask:
    """The blog; ``migrate=False`` leaves Flask-Migrate out (for the plain env.py)."""
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://")
    app.config.update(config or {})
    db.init_app(app)
    if migrate:
        Migrate(app, db, directory=GOOD)
    return app
