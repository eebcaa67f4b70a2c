"""recordings.checklist_version_id: the script an uploaded recording is to be aligned with

Uploads only register recordings; the worker (`callreview process --watch`)
aligns each with the script the owner chose, stored here.

Revision ID: 0004_recording_checklist
Revises: 0003_reports
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0004_recording_checklist"
down_revision = "0003_reports"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.add_column(sa.Column("checklist_version_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_recordings_checklist_version", "checklist_versions", ["checklist_version_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("recordings") as batch:
        batch.drop_constraint("fk_recordings_checklist_version", type_="foreignkey")
        batch.drop_column("checklist_version_id")
