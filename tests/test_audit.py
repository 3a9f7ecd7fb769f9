"""The change history: a record moved to another payer, patient, owner or renewed authorization
is recorded with the one it had before and the one it has after.

Each move goes through the record's one write path (the service the API, the admin and the
bundle import call). ``fresh`` forgets every loaded record first, as a new request starts with
an empty session, so the record it had is not loaded when the write replaces it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from policy_service.domain.requests import AppointmentInput
from policy_service.extensions import db
from policy_service.models import ChangeRecord, Patient
from policy_service.services import appointments, authorizations
from policy_service.services.bundle import import_bundle
from policy_service.services.providers import find_provider, save_provider
from tests.factories import (
    make_authorization,
    make_drug,
    make_patient,
    make_payer,
    make_policy,
    make_provider,
)

ENROLLED_SINCE = dt.date(2024, 1, 1)
FRESH = pytest.mark.parametrize("fresh", [False, True], ids=["loaded", "fresh"])


def last_update(session: Session, kind: str, key: str) -> ChangeRecord:
    """The newest ``update`` entry of the record ``key``."""
    entry = session.scalar(select(ChangeRecord).where(
        ChangeRecord.entity_type == kind, ChangeRecord.entity_key == key,
        ChangeRecord.action == "update").order_by(ChangeRecord.id.desc()).limit(1))
    assert entry is not None, f"no update recorded for {kind} {key}"
    return entry


def forget(session: Session, fresh: bool) -> None:
    """Start from an empty session, as a new request does."""
    if fresh:
        session.expunge_all()


@pytest.fixture
def two_of_each(session: Session) -> None:
    """Payers MEDICARE-B and ACME, patients P001 and P002, infliximab and authorization A-1001
    (MEDICARE-B, P001)."""
    make_drug("J1745")
    make_payer("ACME", name="Acme Health", kind="commercial")
    make_patient("P002")
    make_authorization("A-1001", patient=make_patient("P001"), payer=make_payer())


# --- authorizations: services.authorizations (API PATCH, admin edit) and the bundle import ---


def update(number: str, values: dict[str, Any]) -> None:
    """Change authorization ``number`` as the API's PATCH and the admin's edit form do."""
    authorizations.update_authorization(authorizations.get_authorization(number), values,
                                        "coordinator@example.org")


def imported(number: str, values: dict[str, Any]) -> None:
    """Change authorization ``number`` by importing a bundle that names it."""
    import_bundle({"authorizations": [{"number": number, **values}]})


def renewed(numbers: list[str]) -> None:
    """Earlier authorizations of P001 with MEDICARE-B that A-1001 may renew."""
    patient = db.session.scalars(select(Patient).where(Patient.external_id == "P001")).one()
    payer = make_payer()
    for number in numbers:
        make_authorization(number, patient=patient, payer=payer, status="cancelled",
                           valid_from=dt.date(2025, 1, 1), valid_to=dt.date(2025, 12, 31))


WRITERS: dict[str, Callable[[str, dict[str, Any]], None]] = {
    "service": update, "import": imported}


@FRESH
@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize(("field", "old", "new"), [
    ("payer", "MEDICARE-B", "ACME"),
    ("patient", "P001", "P002"),
])
def test_an_authorization_moved_names_what_it_had_before(
        session: Session, two_of_each: None, fresh: bool, writer: str, field: str, old: str,
        new: str) -> None:
    forget(session, fresh)
    WRITERS[writer]("A-1001", {field: new})
    change = last_update(session, "authorization", "A-1001")
    assert (change.before[field], change.after[field]) == (old, new)


@FRESH
@pytest.mark.parametrize("writer", WRITERS)
def test_an_authorization_given_to_another_owner_names_the_one_before(
        session: Session, two_of_each: None, make_user: Callable[..., Any], fresh: bool,
        writer: str) -> None:
    make_user("coordinator", "first@example.org")
    make_user("coordinator", "second@example.org")
    update("A-1001", {"owner": "first@example.org"})
    forget(session, fresh)
    WRITERS[writer]("A-1001", {"owner": "second@example.org"})
    change = last_update(session, "authorization", "A-1001")
    assert (change.before["owner"], change.after["owner"]) == (
        "first@example.org", "second@example.org")


@FRESH
@pytest.mark.parametrize("writer", WRITERS)
def test_an_authorization_relinked_to_another_renewed_one_names_the_one_before(
        session: Session, two_of_each: None, fresh: bool, writer: str) -> None:
    renewed(["A-0901", "A-0902"])
    update("A-1001", {"renewal_of": "A-0901"})
    forget(session, fresh)
    WRITERS[writer]("A-1001", {"renewal_of": "A-0902"})
    change = last_update(session, "authorization", "A-1001")
    assert (change.before["renewal_of"], change.after["renewal_of"]) == ("A-0901", "A-0902")


@FRESH
def test_an_authorization_unlinked_names_the_one_before(
        session: Session, two_of_each: None, fresh: bool) -> None:
    renewed(["A-0901"])
    update("A-1001", {"renewal_of": "A-0901"})
    forget(session, fresh)
    update("A-1001", {"renewal_of": None})
    change = last_update(session, "authorization", "A-1001")
    assert (change.before["renewal_of"], change.after["renewal_of"]) == ("A-0901", None)


# --- appointments: services.appointments.upsert (API PUT, schedule upload, series) -----------


def appointment(patient: str = "P001", payer: str = "MEDICARE-B") -> AppointmentInput:
    """An infliximab infusion of ``patient`` billed to ``payer``."""
    return AppointmentInput(patient_id=patient, payer=payer, date_of_service=dt.date(2026, 3, 10),
                            hcpcs="J1745", dose_mg=Decimal(400), site_of_care="office",
                            diagnosis_codes=["M05.79"])


@FRESH
@pytest.mark.parametrize(("field", "old", "new"), [
    ("payer", "MEDICARE-B", "ACME"),
    ("patient", "P001", "P002"),
])
def test_an_appointment_moved_names_what_it_had_before(
        session: Session, two_of_each: None, fresh: bool, field: str, old: str,
        new: str) -> None:
    # The upsert expires loaded patients before it checks, so even in a warm session the
    # patient it had is not loaded when the appointment moves to another.
    make_policy()
    appointments.upsert("APT-1", appointment(), "scheduler@example.org")
    forget(session, fresh)
    appointments.upsert("APT-1", appointment(**{field: new}), "scheduler@example.org")
    change = last_update(session, "appointment", "APT-1")
    assert (change.before[field], change.after[field]) == (old, new)


# --- providers: services.providers.save_provider (admin, bundle import) ----------------------


@FRESH
def test_an_enrollment_moved_to_another_payer_names_the_payer_before(
        session: Session, fresh: bool) -> None:
    # Enrollments are updated in place by position, so the row itself changes payer.
    make_provider(enrollments=[(make_payer(), ENROLLED_SINCE, None)])
    make_payer("ACME", name="Acme Health", kind="commercial")
    forget(session, fresh)
    save_provider({"npi": "1234567893", "enrollments": [
        {"payer": "ACME", "effective_from": ENROLLED_SINCE, "effective_to": None}]})
    change = last_update(session, "provider", "1234567893")
    assert [e["payer"] for e in change.before["enrollments"]] == ["MEDICARE-B"]
    assert [e["payer"] for e in change.after["enrollments"]] == ["ACME"]


def test_an_enrollment_moved_through_the_import_names_the_payer_before(
        session: Session) -> None:
    make_provider(enrollments=[(make_payer(), ENROLLED_SINCE, None)])
    make_payer("ACME", name="Acme Health", kind="commercial")
    session.expunge_all()
    import_bundle({"providers": [{"npi": "1234567893", "name": "Ada Lovelace, MD",
                                  "enrollments": [{"payer": "ACME",
                                                   "effective_from": "2024-01-01"}]}]})
    change = last_update(session, "provider", "1234567893")
    assert change.before["enrollments"][0]["payer"] == "MEDICARE-B"
    assert change.after["enrollments"][0]["payer"] == "ACME"
    provider = find_provider("1234567893")
    assert provider is not None and provider.enrollments[0].payer.code == "ACME"


# --- policies (fixed first in 2c9df85): the same check when nothing was loaded ---------------


def test_a_policy_moved_in_a_fresh_session_names_the_payer_before(session: Session) -> None:
    make_drug()
    version = make_policy()
    make_payer("ACME", name="Acme Health", kind="commercial")
    code = version.policy.code
    session.expunge_all()
    import_bundle({"policies": [{"id": code, "payer": "ACME", "effective_from": "2026-01-01"}]})
    change = last_update(session, "policy", code)
    assert (change.before["payer"], change.after["payer"]) == ("MEDICARE-B", "ACME")
