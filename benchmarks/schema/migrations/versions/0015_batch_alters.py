"""Batch ALTERs: a column with a CHECK, an index, a widened column.

Batch mode, so that SQLite (which cannot ALTER these) rebuilds the tables;
PostgreSQL and MariaDB get plain ALTER TABLE statements.

Revision ID: 0015_batch_alters
Revises: 0014_settings_revisions
Create Date: 2025-01-15 12:00:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0015_batch_alters"
down_revision = "0014_settings_revisions"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("last_login_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("posts") as batch_op:
        # NOT NULL on existing rows needs a default; the model has none.
        batch_op.add_column(sa.Column("view_count", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_check_constraint(op.f("ck_posts_view_count_positive"), "view_count >= 0")
        batch_op.create_index("ix_posts_status", ["status"])
    with op.batch_alter_table("posts") as batch_op:
        batch_op.alter_column(
            "view_count", existing_type=sa.Integer(), existing_nullable=False, server_default=None
        )
    with op.batch_alter_table("profiles") as batch_op:
        batch_op.alter_column(
            "display_name",
            existing_type=sa.String(length=80),
            type_=sa.String(length=100),
            existing_nullable=True,
        )


def downgrade():
    with op.batch_alter_table("profiles") as batch_op:
        batch_op.alter_column(
            "display_name",
            existing_type=sa.String(length=100),
            type_=sa.String(length=80),
            existing_nullable=True,
        )
    with op.batch_alter_table("posts") as batch_op:
        batch_op.drop_index("ix_posts_status")
        batch_op.drop_constraint(op.f("ck_posts_view_count_positive"), type_="check")
        batch_op.drop_column("view_count")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("last_login_at")
