"""Small builders for test data: ``make_policy(**overrides)`` and friends."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from policy_service.extensions import db
from policy_service.models import (
    Authorization,
    Drug,
    DrugPackage,
    Patient,
    PatientDocument,
    Payer,
    Policy,
    PolicyVersion,
    Provider,
    ProviderEnrollment,
    StepTherapyStep,
    Therapy,
)

# The therapy and step most worlds share: methotrexate failed after five months; a
# conventional DMARD step that it satisfies.
METHOTREXATE_FAILED = {"drug": "methotrexate", "start": dt.date(2025, 1, 1),
                       "end": dt.date(2025, 6, 1), "outcome": "inadequate_response"}
CSDMARD_STEP = {"any_of": ["methotrexate", "leflunomide", "sulfasalazine"], "count": 1,
                "min_days": 90, "accepted_outcomes": ["inadequate_response", "intolerance",
                                                      "contraindication"]}

def make_payer(code: str = "MEDICARE-B", **overrides: Any) -> Payer:
    """Return the payer with ``code``, creating it with Medicare-like settings."""
    payer = db.session.scalar(select(Payer).where(Payer.code == code))
    if payer:
        return payer
    values = {"name": "Medicare Part B", "kind": "medicare", "requires_jw_jz": True,
              "requires_ndc": False, "timely_filing_days": 365,
              "complex_admin_for_biologics": True}
    payer = Payer(code=code, **{**values, **overrides})
    db.session.add(payer)
    db.session.flush()
    return payer


def make_drug(hcpcs: str = "J1745", **overrides: Any) -> Drug:
    """Return the drug with ``hcpcs``, creating infliximab-like billing data."""
    drug = db.session.scalar(select(Drug).where(Drug.hcpcs == hcpcs))
    if drug:
        return drug
    packages = overrides.pop("packages", [(100, True)])
    values = {"name": "Remicade", "generic": "infliximab", "billing_unit_amount": Decimal(10),
              "billing_unit": "mg", "route": "IV", "admin_class": "biologic"}
    drug = Drug(hcpcs=hcpcs, **{**values, **overrides})
    drug.packages = [DrugPackage(position=i, amount=Decimal(amount), unit="mg",
                                 single_dose=single)
                     for i, (amount, single) in enumerate(packages)]
    db.session.add(drug)
    db.session.flush()
    return drug


def make_policy(code: str = "MEDICARE-B/infliximab", payer: Payer | None = None,
                steps: list[dict[str, Any]] | None = None, **overrides: Any) -> PolicyVersion:
    """Create a policy version (and its policy if new) with sensible infliximab defaults."""
    payer = payer or make_payer()
    policy = db.session.scalar(select(Policy).where(Policy.code == code))
    if policy is None:
        policy = Policy(code=code, payer=payer)
        db.session.add(policy)
    values: dict[str, Any] = {
        "effective_from": dt.date(2026, 1, 1), "effective_to": None, "status": "active",
        "hcpcs": ["J1745", "Q5103"], "prior_auth_required": True,
        "covered_diagnoses": ["M05", "M06", "L40.5", "M45"], "preferred_products": [],
        "sites_of_care": ["office", "hospital_outpatient", "ambulatory_infusion_center", "home"],
        "max_dose_mg_per_kg": Decimal(10), "min_days_between_doses": 28, "min_age": 18,
        "approval_days": 365, "source": "https://example.org/policy.pdf#section-3",
    }
    values.update(overrides)
    number = values.pop("number", len(policy.versions) + 1)
    version = PolicyVersion(policy=policy, number=number, **values)
    version.steps = [StepTherapyStep(position=i, **step) for i, step in enumerate(steps or [])]
    db.session.add(version)
    db.session.flush()
    return version


def make_patient(external_id: str = "P001", therapies: list[dict[str, Any]] | None = None,
                 documents: list[tuple[str, dt.date]] | None = None,
                 **overrides: Any) -> Patient:
    """Create a patient (born 1961, 80 kg) with an optional therapy history and documents on
    file (``(code, date)`` pairs)."""
    values = {"birth_date": dt.date(1961, 3, 2), "weight_kg": Decimal(80)}
    patient = Patient(external_id=external_id, **{**values, **overrides})
    patient.therapies = [Therapy(**t) for t in therapies or []]
    patient.documents = [PatientDocument(code=code, on_date=day)
                         for code, day in documents or []]
    db.session.add(patient)
    db.session.flush()
    return patient


def make_authorization(number: str = "A-1001", patient: Patient | None = None,
                       payer: Payer | None = None, **overrides: Any) -> Authorization:
    """Create an approved authorization for J1745 valid in the first half of 2026."""
    values: dict[str, Any] = {
        "hcpcs": ["J1745"], "status": "approved", "approved_units": 160, "approved_visits": 4,
        "used_units": 0, "used_visits": 0, "valid_from": dt.date(2026, 1, 1),
        "valid_to": dt.date(2026, 6, 30), "diagnoses": ["M05.79"], "site_of_care": "office",
    }
    values.update(overrides)
    auth = Authorization(number=number, patient=patient or make_patient(),
                         payer=payer or make_payer(), **values)
    db.session.add(auth)
    db.session.flush()
    return auth


def make_provider(npi: str = "1234567893", enrollments: list[tuple[Payer, dt.date, dt.date | None]]
                  | None = None, **overrides: Any) -> Provider:
    """Create a rheumatologist enrolled with the given payers (default: none)."""
    values = {"name": "Ada Lovelace, MD", "specialty": "rheumatology"}
    provider = Provider(npi=npi, **{**values, **overrides})
    provider.enrollments = [
        ProviderEnrollment(position=i, payer=payer, effective_from=start, effective_to=end)
        for i, (payer, start, end) in enumerate(enrollments or [])]
    db.session.add(provider)
    db.session.flush()
    return provider


@dataclass
class Records:
    """One record of every kind the admin shows."""

    payer: Payer
    drug: Drug
    policy: Policy
    version: PolicyVersion
    patient: Patient
    authorization: Authorization


def make_admin_records(*, used_units: int = 0, used_visits: int = 0,
                       therapies: bool = True,
                       accepted_outcomes: list[str] | None = None) -> Records:
    """The admin pages' data set: Acme's infliximab policy with a methotrexate step, patient
    P001 and authorization A-1001 (160 units, 4 visits) ending in ten days."""
    today = dt.date.today()
    payer = Payer(code="ACME", name="Acme Health", kind="commercial")
    drug = Drug(hcpcs="J1745", name="Remicade", generic="infliximab",
                billing_unit_amount=Decimal(10), billing_unit="mg",
                packages=[DrugPackage(position=0, amount=Decimal(100), unit="mg")])
    policy = Policy(code="ACME/infliximab", payer=payer, title="Infliximab")
    # The version's indexed codes copy the payer id, so the payer must have one first.
    db.session.add_all([payer, policy])
    db.session.flush()
    step = StepTherapyStep(position=0, any_of=["methotrexate"], count=1, min_days=90)
    if accepted_outcomes is not None:
        step.accepted_outcomes = accepted_outcomes
    version = PolicyVersion(policy=policy, number=1, effective_from=today - dt.timedelta(days=90),
                            status="active", hcpcs=["J1745"], covered_diagnoses=["M05", "M06"],
                            preferred_products=[], sites_of_care=["office"],
                            source="https://example.org/acme.pdf#s3", steps=[step])
    patient = Patient(external_id="P001", birth_date=dt.date(1961, 3, 2),
                      weight_kg=Decimal(80),
                      therapies=[Therapy(**METHOTREXATE_FAILED)] if therapies else [])
    authorization = Authorization(number="A-1001", patient=patient, payer=payer,
                                  hcpcs=["J1745"], status="approved", approved_units=160,
                                  approved_visits=4, used_units=used_units,
                                  used_visits=used_visits,
                                  valid_from=today - dt.timedelta(days=30),
                                  valid_to=today + dt.timedelta(days=10),
                                  diagnoses=["M05.79"], site_of_care="office")
    db.session.add_all([drug, version, patient, authorization])
    db.session.flush()
    return Records(payer, drug, policy, version, patient, authorization)
