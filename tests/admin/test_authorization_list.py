"""The authorization list fits a laptop screen; the other columns stay in details and export."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

Login = Callable[[str], Any]


def test_list_shows_only_the_working_columns(client: FlaskClient, login: Login,
                                             records: Any) -> None:
    login("coordinator")
    page = client.get("/admin/authorization/").get_data(as_text=True)
    head = page[page.index("<thead>"):page.index("</thead>")]
    headers = [html.unescape(re.sub(r"<[^>]+>", "", h)).strip()
               for h in re.findall(r'<th class="column-header[^"]*">(.*?)</th>', head, re.S)]
    assert headers == ["Number", "Patient", "Payer", "HCPCS", "State", "Valid To", "Units",
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
