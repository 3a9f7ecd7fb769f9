"""The app's own forms (eligibility, claim and 837P, import, remittances, schedule, denials,
change password) name each field's messages and hint for assistive technology, as Flask-Admin's
do (tests/admin/test_form_field_links.py): <id>-error and <id>-hint ids, the input's
aria-describedby naming them (messages first), aria-invalid="true" on a field with a message.
The focus on the first wrong field is tests/browser/test_form_errors_browser.py."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.admin.test_biller_pages import CLEAN_FORM
from tests.admin.test_users import new_client
from tests.claims.world import build_world

Login = Callable[[str], Any]

PLANNED = {
    "patient": "P001", "payer": "MEDICARE-B", "drug": "J1745", "dose": "350",
    "dose_unit": "mg", "date_of_service": "2026-03-10", "site_of_care": "office",
    "diagnoses": "M05.79", "authorization_number": "", "packages": "",
}


@pytest.fixture
def client(app: Flask, session: Session) -> FlaskClient:
    """A browser that forgets the user Flask-Login cached in ``g`` (the change-password page
    reads the signed-in user again; tests/admin/test_users.py)."""
    return new_client(app)


def field_tag(page: str, field: str) -> str:
    """The opening tag of the input or select with id ``field``."""
    found = re.search(rf'<(?:input|select)[^>]*\bid="{field}"[^>]*>', page)
    assert found is not None, field
    return found[0]


def text_of(page: str, element_id: str) -> str:
    """The text of the element with id ``element_id``."""
    found = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', page, re.DOTALL)
    assert found is not None, element_id
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found[2])).split())


def assert_linked(page: str, field: str, message: str, hint: str | None = None) -> None:
    """``field`` is marked invalid and described by its messages (with ``message``), then by
    its hint (with ``hint``) if it has one."""
    opening = field_tag(page, field)
    assert 'aria-invalid="true"' in opening, opening
    described = f"{field}-error {field}-hint" if hint else f"{field}-error"
    assert f'aria-describedby="{described}"' in opening, opening
    assert message in text_of(page, f"{field}-error")
    if hint:
        assert hint in text_of(page, f"{field}-hint")
    assert page.count(f'id="{field}-error"') == 1


def assert_not_invalid(page: str, field: str) -> None:
    opening = field_tag(page, field)
    assert "aria-invalid" not in opening and "is-invalid" not in opening, opening


def test_refused_eligibility_check(client: FlaskClient, login: Login, session: Any) -> None:
    build_world()
    login("scheduler")
    page = client.post("/admin/eligibility/", data={
        **PLANNED, "patient": "", "packages": "lots"}).get_data(as_text=True)
    assert 'id="decision"' not in page
    assert_linked(page, "patient", "This field is required.")
    # Checked once the fields are read: a message of its own, with the hint.
    page = client.post("/admin/eligibility/", data={**PLANNED, "packages": "lots"}).get_data(
        as_text=True)
    assert_linked(page, "packages", "is not amount x count", hint="100x4")
    # A field without a message: its hint only, not marked invalid.
    page = client.post("/admin/eligibility/", data={**PLANNED, "patient": ""}).get_data(
        as_text=True)
    assert_not_invalid(page, "diagnoses")
    assert 'aria-describedby="diagnoses-hint"' in field_tag(page, "diagnoses")
    assert "M05.79, M06.9" in text_of(page, "diagnoses-hint")
    # The page looks as it did: each message a block invalid-feedback under its field.
    assert re.search(r'<div id="patient-error"><div class="invalid-feedback d-block">'
                     r'This field is required.</div></div>', page)


def test_a_blank_eligibility_form_marks_nothing(client: FlaskClient, login: Login,
                                                session: Any) -> None:
    login("scheduler")
    page = client.get("/admin/eligibility/").get_data(as_text=True)
    assert "aria-invalid" not in page and "-error" not in re.sub(r'id="form-errors"', "", page)
    assert 'aria-describedby="packages-hint"' in field_tag(page, "packages")


def test_refused_claim(client: FlaskClient, login: Login, session: Any) -> None:
    build_world()
    login("biller")
    page = client.post("/admin/claims/", data={
        **CLEAN_FORM, "rendering_npi": "1234567890", "lines-0-ndc": "123",
        "infusions-0-stop": "noon"}).get_data(as_text=True)
    assert 'id="claim-status"' not in page
    assert_linked(page, "rendering_npi", "check digit", hint="Checked for enrollment.")
    # Fields in the table rows: named by aria-label, described by their message.
    assert_linked(page, "lines-0-ndc", "5-4-2")
    assert_linked(page, "infusions-0-stop", "is not a time")
    assert 'aria-label="Line 1 NDC"' in field_tag(page, "lines-0-ndc")
    assert_not_invalid(page, "lines-0-code")


def test_refused_837_upload(client: FlaskClient, login: Login, session: Any) -> None:
    login("biller")
    page = client.post("/admin/claims/837/", data={},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert_linked(page, "file", "Choose an 837P file.")
    assert re.search(r'<div id="file-error"><div class="text-danger small file-error">', page)


def test_refused_import(client: FlaskClient, login: Login) -> None:
    login("coordinator")
    page = client.post("/admin/import/", data={"file": (io.BytesIO(b"hello"), "notes.txt")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert_linked(page, "file", "Upload a .json, .yaml, .yml or .csv file.")
    blank = client.get("/admin/import/").get_data(as_text=True)
    assert_not_invalid(blank, "file")
    assert "aria-describedby" not in field_tag(blank, "file")


def test_refused_remittance_upload(client: FlaskClient, login: Login, session: Any) -> None:
    login("biller")
    page = client.post("/admin/remittances/", data={},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert_linked(page, "file", "Choose an 835 file.")


def test_refused_schedule_upload(client: FlaskClient, login: Login, session: Any) -> None:
    login("scheduler")
    page = client.post("/admin/schedule/", data={},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert_linked(page, "file", "Choose a CSV or XLSX file.")
    assert 'accept=".csv,text/csv,.xlsx' in field_tag(page, "file")


def test_refused_denial_filters(client: FlaskClient, login: Login, session: Any) -> None:
    login("biller")
    page = client.get("/admin/denials/?start=someday&carc=a-b").get_data(as_text=True)
    assert_linked(page, "start", "Not a valid date value.")
    assert_linked(page, "carc", "A reason code is letters and digits.")
    assert 'size="8"' in field_tag(page, "carc")
    assert_not_invalid(page, "end")
    assert 'size="None"' not in page
    # The messages still name their filter, in the alert they were shown in.
    assert re.search(r'<div id="start-error"><div class="alert alert-danger py-1 filter-error">'
                     r'From: ', page)


def test_refused_password_change(client: FlaskClient, login: Login) -> None:
    login("biller")
    wrong = client.post("/change-password", data={
        "password": "not-my-password", "new_password": "a-much-longer-new-secret",
        "new_password_confirm": "a-much-longer-new-secret"}).get_data(as_text=True)
    assert_linked(wrong, "password", "Invalid password")
    page = client.post("/change-password", data={
        "password": "correct-horse-battery", "new_password": "short",
        "new_password_confirm": "short"}).get_data(as_text=True)
    # The length rule above the form is the new password's hint.
    assert_linked(page, "new_password", "at least 10 characters", hint="Use at least 10")
    assert_not_invalid(page, "password")
    blank = client.get("/change-password").get_data(as_text=True)
    assert 'aria-describedby="new_password-hint"' in field_tag(blank, "new_password")
    assert "aria-invalid" not in blank
    # The page's script (which focuses the first wrong field) is a file, not inline.
    assert re.search(r'<script src="/ui/static/app.js[^"]*"></script>', page)
