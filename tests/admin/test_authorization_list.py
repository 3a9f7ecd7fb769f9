"""The authorization list fits a laptop screen; the other columns stay in details and export."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from policy_service.extensions import db
from policy_service.models import Authorization
from policy_service.services.usage import record_usage
from tests.test_policy_index import count_queries

Login = Callable[[str], Any]


def test_list_shows_only_the_working_columns(client: FlaskClient, login: Login,
                                             records: Any) -> None:
    login("coordinator")
    page = client.get("/admin/authorization/").get_data(as_text=True)
    head = page[page.index("<thead>"):page.index("</thead>")]
    headers = [html.unescape(re.sub(r"<[^>]+>", "", h)).strip()
               for h in re.findall(r'<th class="column-header[^"]*">(.*?)</th>', head, re.S)]
    assert headers == ["Number", "Patient", "Payer", "HCPCS", "State", "Valid To",
                       "Units (used / scheduled / free)",
                       "Visits", "Usage", "History"]


def test_details_and_export_keep_the_dropped_columns(client: FlaskClient, login: Login,
                                                     records: Any) -> None:
    login("coordinator")
    auth = records.authorization
    details = client.get(f"/admin/authorization/details/?id={auth.id}").get_data(as_text=True)
    for label in ("Valid From", "Approved Units", "Used Units", "Approved Visits",
                  "Used Visits", "Site Of Care"):
        assert label in details
    assert str(auth.valid_from) in details
    rows = list(csv.DictReader(io.StringIO(
        client.get("/admin/authorization/export/csv/").get_data(as_text=True))))
    assert rows[0]["Valid From"] == str(auth.valid_from)
    assert rows[0]["Approved Units"] == "160"
    assert rows[0]["Site Of Care"] == "office"


def unit_cells(page: str) -> dict[str, str]:
    """Each listed authorization's units cell, as words, by number."""
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)
    cells = {}
    for row in rows:
        number = re.search(r'class="col-number"[^>]*>\s*(.*?)\s*</td>', row, re.S)
        units = re.search(r'class="col-units"[^>]*>(.*?)</td>', row, re.S)
        if number and units:
            cells[html.unescape(re.sub(r"<[^>]+>", "", number.group(1))).strip()] = " ".join(
                html.unescape(re.sub(r"<[^>]+>", "", units.group(1))).split())
    return cells


def add_authorization(records: Any, number: str, **values: Any) -> Authorization:
    base = records.authorization
    auth = Authorization(number=number, patient=base.patient, payer=base.payer,
                         hcpcs=["J1745"], valid_from=base.valid_from, valid_to=base.valid_to,
                         **{"status": "approved", "approved_units": 100, "used_units": 0,
                            "used_visits": 0, **values})
    db.session.add(auth)
    db.session.flush()
    return auth


def test_list_shows_units_as_used_scheduled_free(client: FlaskClient, login: Login,
                                                 records: Any) -> None:
    record_usage("A-1001", "CLM-1", records.authorization.valid_from, 40, 1,
                 "biller@example.org")
    add_authorization(records, "A-REQ", status="requested", approved_units=None)
    add_authorization(records, "A-OPEN", approved_units=None, approved_visits=4)
    login("coordinator")
    page = client.get("/admin/authorization/").get_data(as_text=True)
    cells = unit_cells(page)
    assert cells["A-1001"] == "40 used / 0 scheduled / 120 free"
    assert cells["A-REQ"] == "not approved"
    assert cells["A-OPEN"] == "0 used / 0 scheduled / no unit limit"
    details = client.get(f"/admin/authorization/details/?id={records.authorization.id}")
    assert "40 used / 0 scheduled / 120 free" in details.get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(
        client.get("/admin/authorization/export/csv/").get_data(as_text=True))))
    exported = {row["Number"]: row["Units (used / scheduled / free)"] for row in rows}
    assert exported["A-REQ"] == "not approved"


def test_list_reads_units_for_the_page_in_one_pass(client: FlaskClient, login: Login,
                                                   records: Any) -> None:
    login("coordinator")
    add_authorization(records, "A-2")
    client.get("/admin/authorization/")  # the first request loads the user and the index
    with count_queries() as few:
        client.get("/admin/authorization/")
    for n in range(3, 13):
        add_authorization(records, f"A-{n}")
    with count_queries() as many:
        page = client.get("/admin/authorization/").get_data(as_text=True)
    assert len(unit_cells(page)) == 12
    # Ten more rows cost no more queries: no query per row.
    assert len(many) == len(few)


def test_the_visits_bar_fills_with_what_is_left_as_its_label_says(
        client: FlaskClient, login: Callable[[str], Any], records: Any) -> None:
    records.authorization.used_visits = 4
    db.session.flush()
    login("coordinator")
    page = client.get("/admin/authorization/").get_data(as_text=True)
    bar = re.search(r'<progress class="usage-bar (usage-\w+)" value="(\d+)" max="(\d+)" '
                    r'aria-label="Visits left: 0 of 4"></progress><small>([^<]+)</small>', page)
    assert bar is not None
    assert bar.groups() == ("usage-low", "0", "4", "0 of 4 left")
