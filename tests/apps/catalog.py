"""A small catalog app for the factory_boy tests: a relationship and two unique columns.

Built with ``db.create_all()`` (tests set ``alembic_config = False``).
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask, jsonify
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column, relationship

# The default model class: the version matrix includes Flask-SQLAlchemy 3.0,
# which has no DeclarativeBase support.
db = SQLAlchemy()


class Author(db.Model):
    __tablename__ = "catalog_authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(120), unique=True)
    name: Mapped[str] = mapped_column(sa.String(80))
    books: Mapped[list[Book]] = relationship(back_populates="author")


class Book(db.Model):
    __tablename__ = "catalog_books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(120))
    author_id: Mapped[int] = mapped_column(sa.ForeignKey("catalog_authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")


class Tag(db.Model):
    """Two unique columns, so a get-or-create can look up one and collide on the other."""

    __tablename__ = "catalog_tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(40), unique=True)
    label: Mapped[str] = mapped_column(sa.String(40), unique=True)


def count(model: type[db.Model]) -> int:  # type: ignore[name-defined]
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://")
    app.config.update(config or {})
    db.init_app(app)

    @app.get("/authors/<int:author_id>")
    def author(author_id: int) -> t.Any:
        found = db.get_or_404(Author, author_id)
        return jsonify(email=found.email, books=sorted(b.title for b in found.books))

    @app.get("/counts")
    def counts() -> t.Any:
        return jsonify(authors=count(Author), books=count(Book), tags=count(Tag))

    return app
