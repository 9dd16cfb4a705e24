"""Multi-database env.py: every engine of current_app's db, one after the other."""

from tests.apps.checks_blog.envs import run_each_database

run_each_database()
