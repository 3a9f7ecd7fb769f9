"""Every API route answers correctly for anonymous, admin, coordinator, scheduler and biller."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from sqlalchemy import select

from policy_service.models import Authorization, Policy
from policy_service.schemas.appointments import load_appointment
from policy_service.services.appointments import upsert
from policy_service.services.authorizations import add_attachment
from policy_service.services.policies import new_draft
from policy_service.services.usage import record_usage
from tests.eligibility.world import BASE_REQUEST, build_world
from tests.remittances.builder import Claim, Line, build_835

CLAIM = {
    "payer": "MEDICARE-B", "patient": {"id": "P001"}, "date_of_service": "2026-03-10",
    "submitted_on": "2026-03-12", "diagnosis_codes": ["M05.79"], "place_of_service": "11",
    "authorization_number": "A-1001",
    "administration": {"hcpcs": "J1745", "administered_mg": 400,
                       "packages": [{"amount": 100, "count": 4}],
                       "infusions": [{"kind": "complex", "start": "10:00", "stop": "12:10"}]},
    "lines": [{"code": "J1745", "units": 40, "modifiers": ["JZ"]},
              {"code": "96413", "units": 1}, {"code": "96415", "units": 1}],
}
APPOINTMENT = {"patient": {"id": "P001"}, "payer": "MEDICARE-B", "date_of_service": "2026-03-10",
               "site_of_care": "office", "diagnosis_codes": ["M05.79"], "hcpcs": "J1745",
               "dose": {"mg": 400}}
SERIES = {"appointment_id_prefix": "S1", "first": APPOINTMENT, "every_days": 28,
          "until": "2026-04-30"}
USE = {"claim_reference": "CLM-1", "date_of_service": "2026-03-10", "units": 40, "visits": 1}
# An 835 body (text, not JSON): one paid claim of the world's patient.
REMITTANCE = build_835([Claim("CLM-835", [Line("J1745", 100, units=10)])], payer="MEDICARE-B")

NEW_AUTHORIZATION = {"number": "A-2001", "payer": "MEDICARE-B", "patient": "P001",
                     "hcpcs": ["J1745"], "valid_from": "2026-07-01", "valid_to": "2026-12-31"}
# A multipart upload (see test_route_answers_by_role), not a JSON body.
LETTER = b"%PDF-1.4\n%%EOF\n"
POLICY = "/api/v1/policies/MEDICARE-B/infliximab"
CASE = {"name": "RA", "request": BASE_REQUEST,
        "expect": {"decision": "eligible", "codes": [], "absent": []}}
READERS = {"admin", "coordinator", "scheduler", "biller"}
EDITORS = {"admin", "coordinator"}

# method, path, body, the roles allowed (the others get 403; anonymous gets 401)
ROUTES: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/api/v1/payers", None, {"admin", "coordinator", "scheduler", "biller"}),
    ("GET", "/api/v1/payers/MEDICARE-B", None, {"admin", "coordinator", "scheduler", "biller"}),
    ("GET", "/api/v1/drugs", None, {"admin", "coordinator", "scheduler", "biller"}),
    ("GET", "/api/v1/drugs/J1745", None, {"admin", "coordinator", "scheduler", "biller"}),
    ("GET", "/api/v1/providers", None, {"admin", "coordinator", "scheduler", "biller"}),
    ("GET", "/api/v1/providers/1234567893", None,
     {"admin", "coordinator", "scheduler", "biller"}),
    ("GET", "/api/v1/policies", None, {"admin", "coordinator", "scheduler", "biller"}),
    ("GET", "/api/v1/policies/MEDICARE-B/infliximab", None,
     {"admin", "coordinator", "scheduler", "biller"}),
    ("GET", "/api/v1/authorizations", None, {"admin", "coordinator", "scheduler", "biller"}),
    ("GET", "/api/v1/authorizations/A-1001", None,
     {"admin", "coordinator", "scheduler", "biller"}),
    ("POST", "/api/v1/eligibility", BASE_REQUEST, {"admin", "coordinator", "scheduler"}),
    ("POST", "/api/v1/eligibility/batch", {"items": [BASE_REQUEST]},
     {"admin", "coordinator", "scheduler"}),
    ("POST", "/api/v1/claims/check", CLAIM, {"admin", "biller"}),
    ("POST", "/api/v1/authorizations/A-1001/usage", USE, {"admin", "biller"}),
    ("DELETE", "/api/v1/authorizations/A-1001/usage/CLM-0", None, {"admin", "biller"}),
    ("GET", "/api/v1/appointments", None, {"admin", "coordinator", "scheduler", "biller"}),
    ("GET", "/api/v1/appointments/APT-0", None, {"admin", "coordinator", "scheduler", "biller"}),
    ("PUT", "/api/v1/appointments/APT-0", APPOINTMENT, {"admin", "coordinator", "scheduler"}),
    ("DELETE", "/api/v1/appointments/APT-0", None, {"admin", "coordinator", "scheduler"}),
    ("POST", "/api/v1/appointments/series", SERIES, {"admin", "coordinator", "scheduler"}),
    ("POST", "/api/v1/remittances", REMITTANCE, {"admin", "biller"}),
    ("GET", "/api/v1/denials", None, {"admin", "coordinator", "biller"}),
    ("POST", f"{POLICY}/versions", {"effective_from": "2027-01-01"}, EDITORS),
    ("GET", f"{POLICY}/versions/2", None, READERS),
    ("PATCH", f"{POLICY}/versions/2", {"min_age": 21}, EDITORS),
    ("POST", f"{POLICY}/versions/2/cases", CASE, EDITORS),
    ("POST", f"{POLICY}/versions/2/test", None, READERS),
    ("POST", f"{POLICY}/versions/2/impact", None, READERS),
    ("POST", f"{POLICY}/versions/2/activate", None, EDITORS),
    ("GET", f"{POLICY}/diff?from=1&to=2", None, READERS),
    ("GET", "/api/v1/policies/compare?hcpcs=J1745", None, READERS),
    ("GET", "/api/v1/authorizations/A-1001/forecast", None,
     {"admin", "coordinator", "scheduler", "biller"}),
    ("POST", "/api/v1/authorizations", NEW_AUTHORIZATION, EDITORS),
    ("PATCH", "/api/v1/authorizations/A-1001", {"payer_reference": "MB-1"}, EDITORS),
    ("POST", "/api/v1/authorizations/A-1001/transitions", {"to": "cancelled"}, EDITORS),
    ("POST", "/api/v1/authorizations/A-1001/notes", {"text": "Called the payer."}, EDITORS),
    ("GET", "/api/v1/authorizations/A-1001/events", None, READERS),
    ("POST", "/api/v1/authorizations/A-1001/renew", None, EDITORS),
    ("POST", "/api/v1/authorizations/A-1001/attachments", LETTER, EDITORS),
    ("GET", "/api/v1/authorizations/A-1001/attachments", None, READERS),
    ("GET", "/api/v1/authorizations/A-1001/attachments/LETTER-ID", None, READERS),
    ("GET", "/api/v1/worklist", None, READERS),
]
ROLES = ["anonymous", "admin", "coordinator", "scheduler", "biller"]


def test_matrix_covers_every_api_route(app) -> None:
    documented = {(method, rule.rule) for rule in app.url_map.iter_rules()
                  if rule.rule.startswith("/api/v1/") and not rule.rule.endswith("openapi.json")
                  for method in rule.methods - {"HEAD", "OPTIONS"}}
    templates = {"/api/v1/payers/<code>": "/api/v1/payers/MEDICARE-B",
                 "/api/v1/drugs/<hcpcs>": "/api/v1/drugs/J1745",
                 "/api/v1/providers/<npi>": "/api/v1/providers/1234567893",
                 "/api/v1/policies/<path:code>": "/api/v1/policies/MEDICARE-B/infliximab"}
    covered = set()
    for method, rule in documented:
        path = templates.get(rule, rule)
        path = path.replace("<number>", "A-1001").replace("<claim_reference>", "CLM-0")
        path = path.replace("<appointment_id>", "APT-0")
        path = path.replace("<path:code>", "MEDICARE-B/infliximab").replace("<int:number>", "2")
        path = path.replace("<int:attachment_id>", "LETTER-ID")
        covered.add((method, path))
    assert covered == {(method, path.split("?")[0]) for method, path, _body, _roles in ROUTES}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _b, _a in ROUTES])
def test_route_answers_by_role(client, session, auth_header, role, method, path, body,
                               allowed) -> None:
    build_world()
    if method == "DELETE" and "/usage/" in path:
        record_usage("A-1001", "CLM-0", dt.date(2026, 3, 10), 10, 1, "system")
    if "/appointments/APT-0" in path and method != "PUT":
        upsert("APT-0", load_appointment(APPOINTMENT), "system")
    headers = {} if role == "anonymous" else auth_header(role)
    if "/versions/2" in path or "/diff" in path:
        policy = session.scalar(select(Policy).where(Policy.code == "MEDICARE-B/infliximab"))
        draft = new_draft(policy, {"effective_from": dt.date(2027, 1, 1)})
        headers["If-Match"] = f'"{draft.version}"'
    if path.startswith("/api/v1/authorizations/A-1001"):
        auth = session.scalar(select(Authorization).where(Authorization.number == "A-1001"))
        headers.setdefault("If-Match", f'"{auth.version}"')
        if "LETTER-ID" in path:
            letter = add_attachment(auth, "letter.pdf", LETTER, "system")
            path = path.replace("LETTER-ID", str(letter.id))
    if isinstance(body, bytes):
        response = client.open(path, method=method, headers=headers,
                               data={"file": (io.BytesIO(body), "letter.pdf")},
                               content_type="multipart/form-data")
    elif isinstance(body, str):
        response = client.open(path, method=method, data=body, headers=headers,
                               content_type="application/edi-x12")
    else:
        response = client.open(path, method=method, json=body, headers=headers)
    if role == "anonymous":
        assert response.status_code == 401
    elif role in allowed:
        assert response.status_code in (200, 201), response.json
    else:
        assert response.status_code == 403
        assert response.json["code"] == "FORBIDDEN"


def test_the_api_sets_no_session_cookie(client, session, auth_header) -> None:
    build_world()
    response = client.post("/api/v1/eligibility", json=BASE_REQUEST,
                           headers=auth_header("scheduler"))
    assert response.status_code == 200
    assert response.headers.getlist("Set-Cookie") == []
