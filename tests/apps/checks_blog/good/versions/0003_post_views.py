"""Count the views of each post.

Revision ID: 0003_post_views
Revises: 0002_posts
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_post_views"
down_revision = "0002_posts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch_op:
        batch_op.add_column(sa.Column("views", sa.Integer(), server_default=sa.text("0"), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("posts") as batch_op:
        batch_op.drop_column("views")
