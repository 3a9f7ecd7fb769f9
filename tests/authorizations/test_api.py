"""POST, PATCH with If-Match, transitions, notes and events of /api/v1/authorizations."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from policy_service.models import AUTHORIZATION_STATUSES, Authorization
from policy_service.services.authorizations import TRANSITIONS
from tests.authorizations.conftest import TODAY, create, stored

URL = "/api/v1/authorizations"
ALLOWED = [(start, end) for start, ends in TRANSITIONS.items() for end in ends]
REFUSED = [(start, end) for start, end in itertools.product(AUTHORIZATION_STATUSES, repeat=2)
           if end not in TRANSITIONS[start]]


def fields(response: Any) -> set[str]:
    """The fields a 422 names."""
    return {error["field"] for error in response.get_json()["errors"]}


def test_create_answers_the_record_with_its_etag(client: FlaskClient, world: Any,
                                                 coordinator: dict[str, str]) -> None:
    response = create(client, coordinator, ordering_npi="1234567893", channel="portal",
                      owner="coordinator@example.org")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == body["state"] == "requested"
    assert body["approved_units"] is None and body["requested_units"] == 160
    assert body["allowed_transitions"] == ["submitted", "cancelled"]
    assert body["owner"] == "coordinator@example.org"
    assert response.headers["ETag"] == client.get(f"{URL}/A-2001",
                                                  headers=coordinator).headers["ETag"]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"hcpcs": ["J9999"]}, "hcpcs[0]"),
    ({"ordering_npi": "1234567890"}, "ordering_npi"),
    ({"channel": "pigeon"}, "channel"),
    ({"owner": "nobody@example.org"}, "owner"),
    ({"payer": "NOPE"}, "payer"),
    ({"valid_to": "2020-01-01"}, "valid_to"),
    ({"status": "approved"}, "approved_units"),
    ({"used_units": 3}, "used_units"),
    ({"renewal_of": "A-404"}, "renewal_of"),
])
def test_create_refuses_bad_fields(client: FlaskClient, world: Any, session: Session,
                                   coordinator: dict[str, str], overrides: dict[str, Any],
                                   field: str) -> None:
    response = create(client, coordinator, **overrides)
    assert response.status_code == 422, response.get_json()
    assert field in fields(response)
    assert session.scalar(select(Authorization).where(Authorization.number == "A-2001")) is None


def test_create_of_a_denial_may_carry_zero_approved(client: FlaskClient, world: Any,
                                                    coordinator: dict[str, str]) -> None:
    response = create(client, coordinator, status="denied", approved_units=0,
                      approved_visits=0)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["remaining_units"] == 0


@pytest.mark.parametrize("role", ["scheduler", "biller"])
def test_readers_cannot_write(client: FlaskClient, world: Any, auth_header: Any,
                              role: str) -> None:
    headers = auth_header(role)
    stored("requested")
    assert create(client, headers).status_code == 403
    assert client.post(f"{URL}/A-1001/transitions", json={"to": "submitted"},
                       headers=headers).status_code == 403
    assert client.post(f"{URL}/A-1001/notes", json={"text": "x"},
                       headers=headers).status_code == 403
    assert client.post(f"{URL}/A-1001/renew", headers=headers).status_code == 403
    etag = client.get(f"{URL}/A-1001", headers=headers).headers["ETag"]
    assert client.patch(f"{URL}/A-1001", json={"payer_reference": "X"},
                        headers={**headers, "If-Match": etag}).status_code == 403
    assert client.get("/api/v1/worklist", headers=headers).status_code == 200


def test_patch_needs_if_match(client: FlaskClient, world: Any,
                              coordinator: dict[str, str]) -> None:
    stored("submitted")
    response = client.patch(f"{URL}/A-1001", json={"payer_reference": "PR-1"},
                            headers=coordinator)
    assert response.status_code == 428
    assert response.get_json()["code"] == "PRECONDITION_REQUIRED"


def test_patch_with_a_stale_etag_changes_nothing(client: FlaskClient, world: Any,
                                                 session: Session,
                                                 coordinator: dict[str, str]) -> None:
    stored("submitted")
    etag = client.get(f"{URL}/A-1001", headers=coordinator).headers["ETag"]
    first = client.patch(f"{URL}/A-1001", json={"payer_reference": "PR-1"},
                         headers={**coordinator, "If-Match": etag})
    assert first.status_code == 200 and first.get_json()["payer_reference"] == "PR-1"
    assert first.headers["ETag"] != etag
    second = client.patch(f"{URL}/A-1001", json={"payer_reference": "PR-2"},
                          headers={**coordinator, "If-Match": etag})
    assert second.status_code == 412
    assert second.get_json()["code"] == "STALE_RECORD"
    assert client.get(f"{URL}/A-1001", headers=coordinator).get_json()[
        "payer_reference"] == "PR-1"


@pytest.mark.parametrize(("body", "field"), [
    ({"status": "approved"}, "status"),
    ({"used_units": 5}, "used_units"),
    ({"ordering_npi": "12345"}, "ordering_npi"),
    ({"follow_up_on": "someday"}, "follow_up_on"),
    ({"hcpcs": ["J9999"]}, "hcpcs[0]"),
])
def test_patch_refuses_bad_fields(client: FlaskClient, world: Any,
                                  coordinator: dict[str, str], body: dict[str, Any],
                                  field: str) -> None:
    stored("submitted")
    etag = client.get(f"{URL}/A-1001", headers=coordinator).headers["ETag"]
    response = client.patch(f"{URL}/A-1001", json=body, headers={**coordinator,
                                                                 "If-Match": etag})
    assert response.status_code == 422, response.get_json()
    assert field in fields(response)


def test_patch_cannot_lower_approved_below_recorded_use(client: FlaskClient, world: Any,
                                                        coordinator: dict[str, str]) -> None:
    stored("approved", used_units=100)
    etag = client.get(f"{URL}/A-1001", headers=coordinator).headers["ETag"]
    response = client.patch(f"{URL}/A-1001", json={"approved_units": 50},
                            headers={**coordinator, "If-Match": etag})
    assert response.status_code == 422
    assert "approved_units" in fields(response)


@pytest.mark.parametrize(("start", "end"), ALLOWED)
def test_every_allowed_transition(client: FlaskClient, world: Any, session: Session,
                                  coordinator: dict[str, str], start: str, end: str) -> None:
    stored(start, approved_units=160 if start in ("approved", "partially_approved") else None,
           requested_units=160)
    response = client.post(f"{URL}/A-1001/transitions", headers=coordinator, json={
        "to": end, "on": TODAY.isoformat(), "reason": f"{start} to {end}"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["status"] == end
    assert body["allowed_transitions"] == list(TRANSITIONS[end])
    events = client.get(f"{URL}/A-1001/events", headers=coordinator).get_json()["items"]
    assert events[-1] == {**events[-1], "kind": "transition", "from": start, "to": end,
                          "by": "coordinator@example.org", "reason": f"{start} to {end}",
                          "on": TODAY.isoformat()}


@pytest.mark.parametrize(("start", "end"), REFUSED)
def test_every_refused_transition_names_the_allowed_ones(
        client: FlaskClient, world: Any, coordinator: dict[str, str], start: str,
        end: str) -> None:
    stored(start, approved_units=160 if start in ("approved", "partially_approved") else None)
    response = client.post(f"{URL}/A-1001/transitions", json={"to": end},
                           headers=coordinator)
    assert response.status_code == 409
    problem = response.get_json()
    assert problem["code"] == "INVALID_TRANSITION"
    for allowed in TRANSITIONS[start]:
        assert allowed in problem["detail"]
    assert client.get(f"{URL}/A-1001", headers=coordinator).get_json()["status"] == start


def test_unknown_target_status_is_a_422(client: FlaskClient, world: Any,
                                        coordinator: dict[str, str]) -> None:
    stored("submitted")
    response = client.post(f"{URL}/A-1001/transitions", json={"to": "expired"},
                           headers=coordinator)
    assert response.status_code == 422 and "to" in fields(response)


def test_approval_needs_a_limit(client: FlaskClient, world: Any,
                                coordinator: dict[str, str]) -> None:
    stored("submitted", approved_units=None, approved_visits=None)
    response = client.post(f"{URL}/A-1001/transitions", json={"to": "approved"},
                           headers=coordinator)
    assert response.status_code == 422 and "approved_units" in fields(response)
    recorded = client.post(f"{URL}/A-1001/transitions", headers=coordinator, json={
        "to": "partially_approved", "approved_units": 80, "payer_reference": "MA-77"})
    assert recorded.status_code == 200
    body = recorded.get_json()
    assert (body["approved_units"], body["payer_reference"]) == (80, "MA-77")
    assert body["decided_on"] == TODAY.isoformat()


def test_denial_sets_the_appeal_due_date_from_the_payer(client: FlaskClient, world: Any,
                                                        coordinator: dict[str, str]) -> None:
    stored("submitted", approved_units=None, approved_visits=None)
    day = TODAY - dt.timedelta(days=3)
    body = client.post(f"{URL}/A-1001/transitions", headers=coordinator, json={
        "to": "denied", "on": day.isoformat(), "reason": "Step therapy not met"}).get_json()
    assert body["appeal_due"] == (day + dt.timedelta(days=65)).isoformat()
    assert body["denial_reason"] == "Step therapy not met"


def test_submission_records_the_day(client: FlaskClient, world: Any,
                                    coordinator: dict[str, str]) -> None:
    create(client, coordinator)
    body = client.post(f"{URL}/A-2001/transitions", json={"to": "submitted"},
                       headers=coordinator).get_json()
    assert body["submitted_on"] == TODAY.isoformat()


def test_notes_are_append_only_and_listed_with_transitions(
        client: FlaskClient, world: Any, coordinator: dict[str, str]) -> None:
    create(client, coordinator)
    note = client.post(f"{URL}/A-2001/notes", json={"text": "Faxed the chart notes."},
                       headers=coordinator)
    assert note.status_code == 201
    client.post(f"{URL}/A-2001/transitions", json={"to": "submitted"}, headers=coordinator)
    events = client.get(f"{URL}/A-2001/events", headers=coordinator).get_json()["items"]
    assert [e["kind"] for e in events] == ["note", "transition"]
    assert events[0]["text"] == "Faxed the chart notes."
    assert events[0]["by"] == "coordinator@example.org"
    assert client.post(f"{URL}/A-2001/notes", json={"text": ""},
                       headers=coordinator).status_code == 422
    assert client.delete(f"{URL}/A-2001/notes", headers=coordinator).status_code == 405


def test_unknown_number_is_404(client: FlaskClient, world: Any,
                               coordinator: dict[str, str]) -> None:
    for response in (
        client.post(f"{URL}/A-404/transitions", json={"to": "submitted"}, headers=coordinator),
        client.post(f"{URL}/A-404/notes", json={"text": "x"}, headers=coordinator),
        client.get(f"{URL}/A-404/events", headers=coordinator),
        client.post(f"{URL}/A-404/renew", headers=coordinator),
    ):
        assert response.status_code == 404
        assert response.get_json()["code"] == "NOT_FOUND"
