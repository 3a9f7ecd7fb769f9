"""authorization lifecycle: tracked fields, events, letters, payer workflow settings

Stored statuses move to the state machine: pending -> submitted; expired and exhausted ->
approved (both are now derived on read from the window and what remains).

Revision ID: b3c1a7e2d910
Revises: e3b8f1c2d4a5
Create Date: 2026-11-30 00:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b3c1a7e2d910'
down_revision = 'e3b8f1c2d4a5'
branch_labels = None
depends_on = None

# Copied, not imported: a migration must keep meaning what it meant when it was written.
WORKFLOW_DEFAULTS = {
    "medicare": (14, 30, 120),
    "medicare_advantage": (7, 30, 65),
    "medicaid": (7, 30, 60),
    "commercial": (15, 30, 180),
}


def upgrade():
    with op.batch_alter_table('payers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decision_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('renewal_lead_days', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('appeal_days', sa.Integer(), nullable=True))
    payers = sa.table('payers', sa.column('kind', sa.String), sa.column('decision_days', sa.Integer),
                      sa.column('renewal_lead_days', sa.Integer), sa.column('appeal_days', sa.Integer))
    for kind, (decision, lead, appeal) in WORKFLOW_DEFAULTS.items():
        op.execute(payers.update().where(payers.c.kind == kind).values(
            decision_days=decision, renewal_lead_days=lead, appeal_days=appeal))
    decision, lead, appeal = WORKFLOW_DEFAULTS["commercial"]
    op.execute(payers.update().where(payers.c.decision_days.is_(None)).values(
        decision_days=decision, renewal_lead_days=lead, appeal_days=appeal))
    with op.batch_alter_table('payers', schema=None) as batch_op:
        batch_op.alter_column('decision_days', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('renewal_lead_days', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('appeal_days', existing_type=sa.Integer(), nullable=False)

    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('requested_units', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('requested_visits', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('submitted_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('decided_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('payer_reference', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('channel', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('ordering_npi', sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column('denial_reason', sa.String(length=2000), nullable=True))
        batch_op.add_column(sa.Column('appeal_due', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('follow_up_on', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('renewal_of_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_authorizations_follow_up_on'), ['follow_up_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_authorizations_owner_id'), ['owner_id'], unique=False)
        batch_op.create_unique_constraint(batch_op.f('uq_authorizations_renewal_of_id'), ['renewal_of_id'])
        batch_op.create_foreign_key(batch_op.f('fk_authorizations_owner_id_users'), 'users', ['owner_id'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_authorizations_renewal_of_id_authorizations'), 'authorizations', ['renewal_of_id'], ['id'], ondelete='SET NULL')

    authorizations = sa.table('authorizations', sa.column('status', sa.String))
    op.execute(authorizations.update().where(authorizations.c.status == 'pending')
               .values(status='submitted'))
    op.execute(authorizations.update().where(authorizations.c.status.in_(('expired', 'exhausted')))
               .values(status='approved'))

    op.create_table('authorization_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('authorization_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=True),
    sa.Column('on', sa.Date(), nullable=True),
    sa.Column('reason', sa.String(length=2000), nullable=True),
    sa.Column('text', sa.String(length=4000), nullable=True),
    sa.ForeignKeyConstraint(['authorization_id'], ['authorizations.id'], name=op.f('fk_authorization_events_authorization_id_authorizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authorization_events'))
    )
    with op.batch_alter_table('authorization_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_events_authorization_id'), ['authorization_id'], unique=False)

    op.create_table('authorization_attachments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('authorization_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(), nullable=False),
    sa.Column('uploaded_by', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['authorization_id'], ['authorizations.id'], name=op.f('fk_authorization_attachments_authorization_id_authorizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authorization_attachments'))
    )
    with op.batch_alter_table('authorization_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_authorization_attachments_authorization_id'), ['authorization_id'], unique=False)


def downgrade():
    with op.batch_alter_table('authorization_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_attachments_authorization_id'))
    op.drop_table('authorization_attachments')
    with op.batch_alter_table('authorization_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_authorization_events_authorization_id'))
    op.drop_table('authorization_events')
    authorizations = sa.table('authorizations', sa.column('status', sa.String))
    op.execute(authorizations.update().where(authorizations.c.status == 'submitted')
               .values(status='pending'))
    op.execute(authorizations.update().where(authorizations.c.status == 'info_requested')
               .values(status='pending'))
    with op.batch_alter_table('authorizations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_authorizations_renewal_of_id_authorizations'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_authorizations_owner_id_users'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_authorizations_renewal_of_id'), type_='unique')
        batch_op.drop_index(batch_op.f('ix_authorizations_owner_id'))
        batch_op.drop_index(batch_op.f('ix_authorizations_follow_up_on'))
        for column in ('renewal_of_id', 'owner_id', 'follow_up_on', 'appeal_due',
                       'denial_reason', 'ordering_npi', 'channel', 'payer_reference',
                       'decided_on', 'submitted_on', 'requested_visits', 'requested_units'):
            batch_op.drop_column(column)
    with op.batch_alter_table('payers', schema=None) as batch_op:
        for column in ('appeal_days', 'renewal_lead_days', 'decision_days'):
            batch_op.drop_column(column)
