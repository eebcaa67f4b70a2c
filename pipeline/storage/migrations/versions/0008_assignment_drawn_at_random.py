"""assignments.drawn_at_random: which reviewed calls are a random sample

Revision ID: 0008_assignment_drawn_at_random
Revises: 0007_dropped_examples
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0008_assignment_drawn_at_random"
down_revision = "0007_dropped_examples"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Calls assigned before this are not known to be random: they count as chosen on purpose.
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("drawn_at_random", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("assignments") as batch:
        batch.drop_column("drawn_at_random")
