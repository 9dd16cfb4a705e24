"""The blog with models the migrations in ``good/`` do not describe.

Against ``good/``: a table (``tags``), a column (``posts.summary``), a changed
type (``posts.title`` is 250 long), a changed nullability (``users.email``) and,
seen only with ``compare_server_default``, a changed server default
(``posts.views`` defaults to 1).
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from . import GOOD, NAMING_CONVENTION

# The default model class (Flask-SQLAlchemy 3.0 has no DeclarativeBase support).
db = SQLAlchemy(metadata=sa.MetaData(naming_convention=NAMING_CONVENTION))


class User(db.Model):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(80), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(255))


class Post(db.Model):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(250))
    summary: Mapped[str] = mapped_column(sa.String(300))
    views: Mapped[int] = mapped_column(default=1, server_default=sa.text("1"))


class Tag(db.Model):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://")
    app.config.update(config or {})
    db.init_app(app)
    Migrate(app, db, directory=GOOD)
    return app
