"""backups: when the last backup was made, for the owner's page

Revision ID: 0013_backups
Revises: 0012_review_version
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0013_backups"
down_revision = "0012_review_version"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("schema", sa.String(64), nullable=False),
        sa.Column("reviews", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("backups")
