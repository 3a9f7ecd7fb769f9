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


def test_authorization_export_has_plain_remaining_units(client: FlaskClient, login: Login,
                                                        records: Any) -> None:
    login("coordinator")
    text = client.get("/admin/authorization/export/csv/").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["Number"] == "A-1001"
    assert rows[0]["Units"] == "160"
    assert "<div" not in text
