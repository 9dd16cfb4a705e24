"""leaks the URL: fails with the connection's URL, password and all, in its message

Revision ID: 0001_leaks_url
Revises:
"""

from alembic import op

from tests.apps.leaky_migrations import MESSAGE

revision = "0001_leaks_url"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    url = op.get_bind().engine.url.render_as_string(hide_password=False)
    raise RuntimeError(MESSAGE + url)


def downgrade() -> None:
    pass
