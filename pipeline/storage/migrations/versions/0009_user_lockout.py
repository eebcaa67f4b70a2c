"""users.failed_logins, users.locked_until: login throttling

Revision ID: 0009_user_lockout
Revises: 0008_assignment_drawn_at_random
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0009_user_lockout"
down_revision = "0008_assignment_drawn_at_random"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("locked_until")
        batch.drop_column("failed_logins")
