"""widgets

Revision ID: 0001_widgets
Revises:
Create Date: 2025-02-03 09:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0001_widgets"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "widgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("widgets")
