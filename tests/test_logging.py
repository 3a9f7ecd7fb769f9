"""Logs are structured and never carry patient identifiers."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from policy_service.logging import redact_phi, safe_traceback
from policy_service.models import Patient
from tests.eligibility.world import BASE_REQUEST, build_world

IDENTIFIERS = ("P001", "A-1001", "M05.79", "1961-03-02", "CLM-77")


def test_redaction_replaces_identifying_values() -> None:
    event = redact_phi(None, "info", {"event": "x", "patient_id": "P001", "units": 35})
    assert event == {"event": "x", "patient_id": "[redacted]", "units": 35}


def test_a_check_and_a_use_log_events_without_identifiers(client, session, auth_header,
                                                          caplog) -> None:
    build_world()
    caplog.set_level(logging.INFO, logger="policy_service")
    client.post("/api/v1/eligibility", json=BASE_REQUEST, headers=auth_header("scheduler"))
    client.post("/api/v1/authorizations/A-1001/usage", headers=auth_header("biller"),
                json={"claim_reference": "CLM-77", "date_of_service": "2026-03-10",
                      "units": 40})
    events = [json.loads(record.getMessage()) for record in caplog.records
              if record.name.startswith("policy_service")]
    names = [e["event"] for e in events]
    assert "eligibility_checked" in names and "authorization_use_recorded" in names
    assert next(e for e in events if e["event"] == "eligibility_checked")["decisions"] == {
        "eligible": 1}
    for identifier in IDENTIFIERS:
        assert identifier not in caplog.text


def test_an_unexpected_error_is_logged_without_identifiers(client, session, auth_header,
                                                           caplog, monkeypatch) -> None:
    build_world()

    existing = BASE_REQUEST["patient"]["id"]

    def explode(*_args, **_kwargs):
        # A real database error whose parameters name a patient.
        session.execute(insert(Patient).values(external_id=existing, version=1))

    monkeypatch.setattr("policy_service.api.eligibility.check_batch", explode)
    caplog.set_level(logging.INFO, logger="policy_service")
    response = client.post("/api/v1/eligibility", json=BASE_REQUEST,
                           headers=auth_header("scheduler"))
    assert response.status_code == 500
    assert response.json["code"] == "INTERNAL_ERROR"
    assert "Traceback" not in response.get_data(as_text=True)
    assert "unhandled_error" in caplog.text and "IntegrityError" in caplog.text
    for identifier in IDENTIFIERS:
        assert identifier not in caplog.text


def test_database_errors_hide_their_parameters(session) -> None:
    build_world()
    existing = BASE_REQUEST["patient"]["id"]
    with pytest.raises(IntegrityError) as caught:
        session.execute(insert(Patient).values(external_id=existing, version=1))
    assert "[SQL parameters hidden" in str(caught.value)
    # PostgreSQL repeats the key in its DETAIL line, so logs carry the stack without messages.
    logged = safe_traceback(caught.value)
    assert "IntegrityError while running: INSERT INTO patients" in logged
    assert existing not in logged


def test_library_exception_logs_keep_the_stack_not_the_message(app, caplog) -> None:
    import logging as std_logging

    caplog.set_level(std_logging.ERROR, logger="flask-admin.sqla")
    detail = f"Key (external_id)=({BASE_REQUEST['patient']['id']}) already exists."
    try:
        raise ValueError(detail)
    except ValueError:
        std_logging.getLogger("flask-admin.sqla").exception("Failed to update record.")
    assert "Failed to update record." in caplog.text
    assert "builtins.ValueError" in caplog.text
    assert "P001" not in caplog.text
