"""Plain Alembic environment: migrates the connection the test case shares with it."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the test case runs these migrations
    raise RuntimeError("run through transactional_testcase, which shares its connection")
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
