"""A tiny JSON + HTML blog used as the example app of ``transactional_testcase``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

#: The Flask-Migrate directory, found relative to this file so that
#: ``flask db ...`` and the test suite work from any current directory.
MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

#: Explicit, predictable constraint names (the migrations use the same ones),
#: so that constraints can be altered or dropped on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)

if TYPE_CHECKING:
    # At runtime the models' base is ``db.Model``: a class built from ``Base``
    # plus Flask-SQLAlchemy's ``Model`` mixin (``User.query``...).  Type
    # checkers cannot follow that, so spell the same class out for them.
    from flask_sqlalchemy.model import Model as _FlaskModel

    class Model(Base, _FlaskModel):
        __abstract__ = True
else:
    Model = db.Model

migrate = Migrate()


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Application factory; ``config`` is applied on top of the defaults."""
    app = Flask(__name__)

    default_database = Path(app.instance_path) / "blog.db"
    default_uri = f"sqlite:///{default_database}"
    app.config.from_mapping(
        SECRET_KEY="dev",
        SQLALCHEMY_DATABASE_URI=default_uri,
    )
    if config is not None:
        app.config.from_mapping(config)
    if app.config["SQLALCHEMY_DATABASE_URI"] == default_uri:
        default_database.parent.mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR))

    from blog.views import bp

    app.register_blueprint(bp)
    return app
