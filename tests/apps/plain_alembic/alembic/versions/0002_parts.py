"""parts

Revision ID: 0002_parts
Revises: 0001_widgets
Create Date: 2025-02-03 09:10:00

"""

import sqlalchemy as sa
from alembic import op

revision = "0002_parts"
down_revision = "0001_widgets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("widget_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(["widget_id"], ["widgets.id"]),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("parts")
