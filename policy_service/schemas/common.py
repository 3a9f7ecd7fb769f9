"""Schema pieces the eligibility and claim requests share."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from policy_service.schemas.fields import BoundedDate, BoundedDecimal, StrictInteger

Positive = validate.Range(min=0, min_inclusive=False, error="Must be greater than 0.")

# Upper bounds of the quantities a request may carry. Each is far above any real infusion
# (IVIG at 2 g/kg for a 200 kg patient is 400 g) and keeps exact arithmetic instant.
MAX_DOSE_MG = 1_000_000
MAX_DOSE_MG_PER_KG = 5_000
MAX_WEIGHT_KG = 1_000
MAX_PACKAGE_COUNT = 1_000
# Longest list of diagnoses, therapies or package sizes one request may give.
MAX_LIST_ITEMS = 50
# Most appointments one eligibility batch may carry: a busy infusion centre's day is a few
# hundred; a longer schedule goes in several requests (or as a file to the Schedule page or
# ``policy-service check``). Each item is a full check, so this bounds the work of one request.
MAX_BATCH_ITEMS = 1_000
# Most draft orders or appointments one CDS Hooks call may carry (an EHR sends a handful).
MAX_HOOK_ORDERS = 100


def dose_mg(**kwargs: Any) -> BoundedDecimal:
    """A dose or drug amount in mg: greater than 0, at most 1,000,000, 3 decimal places."""
    return BoundedDecimal(maximum=MAX_DOSE_MG, places=3, **kwargs)


def dose_mg_per_kg(**kwargs: Any) -> BoundedDecimal:
    """A weight-based dose: greater than 0, at most 5,000 mg/kg, 4 decimal places."""
    return BoundedDecimal(maximum=MAX_DOSE_MG_PER_KG, places=4, **kwargs)


def weight_kg(**kwargs: Any) -> BoundedDecimal:
    """A body weight: greater than 0, at most 1,000 kg, 3 decimal places."""
    return BoundedDecimal(maximum=MAX_WEIGHT_KG, places=3, **kwargs)


class StrictSchema(Schema):
    """Unknown keys are errors."""

    class Meta:
        unknown = RAISE


class PatientRefSchema(StrictSchema):
    """The patient by the practice's id; birth date and weight override stored ones."""

    id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    birth_date = BoundedDate()
    weight_kg = weight_kg()


class PackageCountSchema(StrictSchema):
    """Vials opened: ``count`` packages of ``amount`` (in the drug's unit)."""

    amount = dose_mg(required=True)
    count = StrictInteger(required=True, minimum=1, maximum=MAX_PACKAGE_COUNT)
