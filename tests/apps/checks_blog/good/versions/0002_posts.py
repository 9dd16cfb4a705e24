"""Create the posts table.

Revision ID: 0002_posts
Revises: 0001_users
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_posts"
down_revision = "0001_users"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_posts_author_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
    )
    op.create_index(op.f("ix_posts_author_id"), "posts", ["author_id"], unique=False)


def downgrade() -> None:
    # Dropping the table drops its index. Dropping the index first, as
    # autogenerate writes it, fails on MySQL/MariaDB: the foreign key needs it.
    op.drop_table("posts")
