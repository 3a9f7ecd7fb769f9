"""payer external ids

Revision ID: c41d7e2a9b10
Revises: a906a130d287
Create Date: 2026-11-30 00:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c41d7e2a9b10'
down_revision = 'a906a130d287'
branch_labels = None
depends_on = None


def upgrade():
    # Existing payers start with no external ids; the server default only fills those rows.
    with op.batch_alter_table('payers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_ids', sa.JSON(), nullable=False,
                                      server_default=sa.text("'[]'")))
    with op.batch_alter_table('payers', schema=None) as batch_op:
        batch_op.alter_column('external_ids', server_default=None)


def downgrade():
    with op.batch_alter_table('payers', schema=None) as batch_op:
        batch_op.drop_column('external_ids')
