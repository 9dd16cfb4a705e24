"""loans

Revision ID: 0003_loans
Revises: 0002_books
Create Date: 2025-01-13 09:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003_loans"
down_revision = "0002_books"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "loans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("book_id", sa.Integer(), nullable=False),
        sa.Column("borrower", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["book_id"], ["books.id"]),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade():
    op.drop_table("loans")
