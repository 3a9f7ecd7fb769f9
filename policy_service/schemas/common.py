"""Schema pieces the eligibility and claim requests share."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

Positive = validate.Range(min=0, min_inclusive=False, error="Must be greater than 0.")


class StrictSchema(Schema):
    """Unknown keys are errors."""

    class Meta:
        unknown = RAISE


class PatientRefSchema(StrictSchema):
    """The patient by the practice's id; birth date and weight override stored ones."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    birth_date = fields.Date()
    weight_kg = fields.Decimal(validate=Positive)


class PackageCountSchema(StrictSchema):
    """Vials opened: ``count`` packages of ``amount`` (in the drug's unit)."""

    amount = fields.Decimal(required=True, validate=Positive)
    count = fields.Integer(required=True, validate=validate.Range(min=1))
