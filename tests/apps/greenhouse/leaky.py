"""A one-database Flask-Alembic app whose first revision fails with the URL, password and all.

The revisions are ``tests/apps/leaky_migrations``' (its ``versions`` folder as
Flask-Alembic's ``script_location``), the models ``tests/apps/bad_migrations``'.
"""

from __future__ import annotations

import os
import typing as t

from flask import Flask
from flask_alembic import Alembic

from tests.apps import bad_migrations, leaky_migrations

SCRIPT_LOCATION = os.path.join(leaky_migrations.HERE, "versions")

alembic = Alembic(run_mkdir=False)


def create_app(config: t.Mapping[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", ALEMBIC={"script_location": SCRIPT_LOCATION})
    app.config.update(config or {})
    bad_migrations.db.init_app(app)
    alembic.init_app(app)
    return app
