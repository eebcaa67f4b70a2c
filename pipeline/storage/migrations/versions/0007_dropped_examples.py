"""dropped_examples: learned examples the owner struck out of a script version

Revision ID: 0007_dropped_examples
Revises: 0006_recording_speakers
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0007_dropped_examples"
down_revision = "0006_recording_speakers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dropped_examples",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("checklist_version_id", sa.Integer(), sa.ForeignKey("checklist_versions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("step_id", sa.String(200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_dropped_examples_checklist_version_id", "dropped_examples", ["checklist_version_id"])


def downgrade() -> None:
    op.drop_index("ix_dropped_examples_checklist_version_id", "dropped_examples")
    op.drop_table("dropped_examples")
