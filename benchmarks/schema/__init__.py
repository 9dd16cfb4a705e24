"""The benchmark app: Flask + Flask-SQLAlchemy + Flask-Migrate over a 21-table schema.

``create_app(config)`` is an ordinary application factory; ``MIGRATIONS_DIR``
holds 15 hand-written Alembic revisions in Flask-Migrate's layout that build
exactly the models of :mod:`benchmarks.schema.models`.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

from flask import Flask, jsonify
from flask_migrate import Migrate

from . import models
from .models import db

#: Flask-Migrate's directory (``flask db upgrade`` works on it as usual).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

migrate = Migrate()


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Build the app; ``config`` is applied on top of the defaults."""
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", SECRET_KEY="bench")
    app.config.update(config or {})
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))

    @app.get("/users/<int:user_id>/posts")
    def user_posts(user_id: int) -> t.Any:
        posts = db.session.scalars(
            db.select(models.Post).where(models.Post.author_id == user_id).order_by(models.Post.id)
        ).all()
        return jsonify([{"id": p.id, "title": p.title, "tags": [g.name for g in p.tags]} for p in posts])

    return app


__all__ = ["MIGRATIONS_DIR", "create_app", "db", "models"]
