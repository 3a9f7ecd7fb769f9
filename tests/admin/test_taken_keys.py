"""A key another record already has: one message on its field, from the owning service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_admin.contrib.sqla.validators import Unique
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from policy_service.models import Authorization, Drug, Patient, Payer, Provider
from tests.admin.test_forms import authorization_form, field_errors
from tests.admin.test_provider_pages import provider_form

Login = Callable[[str], Any]


def new_forms(records: Any) -> dict[str, dict[str, Any]]:
    """Filled new-record forms whose key the fixture's records already hold."""
    return {
        "payer": {"code": "ACME", "name": "Acme again", "kind": "commercial",
                  "timely_filing_days": "90", "external_ids": "", "notes": ""},
        # Stored upper-case: Flask-Admin's check let "j1745" through to a database error.
        "drug": {"hcpcs": "j1745", "name": "Remicade", "generic": "infliximab",
                 "billing_unit_amount": "10", "billing_unit": "mg"},
        "patient": {"external_id": "P001", "birth_date": "1970-05-05", "weight_kg": "70"},
        "provider": provider_form(records),
        "authorization": {**authorization_form(records), "expected_version": ""},
    }


TAKEN = [
    pytest.param("payer", Payer, "code",
                 "Another payer already has the code ACME: type a different one, or edit that "
                 "payer.", id="payer"),
    pytest.param("drug", Drug, "hcpcs",
                 "Another drug already has the HCPCS code J1745: edit that drug, or type a "
                 "different code.", id="drug"),
    pytest.param("patient", Patient, "external_id",
                 "Another patient already has the id P001: open that patient, or type a "
                 "different id.", id="patient"),
    pytest.param("provider", Provider, "npi",
                 "Another provider already has the NPI 1234567893: edit that provider, or "
                 "check the number.", id="provider"),
    pytest.param("authorization", Authorization, "number",
                 "Authorization A-1001 already exists: open it to change it, or check the "
                 "number.", id="authorization"),
]


@pytest.fixture
def provider(records: Any, session: Session) -> Provider:
    """Dr Lovelace, NPI 1234567893, already on file."""
    stored = Provider(npi="1234567893", name="Ada Lovelace, MD")
    session.add(stored)
    session.flush()
    return stored


@pytest.mark.parametrize(("endpoint", "model", "field", "message"), TAKEN)
def test_a_new_record_with_a_taken_key_says_what_is_taken_and_what_to_do(
        client: FlaskClient, login: Login, records: Any, provider: Provider, session: Session,
        endpoint: str, model: type, field: str, message: str) -> None:
    login("coordinator")
    before = session.scalar(select(func.count()).select_from(model))
    refused = client.post(f"/admin/{endpoint}/new/", data=new_forms(records)[endpoint])
    page = refused.get_data(as_text=True)
    assert refused.status_code == 200
    assert message in field_errors(page, field)
    assert page.count(message) == 1 and "Already exists." not in page
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(model)) == before


@pytest.mark.parametrize(("endpoint", "model", "field", "taken", "message", "keep"), [
    pytest.param("payer", Payer, "code", "ACME", TAKEN[0].values[3],
                 {"name": "Other", "kind": "commercial", "timely_filing_days": "90",
                  "external_ids": "", "notes": ""}, id="payer"),
    pytest.param("drug", Drug, "hcpcs", "j1745", TAKEN[1].values[3],
                 {"name": "Inflectra", "generic": "infliximab", "billing_unit_amount": "10",
                  "billing_unit": "mg"}, id="drug"),
])
def test_an_edit_to_a_taken_key_says_what_to_do_and_its_own_key_is_kept(
        client: FlaskClient, login: Login, records: Any, session: Session, endpoint: str,
        model: type, field: str, taken: str, message: str, keep: dict[str, str]) -> None:
    other = (Payer(code="OTHER", name="Other", kind="commercial") if endpoint == "payer" else
             Drug(hcpcs="Q5103", name="Inflectra", generic="infliximab",
                  billing_unit_amount=10, billing_unit="mg"))
    session.add(other)
    session.flush()
    own_key = getattr(other, field)
    login("coordinator")
    url = f"/admin/{endpoint}/edit/?id={other.id}"
    refused = client.post(url, data={**keep, field: taken,
                                     "expected_version": str(other.version)})
    page = refused.get_data(as_text=True)
    assert message in field_errors(page, field) and page.count(message) == 1
    session.expire_all()
    assert getattr(session.get(model, other.id), field) == own_key
    kept = client.post(url, data={**keep, field: own_key,
                                  "expected_version": str(other.version)})
    assert kept.status_code == 302, kept.get_data(as_text=True)


def test_no_admin_form_keeps_flask_admins_bare_unique_check(app: Flask) -> None:
    # Each unique key is checked by the service owning it (the view's unique_checks).
    with app.test_request_context():
        for view in app.extensions["policy_admin"]._views:
            if not hasattr(view, "get_create_form"):
                continue
            for form_class in (view.get_create_form(), view.get_edit_form()):
                for name in dir(form_class):
                    validators = getattr(getattr(form_class, name), "kwargs", {})
                    if isinstance(validators, dict):
                        assert not any(isinstance(v, Unique) for v in
                                       validators.get("validators") or []), (view.endpoint,
                                                                             name)
