"""The work queue shows appointments blocked by drug supply or provider findings, by reason."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from policy_service.schemas.appointments import load_appointment
from policy_service.services import appointments
from policy_service.services.worklist import worklist
from tests.factories import (
    METHOTREXATE_FAILED,
    make_authorization,
    make_drug,
    make_patient,
    make_payer,
    make_policy,
    make_provider,
)

TODAY = dt.date.today()


@pytest.fixture
def supply_world(session: Session) -> Any:
    """A pharmacy-only infliximab policy naming rheumatology; an enrolled rheumatologist, a
    dermatologist whose enrollment ended yesterday."""
    payer = make_payer()
    make_drug("J1745")
    make_policy(payer=payer, effective_from=TODAY - dt.timedelta(days=365),
                drug_supply="specialty_pharmacy", prescriber_specialties=["rheumatology"])
    patient = make_patient("P001", therapies=[METHOTREXATE_FAILED])
    make_provider("1234567893", enrollments=[(payer, TODAY - dt.timedelta(days=400), None)])
    make_provider("1245319599", name="Grace Hopper, MD", specialty="dermatology",
                  enrollments=[(payer, TODAY - dt.timedelta(days=400),
                                TODAY - dt.timedelta(days=1))])
    return make_authorization("A-1001", patient=patient, payer=payer, approved_units=400,
                              approved_visits=6, valid_from=TODAY,
                              valid_to=TODAY + dt.timedelta(days=180))


def book(appointment_id: str, **changes: Any) -> None:
    body = {"patient": {"id": "P001"}, "payer": "MEDICARE-B",
            "date_of_service": (TODAY + dt.timedelta(days=7)).isoformat(),
            "site_of_care": "office", "diagnosis_codes": ["M05.79"], "hcpcs": "J1745",
            "dose": {"mg": 400}, "drug_supply": "specialty_pharmacy",
            "rendering_npi": "1234567893", **changes}
    appointments.upsert(appointment_id, load_appointment(body), "scheduler@example.org")


def test_blocked_appointments_carry_their_reasons(supply_world: Any) -> None:
    book("OK-1")
    book("SP-1", drug_supply="buy_and_bill")
    book("NPI-1", rendering_npi="1245319599")
    items = {i.appointment: i for i in worklist(TODAY) if i.kind == "appointment_blocked"}
    assert set(items) == {"SP-1", "NPI-1"}
    assert items["SP-1"].reasons == ("SPECIALTY_PHARMACY_REQUIRED",)
    assert "not eligible (SPECIALTY_PHARMACY_REQUIRED)" in items["SP-1"].message
    # The dermatologist is both unenrolled and outside the policy's specialty.
    assert set(items["NPI-1"].reasons) == {"PROVIDER_NOT_ENROLLED",
                                           "PRESCRIBER_SPECIALTY_NOT_COVERED"}
    assert items["NPI-1"].as_dict()["reasons"] == list(items["NPI-1"].reasons)


def test_the_worklist_api_shows_the_reasons(client: Any, supply_world: Any,
                                            auth_header: Any) -> None:
    book("SP-1", drug_supply="buy_and_bill")
    body = client.get("/api/v1/worklist", headers=auth_header("coordinator")).json
    [item] = [i for i in body["items"] if i["appointment"] == "SP-1"]
    assert item["kind"] == "appointment_blocked"
    assert item["reasons"] == ["SPECIALTY_PHARMACY_REQUIRED"]
