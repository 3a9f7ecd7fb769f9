"""A small world for the stored schedule: one payer, infliximab, one patient, one authorization."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.factories import (
    METHOTREXATE_FAILED,
    make_authorization,
    make_drug,
    make_patient,
    make_payer,
    make_policy,
)

APPOINTMENT: dict[str, Any] = {
    "patient": {"id": "P001"},
    "payer": "MEDICARE-B",
    "date_of_service": "2026-03-10",
    "site_of_care": "office",
    "diagnosis_codes": ["M05.79"],
    "hcpcs": "J1745",
    "dose": {"mg": 400},
}


def appointment_with(**changes: Any) -> dict[str, Any]:
    """The standard appointment body with some fields changed."""
    body = copy.deepcopy(APPOINTMENT)
    body.update(changes)
    return body


@pytest.fixture
def world(session: Any) -> dict[str, Any]:
    """Medicare Part B, infliximab (no step therapy), patient P001, authorization A-1001."""
    payer = make_payer()
    make_drug("J1745")
    policy = make_policy(payer=payer)
    patient = make_patient("P001", therapies=[METHOTREXATE_FAILED])
    auth = make_authorization("A-1001", patient=patient, payer=payer)
    return {"payer": payer, "policy": policy, "patient": patient, "authorization": auth}
