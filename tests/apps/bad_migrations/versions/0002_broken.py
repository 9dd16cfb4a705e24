"""broken: references a table that does not exist

Revision ID: 0002_broken
Revises: 0001_gadgets
"""

from alembic import op

revision = "0002_broken"
down_revision = "0001_gadgets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE no_such_table_tt ADD COLUMN broken INTEGER")


def downgrade() -> None:
    pass
