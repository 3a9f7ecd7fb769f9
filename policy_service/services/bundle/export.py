"""Exporting: every stored record as a bundle that import reads back unchanged."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from policy_service.domain.fields import (
    DRUG_ATTRS,
    MAX_DOSE_COLUMNS,
    PAYER_ATTRS,
    THERAPY_ATTRS,
    VERSION_ATTRS,
    stored_values,
    therapy_order,
)
from policy_service.extensions import db
from policy_service.models import (
    Authorization,
    Drug,
    Patient,
    Payer,
    Policy,
    PolicyVersion,
)
from policy_service.schemas.bundle import (
    BundleSchema,
)
from policy_service.services.authorizations import record_values
from policy_service.services.patients import documentation_of
from policy_service.services.providers import provider_query, provider_record


def payer_record(payer: Payer) -> dict[str, Any]:
    """Return a payer as a raw bundle record (dump it with PayerSchema)."""
    return {"id": payer.code, **{name: getattr(payer, name) for name in PAYER_ATTRS}}


def drug_record(drug: Drug) -> dict[str, Any]:
    """Return a drug as a raw bundle record (dump it with DrugSchema)."""
    record: dict[str, Any] = {"hcpcs": drug.hcpcs}
    record.update({name: getattr(drug, name) for name in DRUG_ATTRS})
    record["billing_unit"] = {"amount": drug.billing_unit_amount, "unit": drug.billing_unit}
    record["packages"] = [{"amount": p.amount, "unit": p.unit, "single_dose": p.single_dose,
                           "ndc": p.ndc} for p in sorted(drug.packages, key=lambda p: p.position)]
    return record


def policy_record(policy: Policy, version: PolicyVersion) -> dict[str, Any]:
    """Return one policy version as a raw bundle record (dump it with PolicyVersionSchema)."""
    record: dict[str, Any] = {"id": policy.code, "version": version.number,
                              "payer": policy.payer.code, "title": policy.title,
                              "effective_from": version.effective_from}
    record.update({name: getattr(version, name) for name in VERSION_ATTRS})
    record["max_dose"] = {key: getattr(version, column)
                          for key, column in MAX_DOSE_COLUMNS.items()}
    record["step_therapy"] = [step.as_dict()
                              for step in sorted(version.steps, key=lambda s: s.position)]
    record["cases"] = [{"name": case.name, "request": case.request,
                        "expect": case.expectation()}
                       for case in sorted(version.cases, key=lambda c: c.name)]
    return record


def patient_record(patient: Patient) -> dict[str, Any]:
    """Return a patient as a raw bundle record (dump it with PatientSchema)."""
    therapies = [stored_values(t, THERAPY_ATTRS) for t in patient.therapies]
    return {"id": patient.external_id, "birth_date": patient.birth_date,
            "weight_kg": patient.weight_kg,
            "therapies": sorted(therapies, key=therapy_order),
            "documentation": documentation_of(patient)}


def authorization_record(authorization: Authorization) -> dict[str, Any]:
    """Return an authorization as a raw bundle record (dump it with AuthorizationSchema)."""
    return record_values(authorization)


def export_bundle() -> dict[str, Any]:
    """Return every stored record as a bundle, in a deterministic order, ready for JSON/YAML."""
    session = db.session
    payers = session.scalars(select(Payer).order_by(Payer.code))
    drugs = session.scalars(select(Drug).order_by(Drug.hcpcs).options(selectinload(Drug.packages)))
    policies = session.scalars(
        select(Policy).order_by(Policy.code)
        .options(selectinload(Policy.payer),
                 selectinload(Policy.versions).selectinload(PolicyVersion.steps),
                 selectinload(Policy.versions).selectinload(PolicyVersion.cases)))
    patients = session.scalars(select(Patient).order_by(Patient.external_id)
                               .options(selectinload(Patient.therapies),
                                        selectinload(Patient.documents)))
    authorizations = session.scalars(
        select(Authorization).order_by(Authorization.number)
        .options(selectinload(Authorization.payer), selectinload(Authorization.patient)))
    raw = {
        "payers": [payer_record(p) for p in payers],
        "drugs": [drug_record(d) for d in drugs],
        "policies": [policy_record(p, v) for p in policies
                     for v in sorted(p.versions, key=lambda v: v.effective_from)],
        "patients": [patient_record(p) for p in patients],
        "authorizations": [authorization_record(a) for a in authorizations],
        "providers": [provider_record(p) for p in session.scalars(provider_query())],
    }
    return BundleSchema().dump(raw)


def dump_bundle_text(bundle: Mapping[str, Any], filename: str) -> str:
    """Serialise a bundle as YAML when ``filename`` ends .yaml/.yml, else as JSON."""
    if Path(filename).suffix.lower() in (".yaml", ".yml"):
        return yaml.safe_dump(dict(bundle), sort_keys=False, allow_unicode=True, width=100)
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
