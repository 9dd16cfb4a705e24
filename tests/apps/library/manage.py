"""Command-line entry point: ``flask --app tests.apps.library.manage db upgrade``.

The one place where this variant of the app registers Flask-Migrate. The
tests never import it: the test case has to register Flask-Migrate itself.
"""

from __future__ import annotations

from flask_migrate import Migrate

from . import MIGRATIONS, db
from .bare import create_app

app = create_app()
migrate = Migrate(app, db, directory=MIGRATIONS)
