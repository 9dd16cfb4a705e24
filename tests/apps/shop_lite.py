"""The shop app of :mod:`tests.apps.shop`, on Flask-SQLAlchemy-Lite.

The same tables, module-level names and routes (:func:`tests.apps.shop.add_routes`
on this module's names), the app written as a Flask-SQLAlchemy-Lite app is: models on declarative bases of their own (the
``audit`` entries on a second base, bound to the ``audit`` engine through
``session_options["binds"]``), ``db.session`` the app context's session, a
``Session`` subclass to listen on, and the import-time reference a
:class:`~werkzeug.local.LocalProxy` (Lite has no session before an app
context). :mod:`tests.flavours` runs the isolation tests and the state
machine on it. ``create_app(config, migrated=True)`` also registers
Flask-Alembic, whose migrations (``shop_lite_migrations/``) build the same
tables: the runner matrix runs its sample suite on that.
"""

from __future__ import annotations

import os
import sys
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy_lite import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from werkzeug.local import LocalProxy

from tests.apps import shop

#: The extension's name, for test names and messages.
EXTENSION = "Flask-SQLAlchemy-Lite"
#: Flask-Alembic's ``script_location`` for ``create_app(migrated=True)``.
MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shop_lite_migrations")


class Base(DeclarativeBase):
    pass


class AuditBase(DeclarativeBase):
    """Models of the ``audit`` engine."""


class ShopSession(Session):
    """The app's session class: what session event listeners are registered on."""


db = SQLAlchemy(session_options={"class_": ShopSession, "binds": {AuditBase: "audit"}})

#: Taken at import time, as many apps (and admin views, factories) do: Lite
#: has no session outside an app context, so apps hold a proxy to it.
session: Session = t.cast(Session, LocalProxy(lambda: db.session))
#: Where session event listeners go.
session_events: t.Any = ShopSession


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(120), unique=True)


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(sa.ForeignKey("customers.id"))
    total: Mapped[int] = mapped_column(default=0)


class AuditEntry(AuditBase):
    """Lives in the ``audit`` engine."""

    __tablename__ = "audit_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    message: Mapped[str] = mapped_column(sa.String(200))


def count(model: type[t.Any]) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def current_session() -> Session:
    """The session app code gets now (``db.session``)."""
    return db.session


def end_session() -> None:
    """What app code does to be done with its session: Lite has no ``remove()``."""
    db.session.close()


def engine(key: str | None) -> sa.Engine:
    """The engine of bind ``key`` (None: the default one)."""
    return db.get_engine(key or "default")


def engines() -> dict[str | None, sa.Engine]:
    """The app's engines keyed as the library keys them (None: the default one)."""
    return {None if name == "default" else name: e for name, e in db.engines.items()}


def flask_sqlalchemy_only(test: t.Callable[..., t.Any]) -> None:
    """Leave out a test of what only Flask-SQLAlchemy has (``Model.query``, ``remove()``)."""
    return None


def create_app(config: t.Mapping[str, t.Any] | None = None, migrated: bool = False) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_ENGINES={"default": "sqlite://", "audit": "sqlite://"})
    app.config.update(config or {})
    db.init_app(app)
    if migrated:
        from flask_alembic import Alembic

        app.config["ALEMBIC"] = {"script_location": MIGRATIONS}
        Alembic(run_mkdir=False, metadatas={"default": Base.metadata, "audit": AuditBase.metadata}).init_app(
            app
        )

    shop.add_routes(app, sys.modules[__name__])
    return app


class ShopCase(shop.ShopCase):
    """Mixin for ``@on_all_backends`` test classes that run against this app."""

    #: Lite keeps no models: ``create_all()`` needs them named.
    metadata = {None: Base.metadata, "audit": AuditBase.metadata}

    @classmethod
    def create_app(cls, config: dict[str, t.Any]) -> Flask:
        return create_app(config)


#: The same in both apps: the config carries both extensions' keys.
with_bind, bind_url_in = shop.with_bind, shop.bind_url_in
