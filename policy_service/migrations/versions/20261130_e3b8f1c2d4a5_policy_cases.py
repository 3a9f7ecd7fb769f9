"""policy test cases

Revision ID: e3b8f1c2d4a5
Revises: c4e2d8a1f035
Create Date: 2026-11-30 01:50:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e3b8f1c2d4a5'
down_revision = 'c4e2d8a1f035'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'policy_cases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('policy_version_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('request', sa.JSON(), nullable=False),
        sa.Column('expect_decision', sa.String(length=30), nullable=False),
        sa.Column('expect_codes', sa.JSON(), nullable=False),
        sa.Column('expect_absent', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['policy_version_id'], ['policy_versions.id'],
                                name=op.f('fk_policy_cases_policy_version_id_policy_versions'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_policy_cases')),
        sa.UniqueConstraint('policy_version_id', 'name',
                            name=op.f('uq_policy_cases_policy_version_id_name')),
    )
    with op.batch_alter_table('policy_cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_policy_cases_policy_version_id'),
                              ['policy_version_id'], unique=False)


def downgrade():
    with op.batch_alter_table('policy_cases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_policy_cases_policy_version_id'))
    op.drop_table('policy_cases')
