"""review app: when a review was flagged urgent and when the owner handled it,
plus the index behind a listener's queue

Revision ID: 0002_review
Revises: 0001_initial
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0002_review"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.add_column(sa.Column("urgent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("urgent_handled_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index("ix_assignments_listener_status", ["listener_id", "status", "position"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_listener_status")
    with op.batch_alter_table("reviews", schema=None) as batch_op:
        batch_op.drop_column("urgent_handled_at")
        batch_op.drop_column("urgent_at")
