"""Providers and payer enrollments: bundle validation (nothing written), round trip, read API."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from policy_service.errors import Invalid
from policy_service.models import ChangeRecord, Provider
from policy_service.services.bundle import export_bundle, import_bundle
from policy_service.services.policy_index import index_cache

PAYERS = [{"id": "MEDICARE-B", "name": "Medicare Part B", "kind": "medicare"},
          {"id": "ACME", "name": "Acme Health"}]
RHEUMATOLOGIST = {"npi": "1234567893", "name": "Ada Lovelace, MD", "specialty": "rheumatology",
                  "enrollments": [{"payer": "MEDICARE-B", "effective_from": "2024-01-01",
                                   "effective_to": None}]}


def bundle(*providers: dict[str, Any]) -> dict[str, Any]:
    """Two payers and the given providers."""
    return {"payers": copy.deepcopy(PAYERS), "providers": [copy.deepcopy(p) for p in providers]}


def _errors(exc: pytest.ExceptionInfo[Invalid]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in exc.value.errors}


def _providers(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Provider)) or 0


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"npi": "1234567890"}, "providers[0].npi", "check digit"),
    ({"npi": "12345"}, "providers[0].npi", "10 digits"),
    ({"enrollments": [{"payer": "NOPE", "effective_from": "2024-01-01"}]},
     "providers[0].enrollments[0].payer", "Unknown payer 'NOPE'"),
    ({"enrollments": [
        {"payer": "ACME", "effective_from": "2024-01-01", "effective_to": "2024-12-31"},
        {"payer": "ACME", "effective_from": "2024-06-01", "effective_to": None}]},
     "providers[0].enrollments[1].effective_from", "Overlaps enrollments[0] with ACME"),
    ({"enrollments": [{"payer": "ACME", "effective_from": "2024-01-01"},
                      {"payer": "ACME", "effective_from": "2030-01-01"}]},
     "providers[0].enrollments[1].effective_from", "2024-01-01 to open"),
    ({"enrollments": [{"payer": "ACME", "effective_from": "2024-06-01",
                       "effective_to": "2024-01-01"}]},
     "providers[0].enrollments[0].effective_to", "Must not be before"),
    ({"specialty": "  "}, "providers[0].specialty", "specialty"),
])
def test_bad_provider_names_the_field_and_writes_nothing(
        session: Session, change: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(Invalid) as exc:
        import_bundle(bundle({**RHEUMATOLOGIST, **change}), "system")
    assert words in _errors(exc)[field]
    assert _providers(session) == 0


def test_new_provider_needs_a_name(session: Session) -> None:
    with pytest.raises(Invalid) as exc:
        import_bundle(bundle({"npi": "1245319599"}), "system")
    assert "providers[0].name" in _errors(exc)


def test_same_payer_after_an_ended_enrollment_is_fine(session: Session) -> None:
    provider = {**RHEUMATOLOGIST, "enrollments": [
        {"payer": "ACME", "effective_from": "2024-01-01", "effective_to": "2024-12-31"},
        {"payer": "ACME", "effective_from": "2025-01-01", "effective_to": None},
        {"payer": "MEDICARE-B", "effective_from": "2024-06-01", "effective_to": None}]}
    summary = import_bundle(bundle(provider), "system")
    assert summary["providers"] == {"created": 1, "updated": 0, "unchanged": 0}


def test_round_trip_and_second_import_unchanged(session: Session) -> None:
    import_bundle(bundle(RHEUMATOLOGIST, {"npi": "1245319599", "name": "Grace Hopper, MD",
                                          "specialty": "Internal  Medicine"}), "system")
    exported = export_bundle()
    assert [p["npi"] for p in exported["providers"]] == ["1234567893", "1245319599"]
    assert exported["providers"][1] == {"npi": "1245319599", "name": "Grace Hopper, MD",
                                        "specialty": "internal medicine", "enrollments": []}
    history = session.scalar(select(func.count()).select_from(ChangeRecord))
    summary = import_bundle(copy.deepcopy(exported), "system")
    assert summary["providers"] == {"created": 0, "updated": 0, "unchanged": 2}
    assert session.scalar(select(func.count()).select_from(ChangeRecord)) == history


def test_enrollment_change_is_recorded_and_moves_the_index(session: Session) -> None:
    import_bundle(bundle(RHEUMATOLOGIST), "system")
    before = index_cache.current()
    day = dt.date(2026, 3, 10)
    assert before.providers["1234567893"].enrolled_with("MEDICARE-B", day)
    ended = {**RHEUMATOLOGIST, "enrollments": [
        {"payer": "MEDICARE-B", "effective_from": "2024-01-01", "effective_to": "2025-12-31"}]}
    summary = import_bundle(bundle(ended), "coordinator@example.org")
    assert summary["providers"]["updated"] == 1
    record = session.scalars(select(ChangeRecord).where(
        ChangeRecord.entity_type == "provider", ChangeRecord.action == "update")).one()
    assert record.actor == "coordinator@example.org"
    assert record.after["enrollments"][0]["effective_to"] == "2025-12-31"
    after = index_cache.current()
    assert after.revision != before.revision
    assert not after.providers["1234567893"].enrolled_with("MEDICARE-B", day)


def test_providers_api_lists_filters_and_reads_one(client, session: Session,
                                                   auth_header) -> None:
    import_bundle(bundle(RHEUMATOLOGIST, {
        "npi": "1245319599", "name": "Grace Hopper, MD", "specialty": "dermatology",
        "enrollments": [{"payer": "ACME", "effective_from": "2025-01-01",
                         "effective_to": "2025-12-31"}]}), "system")
    session.flush()
    headers = auth_header("scheduler")
    listed = client.get("/api/v1/providers", headers=headers)
    assert listed.status_code == 200
    assert [p["npi"] for p in listed.json["items"]] == ["1234567893", "1245319599"]
    by_specialty = client.get("/api/v1/providers?specialty=Rheumatology", headers=headers).json
    assert [p["npi"] for p in by_specialty["items"]] == ["1234567893"]
    enrolled = client.get("/api/v1/providers?payer=ACME&enrolled_on=2026-03-10",
                          headers=headers).json
    assert enrolled["items"] == []
    one = client.get("/api/v1/providers/1234567893", headers=auth_header("biller"))
    assert one.status_code == 200
    assert one.json["enrollments"] == RHEUMATOLOGIST["enrollments"]
    missing = client.get("/api/v1/providers/1245319598", headers=headers)
    assert missing.status_code == 404 and missing.json["code"] == "NOT_FOUND"
    assert client.get("/api/v1/providers").status_code == 401
    bad = client.get("/api/v1/providers?enrolled_on=someday", headers=headers)
    assert bad.status_code == 422
    assert any(e["field"].endswith("enrolled_on") for e in bad.json["errors"])


def test_policy_cases_see_providers_and_the_version_under_test(session: Session) -> None:
    """A case naming a provider is judged against stored providers; where another policy of
    the payer names the same code, the version under test decides its own cases."""
    from policy_service.services import policies, policy_review
    from tests.eligibility.world import build_world
    from tests.factories import make_policy

    build_world()
    pharmacy = make_policy("MEDICARE-B/infliximab-pharmacy", hcpcs=["J1745"],
                           effective_from=dt.date(2025, 1, 1), status="draft",
                           drug_supply="specialty_pharmacy",
                           prescriber_specialties=["rheumatology"])
    request = {"patient": {"id": "P001"}, "payer": "MEDICARE-B",
               "date_of_service": "2026-03-10", "site_of_care": "office",
               "diagnosis_codes": ["M05.79"], "hcpcs": "J1745", "dose": {"mg": 400},
               "packages": [{"amount": 100, "count": 4}], "authorization_number": "A-1001",
               "drug_supply": "specialty_pharmacy"}
    policies.add_case(pharmacy, "rheumatologist", {**request, "rendering_npi": "1234567893"},
                      {"decision": "eligible", "codes": []})
    policies.add_case(pharmacy, "dermatologist", {**request, "rendering_npi": "1245319599"},
                      {"decision": "not_eligible",
                       "codes": ["PRESCRIBER_SPECIALTY_NOT_COVERED", "PROVIDER_NOT_ENROLLED"]})
    policies.add_case(pharmacy, "bought", {**request, "rendering_npi": "1234567893",
                                           "drug_supply": "buy_and_bill"},
                      {"decision": "not_eligible", "codes": ["SPECIALTY_PHARMACY_REQUIRED"]})
    assert policy_review.run_cases(pharmacy) == {"passed": 3, "failed": []}
