"""An app whose migrations Flask-Alembic keeps: no ``alembic.ini``, no ``env.py``.

Flask-SQLAlchemy with two databases, ``plants`` in the default one and
``sensors``/``readings`` in the ``sensors`` bind, and Flask-Alembic given the
metadata of both (its multi-database mode: each revision has an
``upgrade_<key>()`` per database, as its ``multidb`` template writes them).
The revisions sit in ``migrations/``, Flask-Alembic's default
``script_location`` (relative to the app's root path): nothing tells the
library where they are but the extension. ``leaky.py`` is a one-database
Flask-Alembic app whose revision fails.
"""

from __future__ import annotations

import os
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_alembic import Alembic
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

HERE = os.path.dirname(os.path.abspath(__file__))
#: Flask-Alembic's ``script_location`` for this app: its default, ``migrations``.
MIGRATIONS = os.path.join(HERE, "migrations")
#: The revisions, base to head.
REVISIONS = ("0001_plants_and_sensors", "0002_species_and_readings")
SENSORS = "sensors"

#: Named constraints, as the migrations name them (SQLite's batch mode needs names).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The default model class (Flask-SQLAlchemy 3.0 has no DeclarativeBase support).
db = SQLAlchemy(metadata=sa.MetaData(naming_convention=NAMING_CONVENTION))


class Plant(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "plants"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    species: Mapped[str | None] = mapped_column(sa.String(80))


class Sensor(db.Model):  # type: ignore[name-defined,misc]
    __bind_key__ = SENSORS
    __tablename__ = "sensors"
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(40))


class Reading(db.Model):  # type: ignore[name-defined,misc]
    __bind_key__ = SENSORS
    __tablename__ = "readings"
    id: Mapped[int] = mapped_column(primary_key=True)
    sensor_id: Mapped[int] = mapped_column(sa.ForeignKey("sensors.id"), index=True)
    value: Mapped[int]


# Neither creates the migrations folder nor needs an app yet: the factory registers it.
alembic = Alembic(run_mkdir=False, metadatas={"default": db.metadata, SENSORS: db.metadatas[SENSORS]})


def count(model: type[db.Model]) -> int:  # type: ignore[name-defined]
    return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite://",
        SQLALCHEMY_BINDS={SENSORS: "sqlite://"},
    )
    app.config.update(config or {})
    db.init_app(app)
    alembic.init_app(app)
    return app
