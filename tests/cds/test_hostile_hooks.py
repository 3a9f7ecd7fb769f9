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
    """A valid call of ``service``."""
    return order_sign_call(medication_request()) if service == "order-sign" \
        else appointment_book_call()


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
