"""drug supply on policies and appointments; providers and their payer enrollments

Revision ID: d5f2a8c3e611
Revises: b3c1a7e2d910
Create Date: 2026-11-30 04:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd5f2a8c3e611'
down_revision = 'b3c1a7e2d910'
branch_labels = None
depends_on = None


def upgrade():
    # Existing rows get the defaults the models give: a policy allows either supply and lists
    # no prescriber specialty; a stored appointment was planned as buy and bill.
    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drug_supply', sa.String(length=20), nullable=False,
                                      server_default='either'))
        batch_op.add_column(sa.Column('prescriber_specialties', sa.JSON(), nullable=True))
    op.execute("UPDATE policy_versions SET prescriber_specialties = '[]'")
    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.alter_column('prescriber_specialties', existing_type=sa.JSON(), nullable=False)
        batch_op.alter_column('drug_supply', existing_type=sa.String(length=20),
                              server_default=None)

    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drug_supply', sa.String(length=20), nullable=False,
                                      server_default='buy_and_bill'))
        batch_op.add_column(sa.Column('rendering_npi', sa.String(length=10), nullable=True))
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.alter_column('drug_supply', existing_type=sa.String(length=20),
                              server_default=None)

    op.create_table('providers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('npi', sa.String(length=10), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('specialty', sa.String(length=100), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_providers')),
    sa.UniqueConstraint('npi', name=op.f('uq_providers_npi'))
    )
    op.create_table('provider_enrollments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('payer_id', sa.Integer(), nullable=False),
    sa.Column('effective_from', sa.Date(), nullable=False),
    sa.Column('effective_to', sa.Date(), nullable=True),
    sa.ForeignKeyConstraint(['payer_id'], ['payers.id'],
                            name=op.f('fk_provider_enrollments_payer_id_payers')),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'],
                            name=op.f('fk_provider_enrollments_provider_id_providers'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_enrollments')),
    sa.UniqueConstraint('provider_id', 'position',
                        name=op.f('uq_provider_enrollments_provider_id_position'))
    )
    with op.batch_alter_table('provider_enrollments', schema=None) as batch_op:
        batch_op.create_index('ix_provider_enrollments_payer', ['payer_id'], unique=False)


def downgrade():
    with op.batch_alter_table('provider_enrollments', schema=None) as batch_op:
        batch_op.drop_index('ix_provider_enrollments_payer')
    op.drop_table('provider_enrollments')
    op.drop_table('providers')
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_column('rendering_npi')
        batch_op.drop_column('drug_supply')
    with op.batch_alter_table('policy_versions', schema=None) as batch_op:
        batch_op.drop_column('prescriber_specialties')
        batch_op.drop_column('drug_supply')
