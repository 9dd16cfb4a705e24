"""This variant runs the library app's own env.py (Flask-Migrate's standard one)."""

import os
import runpy

runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "..", "migrations", "env.py"))
