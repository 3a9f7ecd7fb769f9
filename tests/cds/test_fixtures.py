"""The published examples (tests/data/cds/SOURCES.md): every one gets a sensible answer."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from flask.testing import FlaskClient

from policy_service.services.cds.hooks import (
    COVERAGE_INFORMATION_URL,
    coverage_information_problems,
)
from tests.cds.conftest import POS, fixture

# All are 400: the STU3/DSTU2 ones are not R4, and the "R4" one leaves out NutritionOrder's
# and MedicationRequest's required ``intent``. A strict R4 parser names the first problem.
SPEC_CONTEXTS = {
    "cdshooks-order-sign-r4.json": ("order-sign", 400),
    "cdshooks-order-sign-stu3.json": ("order-sign", 400),
    "cdshooks-order-sign-dstu2.json": ("order-sign", 400),
    "cdshooks-appointment-book-stu3-a.json": ("appointment-book", 400),
    "cdshooks-appointment-book-stu3-b.json": ("appointment-book", 400),
}


def _extensions(response: dict[str, Any]) -> list[dict[str, Any]]:
    return [extension for action in response.get("systemActions", [])
            for extension in action.get("resource", {}).get("extension", [])
            if extension["url"] == COVERAGE_INFORMATION_URL]


def _check_answer(body: dict[str, Any]) -> None:
    """What every 200 must be: CDS Hooks cards and valid FHIR updates keeping CRD's rules."""
    assert set(body) == {"cards", "systemActions"}
    for card in body["cards"]:
        assert card["indicator"] in {"info", "warning", "critical"}
        assert card["source"]["label"] and len(card["summary"]) <= 140
    for action in body["systemActions"]:
        assert action["type"] == "update"
        resource = action["resource"]
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for extension in _extensions(body):
        assert coverage_information_problems(extension) == []


def test_guide_order_sign_example_names_what_it_lacks(call: Callable[..., Any],
                                                      world: dict[str, Any]) -> None:
    # A mammography and a home-oxygen order; the payer Organization is not in prefetch.
    reply = call("order-sign", fixture("CRDServiceRequest.json"))
    assert reply.status_code == 200
    body = reply.get_json()
    _check_answer(body)
    assert [c["indicator"] for c in body["cards"]] == ["info", "info"]
    assert all("payer" in c["detail"] for c in body["cards"])
    assert "E0431" in body["cards"][1]["detail"]
    covered = [e["extension"][1] for e in _extensions(body)]
    assert covered == [{"url": "covered", "valueCode": "indeterminate"}] * 2


def test_guide_order_sign_example_with_our_payer_and_drug_is_answered(
        call: Callable[..., Any], world: dict[str, Any]) -> None:
    request = copy.deepcopy(fixture("CRDServiceRequest.json"))
    order = request["context"]["draftOrders"]["entry"][1]["resource"]
    order["code"]["coding"][0].update(code="J1745", display="Injection, infliximab, 10 mg")
    order["reasonCode"] = [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                        "code": "M05.79"}]}]
    order["occurrenceDateTime"] = "2026-03-10"
    order["locationCode"] = [{"coding": [{"system": POS, "code": "11"}]}]
    request["prefetch"]["organizations"]["entry"].append({"resource": {
        "resourceType": "Organization", "id": "acme-payer", "name": "Acme Health Plan",
        "identifier": [{"system": "http://example.org/payer-ids", "value": "ACME-PAYER-1"}]}})
    body = call("order-sign", request).get_json()
    _check_answer(body)
    [mammography, oxygen_now_infliximab] = _extensions(body)
    assert {"url": "covered", "valueCode": "indeterminate"} in mammography["extension"]
    assert {"url": "pa-needed", "valueCode": "satisfied"} in oxygen_now_infliximab["extension"]


def test_guide_order_dispatch_example_is_not_for_order_sign(call: Callable[..., Any]) -> None:
    reply = call("order-sign", fixture("CRDServiceRequest2.json"))
    assert reply.status_code == 400
    assert "not order-dispatch" in reply.get_json()["detail"]


def test_guide_communication_request_without_prefetch(call: Callable[..., Any],
                                                      world: dict[str, Any]) -> None:
    reply = call("order-sign", fixture("CRDServiceRequest3.json"))
    assert reply.status_code == 200
    body = reply.get_json()
    _check_answer(body)
    [card] = body["cards"]
    assert "CommunicationRequest names no drug" in card["detail"]
    assert "Coverage" in card["detail"]
    assert body["systemActions"] == []  # no Coverage to assert against


def test_guide_appointment_without_prefetch_or_order(call: Callable[..., Any],
                                                     world: dict[str, Any]) -> None:
    # Its fhirServer is not configured for this client, so nothing may be read from it.
    reply = call("appointment-book", fixture("CRDServiceRequest4.json"))
    assert reply.status_code == 200
    body = reply.get_json()
    _check_answer(body)
    [card] = body["cards"]
    assert "Appointment.basedOn" in card["detail"]
    assert "Patient" in card["detail"]


@pytest.mark.parametrize("name", sorted(SPEC_CONTEXTS))
def test_cds_hooks_spec_examples(call: Callable[..., Any], world: dict[str, Any],
                                 name: str) -> None:
    service, status = SPEC_CONTEXTS[name]
    request = {"hook": service, "hookInstance": f"spec-{name}", **fixture(name)}
    reply = call(service, request)
    assert reply.status_code == status, reply.get_json()
    # Named, never a 5xx.
    assert "is not valid FHIR R4" in reply.get_json()["detail"]


@pytest.mark.parametrize("name", ["CRDServiceResponse.json", "CRDServiceResponse2.json",
                                  "CRDServiceResponse3.json"])
def test_guide_responses_keep_the_invariants_we_check(name: str) -> None:
    response = fixture(name)
    assert {card["indicator"] for card in response["cards"]} <= {"info", "warning", "critical"}
    for extension in _extensions(response):
        problems = coverage_information_problems(extension)
        assert problems == [], (name, problems)


def _without(extension: dict[str, Any], url: str) -> dict[str, Any]:
    return {**extension, "extension": [p for p in extension["extension"] if p["url"] != url]}


def _with(extension: dict[str, Any], url: str, **value: Any) -> dict[str, Any]:
    return {**extension, "extension": [*extension["extension"], {"url": url, **value}]}


def _set(extension: dict[str, Any], url: str, **value: Any) -> dict[str, Any]:
    return _with(_without(extension, url), url, **value)


@pytest.mark.parametrize(("change", "problem"), [
    (lambda e: _without(e, "coverage"), "coverage is required"),
    (lambda e: _without(e, "date"), "date is required"),
    (lambda e: _without(e, "coverage-assertion-id"), "coverage-assertion-id is required"),
    (lambda e: _set(e, "covered", valueCode="not-covered"), "crd-ci-q2"),
    (lambda e: _without(e, "satisfied-pa-id"), "crd-ci-q5"),
    (lambda e: _set(e, "pa-needed", valueCode="no-auth"), "crd-ci-q5"),
    (lambda e: _without(_set(e, "covered", valueCode="indeterminate"), "reason"), "crd-ci-q9"),
    (lambda e: _without(_without(e, "info-needed"), "doc-needed"), None),
], ids=["no-coverage", "no-date", "no-assertion-id", "not-covered-with-pa", "satisfied-no-id",
        "id-not-satisfied", "indeterminate-no-reason", "valid"])
def test_the_invariant_check_catches_each_broken_rule(change: Callable[..., Any],
                                                      problem: str | None) -> None:
    [extension] = _extensions(fixture("CRDServiceResponse.json"))
    problems = coverage_information_problems(change(extension))
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems


def test_discovery_has_the_shape_of_the_guides_example(client: FlaskClient) -> None:
    guide = {s["hook"]: s for s in fixture("CRDServices.json")["services"]}
    ours = {s["hook"]: s for s in client.get("/cds-services").get_json()["services"]}
    assert set(ours) == {"appointment-book", "order-sign"} <= set(guide)
    for hook, service in ours.items():
        assert set(service) == set(guide[hook]), hook
        assert set(service["extension"]) == set(guide[hook]["extension"])
        options = service["extension"]["davinci-crd.configuration-options"]
        option_keys = set(guide[hook]["extension"]["davinci-crd.configuration-options"][0])
        assert all(set(option) == option_keys for option in options)
        assert {o["code"] for o in options} == {"coverage-info", "max-cards"}
        assert "_include=Coverage:payor" in service["prefetch"]["coverage"]
        assert service["extension"]["davinci-crd.version"] == ["2.2"]
