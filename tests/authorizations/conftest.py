"""Fixtures for the authorization lifecycle: a payer, a drug, a patient and API users."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.factories import make_authorization, make_drug, make_patient, make_payer

TODAY = dt.date.today()


@pytest.fixture
def world(session: Session) -> dict[str, Any]:
    """A Medicare Advantage payer (7 days to decide, 65 to appeal), J1745 and patient P001."""
    payer = make_payer("ACME-MA", name="Acme Advantage", kind="medicare_advantage")
    make_drug("J1745")
    patient = make_patient("P001")
    return {"payer": payer, "patient": patient}


@pytest.fixture
def coordinator(make_user: Callable[..., tuple[Any, str]]) -> dict[str, str]:
    """An Authorization header of a coordinator (coordinator@example.org)."""
    _user, token = make_user("coordinator", "coordinator@example.org")
    return {"Authorization": f"Bearer {token}"}


def new_request(number: str = "A-2001", **overrides: Any) -> dict[str, Any]:
    """A request body for POST /api/v1/authorizations."""
    body: dict[str, Any] = {
        "number": number, "payer": "ACME-MA", "patient": "P001", "hcpcs": ["J1745"],
        "valid_from": TODAY.isoformat(),
        "valid_to": (TODAY + dt.timedelta(days=180)).isoformat(),
        "diagnoses": ["M05.79"], "site_of_care": "office", "requested_units": 160,
        "requested_visits": 4,
    }
    body.update(overrides)
    return body


def create(client: FlaskClient, headers: dict[str, str], **overrides: Any) -> Any:
    """POST a new request and return the response."""
    return client.post("/api/v1/authorizations", json=new_request(**overrides), headers=headers)


def stored(status: str = "approved", number: str = "A-1001", **overrides: Any) -> Any:
    """An authorization written straight to the database with ``status``."""
    values: dict[str, Any] = {"status": status, "valid_from": TODAY - dt.timedelta(days=30),
                              "valid_to": TODAY + dt.timedelta(days=150)}
    values.update(overrides)
    return make_authorization(number, payer=make_payer("ACME-MA"),
                              patient=make_patient_once("P001"), **values)


def make_patient_once(external_id: str) -> Any:
    """The patient ``external_id``, created if missing."""
    from sqlalchemy import select

    from policy_service.extensions import db
    from policy_service.models import Patient

    found = db.session.scalar(select(Patient).where(Patient.external_id == external_id))
    return found or make_patient(external_id)
