"""bails out

Revision ID: 0002_bails_out
Revises: 0001_authors
Create Date: 2025-01-06 10:05:00

"""

import sys

# revision identifiers, used by Alembic.
revision = "0002_bails_out"
down_revision = "0001_authors"
branch_labels = None
depends_on = None


def upgrade():
    # What a data migration that gives up (or a helper it calls) may do.
    sys.exit(1)


def downgrade():
    pass
