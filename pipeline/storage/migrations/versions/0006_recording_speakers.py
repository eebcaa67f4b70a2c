"""recordings.speakers: how a mono call was split into operator and client

Revision ID: 0006_recording_speakers
Revises: 0005_recording_coverage
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0006_recording_speakers"
down_revision = "0005_recording_coverage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("speakers", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_column("speakers")
