"""The widgets migrations, their revision kept in ``widgets_version`` (``version_table``).

Online only, on the connection the caller hands over (Alembic cookbook:
"Sharing a Connection across one or more programmatic migration commands").
"""

from alembic import context

from tests.apps.plain_alembic import db

#: The version table's name: Alembic's ``alembic_version`` is not used.
VERSION_TABLE = "widgets_version"

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=db.metadata,
    version_table=VERSION_TABLE,
)
with context.begin_transaction():
    context.run_migrations()
