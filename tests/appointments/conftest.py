"""A small world for the stored schedule: one payer, infliximab, one patient, one authorization."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.eligibility.world import BASE_REQUEST
from tests.factories import (
    METHOTREXATE_FAILED,
    make_authorization,
    make_drug,
    make_patient,
    make_payer,
    make_policy,
)

# The eligibility world's request as an appointment: packages and prior therapies are the
# check's inputs, not the appointment's.
APPOINTMENT: dict[str, Any] = {key: value for key, value in BASE_REQUEST.items()
                               if key not in ("packages", "prior_therapies")}


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
