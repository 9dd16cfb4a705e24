"""The greenhouse app on Flask-SQLAlchemy-Lite: the same tables and the same Flask-Alembic migrations.

Models on two declarative bases (the ``sensors`` engine's bound through
``session_options["binds"]``), and Flask-Alembic given the metadata of both:
Lite keeps no models, so the library takes them from Flask-Alembic (no
``metadata`` on the test cases). The app's root is this package, so
Flask-Alembic's default ``script_location`` is the same ``migrations/``.
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_alembic import Alembic
from flask_sqlalchemy_lite import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tests.apps.greenhouse import NAMING_CONVENTION, SENSORS


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class SensorBase(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class Plant(Base):
    __tablename__ = "plants"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    species: Mapped[str | None] = mapped_column(sa.String(80))


class Sensor(SensorBase):
    __tablename__ = "sensors"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(40))


class Reading(SensorBase):
    __tablename__ = "readings"
    id: Mapped[int] = mapped_column(primary_key=True)
    sensor_id: Mapped[int] = mapped_column(sa.ForeignKey("sensors.id"), index=True)
    value: Mapped[int]


db = SQLAlchemy(session_options={"binds": {SensorBase: SENSORS}})
alembic = Alembic(run_mkdir=False, metadatas={"default": Base.metadata, SENSORS: SensorBase.metadata})


def count(model: type[t.Any]) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask("tests.apps.greenhouse")
    app.config.update(SQLALCHEMY_ENGINES={"default": "sqlite://", SENSORS: "sqlite://"})
    app.config.update(config or {})
    db.init_app(app)
    alembic.init_app(app)
    return app
