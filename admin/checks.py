"""Admin form validation through the very validators the import and API run.

The rules live in policy_service.schemas.bundle (``validate_*_fields``); this module only hands
them the submitted values under their bundle names and puts each message back on the form field
it is about, as ``{form field name: message}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from wtforms import Form

from policy_service.errors import normalise_errors
from policy_service.schemas.bundle import (
    Messages,
    validate_document_fields,
    validate_drug_fields,
    validate_package_fields,
    validate_patient_fields,
    validate_payer_fields,
    validate_policy_version_fields,
    validate_step_fields,
    validate_therapy_fields,
)

Validator = Callable[[Mapping[str, Any]], Messages]
# bundle name (dotted for nested values) -> form field name, where the two differ
FieldNames = Mapping[str, str]

POLICY_VERSION_FIELDS: FieldNames = {
    "max_dose.mg": "max_dose_mg", "max_dose.mg_per_kg": "max_dose_mg_per_kg",
    "max_dose.units": "max_dose_units",
}
DRUG_FIELDS: FieldNames = {"billing_unit.amount": "billing_unit_amount"}
# A position inside a list field (``diagnoses[1]``) is reported on the list field itself.
_POSITION = re.compile(r"\[\d+\]$")


def value(form: Form, name: str) -> Any:
    """Return the submitted value of ``name``, or None when the form has no such field."""
    field = getattr(form, name, None)
    return None if field is None else field.data


def form_values(form: Form, renames: FieldNames | None = None) -> dict[str, Any]:
    """Return the form's submitted values under their bundle names (nested where dotted)."""
    renames = renames or {}
    form_to_bundle = {form_name: bundle for bundle, form_name in renames.items()}
    values: dict[str, Any] = {}
    for field in form:
        # Inline rows prefix their names (``therapies-0-start``); the short name is the column.
        target = form_to_bundle.get(field.short_name, field.short_name).split(".")
        node = values
        for part in target[:-1]:
            node = node.setdefault(part, {})
        node[target[-1]] = field.data
    return values


def field_messages(errors: Messages, renames: FieldNames | None = None) -> dict[str, str]:
    """Flatten a shared validator's errors to ``{form field name: message}``."""
    renames = renames or {}
    messages: dict[str, list[str]] = {}
    for error in normalise_errors(errors):
        path = error["field"]
        while _POSITION.search(path):
            path = _POSITION.sub("", path)
        field = renames.get(path, path)
        if error["message"] not in messages.setdefault(field, []):
            messages[field].append(error["message"])
    return {field: " ".join(texts) for field, texts in messages.items()}


def check(form: Form, validator: Validator, renames: FieldNames | None = None,
          skip: tuple[str, ...] = (),
          prepare: Callable[[dict[str, Any]], None] | None = None) -> dict[str, str]:
    """Run a shared validator on the form's values; leave out the inline lists in ``skip``.

    ``prepare`` adjusts the values first the way the view will before saving (upper-casing).
    """
    values = {name: data for name, data in form_values(form, renames).items()
              if name not in skip}
    if prepare is not None:
        prepare(values)
    return field_messages(validator(values), renames)


def check_rows(form: Form, list_name: str, validator: Validator) -> dict[str, str]:
    """Run a shared validator on each inline row of ``list_name``, marking the row's fields.

    Returns one message for the top of the form when any row is refused.
    """
    refused = False
    for entry in getattr(form, list_name, None) or []:
        row = entry.form
        for name, message in field_messages(validator(form_values(row))).items():
            field = getattr(row, name, None)
            if field is None:
                continue
            field.errors = [*field.errors, message]
            refused = True
    return {f"{list_name}_rows": f"Some {list_name} rows need correcting."} if refused else {}


def payer_errors(form: Form) -> dict[str, str]:
    """The import's rules for a payer."""
    return check(form, validate_payer_fields)


def _drug_codes_as_stored(values: dict[str, Any]) -> None:
    # The drug view stores codes stripped and upper-cased; validate what will be stored.
    for name in ("hcpcs", "biosimilar_of"):
        if isinstance(values.get(name), str):
            values[name] = values[name].strip().upper() or None


def drug_errors(form: Form) -> dict[str, str]:
    """The import's rules for a drug and, row by row, its packages."""
    errors = check(form, validate_drug_fields, DRUG_FIELDS, skip=("packages",),
                   prepare=_drug_codes_as_stored)
    return errors | check_rows(form, "packages", validate_package_fields)


def policy_version_errors(form: Form) -> dict[str, str]:
    """The import's rules for a policy version and, row by row, its step-therapy steps."""
    errors = check(form, validate_policy_version_fields, POLICY_VERSION_FIELDS,
                   skip=("steps",))
    return errors | check_rows(form, "steps", validate_step_fields)


def patient_errors(form: Form) -> dict[str, str]:
    """The import's rules for a patient and, row by row, their therapies."""
    errors = check(form, validate_patient_fields, skip=("therapies", "documents"))
    return (errors | check_rows(form, "therapies", validate_therapy_fields)
            | check_rows(form, "documents", validate_document_fields))


def number_positions(items: list[Any]) -> None:
    """Give rows added inline the next free position, keeping the order of existing ones."""
    taken: set[int] = set()
    for item in items:
        if item.position is not None and item.position not in taken:
            taken.add(item.position)
        else:
            item.position = None
    next_free = max(taken, default=-1) + 1
    for item in items:
        if item.position is None:
            item.position = next_free
            next_free += 1
