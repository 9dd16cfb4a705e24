"""The Flask book's app shape: ``create_app(config_name)`` over a dict of config classes.

``TestingConfig`` reads ``TEST_DATABASE_URL`` itself (else in-memory SQLite);
Flask-Migrate is registered outside the factory, as the book's ``flasky.py``
does. :func:`create_app_from` takes a config class instead of a name.
"""

from __future__ import annotations

import os
import typing as t

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

db = SQLAlchemy()


class Config:
    SECRET_KEY = "book"
    SQLALCHEMY_TRACK_MODIFICATIONS = False
    #: Set by init_app: proves the base class's static method still runs.
    INIT_APP_CALLED = "INIT_APP_CALLED"

    @staticmethod
    def init_app(app: Flask) -> None:
        app.config[Config.INIT_APP_CALLED] = True


class DevelopmentConfig(Config):
    SQLALCHEMY_DATABASE_URI = os.environ.get("DEV_DATABASE_URL") or "sqlite:///book-dev.sqlite"


class TestingConfig(Config):
    TESTING = True
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"


config: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "default": DevelopmentConfig,
}


class Reader(db.Model):
    __tablename__ = "readers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(50))


def create_app(config_name: str) -> Flask:
    return create_app_from(config[config_name])


def create_app_from(config_class: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.from_object(config_class)
    config_class.init_app(app)
    db.init_app(app)
    return app
