"""The eligibility tests' world: Medicare Part B, infliximab, one patient, one authorization."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from tests.factories import (
    CSDMARD_STEP,
    METHOTREXATE_FAILED,
    make_authorization,
    make_drug,
    make_patient,
    make_payer,
    make_policy,
    make_provider,
)

BASE_REQUEST: dict[str, Any] = {
    "patient": {"id": "P001"},
    "payer": "MEDICARE-B",
    "date_of_service": "2026-03-10",
    "site_of_care": "office",
    "diagnosis_codes": ["M05.79"],
    "hcpcs": "J1745",
    "dose": {"mg": 400},
    "packages": [{"amount": 100, "count": 4}],
    "prior_therapies": [],
}
# Enrolled with Medicare Part B since 2024; a dermatologist enrolled only until 2025.
RHEUMATOLOGIST_NPI = "1234567893"
DERMATOLOGIST_NPI = "1245319599"
UNKNOWN_NPI = "1003000126"


def build_world(policy: dict[str, Any] | None = None, patient: dict[str, Any] | None = None,
                authorization: dict[str, Any] | None = None, with_auth: bool = True) -> None:
    """Medicare Part B, infliximab, one patient who failed methotrexate, one authorization."""
    payer = make_payer()
    make_drug("J1745")
    make_drug("Q5103", name="Inflectra", generic="infliximab-dyyb", biosimilar_of="J1745")
    make_policy(payer=payer, steps=[CSDMARD_STEP], **(policy or {}))
    person = make_patient("P001", therapies=[METHOTREXATE_FAILED], **(patient or {}))
    if with_auth:
        make_authorization("A-1001", patient=person, payer=payer, **(authorization or {}))
    make_provider(RHEUMATOLOGIST_NPI, enrollments=[(payer, dt.date(2024, 1, 1), None)])
    make_provider(DERMATOLOGIST_NPI, name="Grace Hopper, MD", specialty="dermatology",
                  enrollments=[(payer, dt.date(2024, 1, 1), dt.date(2025, 12, 31))])


def post(client: Any, headers: dict[str, str], body: dict[str, Any]) -> Any:
    """POST one eligibility request; a 200 answer must be exactly what the document says.

    The endpoint returns its result without a schema dump, so each answer is held equal to
    EligibilityResponseSchema's dump of it: no undocumented key, no value of another type.
    """
    response = client.post("/api/v1/eligibility", json=body, headers=headers)
    if response.status_code == 200:
        assert_documented_response(response.get_json())
    return response


def assert_documented_response(answer: dict[str, Any]) -> None:
    """Fail unless ``answer`` is its own dump through the documented response schema."""
    from policy_service.schemas.eligibility import EligibilityResponseSchema

    assert answer == EligibilityResponseSchema().dump(answer)


def request_with(**changes: Any) -> dict[str, Any]:
    """The base request with top-level fields replaced."""
    body = copy.deepcopy(BASE_REQUEST)
    body.update(changes)
    return body
