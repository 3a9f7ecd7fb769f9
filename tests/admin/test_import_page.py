"""The import page: upload, preview (writes nothing), confirm (writes all or nothing), roles."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin.import_view import EXPIRED_MESSAGE
from policy_service.models import Authorization, ChangeRecord, Payer
from policy_service.schemas.bundle import APPROVAL_NEEDS_LIMIT

Login = Callable[[str], Any]
URL = "/admin/import/"
CONFIRM_URL = "/admin/import/confirm/"
TODAY = dt.date.today()


def new_authorization(number: str, **overrides: Any) -> dict[str, Any]:
    """A bundle authorization for the fixture's patient and payer."""
    record = {"number": number, "payer": "ACME", "patient": "P001", "hcpcs": ["J1745"],
              "status": "approved", "approved_units": 80, "approved_visits": 2,
              "valid_from": TODAY.isoformat(),
              "valid_to": (TODAY + dt.timedelta(days=90)).isoformat(),
              "diagnoses": ["M05.79"], "site_of_care": "office"}
    record.update(overrides)
    return record


def bundle() -> dict[str, Any]:
    """A new payer, a renamed stored payer, an unchanged drug and a new authorization."""
    return {
        "payers": [{"id": "BETA", "name": "Beta Care", "kind": "commercial"},
                   {"id": "ACME", "name": "Acme Health Plans"}],
        "drugs": [{"hcpcs": "J1745", "name": "Remicade"}],
        "authorizations": [new_authorization("A-2002")],
    }


def upload(client: FlaskClient, content: str | bytes, filename: str) -> Any:
    """Post a file to the import page as the browser's form would."""
    data = content.encode() if isinstance(content, str) else content
    return client.post(URL, data={"file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def counts(page: str) -> dict[str, int]:
    """Return the preview/result table as ``{"payers-created": 1, ...}``."""
    return {f"{kind}-{outcome}": int(number) for kind, outcome, number in re.findall(
        r'id="count-(\w+)-(created|updated|unchanged)">(\d+)<', page)}


def payload_of(page: str) -> str:
    """Return the signed upload the preview's confirm form posts back."""
    match = re.search(r'name="payload" type="hidden" value="([^"]+)"', page)
    assert match, page
    return html.unescape(match.group(1))


def error_rows(page: str) -> list[tuple[str, str, str, str]]:
    """Return the error table as (record, key, field, message) rows."""
    cells = re.findall(
        r'<td class="error-record">(.*?)</td>\s*<td class="error-key">(.*?)</td>\s*'
        r'<td class="error-field"><code>(.*?)</code></td>\s*<td class="error-message">(.*?)</td>',
        page, re.S)
    return [tuple(html.unescape(c) for c in row) for row in cells]  # type: ignore[misc]


def forget_signed_in_user() -> None:
    """Drop Flask-Login's per-context user cache: the test's app context outlives requests,
    so a second client would otherwise be served the first client's user."""
    g.pop("_login_user", None)


def change_count(session: Session) -> int:
    """Return how many change-history rows exist."""
    return session.scalar(select(func.count()).select_from(ChangeRecord))


def test_preview_shows_counts_and_writes_nothing(client: FlaskClient, login: Login,
                                                 records: Any, session: Session) -> None:
    login("coordinator")
    before = change_count(session)
    response = upload(client, json.dumps(bundle()), "bundle.json")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Nothing has been written yet" in page
    found = counts(page)
    assert found["payers-created"] == 1
    assert found["payers-updated"] == 1
    assert found["drugs-unchanged"] == 1
    assert found["authorizations-created"] == 1
    assert found["policies-created"] == found["policies-updated"] == 0
    # Each record the import would touch is listed, with the fields an update changes.
    assert re.search(r'<tr class="planned-update">\s*<td>payer</td><td><code>ACME</code></td>'
                     r'<td>update</td>\s*<td>name</td>', page)
    assert re.search(r'<tr class="planned-create">\s*<td>payer</td><td><code>BETA</code></td>',
                     page)
    session.expire_all()
    assert session.scalar(select(Payer).where(Payer.code == "BETA")) is None
    assert session.scalar(select(Payer.name).where(Payer.code == "ACME")) == "Acme Health"
    assert session.scalar(select(Authorization).where(Authorization.number == "A-2002")) is None
    assert change_count(session) == before


def test_confirm_writes_everything_as_the_signed_in_user(client: FlaskClient, login: Login,
                                                         records: Any, session: Session) -> None:
    user = login("coordinator")
    preview = upload(client, json.dumps(bundle()), "bundle.json").get_data(as_text=True)
    response = client.post(CONFIRM_URL, data={"payload": payload_of(preview)})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "bundle.json</strong> was imported" in page
    assert counts(page) == counts(preview)
    session.expire_all()
    beta = session.scalar(select(Payer).where(Payer.code == "BETA"))
    assert beta is not None and beta.name == "Beta Care"
    assert session.scalar(select(Payer.name).where(Payer.code == "ACME")) == "Acme Health Plans"
    created = session.scalar(select(Authorization).where(Authorization.number == "A-2002"))
    assert created.approved_units == 80 and created.patient.external_id == "P001"
    authors = set(session.scalars(select(ChangeRecord.actor).where(
        ChangeRecord.entity_key.in_(["BETA", "A-2002"]))))
    assert authors == {user.email}


def test_bad_record_is_shown_with_its_path_and_nothing_is_written(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    login("admin")
    data = bundle()
    data["authorizations"].append(new_authorization("A-2003", diagnoses=["M05.79", "XYZ"],
                                                    used_units=-2))
    response = upload(client, json.dumps(data), "bundle.json")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "was not imported" in page
    rows = error_rows(page)
    assert ("authorizations[1]", "A-2003", "diagnoses[1]",
            "'XYZ' is not an ICD-10-CM code or code family.") in rows
    assert ("authorizations[1]", "A-2003", "used_units", "Must not be negative.") in rows
    assert 'name="payload"' not in page  # no way to confirm a refused file
    session.expire_all()
    assert session.scalar(select(Payer).where(Payer.code == "BETA")) is None
    assert session.scalar(select(Authorization).where(Authorization.number == "A-2002")) is None


def test_yaml_bundle_is_previewed(client: FlaskClient, login: Login, records: Any) -> None:
    login("coordinator")
    text = "payers:\n  - id: GAMMA\n    name: Gamma Health\n    kind: medicaid\n"
    found = counts(upload(client, text, "payers.yaml").get_data(as_text=True))
    assert found["payers-created"] == 1


CSV_HEADER = ("number,payer,patient,hcpcs,status,approved_units,approved_visits,used_units,"
              "used_visits,valid_from,valid_to,diagnoses,site_of_care\n")


def test_authorizations_csv_preview_then_confirm(client: FlaskClient, login: Login,
                                                 records: Any, session: Session) -> None:
    login("coordinator")
    start, end = TODAY.isoformat(), (TODAY + dt.timedelta(days=60)).isoformat()
    text = (CSV_HEADER
            + f"A-3001,ACME,P001,J1745;Q5103,approved,120,3,0,0,{start},{end},M05.79 M06.9,"
              "office\n"
            + "A-1001,,,,,,,40,1,,,,\n")
    session.add(Payer(code="SPARE", name="Spare"))  # unrelated rows stay as they are
    from policy_service.models import Drug

    session.add(Drug(hcpcs="Q5103", name="Inflectra", generic="infliximab",
                     billing_unit_amount=10))
    session.flush()
    preview = upload(client, text, "auths.csv").get_data(as_text=True)
    found = counts(preview)
    assert (found["authorizations-created"], found["authorizations-updated"]) == (1, 1)
    session.expire_all()
    assert session.scalar(select(Authorization).where(Authorization.number == "A-3001")) is None
    client.post(CONFIRM_URL, data={"payload": payload_of(preview)})
    session.expire_all()
    created = session.scalar(select(Authorization).where(Authorization.number == "A-3001"))
    assert created.hcpcs == ["J1745", "Q5103"]
    assert created.diagnoses == ["M05.79", "M06.9"]
    assert created.valid_to == TODAY + dt.timedelta(days=60)
    updated = session.scalar(select(Authorization).where(Authorization.number == "A-1001"))
    assert (updated.used_units, updated.used_visits, updated.approved_units) == (40, 1, 160)


def test_authorizations_csv_errors_name_the_row(client: FlaskClient, login: Login,
                                                records: Any, session: Session) -> None:
    login("coordinator")
    text = (CSV_HEADER
            + "A-4001,ACME,P001,J1745,approved,0,0,0,0,2026-01-01,2026-06-30,M05.79,office\n"
            + "A-4002,ACME,P404,J1745,approved,10,2,0,0,2026-01-01,2025-06-30,M05.79,office\n")
    rows = error_rows(upload(client, text, "auths.csv").get_data(as_text=True))
    assert ("row 2", "A-4001", "approved_units", APPROVAL_NEEDS_LIMIT) in rows
    assert ("row 3", "A-4002", "valid_to",
            "Must not be before valid_from (2026-01-01).") in rows
    assert any(r[:3] == ("row 3", "A-4002", "patient") and "Unknown patient 'P404'" in r[3]
               for r in rows)
    session.expire_all()
    assert session.scalar(select(Authorization).where(Authorization.number == "A-4001")) is None


def test_csv_with_unknown_columns_is_refused(client: FlaskClient, login: Login,
                                            records: Any) -> None:
    login("coordinator")
    rows = error_rows(upload(client, "number,patient_name\nA-1,Jane\n",
                             "auths.csv").get_data(as_text=True))
    assert ("(file)", "", "", "Unknown column 'patient_name'.") in rows


def test_wrong_file_type_is_refused_on_the_field(client: FlaskClient, login: Login) -> None:
    login("coordinator")
    page = upload(client, "hello", "notes.txt").get_data(as_text=True)
    assert "Upload a .json, .yaml, .yml or .csv file." in page
    assert "Nothing has been written yet" not in page


def test_tampered_or_foreign_payload_is_refused(client: FlaskClient, login: Login, app: Flask,
                                                records: Any, session: Session) -> None:
    login("coordinator")
    payload = payload_of(upload(client, json.dumps(bundle()), "bundle.json")
                         .get_data(as_text=True))
    tampered = client.post(CONFIRM_URL, data={"payload": payload[:-3] + "AAA"})
    assert tampered.status_code == 302
    assert EXPIRED_MESSAGE in client.get(URL).get_data(as_text=True)
    other = app.test_client()
    from policy_service.auth import create_user

    someone = create_user("other-coordinator@example.org", "coordinator", "correct-horse-battery")
    forget_signed_in_user()
    other.post("/login", data={"email": someone.email, "password": "correct-horse-battery"})
    assert "other-coordinator@example.org" in other.get(URL).get_data(as_text=True)
    assert other.post(CONFIRM_URL, data={"payload": payload}).status_code == 302
    session.expire_all()
    assert session.scalar(select(Payer).where(Payer.code == "BETA")) is None


def test_both_forms_need_a_csrf_token(app: Flask, client: FlaskClient, login: Login,
                                      records: Any, session: Session) -> None:
    login("coordinator")
    payload = payload_of(upload(client, json.dumps(bundle()), "bundle.json")
                         .get_data(as_text=True))
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        preview = upload(client, json.dumps(bundle()), "bundle.json")
        confirm = client.post(CONFIRM_URL, data={"payload": payload})
        form = client.get(URL).get_data(as_text=True)
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert (preview.status_code, confirm.status_code) == (400, 400)
    assert 'name="csrf_token"' in form
    session.expire_all()
    assert session.scalar(select(Payer).where(Payer.code == "BETA")) is None


def test_menu_entry_only_for_editors(client: FlaskClient, login: Login) -> None:
    login("coordinator")
    assert 'href="/admin/import/"' in client.get("/admin/").get_data(as_text=True)
    client.post("/logout")
    forget_signed_in_user()
    login("scheduler")
    assert 'href="/admin/import/"' not in client.get("/admin/").get_data(as_text=True)


@pytest.mark.parametrize("role", ["scheduler", "biller"])
def test_read_only_roles_get_403(client: FlaskClient, login: Login, records: Any,
                                 session: Session, role: str) -> None:
    login(role)
    assert client.get(URL).status_code == 403
    assert upload(client, json.dumps(bundle()), "bundle.json").status_code == 403
    assert client.post(CONFIRM_URL, data={"payload": "anything"}).status_code == 403
    session.expire_all()
    assert session.scalar(select(Payer).where(Payer.code == "BETA")) is None


def test_anonymous_is_sent_to_login(client: FlaskClient) -> None:
    for response in (client.get(URL), upload(client, "{}", "bundle.json"),
                     client.post(CONFIRM_URL, data={"payload": "x"})):
        assert response.status_code == 302
        assert response.location.startswith("/login")
