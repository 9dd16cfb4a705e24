"""Flask-Migrate-style env.py: engine and metadata from current_app."""

from tests.apps.checks_blog.envs import run_with_current_app

run_with_current_app()
