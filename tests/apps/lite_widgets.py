"""The widgets app of :mod:`tests.apps.plain_alembic`, on Flask-SQLAlchemy-Lite.

The same two tables, migrated by the same plain Alembic project
(``plain_alembic/alembic.ini``: its ``env.py`` shares the connection the
library hands over), with the models on a declarative base of their own: Lite
keeps no models, so test cases name ``Base.metadata`` (``metadata``) where the
library needs them. :data:`app` is the app built at import, as a module-level
app is, on a database that must never be touched.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask, jsonify, request
from flask_sqlalchemy_lite import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: The module-level app's own database: a folder that does not exist, so any
#: connection to it fails (the tests also check that nothing created it).
OWN_URL = "sqlite:////nonexistent-tt-lite/widgets_dev.db"


class Base(DeclarativeBase):
    pass


class Widget(Base):
    __tablename__ = "widgets"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))


class Part(Base):
    __tablename__ = "parts"
    id: Mapped[int] = mapped_column(primary_key=True)
    widget_id: Mapped[int] = mapped_column(sa.ForeignKey("widgets.id"))
    label: Mapped[str] = mapped_column(sa.String(50))


db = SQLAlchemy()


def count(model: type[Base]) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_ENGINES={"default": OWN_URL})
    app.config.update(config or {})
    db.init_app(app)

    @app.post("/widgets")
    def add_widget() -> t.Any:
        db.session.add(Widget(name=request.get_json()["name"]))
        db.session.commit()
        return jsonify(count=count(Widget)), 201

    return app


#: Built at import from its own configuration, before any test case could hand it one.
app = create_app()
