"""Admin forms and the bundle import refuse the same values with the same messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from policy_service.domain.codes import HCPCS_MESSAGE
from policy_service.errors import Invalid
from policy_service.models import Authorization, Drug, PolicyVersion
from policy_service.services.bundle import validate_bundle
from tests.admin.test_forms import authorization_form, field_errors, version_form

Login = Callable[[str], Any]


def import_errors(bundle: dict[str, Any]) -> dict[str, list[str]]:
    """Return the bundle import's messages by field path."""
    with pytest.raises(Invalid) as refused:
        validate_bundle(bundle)
    found: dict[str, list[str]] = {}
    for error in refused.value.errors:
        found.setdefault(error["field"], []).append(error["message"])
    return found


def test_step_limits_match_the_import(client: FlaskClient, login: Login, records: Any,
                                      session: Session) -> None:
    login("coordinator")
    page = client.post("/admin/policyversion/new/", data=version_form(
        records.policy.id, **{"steps-0-count": "0", "steps-0-min_days": "-1"})
    ).get_data(as_text=True)
    imported = import_errors({"policies": [{
        "id": "ACME/infliximab", "effective_from": "2027-01-01",
        "step_therapy": [{"any_of": ["methotrexate"], "count": 0, "min_days": -1}]}]})
    assert imported["policies[0].step_therapy[0].count"] == ["Must be at least 1."]
    assert imported["policies[0].step_therapy[0].min_days"] == ["Must not be negative."]
    assert "Must be at least 1." in field_errors(page, "steps-0-count")
    assert "Must not be negative." in field_errors(page, "steps-0-min_days")
    assert session.scalar(select(PolicyVersion).where(PolicyVersion.number == 2)) is None


def test_authorization_codes_match_the_import(client: FlaskClient, login: Login, records: Any,
                                              session: Session) -> None:
    login("coordinator")
    url = f"/admin/authorization/edit/?id={records.authorization.id}"
    page = client.post(url, data=authorization_form(records, hcpcs="J1745, 12",
                                                    approved_units="-3")).get_data(as_text=True)
    imported = import_errors({"authorizations": [{"number": "A-1001", "hcpcs": ["J1745", "12"],
                                                  "approved_units": -3}]})
    assert imported["authorizations[0].hcpcs[1]"] == [HCPCS_MESSAGE]
    assert imported["authorizations[0].approved_units"] == ["Must not be negative."]
    assert HCPCS_MESSAGE in field_errors(page, "hcpcs")
    assert "Must not be negative." in field_errors(page, "approved_units")
    session.expire_all()
    assert session.get(Authorization, records.authorization.id).hcpcs == ["J1745"]


def test_unknown_drug_code_is_refused_by_form_and_import_alike(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    login("coordinator")
    url = f"/admin/authorization/edit/?id={records.authorization.id}"
    page = client.post(url, data=authorization_form(records, hcpcs="J1745, J9999")
                       ).get_data(as_text=True)
    imported = import_errors({"authorizations": [{"number": "A-1001",
                                                  "hcpcs": ["J1745", "J9999"]}]})
    message = "Unknown drug 'J9999': not in this bundle or the database."
    assert imported["authorizations[0].hcpcs[1]"] == [message]
    assert "Unknown drug &#39;J9999&#39;" in field_errors(page, "hcpcs")
    session.expire_all()
    assert session.get(Authorization, records.authorization.id).hcpcs == ["J1745"]


def test_drug_codes_are_checked_as_stored(client: FlaskClient, login: Login,
                                          session: Session) -> None:
    login("coordinator")
    data = {"hcpcs": "q5103", "name": "Inflectra", "generic": "infliximab",
            "billing_unit_amount": "10", "billing_unit": "mg", "biosimilar_of": "remicade",
            "packages-0-amount": "0", "packages-0-unit": "mg"}
    page = client.post("/admin/drug/new/", data=data).get_data(as_text=True)
    assert HCPCS_MESSAGE in field_errors(page, "biosimilar_of")
    assert "Must be greater than 0." in field_errors(page, "packages-0-amount")
    assert session.scalar(select(Drug).where(Drug.hcpcs == "Q5103")) is None
    accepted = client.post("/admin/drug/new/", data={**data, "biosimilar_of": "",
                                                     "packages-0-amount": "100"})
    assert accepted.status_code == 302
    assert session.scalar(select(Drug).where(Drug.hcpcs == "Q5103")).biosimilar_of is None
