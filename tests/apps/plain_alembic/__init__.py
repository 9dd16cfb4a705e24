"""An app migrated with plain Alembic (no Flask-Migrate).

``alembic.ini`` names ``script_location``; ``alembic/env.py`` follows Alembic's
cookbook recipe "Sharing a Connection across one or more programmatic
migration commands": it uses ``config.attributes["connection"]`` when the
caller hands one over and builds its own engine from ``sqlalchemy.url``
otherwise. ``own_engine/`` runs the same two revisions (read through
``version_locations``) with an env.py that always builds its own engine (fine for files and servers, but it cannot reach
an in-memory SQLite database that lives in the app's connection).
``own_version_table/`` runs them with an env.py that keeps the revision in
``widgets_version`` (Alembic's ``version_table``).
"""

from __future__ import annotations

import os
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

HERE = os.path.dirname(os.path.abspath(__file__))
ALEMBIC_INI = os.path.join(HERE, "alembic.ini")
SCRIPTS = os.path.join(HERE, "alembic")
OWN_ENGINE_INI = os.path.join(HERE, "own_engine", "alembic.ini")
OWN_VERSION_TABLE_INI = os.path.join(HERE, "own_version_table", "alembic.ini")


# The default model class: the version matrix includes Flask-SQLAlchemy 3.0,
# which has no DeclarativeBase support.
db = SQLAlchemy()


class Widget(db.Model):
    __tablename__ = "widgets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))


class Part(db.Model):
    __tablename__ = "parts"
    id: Mapped[int] = mapped_column(primary_key=True)
    widget_id: Mapped[int] = mapped_column(sa.ForeignKey("widgets.id"))
    label: Mapped[str] = mapped_column(sa.String(50))


def count(model: type[db.Model]) -> int:  # type: ignore[name-defined]
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite:///widgets_dev.db")
    app.config.update(config or {})
    db.init_app(app)
    return app
