"""Alembic environment of the gadgets app: the caller's connection, or sqlalchemy.url."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from tests.apps.bad_migrations import db

config = context.config


def migrate(connection):
    context.configure(connection=connection, target_metadata=db.metadata)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection", None)
if connection is not None:
    migrate(connection)
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.", poolclass=pool.NullPool
    )
    with engine.connect() as own:
        migrate(own)
