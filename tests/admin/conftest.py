"""Fixtures for the admin UI: signing in through the real login form, a small data set."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from policy_service.models import (
    Authorization,
    Drug,
    DrugPackage,
    Patient,
    Payer,
    Policy,
    PolicyVersion,
    StepTherapyStep,
    Therapy,
)

PASSWORD = "correct-horse-battery"


@pytest.fixture
def login(client: FlaskClient, make_user: Callable[..., tuple[Any, str]]) -> Callable[[str], Any]:
    """Sign a new user with ``role`` in through the /login form of ``client``."""

    def sign_in(role: str) -> Any:
        user, _token = make_user(role)
        response = client.post("/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return sign_in


@dataclass
class Records:
    """One record of every kind the admin shows."""

    payer: Payer
    drug: Drug
    policy: Policy
    version: PolicyVersion
    patient: Patient
    authorization: Authorization


@pytest.fixture
def records(session: Session) -> Records:
    """A payer, drug, policy version with a step, patient and an authorization expiring soon."""
    today = dt.date.today()
    payer = Payer(code="ACME", name="Acme Health", kind="commercial")
    drug = Drug(hcpcs="J1745", name="Remicade", generic="infliximab",
                billing_unit_amount=Decimal(10), billing_unit="mg",
                packages=[DrugPackage(position=0, amount=Decimal(100), unit="mg")])
    policy = Policy(code="ACME/infliximab", payer=payer, title="Infliximab")
    # The version's indexed codes copy the payer id, so the payer must have one first.
    session.add_all([payer, policy])
    session.flush()
    version = PolicyVersion(policy=policy, number=1, effective_from=today - dt.timedelta(days=90),
                            status="active", hcpcs=["J1745"], covered_diagnoses=["M05", "M06"],
                            preferred_products=[], sites_of_care=["office"],
                            source="https://example.org/acme.pdf#s3",
                            steps=[StepTherapyStep(position=0, any_of=["methotrexate"], count=1,
                                                   min_days=90,
                                                   accepted_outcomes=["intolerance"])])
    patient = Patient(external_id="P001", birth_date=dt.date(1961, 3, 2),
                      weight_kg=Decimal(80),
                      therapies=[Therapy(drug="methotrexate", start=dt.date(2025, 1, 1),
                                         end=dt.date(2025, 6, 1),
                                         outcome="inadequate_response")])
    authorization = Authorization(number="A-1001", patient=patient, payer=payer,
                                  hcpcs=["J1745"], status="approved", approved_units=160,
                                  approved_visits=4, used_units=0, used_visits=0,
                                  valid_from=today - dt.timedelta(days=30),
                                  valid_to=today + dt.timedelta(days=10),
                                  diagnoses=["M05.79"], site_of_care="office")
    session.add_all([payer, drug, policy, version, patient, authorization])
    session.flush()
    return Records(payer, drug, policy, version, patient, authorization)
