"""A claims world: Medicare Part B, infliximab, one patient, one authorization."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from tests.factories import (
    METHOTREXATE_FAILED,
    make_authorization,
    make_drug,
    make_patient,
    make_payer,
    make_policy,
    make_provider,
)

# 350 mg of infliximab from 4 x 100 mg vials, complex infusion 10:00-12:10, billed correctly.
CLEAN_CLAIM: dict[str, Any] = {
    "payer": "MEDICARE-B", "patient": {"id": "P001"}, "date_of_service": "2026-03-10",
    "submitted_on": "2026-03-12", "diagnosis_codes": ["M05.79"],
    "authorization_number": "A-1001", "place_of_service": "11",
    "administration": {"hcpcs": "J1745", "administered_mg": 350,
                       "packages": [{"amount": 100, "count": 4}],
                       "infusions": [{"kind": "complex", "start": "10:00", "stop": "12:10"}]},
    "lines": [{"code": "J1745", "units": 35, "modifiers": [], "ndc": "57894-0030-01"},
              {"code": "J1745", "units": 5, "modifiers": ["JW"]},
              {"code": "96413", "units": 1}, {"code": "96415", "units": 1},
              {"code": "99214", "units": 1, "modifiers": ["25"]}],
}


def build_world(payer: dict[str, Any] | None = None, drug: dict[str, Any] | None = None,
                authorization: dict[str, Any] | None = None, with_auth: bool = True,
                policy: dict[str, Any] | None = None) -> None:
    """Medicare Part B, infliximab and its policy, P001 (failed methotrexate), A-1001; a
    rheumatologist enrolled with the payer and a dermatologist whose enrollment ended in 2025."""
    medicare = make_payer(**(payer or {}))
    make_drug("J1745", **(drug or {}))
    make_policy(payer=medicare, **(policy or {}))
    make_provider("1234567893", enrollments=[(medicare, dt.date(2024, 1, 1), None)])
    make_provider("1245319599", name="Grace Hopper, MD", specialty="dermatology",
                  enrollments=[(medicare, dt.date(2024, 1, 1), dt.date(2025, 12, 31))])
    person = make_patient("P001", therapies=[METHOTREXATE_FAILED])
    if with_auth:
        make_authorization("A-1001", patient=person, payer=medicare, **(authorization or {}))


def claim_with(**changes: Any) -> dict[str, Any]:
    """The clean claim with top-level keys replaced."""
    body = copy.deepcopy(CLEAN_CLAIM)
    body.update(changes)
    return body


def administration(**changes: Any) -> dict[str, Any]:
    """The clean claim's administration with keys replaced."""
    admin = copy.deepcopy(CLEAN_CLAIM["administration"])
    admin.update(changes)
    return admin


def codes(body: dict[str, Any]) -> list[str]:
    """The finding codes of a response, sorted."""
    return sorted(f["code"] for f in body["findings"])


def finding(body: dict[str, Any], code: str) -> dict[str, Any]:
    """The one finding with ``code``."""
    found = [f for f in body["findings"] if f["code"] == code]
    assert len(found) == 1, body["findings"]
    return found[0]
