"""appointments with standing checks

The stored schedule (issue 9): appointments keep their last eligibility result keyed on the
revisions it was computed from; patients and authorizations gain the revision counters those
keys compare against (1 for existing rows). Uploaded schedules awaiting "keep as schedule" are
kept in the database instead of a host's temp folder.

Revision ID: c4e1a7d2b9f3
Revises: c7d5a1e9b204
Create Date: 2026-11-30 00:24:07.386703

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4e1a7d2b9f3'
down_revision = 'c7d5a1e9b204'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('schedule_uploads',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('rows', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_uploads')),
    sa.UniqueConstraint('token', name=op.f('uq_schedule_uploads_token'))
    )
    with op.batch_alter_table('schedule_uploads', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_schedule_uploads_created_at'), ['created_at'], unique=False)

    op.create_table('appointments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('appointment_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('series', sa.String(length=64), nullable=True),
    sa.Column('patient_id', sa.Integer(), nullable=False),
    sa.Column('payer_id', sa.Integer(), nullable=False),
    sa.Column('hcpcs', sa.String(length=5), nullable=False),
    sa.Column('date_of_service', sa.Date(), nullable=False),
    sa.Column('dose_mg', sa.Numeric(precision=12, scale=3), nullable=True),
    sa.Column('dose_mg_per_kg', sa.Numeric(precision=12, scale=3), nullable=True),
    sa.Column('site_of_care', sa.String(length=40), nullable=True),
    sa.Column('diagnosis_codes', sa.JSON(), nullable=False),
    sa.Column('packages', sa.JSON(), nullable=False),
    sa.Column('authorization_number', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=255), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('updated_by', sa.String(length=255), nullable=False),
    sa.Column('check_result', sa.JSON(), nullable=True),
    sa.Column('check_decision', sa.String(length=30), nullable=True),
    sa.Column('check_units', sa.Integer(), nullable=True),
    sa.Column('check_authorization_id', sa.Integer(), nullable=True),
    sa.Column('check_policy_revision', sa.BigInteger(), nullable=True),
    sa.Column('check_patient_revision', sa.Integer(), nullable=True),
    sa.Column('check_authorization_revision', sa.Integer(), nullable=True),
    sa.Column('check_logic', sa.String(length=16), nullable=True),
    sa.Column('checked_at', sa.DateTime(), nullable=True),
    sa.Column('previous_decision', sa.String(length=30), nullable=True),
    sa.Column('decision_changed_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['check_authorization_id'], ['authorizations.id'], name=op.f('fk_appointments_check_authorization_id_authorizations'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_appointments_patient_id_patients')),
    sa.ForeignKeyConstraint(['payer_id'], ['payers.id'], name=op.f('fk_appointments_payer_id_payers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointments')),
    sa.UniqueConstraint('appointment_id', name=op.f('uq_appointments_appointment_id'))
    )
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_appointments_check_authorization_id'), ['check_authorization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointments_check_decision'), ['check_decision'], unique=False)
        batch_op.create_index('ix_appointments_day_status', ['date_of_service', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointments_hcpcs'), ['hcpcs'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointments_patient_id'), ['patient_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_appointments_payer_id'), ['payer_id'], unique=False)

    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default='1', nullable=False))

    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('revision', sa.Integer(), server_default='1', nullable=False))



def downgrade():
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_column('revision')

    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.drop_column('revision')

    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_appointments_payer_id'))
        batch_op.drop_index(batch_op.f('ix_appointments_patient_id'))
        batch_op.drop_index(batch_op.f('ix_appointments_hcpcs'))
        batch_op.drop_index('ix_appointments_day_status')
        batch_op.drop_index(batch_op.f('ix_appointments_check_decision'))
        batch_op.drop_index(batch_op.f('ix_appointments_check_authorization_id'))

    op.drop_table('appointments')
    with op.batch_alter_table('schedule_uploads', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_schedule_uploads_created_at'))

    op.drop_table('schedule_uploads')
