"""Alembic environment of the leaky migrations: the connection the library hands over."""

from alembic import context

from tests.apps.bad_migrations import db

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=db.metadata)
with context.begin_transaction():
    context.run_migrations()
