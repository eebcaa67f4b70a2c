"""owner reports: CRM outcomes and "covered in script vN" markers

Revision ID: 0003_reports
Revises: 0002_review
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0003_reports"
down_revision = "0002_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_ref", sa.String(length=500), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=True),
        sa.Column("operator", sa.String(length=200), nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.Float(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["recording_id"], ["recordings.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("call_ref"),
    )
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outcomes_recording_id"), ["recording_id"], unique=False)

    op.create_table(
        "situation_markers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("checklist_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("item_keys", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("situation_markers")
    with op.batch_alter_table("outcomes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outcomes_recording_id"))
    op.drop_table("outcomes")
