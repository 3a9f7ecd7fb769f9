"""POST /cds-services/{id}: answers from the eligibility service, as cards and CRD updates."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from policy_service.services.cds.hooks import (
    COVERAGE_INFORMATION_URL,
    coverage_information_problems,
)
from tests.cds.conftest import (
    appointment_book_call,
    medication_request,
    order_sign_call,
    payer_organization,
)
from tests.factories import make_drug


def coverage_information(action: dict[str, Any]) -> dict[str, list[Any]]:
    """The parts of the update's coverage-information extension, by url."""
    extension = next(e for e in action["resource"]["extension"]
                     if e["url"] == COVERAGE_INFORMATION_URL)
    assert coverage_information_problems(extension) == []
    parts: dict[str, list[Any]] = {}
    for part in extension["extension"]:
        value = next(v for k, v in part.items() if k.startswith("value"))
        parts.setdefault(part["url"], []).append(value)
    return parts


def test_covered_order_with_authorization_on_file_is_satisfied(
        call: Callable[..., Any], world: dict[str, Any]) -> None:
    reply = call("order-sign", order_sign_call(medication_request()))
    assert reply.status_code == 200, reply.get_json()
    body = reply.get_json()
    assert body["cards"] == []
    [action] = body["systemActions"]
    assert action["type"] == "update"
    assert action["resource"]["id"] == "mr-1"
    info = coverage_information(action)
    assert info["covered"] == ["covered"]
    assert info["pa-needed"] == ["satisfied"]
    assert info["satisfied-pa-id"] == ["A-77"]
    assert info["coverage"] == [{"reference": "Coverage/COV1"}]
    assert info["billingCode"][0]["code"] == "J1745"
    assert info["date"] == [dt.date.today().isoformat()]


def _only_card(body: dict[str, Any]) -> dict[str, Any]:
    [card] = body["cards"]
    assert card["source"]["label"]
    assert len(card["summary"]) <= 140
    return card


def test_prior_authorization_needed_and_none_on_file(
        call: Callable[..., Any], world: dict[str, Any], session: Any) -> None:
    session.delete(world["authorization"])
    session.flush()
    body = call("order-sign", order_sign_call(medication_request())).get_json()
    card = _only_card(body)
    assert card["indicator"] == "warning"
    assert "Prior authorization needed for J1745" in card["summary"]
    assert card["source"]["label"] == "Acme Health Plan coverage policy"
    assert card["links"][0]["url"] == "https://example.org/acme/infliximab.pdf"
    assert card["extension"]["davinci-crd.associated-resource"] == [
        {"reference": "MedicationRequest/mr-1"}]
    info = coverage_information(body["systemActions"][0])
    assert info["covered"] == ["covered"] and info["pa-needed"] == ["auth-needed"]
    assert "satisfied-pa-id" not in info


def test_not_covered_diagnosis_is_critical_and_has_no_pa_needed(
        call: Callable[..., Any], world: dict[str, Any]) -> None:
    body = call("order-sign", order_sign_call(medication_request(diagnosis="K50.90"))).get_json()
    card = _only_card(body)
    assert card["indicator"] == "critical"
    assert card["summary"] == "J1745 is not covered by Acme Health Plan"
    assert "K50.90" in card["detail"]
    info = coverage_information(body["systemActions"][0])
    assert info["covered"] == ["not-covered"]
    assert "pa-needed" not in info
    assert info["reason"]


def test_missing_diagnosis_is_conditional_with_the_reason(
        call: Callable[..., Any], world: dict[str, Any]) -> None:
    body = call("order-sign", order_sign_call(medication_request(diagnosis=None))).get_json()
    card = _only_card(body)
    assert card["indicator"] == "warning"
    assert "More information needed" in card["summary"]
    info = coverage_information(body["systemActions"][0])
    assert info["covered"] == ["conditional"]
    assert info["info-needed"] == ["OTH"]
    assert any("diagnosis" in reason["text"] for reason in info["reason"])
    # A clinician reads words, not the request's field names.
    assert "a diagnosis code" in card["detail"] and "diagnosis_codes" not in card["detail"]


def test_authorization_expiring_soon_is_a_warning_on_a_satisfied_order(
        call: Callable[..., Any], world: dict[str, Any]) -> None:
    body = call("order-sign", order_sign_call(medication_request(start="2026-12-20"))).get_json()
    card = _only_card(body)
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Authorization A-77")
    info = coverage_information(body["systemActions"][0])
    assert info["pa-needed"] == ["satisfied"]
    assert info["expiry-date"] == ["2026-12-31"]


def service_request(code: str, system: str, **extra: Any) -> dict[str, Any]:
    """A draft ServiceRequest for an infusion, coded as given (``concept`` replaces the code)."""
    concept = extra.pop("concept", {"coding": [{"system": system, "code": code}]})
    return {"resourceType": "ServiceRequest", "id": "sr-1", "status": "draft",
            "intent": "original-order", "subject": {"reference": "Patient/123"},
            "code": concept,
            "quantityQuantity": {"value": 400, "unit": "mg", "code": "mg"},
            "occurrenceDateTime": "2026-03-10T09:00:00Z",
            "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                        "code": "M05.79"}]}], **extra}


@pytest.mark.parametrize("order", [
    service_request("J1745", "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"),
    service_request("J1745", "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"),
    service_request("96413", "http://www.ama-assn.org/go/cpt", concept={
        "coding": [{"system": "http://snomed.info/sct", "code": "386902004"}],
        "extension": [{"url": "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/"
                              "ext-billing-options",
                       "valueCodeableConcept": {"coding": [{
                           "system": "https://www.cms.gov/Medicare/Coding/"
                                     "HCPCSReleaseCodeSets", "code": "J1745"}]}}]}),
    medication_request("310994"),
], ids=["hcpcs-https", "hcpcs-http", "billing-options", "rxnorm"])
def test_every_way_of_naming_the_drug_maps_to_our_hcpcs(
        call: Callable[..., Any], world: dict[str, Any], order: dict[str, Any]) -> None:
    body = call("order-sign", order_sign_call(order)).get_json()
    info = coverage_information(body["systemActions"][0])
    assert info["billingCode"][0]["code"] == "J1745"
    assert info["pa-needed"] == ["satisfied"]


def test_ndc_on_a_referenced_medication_maps_through_the_package(
        call: Callable[..., Any], world: dict[str, Any]) -> None:
    order = medication_request()
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/med-1"}
    request = order_sign_call(order)
    # 0069-0809-01 is the 10-digit form of the stored 11-digit NDC 00069-0809-01.
    request["prefetch"]["meds"] = {"resourceType": "Medication", "id": "med-1", "code": {
        "coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0069-0809-01"}]}}
    body = call("order-sign", request).get_json()
    info = coverage_information(body["systemActions"][0])
    assert info["billingCode"][0]["code"] == "Q5103"


def test_a_drug_we_do_not_know_gets_an_info_card_and_an_indeterminate_update(
        call: Callable[..., Any], world: dict[str, Any]) -> None:
    body = call("order-sign", order_sign_call(medication_request("999999"))).get_json()
    card = _only_card(body)
    assert card["indicator"] == "info"
    assert "999999" in card["detail"]
    info = coverage_information(body["systemActions"][0])
    assert info["covered"] == ["indeterminate"] and info["reason"]


def test_a_payer_we_do_not_know_is_named_as_missing(
        call: Callable[..., Any], world: dict[str, Any]) -> None:
    request = order_sign_call(medication_request(), organization=payer_organization("OTHER"))
    card = _only_card(call("order-sign", request).get_json())
    assert card["indicator"] == "info"
    assert "payer" in card["detail"]


def test_a_patient_without_our_identifier_is_named_as_missing(
        call: Callable[..., Any], world: dict[str, Any], app: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "CDS_PATIENT_IDENTIFIER_SYSTEM", "urn:oid:2.16.840.1.1")
    card = _only_card(call("order-sign", order_sign_call(medication_request())).get_json())
    assert "urn:oid:2.16.840.1.1" in card["detail"]


def test_max_cards_keeps_the_most_urgent(call: Callable[..., Any], world: dict[str, Any]) -> None:
    orders = (medication_request("999999", resource_id="unknown"),
              medication_request(diagnosis="K50.90", resource_id="uncovered"))
    body = call("order-sign", order_sign_call(*orders, configuration={"max-cards": 1}))
    [card] = body.get_json()["cards"]
    assert card["indicator"] == "critical"
    assert len(body.get_json()["systemActions"]) == 2
    everything = call("order-sign", order_sign_call(*orders)).get_json()
    assert [c["indicator"] for c in everything["cards"]] == ["critical", "info"]


def test_coverage_info_off_returns_no_coverage_information(
        call: Callable[..., Any], world: dict[str, Any]) -> None:
    request = order_sign_call(medication_request(diagnosis="K50.90"),
                              configuration={"coverage-info": False, "max-cards": 5})
    assert call("order-sign", request).get_json() == {"cards": [], "systemActions": []}


def test_appointment_booked_for_an_order_answers_on_the_appointment(
        call: Callable[..., Any], world: dict[str, Any]) -> None:
    request = appointment_book_call(service_request(
        "J1745", "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"))
    reply = call("appointment-book", request)
    assert reply.status_code == 200, reply.get_json()
    [action] = reply.get_json()["systemActions"]
    assert action["resource"]["resourceType"] == "Appointment"
    assert action["resource"]["id"] == "apt-1"
    assert coverage_information(action)["pa-needed"] == ["satisfied"]


def test_every_answer_is_logged_with_its_assertion_id_and_no_patient_details(
        call: Callable[..., Any], world: dict[str, Any], caplog: pytest.LogCaptureFixture,
        ) -> None:
    caplog.set_level(logging.INFO, logger="policy_service")
    body = call("order-sign", order_sign_call(medication_request())).get_json()
    assertion_id = coverage_information(body["systemActions"][0])["coverage-assertion-id"][0]
    events = [json.loads(r.getMessage()) for r in caplog.records
              if "cds_answered" in r.getMessage()]
    [event] = events
    assert event["assertions"][0]["assertion_id"] == assertion_id
    assert event["assertions"][0]["decision"] == "eligible"
    for detail in ("1032702", "Baxter", "1987-02-20", "123"):
        assert detail not in caplog.text


@pytest.mark.parametrize(("body", "status", "says"), [
    ("{not json", 400, "JSON object"),
    ([], 400, "JSON object"),
    ({"hook": "order-sign", "context": {}}, 400, "hookInstance"),
    ({"hook": "order-sign", "hookInstance": "x", "context": {"patientId": "1"}}, 400,
     "context.draftOrders is required"),
    ({"hook": "order-select", "hookInstance": "x", "context": {}}, 400, "not order-select"),
    ({"hook": "order-sign", "hookInstance": "x", "context": {
        "patientId": "1", "draftOrders": {"resourceType": "Bundle", "type": "collection",
                                          "entry": [{"resource": {
                                              "resourceType": "MedicationRequest",
                                              "status": "not-a-status", "intent": "order",
                                              "subject": {"reference": "Patient/1"}}}]}}},
     400, "context.draftOrders is not valid FHIR R4"),
    ({"hook": "order-sign", "hookInstance": "x", "context": {
        "patientId": "1", "draftOrders": {"resourceType": "Bundle", "type": "collection"}},
      "extension": {"davinci-crd.configuration": {"max-cards": "five"}}}, 400, "max-cards"),
], ids=["not-json", "not-an-object", "no-hook-instance", "no-draft-orders", "wrong-hook",
        "invalid-fhir", "bad-configuration"])
def test_malformed_bodies_are_400_and_say_why(call: Callable[..., Any], world: dict[str, Any],
                                              body: Any, status: int, says: str) -> None:
    reply = call("order-sign", body)
    assert reply.status_code == status
    assert reply.mimetype == "application/problem+json"
    assert says in json.dumps(reply.get_json())


def test_an_unknown_service_is_404(call: Callable[..., Any]) -> None:
    reply = call("patient-view", {"hook": "patient-view", "hookInstance": "x", "context": {}})
    assert reply.status_code == 404


def test_a_drug_without_a_policy_at_this_payer_is_indeterminate(
        call: Callable[..., Any], world: dict[str, Any]) -> None:
    make_drug("J3262", name="Actemra", generic="tocilizumab")
    order = service_request("J3262", "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets")
    body = call("order-sign", order_sign_call(order)).get_json()
    card = _only_card(body)
    assert card["indicator"] == "warning"
    info = coverage_information(body["systemActions"][0])
    assert info["covered"] == ["indeterminate"]
    assert info["reason"] and "pa-needed" not in info


def test_an_incomplete_documentation_checklist_is_doc_needed(
        call: Callable[..., Any], world: dict[str, Any], session: Any) -> None:
    from policy_service.models import PatientDocument, PolicyVersion

    version = session.query(PolicyVersion).one()
    version.documentation_required = [{"code": "TB_SCREENING",
                                       "label": "TB screening within 12 months",
                                       "max_age_days": 365}]
    session.flush()
    info = coverage_information(call("order-sign", order_sign_call(medication_request()))
                                .get_json()["systemActions"][0])
    assert info["covered"] == ["covered"] and info["pa-needed"] == ["satisfied"]
    assert info["doc-needed"] == ["clinical"]
    assert any("TB screening within 12 months" in r["text"] for r in info["reason"])
    world["patient"].documents.append(PatientDocument(code="TB_SCREENING",
                                                      on_date=dt.date(2026, 1, 15)))
    session.flush()
    info = coverage_information(call("order-sign", order_sign_call(medication_request()))
                                .get_json()["systemActions"][0])
    assert "doc-needed" not in info and "reason" not in info
