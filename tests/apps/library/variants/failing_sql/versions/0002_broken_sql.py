"""broken sql

Revision ID: 0002_broken_sql
Revises: 0001_authors
Create Date: 2025-01-06 10:05:00

"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "0002_broken_sql"
down_revision = "0001_authors"
branch_labels = None
depends_on = None


def upgrade():
    # A typo'd table name: fails on SQLite, PostgreSQL and MariaDB alike.
    op.execute("INSERT INTO authorz (name) VALUES ('nobody')")


def downgrade():
    pass
