"""The admin permission matrix: every endpoint of every view, for every role and anonymous."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from policy_service.models import ChangeRecord, Payer, PolicyVersion

# view endpoint -> attribute of the ``records`` fixture its rows come from
VIEWS = {
    "payer": "payer",
    "drug": "drug",
    "policy": "policy",
    "policyversion": "version",
    "patient": "patient",
    "authorization": "authorization",
    "changerecord": None,
}
EDITABLE_INLINE: set[str] = set()
READ_ONLY_VIEWS = {"changerecord"}
ROLES = ["anonymous", "admin", "coordinator", "scheduler", "biller"]
EDITORS = {"admin", "coordinator"}
OPERATIONS = ["list", "details", "create", "edit", "delete", "ajax_update", "action",
              "export_csv", "export_xlsx"]


def record_id(view: str, records: Any, session: Session) -> int:
    """Return the id of a row the view lists."""
    if VIEWS[view] is None:
        return session.scalar(select(func.min(ChangeRecord.id)))
    return getattr(records, VIEWS[view]).id


def request(client: FlaskClient, view: str, operation: str, row: int) -> Any:
    """Call one admin endpoint the way its page would."""
    base = f"/admin/{view}"
    if operation == "list":
        return client.get(f"{base}/")
    if operation == "details":
        return client.get(f"{base}/details/?id={row}")
    if operation == "create":
        return client.get(f"{base}/new/")
    if operation == "edit":
        return client.get(f"{base}/edit/?id={row}")
    if operation == "delete":
        return client.post(f"{base}/delete/", data={"id": row})
    if operation == "ajax_update":
        status = "draft" if view == "policyversion" else "cancelled"
        return client.post(f"{base}/ajax/update/", data={"list_form_pk": row, "status": status})
    if operation == "action":
        return client.post(f"{base}/action/", data={"action": "delete", "rowid": [row]})
    if operation.startswith("export_"):
        return client.get(f"{base}/export/{operation.removeprefix('export_')}/")
    raise AssertionError(operation)


def expected(role: str, view: str, operation: str) -> int:
    """The status a user with ``role`` must get."""
    if role == "anonymous":
        return 302
    if operation in {"list", "details", "export_csv", "export_xlsx"}:
        return 200
    if role not in EDITORS or view in READ_ONLY_VIEWS:
        return 403
    if operation == "ajax_update":
        return 200 if view in EDITABLE_INLINE else 403
    if operation in {"delete", "action"}:
        return 302  # back to the list after deleting
    if view == "policyversion" and operation == "edit":
        return 302  # the fixture's version is active: locked, shown on its details page
    return 200


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(client: FlaskClient, login: Callable[[str], Any], records: Any,
                           session: Session, role: str, view: str, operation: str) -> None:
    if role != "anonymous":
        login(role)
    row = record_id(view, records, session)
    response = request(client, view, operation, row)
    assert response.status_code == expected(role, view, operation), response.get_data(True)
    if role == "anonymous":
        assert response.location.startswith("/login")


def test_dashboard_requires_login(client: FlaskClient, login: Callable[[str], Any]) -> None:
    assert client.get("/admin/").location.startswith("/login")
    login("biller")
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize("role", ["scheduler", "biller"])
def test_read_only_roles_see_no_write_buttons(client: FlaskClient, login: Callable[[str], Any],
                                              records: Any, role: str) -> None:
    login(role)
    page = client.get("/admin/policyversion/").get_data(as_text=True)
    assert "/admin/policyversion/edit/" not in page
    assert "/admin/policyversion/new/" not in page
    assert "/admin/policyversion/delete/" not in page
    assert 'data-role="x-editable"' not in page
    assert "ACME/infliximab" in page


def test_editor_sees_write_buttons(client: FlaskClient, login: Callable[[str], Any],
                                   records: Any) -> None:
    login("coordinator")
    page = client.get("/admin/policyversion/").get_data(as_text=True)
    assert "/admin/policyversion/edit/" in page
    assert "/admin/policyversion/new/" in page


def test_forged_posts_by_a_scheduler_change_nothing(client: FlaskClient,
                                                    login: Callable[[str], Any],
                                                    records: Any, session: Session) -> None:
    login("scheduler")
    created = client.post("/admin/payer/new/", data={"code": "FORGED", "name": "Forged",
                                                     "kind": "commercial",
                                                     "timely_filing_days": 90})
    edited = client.post(f"/admin/payer/edit/?id={records.payer.id}",
                         data={"code": "ACME", "name": "Renamed", "kind": "commercial",
                               "timely_filing_days": 90,
                               "expected_version": records.payer.version})
    retired = client.post(f"/admin/policyversion/edit/?id={records.version.id}",
                          data={"status": "retired"})
    assert [created.status_code, edited.status_code, retired.status_code] == [403, 403, 403]
    session.expire_all()
    assert session.scalar(select(Payer).where(Payer.code == "FORGED")) is None
    assert session.get(Payer, records.payer.id).name == "Acme Health"
    assert session.get(PolicyVersion, records.version.id).status == "active"


def test_csrf_token_required_when_enabled(app: Flask, client: FlaskClient,
                                          login: Callable[[str], Any], session: Session) -> None:
    login("coordinator")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        refused = client.post("/admin/payer/new/", data={"code": "NOCSRF", "name": "No token",
                                                         "kind": "commercial",
                                                         "timely_filing_days": 90})
        form = client.get("/admin/payer/new/").get_data(as_text=True)
        token = form.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]
        accepted = client.post("/admin/payer/new/", data={"code": "WITHCSRF", "name": "Token",
                                                          "kind": "commercial",
                                                          "timely_filing_days": 90,
                                                          "csrf_token": token})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert refused.status_code == 400
    assert accepted.status_code == 302
    codes = set(session.scalars(select(Payer.code)))
    assert "WITHCSRF" in codes
    assert "NOCSRF" not in codes


# The import page (admin/import_view.py): method, path, and what an editor gets back.
IMPORT_ENDPOINTS = {
    "import_form": ("GET", "/admin/import/", 200),
    "import_preview": ("POST", "/admin/import/", 200),
    "import_confirm": ("POST", "/admin/import/confirm/", 302),  # a bad payload goes back
}


@pytest.mark.parametrize("endpoint", list(IMPORT_ENDPOINTS))
@pytest.mark.parametrize("role", ROLES)
def test_import_permission_matrix(client: FlaskClient, login: Callable[[str], Any],
                                  records: Any, session: Session, role: str,
                                  endpoint: str) -> None:
    if role != "anonymous":
        login(role)
    method, path, editor_status = IMPORT_ENDPOINTS[endpoint]
    if endpoint == "import_preview":
        response = client.post(path, content_type="multipart/form-data", data={
            "file": (io.BytesIO(b'{"payers": [{"id": "MATRIX", "name": "Matrix"}]}'),
                     "bundle.json")})
    elif method == "POST":
        response = client.post(path, data={"payload": "not-a-signed-upload"})
    else:
        response = client.get(path)
    wanted = 302 if role == "anonymous" else editor_status if role in EDITORS else 403
    assert response.status_code == wanted, response.get_data(as_text=True)
    if role == "anonymous":
        assert response.location.startswith("/login")
    assert session.scalar(select(Payer).where(Payer.code == "MATRIX")) is None
