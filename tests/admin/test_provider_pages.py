"""The provider admin pages: list, create and edit with the import's validation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from policy_service.models import PolicyVersion, Provider
from tests.admin.test_forms import version_form

Login = Callable[[str], Any]


def provider_form(records: Any, **overrides: Any) -> dict[str, Any]:
    """Form data for a rheumatologist enrolled with the fixture's payer."""
    data = {"npi": "1234567893", "name": "Ada Lovelace, MD", "specialty": "Rheumatology",
            "enrollments-0-payer": str(records.payer.id),
            "enrollments-0-effective_from": "2024-01-01", "enrollments-0-effective_to": ""}
    data.update(overrides)
    return data


def _providers(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Provider)) or 0


def test_coordinator_creates_and_lists_a_provider(client: FlaskClient, login: Login,
                                                  records: Any, session: Session) -> None:
    login("coordinator")
    response = client.post("/admin/provider/new/", data=provider_form(records))
    assert response.status_code == 302, response.get_data(as_text=True)
    provider = session.scalar(select(Provider))
    assert provider.specialty == "rheumatology"
    assert [(e.payer.code, str(e.effective_from), e.effective_to)
            for e in provider.enrollments] == [("ACME", "2024-01-01", None)]
    listing = client.get("/admin/provider/").get_data(as_text=True)
    assert "1234567893" in listing and "ACME 2024-01-01 to open" in listing


@pytest.mark.parametrize(("overrides", "words"), [
    ({"npi": "1234567890"}, "check digit does not match"),
    ({"enrollments-1-payer": "", "enrollments-1-effective_from": "2024-06-01"},
     "Each enrollment needs a payer"),
    ({"enrollments-1-effective_from": "2024-06-01", "enrollments-1-effective_to": ""},
     "Overlaps enrollments[0] with ACME"),
    ({"enrollments-0-effective_to": "2023-01-01"}, "Must not be before effective_from"),
])
def test_bad_provider_is_refused_with_the_imports_message(
        client: FlaskClient, login: Login, records: Any, session: Session,
        overrides: dict[str, Any], words: str) -> None:
    login("coordinator")
    data = provider_form(records, **overrides)
    if "enrollments-1-effective_from" in overrides:
        data.setdefault("enrollments-1-payer", str(records.payer.id))
    page = client.post("/admin/provider/new/", data=data)
    assert page.status_code == 200
    assert words in page.get_data(as_text=True)
    assert _providers(session) == 0


def test_edit_ends_an_enrollment(client: FlaskClient, login: Login, records: Any,
                                 session: Session) -> None:
    login("coordinator")
    client.post("/admin/provider/new/", data=provider_form(records))
    provider = session.scalar(select(Provider))
    data = provider_form(records, **{"enrollments-0-id": str(provider.enrollments[0].id),
                                     "enrollments-0-effective_to": "2025-12-31",
                                     "expected_version": str(provider.version)})
    response = client.post(f"/admin/provider/edit/?id={provider.id}", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    session.expire_all()
    assert str(session.get(Provider, provider.id).enrollments[0].effective_to) == "2025-12-31"


def test_scheduler_cannot_create_a_provider(client: FlaskClient, login: Login,
                                            records: Any, session: Session) -> None:
    login("scheduler")
    assert client.post("/admin/provider/new/", data=provider_form(records)).status_code == 403
    assert _providers(session) == 0


def test_policy_version_form_takes_drug_supply_and_specialties(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    login("coordinator")
    response = client.post("/admin/policyversion/new/", data=version_form(
        records.policy.id, drug_supply="specialty_pharmacy",
        prescriber_specialties="Rheumatology, internal medicine"))
    assert response.status_code == 302, response.get_data(as_text=True)
    created = session.scalar(select(PolicyVersion).where(PolicyVersion.number == 2))
    assert created.drug_supply == "specialty_pharmacy"
    assert created.prescriber_specialties == ["rheumatology", "internal medicine"]


def test_coordinator_deletes_a_provider_and_the_history_keeps_it(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    from policy_service.models import ChangeRecord

    login("coordinator")
    client.post("/admin/provider/new/", data=provider_form(records))
    provider = session.scalar(select(Provider))
    response = client.post("/admin/provider/delete/", data={"id": str(provider.id)})
    assert response.status_code == 302
    assert _providers(session) == 0
    deleted = session.scalar(select(ChangeRecord).where(
        ChangeRecord.entity_type == "provider", ChangeRecord.action == "delete"))
    assert deleted.before["npi"] == "1234567893"
    assert deleted.before["enrollments"][0]["payer"] == "ACME"
