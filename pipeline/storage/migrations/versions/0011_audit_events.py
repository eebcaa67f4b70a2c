"""audit_events: logins, failed logins, and who opened, marked and submitted what

Revision ID: 0011_audit_events
Revises: 0010_login_sessions
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0011_audit_events"
down_revision = "0010_login_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("assignment_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.String(500), nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
    )
    op.create_index("ix_audit_events_user_id", "audit_events", ["user_id"])
    op.create_index("ix_audit_events_address", "audit_events", ["address", "action", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_address", "audit_events")
    op.drop_index("ix_audit_events_user_id", "audit_events")
    op.drop_table("audit_events")
