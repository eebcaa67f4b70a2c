"""recordings.coverage: how much of a call's detected speech got words

Revision ID: 0005_recording_coverage
Revises: 0004_recording_checklist
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0005_recording_coverage"
down_revision = "0004_recording_checklist"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("coverage", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("coverage")
