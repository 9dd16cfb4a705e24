"""Each plant's species; the sensors' readings.

Revision ID: 0002_species_and_readings
Revises: 0001_plants_and_sensors
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_species_and_readings"
down_revision = "0001_plants_and_sensors"
branch_labels = None
depends_on = None


def upgrade(engine_name: str) -> None:
    globals()[f"upgrade_{engine_name}"]()


def downgrade(engine_name: str) -> None:
    globals()[f"downgrade_{engine_name}"]()


def upgrade_default() -> None:
    with op.batch_alter_table("plants") as batch_op:
        batch_op.add_column(sa.Column("species", sa.String(length=80), nullable=True))


def downgrade_default() -> None:
    with op.batch_alter_table("plants") as batch_op:
        batch_op.drop_column("species")


def upgrade_sensors() -> None:
    op.create_table(
        "readings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sensor_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["sensor_id"], ["sensors.id"], name=op.f("fk_readings_sensor_id_sensors")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readings")),
    )
    op.create_index(op.f("ix_readings_sensor_id"), "readings", ["sensor_id"], unique=False)


def downgrade_sensors() -> None:
    # Dropping the table drops its index (MariaDB's foreign key needs the index).
    op.drop_table("readings")
