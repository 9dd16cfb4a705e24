"""A plain env.py: the connection from config.attributes, else sqlalchemy.url."""

from tests.apps.checks_blog.envs import run_with_shared_connection

run_with_shared_connection()
