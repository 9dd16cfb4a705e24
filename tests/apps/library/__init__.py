"""A Flask-Migrate app: ``Migrate(app, db)`` registered in its factory.

``migrations/`` is Flask-Migrate 4.1's own ``flask db init`` output (env.py,
alembic.ini, script.py.mako) plus two revisions: ``authors``, then ``books``.
``variants/`` holds other migration folders for the same app: one more
revision (``v2_loans``), a revision whose SQL fails (``failing_sql``), one that
calls ``sys.exit(1)`` (``failing_exit``) and two heads (``two_heads``).
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
MIGRATIONS = os.path.join(HERE, "migrations")


def variant(name: str) -> str:
    """The folder of the migration variant ``name``."""
    return os.path.join(HERE, "variants", name)


# The default model class: the version matrix includes Flask-SQLAlchemy 3.0,
# which has no DeclarativeBase support.
db = SQLAlchemy()


class Author(db.Model):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))


class Book(db.Model):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("authors.id"))


def count(model: type[db.Model]) -> int:  # type: ignore[name-defined]
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def base_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """The app without Flask-Migrate (see ``bare.py`` and ``manage.py``)."""
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite:///library_dev.db")
    app.config.update(config or {})
    db.init_app(app)
    # Flask creates app.logger on first use: here, before any migration runs.
    app.logger.debug("library app created")
    return app


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = base_app(config)
    Migrate(app, db, directory=MIGRATIONS)
    return app
