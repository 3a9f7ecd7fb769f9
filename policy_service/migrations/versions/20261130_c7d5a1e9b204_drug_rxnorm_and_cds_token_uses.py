"""drug rxnorm codes and CDS Hooks token uses

Revision ID: c7d5a1e9b204
Revises: c41d7e2a9b10
Create Date: 2026-11-30 00:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c7d5a1e9b204'
down_revision = 'c41d7e2a9b10'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('drugs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rxnorm', sa.JSON(), nullable=True))
    # Existing drugs have no RxNorm codes yet: an empty list, as the model's default gives.
    op.execute("UPDATE drugs SET rxnorm = '[]'")
    with op.batch_alter_table('drugs', schema=None) as batch_op:
        batch_op.alter_column('rxnorm', existing_type=sa.JSON(), nullable=False)

    op.create_table('cds_token_uses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cds_token_uses')),
    sa.UniqueConstraint('digest', name=op.f('uq_cds_token_uses_digest'))
    )
    with op.batch_alter_table('cds_token_uses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cds_token_uses_expires_at'), ['expires_at'], unique=False)


def downgrade():
    with op.batch_alter_table('cds_token_uses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cds_token_uses_expires_at'))
    op.drop_table('cds_token_uses')
    with op.batch_alter_table('drugs', schema=None) as batch_op:
        batch_op.drop_column('rxnorm')
