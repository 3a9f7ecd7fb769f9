"""Hostile input against the CDS Hooks services, which the OpenAPI fuzzing cannot reach (they
are not in the API document and need an EHR's signed JWT): every value of a valid call replaced
by each hostile value, and hostile bodies. Each answer is a CDS response (200 with cards) or a
4xx problem+json, never a 5xx, and comes quickly."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from policy_service.models import PolicyVersion
from policy_service.schemas.common import MAX_HOOK_ORDERS
from tests.cds.conftest import appointment_book_call, medication_request, order_sign_call
from tests.test_hostile_input import ANSWER_WITHIN_SECONDS, BODIES, FIELD_VALUES, PROBLEM

SERVICES = ("order-sign", "appointment-book")
PLACEHOLDER = "__hostile_raw_token__"
PER_FIELD = 6
# The card the adapter answers with when something broke inside (logged as
# cds_unhandled_error): a hostile value must never get that far.
BROKEN = "Coverage could not be checked just now"


def base_call(service: str) -> dict[str, Any]:
    """A valid call of ``service``, naming the prescriber (the guide's prefetched Practitioner
    DEF, with an NPI) so that hostile values meet the NPI lookups too."""
    order = medication_request()
    order["requester"] = {"reference": "Practitioner/DEF"}
    if service == "order-sign":
        return order_sign_call(order)
    body = appointment_book_call(order)
    appointment = body["context"]["appointments"]["entry"][0]["resource"]
    appointment["participant"].append({"actor": {"reference": "Practitioner/DEF"},
                                       "status": "accepted"})
    return body


def leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every scalar in a JSON value."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))
    else:
        yield path


def with_raw(body: dict[str, Any], path: tuple[Any, ...], raw: str) -> bytes:
    """``body`` as JSON text with the value at ``path`` replaced by the raw JSON ``raw``."""
    changed = copy.deepcopy(body)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = PLACEHOLDER
    return json.dumps(changed).replace(json.dumps(PLACEHOLDER), raw, 1).encode()


def assert_answered(reply: Any, seconds: float, what: str) -> None:
    """A CDS response or a 4xx problem+json, in time."""
    assert seconds < ANSWER_WITHIN_SECONDS, f"{what}: {seconds:.1f} s"
    assert reply.status_code < 500, f"{what}: {reply.status_code} {reply.get_data()[:300]!r}"
    if reply.status_code == 200:
        assert isinstance(reply.get_json()["cards"], list), what
        assert BROKEN not in reply.get_data(as_text=True), what
    else:
        assert 400 <= reply.status_code < 500 and reply.mimetype == PROBLEM, what


@pytest.mark.parametrize("service", SERVICES)
def test_every_field_of_a_hook_call_takes_hostile_values(
        call: Callable[..., Any], world: dict[str, Any], service: str) -> None:
    body = base_call(service)
    assert call(service, body).status_code == 200
    sent = 0
    for number, path in enumerate(leaves(body)):
        # Each field of the call takes PER_FIELD hostile values and each prefetched field (the
        # EHR's copies of Patient, Coverage...) one, in turn, so every value meets many fields
        # and the test stays quick.
        count = PER_FIELD if path[0] != "prefetch" else 1
        values = [FIELD_VALUES[(number + i) % len(FIELD_VALUES)] for i in range(count)]
        for hostile in values:
            started = time.perf_counter()
            reply = call(service, with_raw(body, path, hostile.raw))
            assert_answered(reply, time.perf_counter() - started,
                            f"{service} {'.'.join(map(str, path))}={hostile.name}")
            sent += 1
    assert sent > 250


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(("name", "raw", "content_type", "status"), BODIES,
                         ids=[b[0] for b in BODIES])
def test_hostile_bodies_are_refused(call: Callable[..., Any], world: dict[str, Any],
                                    service: str, name: str, raw: bytes, content_type: str,
                                    status: int | None) -> None:
    started = time.perf_counter()
    reply = call(service, raw)
    assert_answered(reply, time.perf_counter() - started, name)
    assert reply.status_code != 200
    if status is not None:
        assert reply.status_code == status


@pytest.mark.parametrize("service", SERVICES)
def test_a_call_with_too_many_orders_is_refused_naming_the_field(
        call: Callable[..., Any], world: dict[str, Any], service: str) -> None:
    body = base_call(service)
    name = "draftOrders" if service == "order-sign" else "appointments"
    entry = body["context"][name]["entry"][0]
    body["context"][name]["entry"] = [copy.deepcopy(entry) for _ in range(MAX_HOOK_ORDERS + 1)]
    reply = call(service, body)
    assert reply.status_code == 400
    assert reply.mimetype == PROBLEM
    assert reply.get_json()["errors"] == [
        {"field": f"context.{name}", "message": f"At most {MAX_HOOK_ORDERS} entries per call."}]
    body["context"][name]["entry"] = body["context"][name]["entry"][:MAX_HOOK_ORDERS]
    assert call(service, body).status_code == 200


NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
# A practitioner named as the one who gives the infusion (so an NPI taken from it would draw a
# PROVIDER_NOT_ENROLLED finding) but with no usable NPI: the answer must be the one for a call
# naming no practitioner. (name, the Practitioner's identifiers, the reference to it)
HOSTILE_PRACTITIONERS: list[tuple[str, Any, Any]] = [
    ("npi-check-digit", [{"system": NPI_SYSTEM, "value": "1234567890"}], "Practitioner/p"),
    ("npi-11-digits", [{"system": NPI_SYSTEM, "value": "12345678930"}], "Practitioner/p"),
    ("npi-newline", [{"system": NPI_SYSTEM, "value": "1234567893\n"}], "Practitioner/p"),
    ("npi-arabic-indic", [{"system": NPI_SYSTEM, "value": "\u0661\u0662\u0663\u0664\u0665"
                                                          "\u0666\u0667\u0668\u0669\u0663"}],
     "Practitioner/p"),
    ("npi-number", [{"system": NPI_SYSTEM, "value": 1234567893}], "Practitioner/p"),
    ("npi-object", [{"system": NPI_SYSTEM, "value": {"$ne": None}}], "Practitioner/p"),
    ("npi-empty", [{"system": NPI_SYSTEM, "value": ""}], "Practitioner/p"),
    ("npi-nul", [{"system": NPI_SYSTEM, "value": "123456789\u00003"}], "Practitioner/p"),
    ("npi-long", [{"system": NPI_SYSTEM, "value": "1" * 100_000}], "Practitioner/p"),
    ("npi-no-value", [{"system": NPI_SYSTEM}], "Practitioner/p"),
    ("identifiers-not-a-list", {"system": NPI_SYSTEM, "value": "1234567893"}, "Practitioner/p"),
    ("reference-number", [{"system": NPI_SYSTEM, "value": "1234567893"}], 42),
    ("reference-traversal", [{"system": NPI_SYSTEM, "value": "1234567893"}],
     "Practitioner/../../Patient/123"),
    ("reference-no-id", [{"system": NPI_SYSTEM, "value": "1234567893"}], "Practitioner/"),
    ("reference-id-too-long", [{"system": NPI_SYSTEM, "value": "1234567893"}],
     "Practitioner/" + "p" * 65),
    ("reference-other-type", [{"system": NPI_SYSTEM, "value": "1234567893"}], "Patient/p"),
    ("reference-contained", [{"system": NPI_SYSTEM, "value": "1234567893"}], "#p"),
    ("role-pointing-at-a-role", [{"system": NPI_SYSTEM, "value": "1234567893"}],
     "PractitionerRole/loop"),
]
HOSTILE_USER_IDS = [123, ["Practitioner/p"], {"reference": "Practitioner/p"}, None, "",
                    "Practitioner", "Practitioner/\u0000p", "x" * 100_000,
                    "PractitionerRole/loop"]


def _performer_call(identifiers: Any, reference: Any) -> dict[str, Any]:
    """An order performed by ``reference`` (none when None), Practitioner p and a looping
    PractitionerRole in prefetch."""
    order = medication_request()
    if reference is not None:
        order["performer"] = {"reference": reference}
    body = order_sign_call(order)
    body["prefetch"]["hostile"] = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Practitioner", "id": "p", "identifier": identifiers}},
        {"resource": {"resourceType": "PractitionerRole", "id": "loop",
                      "practitioner": {"reference": "PractitionerRole/loop"},
                      "identifier": [{"system": NPI_SYSTEM, "value": "not-an-npi"}]}}]}
    return body


def _comparable(reply: Any) -> list[Any]:
    body = reply.get_json()
    return [[{k: v for k, v in card.items() if k != "uuid"} for card in body["cards"]],
            [[part for part in action["resource"]["extension"][-1]["extension"]
              if part["url"] != "coverage-assertion-id"] for action in body["systemActions"]]]


@pytest.mark.parametrize(("name", "identifiers", "reference"), HOSTILE_PRACTITIONERS,
                         ids=[row[0] for row in HOSTILE_PRACTITIONERS])
def test_a_practitioner_without_a_usable_npi_changes_nothing(
        call: Callable[..., Any], world: dict[str, Any], name: str, identifiers: Any,
        reference: Any) -> None:
    baseline = call("order-sign", order_sign_call(medication_request()))
    started = time.perf_counter()
    reply = call("order-sign", _performer_call(identifiers, reference))
    assert_answered(reply, time.perf_counter() - started, name)
    if reply.status_code == 200:
        assert _comparable(reply) == _comparable(baseline), name


@pytest.mark.parametrize("user_id", HOSTILE_USER_IDS, ids=lambda value: repr(value)[:40])
def test_a_hostile_user_id_changes_nothing(call: Callable[..., Any], world: dict[str, Any],
                                           session: Any, user_id: Any) -> None:
    # The policy asks for a rheumatologist, so an NPI taken from the user would change the
    # answer ("requires a prescriber" becomes "NPI ... has no specialty on file").
    session.scalars(select(PolicyVersion)).one().prescriber_specialties = ["rheumatology"]
    session.flush()

    def body_with(user: Any) -> dict[str, Any]:
        body = _performer_call([{"system": NPI_SYSTEM, "value": "1234567893"}], None)
        body["context"]["userId"] = user
        return body

    baseline = call("order-sign", body_with("Patient/123"))
    assert "requires a prescriber in rheumatology" in baseline.get_data(as_text=True)
    # The control: a well-formed user id does reach the check.
    named = call("order-sign", body_with("Practitioner/p")).get_data(as_text=True)
    assert "NPI 1234567893 has no specialty on file" in named
    started = time.perf_counter()
    reply = call("order-sign", body_with(user_id))
    assert_answered(reply, time.perf_counter() - started, repr(user_id)[:60])
    if reply.status_code == 200:
        assert _comparable(reply) == _comparable(baseline)
