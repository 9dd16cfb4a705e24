"""tickets and legacy_log

Revision ID: c0mm1771ng01
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "c0mm1771ng01"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("title", sa.String(100), nullable=False),
    )
    columns = [
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message", sa.String(100), nullable=False),
    ]
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE ticket_numbers")
        columns.append(
            sa.Column("number", sa.BigInteger, server_default=sa.text("nextval('ticket_numbers')"))
        )
    # AUTOINCREMENT on SQLite: ids come from sqlite_sequence, which emptying must reset.
    op.create_table("legacy_log", *columns, sqlite_autoincrement=True)


def downgrade() -> None:
    op.drop_table("legacy_log")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE ticket_numbers")
    op.drop_table("tickets")
