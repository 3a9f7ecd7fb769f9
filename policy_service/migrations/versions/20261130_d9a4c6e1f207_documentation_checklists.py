"""documentation checklists: coded policy items, documents on file per patient

Revision ID: d9a4c6e1f207
Revises: d5f2a8c3e611
Create Date: 2026-11-30 04:20:00

A policy version's ``documentation_required`` was a list of labels; it becomes a list of items
``{"code", "label", "max_age_days"}``, each label given the code the bundle import gives a bare
label (upper case, words joined by underscores). Patients gain the documents on file.
"""
import re

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd9a4c6e1f207'
down_revision = 'd5f2a8c3e611'
branch_labels = None
depends_on = None

_versions = sa.table('policy_versions', sa.column('id', sa.Integer),
                     sa.column('documentation_required', sa.JSON))
_NOT_CODE = re.compile(r"[^A-Z0-9]+")


def _code(label):
    # The rule of policy_service.domain.documentation.code_for_label, frozen here: a migration
    # must not change when the application code does.
    code = _NOT_CODE.sub("_", label.upper()).strip("_")[:40].rstrip("_")
    if not code or not code[0].isalpha():
        code = f"DOC_{code}"[:40].rstrip("_")
    return code


def _rewrite(convert):
    connection = op.get_bind()
    rows = connection.execute(sa.select(_versions.c.id, _versions.c.documentation_required))
    for row_id, values in rows.fetchall():
        converted = [convert(value) for value in values or []]
        if converted != (values or []):
            connection.execute(_versions.update().where(_versions.c.id == row_id)
                               .values(documentation_required=converted))


def upgrade():
    op.create_table(
        'patient_documents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('patient_id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('on_date', sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(['patient_id'], ['patients.id'],
                                name=op.f('fk_patient_documents_patient_id_patients'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_patient_documents')),
        sa.UniqueConstraint('patient_id', 'code', 'on_date',
                            name=op.f('uq_patient_documents_patient_id_code_on_date')),
    )
    with op.batch_alter_table('patient_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patient_documents_patient_id'), ['patient_id'],
                              unique=False)
    _rewrite(lambda value: {"code": _code(value), "label": value, "max_age_days": None}
             if isinstance(value, str) else value)


def downgrade():
    _rewrite(lambda value: value["label"] if isinstance(value, dict) else value)
    with op.batch_alter_table('patient_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patient_documents_patient_id'))
    op.drop_table('patient_documents')
