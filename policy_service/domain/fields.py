"""The one table of each record's stored fields, as bundles and the change history name them.

The bundle's import and export, the change history's snapshots and the policy diff all read
these tuples, so a new column is added here once and every one of them follows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

# Fields a bundle record carries under the column's own name (natural keys and fields the
# bundle spells differently, such as ``max_dose`` or ``billing_unit``, are listed apart).
PAYER_ATTRS = ("name", "kind", "requires_jw_jz", "requires_ndc", "timely_filing_days",
               "complex_admin_for_biologics", "external_ids", "decision_days",
               "renewal_lead_days", "appeal_days", "notes")
PAYER_DEFAULTS: Mapping[str, Any] = {
    "kind": "commercial", "requires_jw_jz": False, "requires_ndc": False,
    "timely_filing_days": 365, "complex_admin_for_biologics": True, "external_ids": [],
    "notes": None}

DRUG_ATTRS = ("name", "generic", "biosimilar_of", "route", "admin_class", "valid_from",
              "valid_to", "mue_units", "rxnorm", "source", "notes")
DRUG_DEFAULTS: Mapping[str, Any] = {
    "biosimilar_of": None, "route": None, "admin_class": None, "valid_from": None,
    "valid_to": None, "mue_units": None, "rxnorm": [], "source": None, "notes": None}
# The bundle's ``billing_unit: {amount, unit}`` is stored in these two columns.
BILLING_UNIT_COLUMNS = ("billing_unit_amount", "billing_unit")
PACKAGE_ATTRS = ("amount", "unit", "single_dose", "ndc")
PACKAGE_DEFAULTS: Mapping[str, Any] = {"unit": "mg", "single_dose": True, "ndc": None}

VERSION_ATTRS = ("hcpcs", "effective_to", "status", "prior_auth_required", "covered_diagnoses",
                 "preferred_products", "sites_of_care", "min_days_between_doses", "min_age",
                 "max_age", "new_starts_only_lookback_days", "approval_days",
                 "documentation_required", "drug_supply", "prescriber_specialties", "source",
                 "notes")
# The bundle's ``max_dose: {mg, mg_per_kg, units}`` is stored in these columns.
MAX_DOSE_COLUMNS: Mapping[str, str] = {
    "mg": "max_dose_mg", "mg_per_kg": "max_dose_mg_per_kg", "units": "max_dose_units"}
VERSION_DEFAULTS: Mapping[str, Any] = {
    "effective_to": None, "status": "draft", "hcpcs": [], "prior_auth_required": True,
    "covered_diagnoses": [], "preferred_products": [], "sites_of_care": [],
    "max_dose_mg": None, "max_dose_mg_per_kg": None, "max_dose_units": None,
    "min_days_between_doses": None, "min_age": None, "max_age": None,
    "new_starts_only_lookback_days": None, "approval_days": None,
    "documentation_required": [], "drug_supply": "either", "prescriber_specialties": [],
    "source": None, "notes": None}
CASE_FIELDS = ("name", "request", "expect_decision", "expect_codes", "expect_absent")
STEP_ATTRS = ("any_of", "count", "min_days", "accepted_outcomes")
STEP_DEFAULTS: Mapping[str, Any] = {"count": 1, "min_days": 0, "accepted_outcomes": []}

PATIENT_ATTRS = ("birth_date", "weight_kg")
THERAPY_ATTRS = ("drug", "start", "end", "outcome")
THERAPY_DEFAULTS: Mapping[str, Any] = {"end": None, "outcome": None}
# A patient's documents on file: the bundle says ``date``, the column is ``on_date``.
DOCUMENT_FIELDS = ("code", "on_date")

AUTHORIZATION_ATTRS = ("hcpcs", "status", "requested_units", "requested_visits",
                       "approved_units", "approved_visits", "used_units", "used_visits",
                       "valid_from", "valid_to", "diagnoses", "site_of_care", "notes",
                       "submitted_on", "decided_on", "payer_reference", "channel",
                       "ordering_npi", "denial_reason", "appeal_due", "follow_up_on")
AUTHORIZATION_DEFAULTS: Mapping[str, Any] = {
    "hcpcs": [], "status": "requested", "approved_units": None, "approved_visits": None,
    "used_units": 0, "used_visits": 0, "diagnoses": [], "site_of_care": None, "notes": None}

PROVIDER_ATTRS = ("name", "specialty")
ENROLLMENT_ATTRS = ("effective_from", "effective_to")

# What the change history snapshots of each record: its key, then every stored field.
PAYER_FIELDS = ("code", *PAYER_ATTRS)
DRUG_FIELDS = ("hcpcs", *DRUG_ATTRS, *BILLING_UNIT_COLUMNS)
PACKAGE_FIELDS = PACKAGE_ATTRS
VERSION_FIELDS = ("number", "effective_from", *VERSION_ATTRS, *MAX_DOSE_COLUMNS.values())
STEP_FIELDS = ("position", *STEP_ATTRS)
PATIENT_FIELDS = ("external_id", *PATIENT_ATTRS)
THERAPY_FIELDS = THERAPY_ATTRS
AUTHORIZATION_FIELDS = ("number", *AUTHORIZATION_ATTRS)
PROVIDER_FIELDS = ("npi", *PROVIDER_ATTRS)


def stored_values(record: Any, names: Iterable[str]) -> dict[str, Any]:
    """Return ``{name: record.name}`` for each of ``names``."""
    return {name: getattr(record, name) for name in names}


def document_rows(entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Bundle ``documentation`` entries as sorted, distinct ``{code, on_date}`` rows."""
    return [{"code": code, "on_date": day}
            for code, day in sorted({(e["code"], e["date"]) for e in entries})]


def therapy_order(therapy: Mapping[str, Any]) -> tuple[Any, ...]:
    """Sort key of a therapy course: start, drug, end, outcome (open-ended courses last)."""
    return (therapy["start"], therapy["drug"], therapy.get("end") or dt.date.max,
            therapy.get("outcome") or "")


def apply_values(record: Any, values: Mapping[str, Any]) -> bool:
    """Set each attribute that differs; return whether any did (so unchanged rows stay clean)."""
    changed = False
    for name, value in values.items():
        if getattr(record, name) != value:
            # A fresh list for JSON columns: in-place mutation is invisible to the ORM.
            setattr(record, name, list(value) if isinstance(value, list) else value)
            changed = True
    return changed


def sync_children(children: list[Any], wanted: Sequence[Mapping[str, Any]],
                   build: Callable[..., Any]) -> bool:
    """Make ``children`` match ``wanted`` position by position; return whether anything changed.

    Rows are updated in place rather than replaced, so (parent, position) stays unique at
    every step of the flush.
    """
    changed = False
    for position, values in enumerate(wanted):
        if position < len(children):
            changed |= apply_values(children[position], values)
        else:
            children.append(build(**values))
            changed = True
    while len(children) > len(wanted):
        children.pop()
        changed = True
    return changed


# Request fields as people say them: the check names a missing fact by its field (data for
# clients), and every message, page and card says it in these words.
REQUEST_FIELD_WORDS: Mapping[str, str] = {
    "site_of_care": "the site of care", "diagnosis_codes": "a diagnosis code",
    "dose": "the dose", "weight_kg": "the patient's weight", "birth_date": "the birth date",
    "packages": "the vial packages", "date_of_service": "the date of service",
    "rendering_npi": "the rendering provider's NPI", "ordering_npi": "the prescriber's NPI",
}


def field_words(name: str) -> str:
    """A request field as people say it (``weight_kg`` -> "the patient's weight")."""
    return REQUEST_FIELD_WORDS.get(name, name.replace("_", " "))
