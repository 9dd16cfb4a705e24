"""Plants, and the sensors watching them.

Revision ID: 0001_plants_and_sensors
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_plants_and_sensors"
down_revision = None
branch_labels = None
depends_on = None


def upgrade(engine_name: str) -> None:
    globals()[f"upgrade_{engine_name}"]()


def downgrade(engine_name: str) -> None:
    globals()[f"downgrade_{engine_name}"]()


def upgrade_default() -> None:
    op.create_table(
        "plants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plants")),
        sa.UniqueConstraint("name", name=op.f("uq_plants_name")),
    )


def downgrade_default() -> None:
    op.drop_table("plants")


def upgrade_sensors() -> None:
    op.create_table(
        "sensors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sensors")),
    )


def downgrade_sensors() -> None:
    op.drop_table("sensors")
