"""The practitioners a hook call names reach the eligibility check as NPIs (issue 16's CDS gap).

The prescriber is the order's requester (else, for order-sign, the signing user); the rendering
provider is the Appointment's practitioner participant (else the order's performer). Each is a
Practitioner or PractitionerRole in prefetch whose identifier system is the US NPI system. The
seeded demo clinicians show each enrollment state; a call that names no practitioner, or one
without a valid NPI, is answered exactly as a call that names none.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import select

from policy_service.models import PolicyVersion
from rulesets.eligibility import RULESET as ELIGIBILITY_RULES
from tests.cds.conftest import (
    appointment_book_call,
    medication_request,
    order_sign_call,
    payer_organization,
)
from tests.cds.test_hooks import coverage_information
from tests.factories import make_provider

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
# The seeded demo clinicians (seed_data/demo.yaml).
RHEUMATOLOGIST = "1234567893"  # enrolled with every seeded payer
NURSE_PRACTITIONER = "1679576722"  # UnitedHealthcare from 2027-01-01 only; Aetna ended 2025
DERMATOLOGIST = "1508867599"
INFLECTRA_RXNORM = "1790541"
UHC = "87726"
UHC_NAME = "UnitedHealthcare (commercial)"
# What each finding's card says, from the rule units themselves.
NOT_ENROLLED = ELIGIBILITY_RULES.rule("provider_not_enrolled").message.split("{")[0]
SPECIALTY = ELIGIBILITY_RULES.rule("prescriber_specialty_not_covered").message
SPECIALTY_NOT_COVERED = SPECIALTY.split("}", 1)[1].split("{")[0]  # " requires a prescriber in "


def practitioner(resource_id: str, npi: Any, **extra: Any) -> dict[str, Any]:
    """A US Core Practitioner with its NPI identifier."""
    return {"resourceType": "Practitioner", "id": resource_id, "name": [{"family": "Demo"}],
            "identifier": [{"system": NPI_SYSTEM, "value": npi}], **extra}


def with_prefetch(request: dict[str, Any], *resources: dict[str, Any]) -> dict[str, Any]:
    """``request`` with these resources in one more prefetch Bundle (its key is ours to name)."""
    request["prefetch"]["clinicians"] = {"resourceType": "Bundle", "type": "searchset",
                                         "entry": [{"resource": r} for r in resources]}
    return request


def comparable(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The answer without what differs on every call (card uuids, assertion ids)."""
    cards = [{k: v for k, v in card.items() if k != "uuid"} for card in body["cards"]]
    infos = []
    for action in body["systemActions"]:
        info = coverage_information(action)
        info.pop("coverage-assertion-id")
        infos.append(info)
    return cards, infos


def details(body: dict[str, Any]) -> str:
    """Every card's detail, as the clinician reads them."""
    return "\n".join(card["detail"] for card in body["cards"])


@pytest.fixture
def seeded(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output


def uhc_order(**fields: Any) -> dict[str, Any]:
    """An Inflectra order (coded by RxNorm only) for a UnitedHealthcare patient, 2026-03-10."""
    return {**medication_request(INFLECTRA_RXNORM), **fields}


def uhc_call(order: dict[str, Any]) -> dict[str, Any]:
    return order_sign_call(order, organization=payer_organization(UHC))


# --- Rendering provider: enrollment with the payer (PROVIDER_NOT_ENROLLED) -----------------


def test_an_order_for_a_performer_not_enrolled_with_the_payer_gets_the_enrollment_card(
        call: Callable[..., Any], seeded: None) -> None:
    baseline = call("order-sign", uhc_call(uhc_order())).get_json()
    assert NOT_ENROLLED not in details(baseline)
    request = with_prefetch(uhc_call(uhc_order(performer={"reference": "Practitioner/np"})),
                            practitioner("np", NURSE_PRACTITIONER))
    body = call("order-sign", request).get_json()
    text = details(body)
    assert NOT_ENROLLED + f"{UHC_NAME} on 2026-03-10" in text
    assert f"DEMO Nurse Practitioner, NP ({NURSE_PRACTITIONER}) is not enrolled" in text
    assert "enrolled 2027-01-01 to open" in text
    info = coverage_information(body["systemActions"][0])
    assert any(NOT_ENROLLED in reason["text"] for reason in info["reason"])


def test_an_order_for_an_enrolled_performer_is_answered_as_one_naming_none(
        call: Callable[..., Any], seeded: None) -> None:
    baseline = call("order-sign", uhc_call(uhc_order())).get_json()
    request = with_prefetch(uhc_call(uhc_order(performer={"reference": "Practitioner/md"})),
                            practitioner("md", RHEUMATOLOGIST))
    body = call("order-sign", request).get_json()
    assert comparable(body) == comparable(baseline)


@pytest.mark.parametrize(("npi", "fires"), [
    (NURSE_PRACTITIONER, True), (RHEUMATOLOGIST, False), (DERMATOLOGIST, False)])
def test_an_appointment_with_a_practitioner_not_enrolled_gets_the_enrollment_card(
        call: Callable[..., Any], seeded: None, npi: str, fires: bool) -> None:
    request = appointment_book_call(uhc_order())
    request["prefetch"]["payers"]["entry"][0]["resource"] = payer_organization(UHC)
    baseline = call("appointment-book", copy.deepcopy(request)).get_json()
    appointment = request["context"]["appointments"]["entry"][0]["resource"]
    appointment["participant"].append({"actor": {"reference": "Practitioner/nurse"},
                                       "status": "accepted"})
    body = call("appointment-book", with_prefetch(request, practitioner("nurse", npi))).get_json()
    if fires:
        assert NOT_ENROLLED + f"{UHC_NAME} on 2026-03-10" in details(body)
        assert comparable(body) != comparable(baseline)
    else:
        assert comparable(body) == comparable(baseline)


def test_an_appointment_naming_a_practitioner_role_reads_its_practitioners_npi(
        call: Callable[..., Any], seeded: None) -> None:
    request = appointment_book_call(uhc_order())
    request["prefetch"]["payers"]["entry"][0]["resource"] = payer_organization(UHC)
    appointment = request["context"]["appointments"]["entry"][0]["resource"]
    appointment["participant"].append({"actor": {
        "reference": "http://example.org/fhir/PractitionerRole/np-role"}, "status": "accepted"})
    role = {"resourceType": "PractitionerRole", "id": "np-role",
            "practitioner": {"reference": "Practitioner/np"}}
    body = call("appointment-book",
                with_prefetch(request, role, practitioner("np", NURSE_PRACTITIONER))).get_json()
    assert f"({NURSE_PRACTITIONER}) is not enrolled" in details(body)


def test_of_several_booked_clinicians_the_primary_performer_renders(
        call: Callable[..., Any], seeded: None) -> None:
    request = appointment_book_call(uhc_order())
    request["prefetch"]["payers"]["entry"][0]["resource"] = payer_organization(UHC)
    baseline = call("appointment-book", copy.deepcopy(request)).get_json()
    participants = request["context"]["appointments"]["entry"][0]["resource"]["participant"]
    primary = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                     "v3-ParticipationType", "code": "PPRF"}]}
    participants += [{"actor": {"reference": "Practitioner/np"}, "status": "accepted"},
                     {"actor": {"reference": "Practitioner/md"}, "status": "accepted"}]
    with_prefetch(request, practitioner("np", NURSE_PRACTITIONER),
                  practitioner("md", RHEUMATOLOGIST))
    # Two clinicians and neither marked: no one is assumed to render, the answer is unchanged.
    assert comparable(call("appointment-book", copy.deepcopy(request)).get_json()) == \
        comparable(baseline)
    participants[-2]["type"] = [primary]
    assert f"({NURSE_PRACTITIONER}) is not enrolled" in details(
        call("appointment-book", copy.deepcopy(request)).get_json())
    participants[-2]["type"], participants[-1]["type"] = [], [primary]
    assert comparable(call("appointment-book", request).get_json()) == comparable(baseline)


def test_the_prescriber_alone_is_not_checked_for_enrollment(
        call: Callable[..., Any], seeded: None) -> None:
    # PROVIDER_NOT_ENROLLED is about who renders (and bills); the order names only who signs.
    baseline = call("order-sign", uhc_call(uhc_order())).get_json()
    request = with_prefetch(uhc_call(uhc_order(requester={"reference": "Practitioner/np"})),
                            practitioner("np", NURSE_PRACTITIONER))
    assert comparable(call("order-sign", request).get_json()) == comparable(baseline)


# --- Prescriber: specialty the policy requires (PRESCRIBER_SPECIALTY_NOT_COVERED) ----------


@pytest.fixture
def rheumatology_only(world: dict[str, Any], session: Any) -> dict[str, Any]:
    """ACME's infliximab policy requires a rheumatologist; two clinicians are on file."""
    version = session.scalars(select(PolicyVersion)).one()
    version.prescriber_specialties = ["rheumatology"]
    for npi, specialty in ((RHEUMATOLOGIST, "rheumatology"), (DERMATOLOGIST, "dermatology")):
        make_provider(npi, enrollments=[(world["payer"], dt.date(2020, 1, 1), None)],
                      name=f"{specialty.title()} Doc, MD", specialty=specialty)
    session.flush()
    return world


def test_the_signing_users_specialty_is_checked_against_the_policy(
        call: Callable[..., Any], rheumatology_only: dict[str, Any]) -> None:
    request = order_sign_call(medication_request())
    request["context"]["userId"] = "Practitioner/derm"
    body = call("order-sign", with_prefetch(request, practitioner("derm", DERMATOLOGIST))
                ).get_json()
    [card] = body["cards"]
    assert card["indicator"] == "critical"
    assert f"{SPECIALTY_NOT_COVERED}rheumatology; Dermatology Doc, MD ({DERMATOLOGIST}) is " \
           f"in dermatology" in card["detail"]
    assert coverage_information(body["systemActions"][0])["covered"] == ["not-covered"]


PRESCRIBER_BY = {
    "userId": ({"userId": "Practitioner/rheum"}, {}),
    "requester": ({}, {"requester": {
        "reference": "http://ehr.example.org/fhir/Practitioner/rheum"}}),
    "requester's role": ({}, {"requester": {"reference": "PractitionerRole/rheum-role"}}),
    "requester's npi": ({}, {"requester": {"type": "Practitioner", "identifier": {
        "system": NPI_SYSTEM, "value": RHEUMATOLOGIST}}}),
}


@pytest.mark.parametrize("how", sorted(PRESCRIBER_BY))
def test_a_rheumatologist_prescribing_satisfies_the_policy(
        call: Callable[..., Any], rheumatology_only: dict[str, Any], how: str) -> None:
    context, order_fields = PRESCRIBER_BY[how]
    request = order_sign_call({**medication_request(), **order_fields})
    request["context"].update(context)
    role = {"resourceType": "PractitionerRole", "id": "rheum-role",
            "practitioner": {"reference": "Practitioner/rheum"}}
    body = call("order-sign", with_prefetch(request, practitioner("rheum", RHEUMATOLOGIST),
                                            role)).get_json()
    assert body["cards"] == []
    info = coverage_information(body["systemActions"][0])
    assert (info["covered"], info["pa-needed"]) == (["covered"], ["satisfied"])


def test_without_a_prescriber_a_rheumatology_only_policy_still_asks_for_one(
        call: Callable[..., Any], rheumatology_only: dict[str, Any]) -> None:
    [card] = call("order-sign", order_sign_call(medication_request())).get_json()["cards"]
    assert card["indicator"] == "warning"
    assert "More information needed" in card["summary"]
    assert "the prescriber's NPI" in card["detail"] or "the rendering provider's NPI" in \
        card["detail"]
    assert "_npi" not in card["detail"]


def test_the_orders_requester_is_the_prescriber_even_when_another_user_signs(
        call: Callable[..., Any], rheumatology_only: dict[str, Any]) -> None:
    order = medication_request()
    order["requester"] = {"reference": "Practitioner/rheum"}
    request = order_sign_call(order)
    request["context"]["userId"] = "Practitioner/derm"
    body = call("order-sign", with_prefetch(request, practitioner("rheum", RHEUMATOLOGIST),
                                            practitioner("derm", DERMATOLOGIST))).get_json()
    assert body["cards"] == []


def test_an_appointment_bookers_specialty_is_not_the_prescribers(
        call: Callable[..., Any], rheumatology_only: dict[str, Any]) -> None:
    # Whoever books (a scheduler, the patient) did not prescribe: userId is not read here.
    request = appointment_book_call()
    baseline = call("appointment-book", copy.deepcopy(request)).get_json()
    request["context"]["userId"] = "Practitioner/derm"
    body = call("appointment-book",
                with_prefetch(request, practitioner("derm", DERMATOLOGIST))).get_json()
    assert comparable(body) == comparable(baseline)
    assert "Dermatology Doc" not in details(body)


# --- Nothing named, or nothing usable: the answer of a call that names no one --------------


NO_USABLE_PRACTITIONER = {
    "no user, no requester": ({"userId": None}, {}, []),
    "user is the patient": ({"userId": "Patient/123"}, {}, []),
    "user not in prefetch": ({"userId": "Practitioner/elsewhere"}, {}, []),
    "requester by display only": ({}, {"requester": {"display": "Dr. Jones"}}, []),
    "requester is an organization": (
        {}, {"requester": {"reference": "Organization/acme-payer"}}, []),
    "practitioner without an npi": (
        {"userId": "Practitioner/x"}, {},
        [{"resourceType": "Practitioner", "id": "x", "name": [{"family": "X"}]}]),
    "old npi": ({"userId": "Practitioner/x"}, {},
                [practitioner("x", RHEUMATOLOGIST)
                 | {"identifier": [{"system": NPI_SYSTEM, "value": DERMATOLOGIST,
                                    "use": "old"}]}]),
    "performer not in prefetch": ({}, {"performer": {"reference": "Practitioner/a"}}, []),
}


@pytest.mark.parametrize("case", sorted(NO_USABLE_PRACTITIONER))
def test_a_call_naming_no_usable_practitioner_is_answered_as_before(
        call: Callable[..., Any], seeded: None, case: str) -> None:
    context, order_fields, resources = NO_USABLE_PRACTITIONER[case]
    baseline_request = uhc_call(uhc_order())
    baseline_request["context"].pop("userId")
    baseline = call("order-sign", baseline_request).get_json()
    request = uhc_call(uhc_order(**order_fields))
    for key, value in context.items():
        if value is None:
            request["context"].pop(key)
        else:
            request["context"][key] = value
    body = call("order-sign", with_prefetch(request, *resources)).get_json()
    assert comparable(body) == comparable(baseline)


def test_two_alternative_performers_name_no_rendering_provider(
        call: Callable[..., Any], seeded: None) -> None:
    order = {**medication_request(INFLECTRA_RXNORM), "resourceType": "ServiceRequest"}
    del order["medicationCodeableConcept"], order["dosageInstruction"], order["dispenseRequest"]
    order.update(code={"coding": [{"system": "https://www.cms.gov/Medicare/Coding/"
                                             "HCPCSReleaseCodeSets", "code": "Q5103"}]},
                 occurrenceDateTime="2026-03-10")
    baseline = call("order-sign", uhc_call(order)).get_json()
    order["performer"] = [{"reference": "Practitioner/np"}, {"reference": "Practitioner/md"}]
    request = with_prefetch(uhc_call(order), practitioner("np", NURSE_PRACTITIONER),
                            practitioner("md", RHEUMATOLOGIST))
    assert comparable(call("order-sign", request).get_json()) == comparable(baseline)
    order["performer"] = [{"reference": "Practitioner/np"}]
    request = with_prefetch(uhc_call(order), practitioner("np", NURSE_PRACTITIONER))
    assert NOT_ENROLLED in details(call("order-sign", request).get_json())
