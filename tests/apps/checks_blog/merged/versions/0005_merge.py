"""Merge the lower-case e-mails branch back.

Revision ID: 0005_merge
Revises: 0003_post_views, 0004_lowercase_emails
"""

revision = "0005_merge"
down_revision = ("0003_post_views", "0004_lowercase_emails")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
