"""initial schema

Revision ID: 0001_initial
Revises: 
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = '0001_initial'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('checklist_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('checklist_id', sa.String(length=200), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('checklist_id', 'sha256')
    )
    with op.batch_alter_table('checklist_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checklist_versions_checklist_id'), ['checklist_id'], unique=False)

    op.create_table('recordings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('original_name', sa.String(length=500), nullable=False),
    sa.Column('source_path', sa.Text(), nullable=False),
    sa.Column('listen_path', sa.Text(), nullable=True),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('channels', sa.Integer(), nullable=True),
    sa.Column('sample_rate', sa.Integer(), nullable=True),
    sa.Column('operator_channel', sa.String(length=5), nullable=False),
    sa.Column('operator', sa.String(length=200), nullable=True),
    sa.Column('source_meta', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_by', sa.String(length=200), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('language', sa.String(length=10), nullable=True),
    sa.Column('model', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sha256')
    )
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recordings_operator'), ['operator'], unique=False)
        batch_op.create_index(batch_op.f('ix_recordings_status'), ['status'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=500), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('rate', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('alignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('checklist_version_id', sa.Integer(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['checklist_version_id'], ['checklist_versions.id'], ),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('recording_id', 'checklist_version_id')
    )
    with op.batch_alter_table('alignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alignments_checklist_version_id'), ['checklist_version_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alignments_recording_id'), ['recording_id'], unique=False)

    op.create_table('assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('listener_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('is_gold', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['listener_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('recording_id', 'listener_id')
    )
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assignments_listener_id'), ['listener_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_assignments_recording_id'), ['recording_id'], unique=False)

    op.create_table('processing_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('engine', sa.String(length=50), nullable=True),
    sa.Column('model', sa.String(length=200), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('processing_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_processing_runs_recording_id'), ['recording_id'], unique=False)

    op.create_table('utterances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('speaker', sa.String(length=20), nullable=False),
    sa.Column('channel', sa.Integer(), nullable=False),
    sa.Column('start', sa.Float(), nullable=False),
    sa.Column('end', sa.Float(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('words', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('recording_id', 'idx')
    )
    with op.batch_alter_table('utterances', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_utterances_recording_id'), ['recording_id'], unique=False)

    op.create_table('reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('alignment_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('urgent_reason', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['alignment_id'], ['alignments.id'], ),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('assignment_id')
    )
    op.create_table('off_script_moments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('utterance_idx', sa.Integer(), nullable=True),
    sa.Column('time', sa.Float(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['review_id'], ['reviews.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('off_script_moments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_off_script_moments_review_id'), ['review_id'], unique=False)

    op.create_table('step_marks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('step_id', sa.String(length=200), nullable=False),
    sa.Column('mark', sa.String(length=20), nullable=True),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['review_id'], ['reviews.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('review_id', 'step_id')
    )
    with op.batch_alter_table('step_marks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_step_marks_review_id'), ['review_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('step_marks', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_step_marks_review_id'))

    op.drop_table('step_marks')
    with op.batch_alter_table('off_script_moments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_off_script_moments_review_id'))

    op.drop_table('off_script_moments')
    op.drop_table('reviews')
    with op.batch_alter_table('utterances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_utterances_recording_id'))

    op.drop_table('utterances')
    with op.batch_alter_table('processing_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_processing_runs_recording_id'))

    op.drop_table('processing_runs')
    with op.batch_alter_table('assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assignments_recording_id'))
        batch_op.drop_index(batch_op.f('ix_assignments_listener_id'))

    op.drop_table('assignments')
    with op.batch_alter_table('alignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alignments_recording_id'))
        batch_op.drop_index(batch_op.f('ix_alignments_checklist_version_id'))

    op.drop_table('alignments')
    op.drop_table('users')
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recordings_status'))
        batch_op.drop_index(batch_op.f('ix_recordings_operator'))

    op.drop_table('recordings')
    with op.batch_alter_table('checklist_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checklist_versions_checklist_id'))

    op.drop_table('checklist_versions')
