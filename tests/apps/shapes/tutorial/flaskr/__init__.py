"""Flask's tutorial app shape: ``create_app(test_config=None)``, found by ``flask`` through ``FLASK_APP``."""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

db = SQLAlchemy()


class Post(db.Model):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(100))


def count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Post)) or 0


def create_app(test_config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(SECRET_KEY="dev", SQLALCHEMY_DATABASE_URI="sqlite:///flaskr.sqlite")
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    db.init_app(app)

    @app.post("/posts")
    def create() -> t.Any:
        db.session.add(Post(title=request.get_json()["title"]))
        db.session.commit()
        return jsonify(count=count()), 201

    @app.get("/posts/count")
    def posts() -> t.Any:
        return jsonify(count=count())

    return app
