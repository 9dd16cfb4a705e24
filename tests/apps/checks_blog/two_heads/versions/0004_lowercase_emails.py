"""Lower-case every e-mail address (branched off 0002 while 0003 was written).

Revision ID: 0004_lowercase_emails
Revises: 0002_posts
"""

from alembic import op

revision = "0004_lowercase_emails"
down_revision = "0002_posts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE users SET email = LOWER(email)")


def downgrade() -> None:
    pass  # the original case is lost; nothing to undo
