"""A small shop app: two binds, routes that commit, fail and use the engine directly.

Built with ``db.create_all()`` (tests set ``alembic_config = False``); the
migration tests use their own apps. :mod:`tests.apps.shop_lite` is its
Flask-SQLAlchemy-Lite twin: the functions below the models are what the
isolation tests and the state machine use where the two extensions differ.
"""

from __future__ import annotations

import sys
import typing as t

import sqlalchemy as sa
from flask import Flask, abort, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, Session, mapped_column

#: The extension's name, for test names and messages.
EXTENSION = "Flask-SQLAlchemy"

# The default model class: the matrix runs Flask-SQLAlchemy 3.0 too, which has
# no DeclarativeBase support.
db = SQLAlchemy()

#: Taken at import time, as many apps (and admin views, factories) do.
session = db.session
#: Where session event listeners go.
session_events: t.Any = db.session


class Customer(db.Model):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(120), unique=True)


class Order(db.Model):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    total: Mapped[int] = mapped_column(default=0)


class AuditEntry(db.Model):
    """Lives in the ``audit`` bind."""

    __bind_key__ = "audit"
    __tablename__ = "audit_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str] = mapped_column(sa.String(200))


def count(model: type[db.Model]) -> int:  # type: ignore[name-defined]
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def current_session() -> Session:
    """The session app code gets now (``db.session()``)."""
    return db.session()


def end_session() -> None:
    """What app code does to be done with its session (``db.session.remove()``)."""
    db.session.remove()


def engine(key: str | None) -> sa.Engine:
    """The engine of bind ``key`` (None: the default one)."""
    return db.engines[key]


def engines() -> dict[str | None, sa.Engine]:
    """The app's engines keyed as the library keys them (None: the default one)."""
    return dict(db.engines)


def with_bind(config: dict[str, t.Any], key: str, url: str) -> dict[str, t.Any]:
    """``config`` with one more database, in both extensions' keys (as the library hands them over)."""
    config["SQLALCHEMY_BINDS"] = {**config.get("SQLALCHEMY_BINDS", {}), key: url}
    config["SQLALCHEMY_ENGINES"] = {**config.get("SQLALCHEMY_ENGINES", {}), key: url}
    return config


def bind_url_in(config: t.Mapping[str, t.Any], key: str) -> str:
    """The URL ``config`` (the app's) gives bind ``key``."""
    url: str = config["SQLALCHEMY_BINDS"][key]
    return url


def flask_sqlalchemy_only(test: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """Mark a test of what only Flask-SQLAlchemy has (``Model.query``, ``remove()``)."""
    return test


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite://",
        SQLALCHEMY_BINDS={"audit": "sqlite://"},
    )
    app.config.update(config or {})
    db.init_app(app)

    add_routes(app, sys.modules[__name__])
    return app


def add_routes(app: Flask, shop: t.Any) -> None:
    """The shop's routes, written on the module-level names of ``shop``: this module, or its Lite twin.

    ``shop.session`` is the reference taken at import time, ``shop.db`` the
    extension (its ``session`` and ``engine`` work alike in both).
    """
    db, session, Customer, AuditEntry, count = (
        shop.db,
        shop.session,
        shop.Customer,
        shop.AuditEntry,
        shop.count,
    )

    @app.post("/customers")
    def add_customer() -> t.Any:
        email = request.get_json()["email"]
        session.add(Customer(email=email))
        try:
            session.commit()
        except sa.exc.IntegrityError:
            session.rollback()
            return jsonify(error="exists"), 409
        return jsonify(count=count(Customer)), 201

    @app.get("/customers/count")
    def customer_count() -> t.Any:
        return jsonify(count=count(Customer))

    @app.post("/customers/fail")
    def add_then_fail() -> t.Any:
        db.session.add(Customer(email=request.get_json()["email"]))
        db.session.flush()
        abort(500)

    @app.post("/customers/raw")
    def add_raw() -> t.Any:
        with db.engine.begin() as conn:
            conn.execute(sa.insert(Customer).values(email=request.get_json()["email"]))
        return jsonify(count=count(Customer)), 201

    @app.post("/audit")
    def audit() -> t.Any:
        db.session.add(AuditEntry(message=request.get_json()["message"]))
        db.session.commit()
        return jsonify(count=count(AuditEntry)), 201


class ShopCase:
    """Mixin for ``@on_all_backends`` test classes that run against this app."""

    alembic_config = False

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return create_app(config)

    @classmethod
    def get_app_config(cls) -> dict[str, t.Any]:
        config: dict[str, t.Any] = super().get_app_config()  # type: ignore[misc]
        return with_bind(config, "audit", cls.bind_url("audit"))  # type: ignore[attr-defined]
