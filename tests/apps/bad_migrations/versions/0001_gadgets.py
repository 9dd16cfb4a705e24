"""gadgets

Revision ID: 0001_gadgets
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_gadgets"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gadgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("gadgets")
