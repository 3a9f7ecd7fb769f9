"""Spreadsheet exports: every role may export; formula-like cells are neutralised."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import openpyxl
import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from admin.security import neutralise_cell

Login = Callable[[str], Any]


@pytest.mark.parametrize(("raw", "safe"), [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
    ("+1+1", "'+1+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("Acme Health", "Acme Health"), (42, 42), (None, None),
])
def test_neutralise_cell(raw: Any, safe: Any) -> None:
    assert neutralise_cell(raw) == safe


@pytest.fixture
def hostile_payer(records: Any, session: Session) -> Any:
    """The fixture's payer renamed to a spreadsheet formula."""
    records.payer.name = '=HYPERLINK("http://evil.example","click")'
    records.payer.notes = "@SUM(1+1)"
    session.flush()
    return records.payer


def test_csv_export_neutralises_formulas(client: FlaskClient, login: Login,
                                         hostile_payer: Any) -> None:
    login("biller")
    response = client.get("/admin/payer/export/csv/")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][:2] == ["Code", "Name"]
    assert rows[1][:2] == ["ACME", '\'=HYPERLINK("http://evil.example","click")']
    assert "History" not in rows[0]


def test_xlsx_export_neutralises_formulas(client: FlaskClient, login: Login,
                                          hostile_payer: Any) -> None:
    login("scheduler")
    response = client.get("/admin/payer/export/xlsx/")
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    values = [cell.value for cell in sheet[2]]
    assert '\'=HYPERLINK("http://evil.example","click")' in values
    assert not any(isinstance(v, str) and v.startswith("=") for v in values)


def test_authorization_export_has_plain_units(client: FlaskClient, login: Login,
                                              records: Any) -> None:
    login("coordinator")
    text = client.get("/admin/authorization/export/csv/").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["Number"] == "A-1001"
    # The same words as the list; Approved Units and Used Units stay plain numbers.
    assert rows[0]["Units (used / scheduled / free)"] == "0 used / 0 scheduled / 160 free"
    assert rows[0]["Approved Units"] == "160"
    assert "<div" not in text


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def hostile_ids(records: Any, session: Session) -> Any:
    """Payer and patient ids that a spreadsheet would run as formulas."""
    records.payer.code = '=HYPERLINK("http://evil.io","payer")'
    records.patient.external_id = "=1+2"
    session.flush()
    return records


def exported_rows(client: FlaskClient, url: str, export_type: str) -> list[list[Any]]:
    """The rows of one export, complete and built before the response was sent."""
    response = client.get(url)
    assert response.status_code == 200, url
    # A streamed export is written after the request's database session closed and was cut
    # off at the first lazy relation; an export is sent whole, or not at all.
    assert response.headers.get("Content-Length") == str(len(response.data))
    if export_type == "csv":
        return list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    return [[cell.value for cell in row] for row in sheet.iter_rows()]


@pytest.mark.parametrize("export_type", ["csv", "xlsx"])
@pytest.mark.parametrize("role", ["admin", "coordinator", "scheduler", "biller"])
def test_every_export_is_complete_and_inert(app: Any, client: FlaskClient, login: Login,
                                            hostile_ids: Any, export_type: str,
                                            role: str) -> None:
    login(role)
    views = [view for view in app.extensions["policy_admin"]._views
             if getattr(view, "can_export", False) and export_type in view.export_types]
    assert {view.endpoint for view in views} >= {"drug", "patient", "policy", "authorization",
                                                  "payer", "policyversion"}
    for view in views:
        rows = exported_rows(client, f"/admin/{view.endpoint}/export/{export_type}/",
                             export_type)
        expected = view.get_list(0, None, False, None, [], page_size=0)[0]
        assert len(rows) == expected + 1, view.endpoint
        width = len(rows[0])
        for row in rows:
            assert len(row) == width, view.endpoint
            assert not any(isinstance(cell, str) and cell.startswith(FORMULA_START)
                           for cell in row), (view.endpoint, row)


def test_authorization_export_neutralises_related_ids(client: FlaskClient, login: Login,
                                                      hostile_ids: Any) -> None:
    login("biller")
    rows = list(csv.DictReader(io.StringIO(
        client.get("/admin/authorization/export/csv/").get_data(as_text=True))))
    assert rows[0]["Patient"] == "'=1+2"
    assert rows[0]["Payer"].startswith("'=HYPERLINK(")
