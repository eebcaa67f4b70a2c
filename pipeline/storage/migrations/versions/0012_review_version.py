"""reviews.version: optimistic concurrency between two tabs of one listener

Revision ID: 0012_review_version
Revises: 0011_audit_events
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0012_review_version"
down_revision = "0011_audit_events"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("reviews") as batch:
        batch.drop_column("version")
