"""Scheduler pages: the eligibility form and the schedule upload, with their permissions."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from admin.scheduler import not_on_file_reason, parse_packages, split_codes
from policy_service.extensions import db
from policy_service.models import ScheduleUpload
from tests.claims.world import build_world

ROLES = ["anonymous", "admin", "coordinator", "scheduler", "biller"]
CHECKERS = {"admin", "coordinator", "scheduler"}

PLANNED = {
    "patient": "P001", "payer": "MEDICARE-B", "drug": "J1745", "dose": "350",
    "dose_unit": "mg", "date_of_service": "2026-03-10", "site_of_care": "office",
    "diagnoses": "M05.79", "authorization_number": "", "packages": "",
}
HEADER = ("patient_id,payer,date_of_service,site_of_care,diagnosis_codes,hcpcs,dose_mg,"
          "authorization_number\n")
SCHEDULE = HEADER + (
    "P001,MEDICARE-B,2026-03-10,office,M05.79,J1745,350,A-1001\n"
    "P001,MEDICARE-B,2026-03-10,office,L40.0,J1745,350,\n"
    "P001,MEDICARE-B,2026-03-10,,M05.79,J1745,350,\n"
    "P001,NOPE,2026-03-10,office,M05.79,J1745,350,\n"
    "=HYPERLINK(\"http://evil\"),MEDICARE-B,2026-03-10,office,M05.79,J1745,350,\n"
)


def check(client: FlaskClient, **changes: str) -> str:
    """Submit the eligibility form with ``changes``; return the page."""
    response = client.post("/admin/eligibility/", data={**PLANNED, **changes})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def banner(page: str) -> str:
    """The decision banner's class and first line of text."""
    match = re.search(r'class="alert alert-(\w+) decision-banner decision-(\w+)"[^>]*>\s*([^<]+)',
                      page)
    assert match, "no decision banner on the page"
    return f"{match[1]} {match[2]} {match[3].strip()}"


def error_near(page: str, field: str) -> str:
    """The error messages shown under the form field ``field``."""
    start = page.index(f'id="{field}"')
    chunk = page[start:page.index("</div>", page.index("invalid-feedback", start)) + 6]
    return html.unescape(" ".join(re.findall(r'invalid-feedback d-block">([^<]+)<', chunk)))


def upload(client: FlaskClient, text: str, name: str = "schedule.csv") -> Any:
    """Upload a schedule file."""
    return client.post("/admin/schedule/",
                       data={"file": (io.BytesIO(text.encode()), name)},
                       content_type="multipart/form-data")


# --- eligibility form ----------------------------------------------------------------------

def test_eligible_infusion_shows_green_banner_billing_and_authorization(
        client: FlaskClient, login: Callable[[str], Any], session: Any) -> None:
    build_world()
    login("scheduler")
    page = check(client)
    assert banner(page) == "success eligible Eligible"
    billing = page[page.index('id="billing"'):page.index('id="authorization"')]
    rows = re.findall(r'<tr class="billing-line"><td>(\w+)</td><td>([^<]*)</td><td>(\d+)</td>',
                      billing)
    assert rows == [("J1745", "–", "35"), ("J1745", "JW", "5")]
    authorization = page[page.index('id="authorization"'):]
    assert "A-1001" in authorization
    # Nothing drawn or booked yet; this check is a question, not a booking.
    assert re.search(r"Units \(used / scheduled / free\)</dt><dd[^>]*>"
                     r"0 used / 0 scheduled / 160 free<", authorization)
    assert re.search(r"Visits left</dt><dd[^>]*>4<", authorization)
    assert "2026-06-30" in authorization
    assert "/admin/authorization-usage/?number=A-1001" in authorization
    assert "MEDICARE-B/infliximab v1" in page


def test_uncovered_diagnosis_is_red_with_finding_reason_and_source(
        client: FlaskClient, login: Callable[[str], Any], session: Any) -> None:
    build_world()
    login("coordinator")
    page = check(client, diagnoses="L40.0")
    assert banner(page) == "danger not_eligible Not eligible"
    findings = page[page.index('id="findings"'):page.index('id="billing"')]
    rows = re.findall(r'<tr class="finding finding-block">(.*?)</tr>', findings, re.S)
    [row] = [r for r in rows if "<code>DIAGNOSIS_NOT_COVERED</code>" in r]
    assert 'badge-danger">block' in row
    assert "L40.0" in row
    assert 'href="https://example.org/policy.pdf#section-3"' in row


@pytest.mark.parametrize(("changes", "expected"), [
    ({"date_of_service": "2026-08-10"}, "warning needs_authorization Needs authorization"),
    ({"diagnoses": ""}, "warning needs_information Needs information"),
])
def test_amber_decisions(client: FlaskClient, login: Callable[[str], Any], session: Any,
                         changes: dict[str, str], expected: str) -> None:
    build_world()
    login("admin")
    assert banner(check(client, **changes)) == expected


def test_site_of_care_starts_at_office_and_is_required(client: FlaskClient,
                                                       login: Callable[[str], Any],
                                                       session: Any) -> None:
    build_world()
    login("scheduler")
    form = client.get("/admin/eligibility/").get_data(as_text=True)
    select = form[form.index('id="site_of_care"'):form.index("</select>", form.index(
        'id="site_of_care"'))]
    assert '<option selected value="office">' in select
    assert '<option value="">' not in select
    page = check(client, site_of_care="")
    assert 'id="decision"' not in page
    assert error_near(page, "site_of_care") == "This field is required."


def test_missing_information_is_worded_for_people(client: FlaskClient,
                                                  login: Callable[[str], Any],
                                                  session: Any) -> None:
    build_world()
    login("scheduler")
    page = html.unescape(check(client, diagnoses=""))
    assert "Cannot decide yet: add a diagnosis code and check again." in page
    assert "Cannot decide without: diagnosis_codes" not in page


def test_dose_in_mg_per_kg_uses_the_stored_weight(client: FlaskClient,
                                                  login: Callable[[str], Any],
                                                  session: Any) -> None:
    build_world()
    login("scheduler")
    page = check(client, dose="5", dose_unit="mg_per_kg", packages="100x4",
                 authorization_number="A-1001")
    # 5 mg/kg of 80 kg = 400 mg: 40 units, nothing left over in four 100 mg vials.
    assert re.search(r'<tr class="billing-line"><td>J1745</td><td>JZ</td><td>40</td>', page)


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"authorization_number": "A-9999"}, "authorization_number", "No authorization 'A-9999'."),
    ({"diagnoses": "M05.79 XYZ"}, "diagnoses", "XYZ"),
    ({"patient": ""}, "patient", "This field is required."),
    ({"packages": "lots"}, "packages", "is not amount x count"),
    ({"dose": "-5"}, "dose", "Must be greater than 0."),
    ({"date_of_service": "10/03/2026"}, "date_of_service", "Not a valid date value."),
])
def test_bad_input_is_shown_on_its_field(client: FlaskClient, login: Callable[[str], Any],
                                         session: Any, changes: dict[str, str], field: str,
                                         message: str) -> None:
    build_world()
    login("scheduler")
    page = check(client, **changes)
    assert message in error_near(page, field)
    assert 'id="decision"' not in page


def test_form_offers_stored_payers_drugs_and_patients(client: FlaskClient,
                                                      login: Callable[[str], Any],
                                                      session: Any) -> None:
    build_world()
    login("scheduler")
    page = client.get("/admin/eligibility/").get_data(as_text=True)
    assert '<option value="MEDICARE-B">MEDICARE-B - Medicare Part B</option>' in page
    assert '<option value="J1745">J1745 - Remicade</option>' in page
    assert '<datalist id="patient-ids"><option value="P001">' in page
    assert 'name="csrf_token"' in page


def test_split_codes_and_packages() -> None:
    assert split_codes("m05.79, M06.9;L40.5  M45") == ["M05.79", "M06.9", "L40.5", "M45"]
    assert parse_packages("100x4 400") == [{"amount": "100", "count": 4},
                                           {"amount": "400", "count": 1}]
    with pytest.raises(ValueError, match="'4x'"):
        parse_packages("4x")


# --- schedule upload -----------------------------------------------------------------------

def test_schedule_rows_are_coloured_by_decision(client: FlaskClient, login: Callable[[str], Any],
                                                session: Any) -> None:
    build_world()
    login("scheduler")
    page = upload(client, SCHEDULE).get_data(as_text=True)
    rows = re.findall(r'<tr class="schedule-row decision-(\w+)[^"]*">\s*<td>(\d+)</td>', page)
    assert rows == [("eligible", "2"), ("not_eligible", "3"), ("needs_information", "4"),
                    ("error", "5"), ("needs_information", "6")]
    # Row 6 names no stored patient: one plain answer, not the rules' list of missing facts.
    unknown = re.search(r'<tr class="schedule-row [^"]*patient-not-on-file">(.*?)</tr>', page,
                        re.S)
    assert unknown is not None and "<td>6</td>" in unknown[1]
    assert "Patient not on file" in unknown[1]
    assert not_on_file_reason('=HYPERLINK("http://evil")') in html.unescape(unknown[1])
    assert "DIAGNOSIS_NOT_COVERED" in page
    assert "J1745 x35 + J1745-JW x5" in page
    assert "Unknown payer &#39;NOPE&#39;." in page
    assert "patient_id" in page[page.index('id="expected-columns"'):]
    # The colours come from the admin's stylesheet (no inline style under the CSP).
    assert "/ui/static/app.css" in page
    stylesheet = client.get("/ui/static/app.css").get_data(as_text=True)
    assert "tr.decision-not_eligible td { background: #f8d7da; }" in stylesheet


def test_download_is_neutralised_and_kept_in_the_database(client: FlaskClient,
                                                      login: Callable[[str], Any],
                                                      session: Any) -> None:
    build_world()
    login("coordinator")
    page = upload(client, SCHEDULE).get_data(as_text=True)
    link = re.search(r'id="download-csv" href="([^"]+)"', page)
    assert link
    # Nothing of the schedule travels in the session cookie nor sits on this host's disk: the
    # upload is in the database, so any host behind the balancer answers the download.
    with client.session_transaction() as cookie:
        assert "P001" not in str(dict(cookie))
    [kept] = db.session.scalars(select(ScheduleUpload)).all()
    assert kept.rows[0]["item"]["patient"]["id"] == "P001"
    response = client.get(link[1])
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["decision"] for r in rows] == ["eligible", "not_eligible", "needs_information",
                                            "error", "needs_information"]
    assert rows[4]["patient_id"] == "'=HYPERLINK(\"http://evil\")"
    # The page says "Patient not on file"; the CSV keeps the decision and says the same.
    assert rows[4]["reasons"] == not_on_file_reason('=HYPERLINK("http://evil")')
    assert rows[4]["reasons"].startswith("Patient not on file: add the patient ")
    assert rows[0]["billing"] == "J1745 x35 + J1745-JW x5"



def test_download_lists_documentation_not_on_file_as_check_out_does(
        client: FlaskClient, login: Callable[[str], Any], session: Any) -> None:
    """The page's CSV and `policy-service check --out` word the checklist with one function:
    the same added last column, a hostile label neutralised."""
    hostile = {"code": "CHART_NOTES", "label": "=HYPERLINK(\"http://evil\")",
               "max_age_days": None}
    tb = {"code": "TB_SCREENING", "label": "TB screening within 12 months", "max_age_days": 365}
    build_world(policy={"documentation_required": [hostile, tb]})
    login("scheduler")
    page = upload(client, HEADER + "P001,MEDICARE-B,2026-03-10,office,M05.79,J1745,350,A-1001\n"
                  ).get_data(as_text=True)
    link = re.search(r'id="download-csv" href="([^"]+)"', page)
    assert link
    reader = csv.DictReader(io.StringIO(client.get(link[1]).get_data(as_text=True)))
    [row] = list(reader)
    assert reader.fieldnames is not None and reader.fieldnames[-2:] == [
        "reasons", "documentation_missing"]
    assert row["decision"] == "eligible"
    assert row["documentation_missing"] == (
        "'=HYPERLINK(\"http://evil\") (missing); TB screening within 12 months (missing)")


def test_another_user_cannot_download_my_results(app: Flask, client: FlaskClient,
                                                 login: Callable[[str], Any],
                                                 session: Any) -> None:
    build_world()
    login("scheduler")
    link = re.search(r'id="download-csv" href="([^"]+)"',
                     upload(client, SCHEDULE).get_data(as_text=True))
    assert link
    client.post("/logout")
    login("coordinator")
    assert client.get(link[1]).status_code == 404
    assert client.get("/admin/schedule/download/not-a-real-id-at-all-xx.csv").status_code == 404


@pytest.mark.parametrize(("text", "name", "message"), [
    ("patient_id,payer\nP001,MEDICARE-B\n", "s.csv", "Missing column(s): date_of_service, hcpcs"),
    (HEADER.replace("site_of_care", "room"), "s.csv", "Unknown column(s): room"),
    ("\xff\xfe", "s.csv", "Neither an XLSX workbook nor UTF-8 text"),
])
def test_bad_schedule_file_is_explained(client: FlaskClient, login: Callable[[str], Any],
                                        session: Any, text: str, name: str,
                                        message: str) -> None:
    login("scheduler")
    data = text.encode("latin-1") if text.startswith("\xff") else text.encode()
    page = client.post("/admin/schedule/", data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert message in page.replace("&#39;", "'")
    assert "schedule-row" not in page


def test_upload_without_a_file_asks_for_one(client: FlaskClient, login: Callable[[str], Any],
                                            session: Any) -> None:
    login("scheduler")
    page = client.post("/admin/schedule/", data={}).get_data(as_text=True)
    assert "Choose a CSV or XLSX file." in page


# --- permissions ---------------------------------------------------------------------------

PAGES = [
    ("get", "/admin/eligibility/"),
    ("post", "/admin/eligibility/"),
    ("get", "/admin/schedule/"),
    ("post", "/admin/schedule/"),
    ("get", "/admin/schedule/download/abcdefghijklmnopqrstuvwxyz.csv"),
]


@pytest.mark.parametrize(("method", "url"), PAGES)
@pytest.mark.parametrize("role", ROLES)
def test_scheduler_page_permissions(client: FlaskClient, login: Callable[[str], Any],
                                    session: Any, role: str, method: str,
                                    url: str) -> None:
    build_world()
    if role != "anonymous":
        login(role)
    data = {**PLANNED} if url.startswith("/admin/eligibility") else {
        "file": (io.BytesIO(SCHEDULE.encode()), "s.csv")}
    response = client.post(url, data=data) if method == "post" else client.get(url)
    if role == "anonymous":
        assert response.status_code == 302
        assert response.location.startswith("/login")
    elif role not in CHECKERS:
        assert response.status_code == 403
    elif "download" in url:
        assert response.status_code == 404  # allowed in, but no such kept schedule
    else:
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert "decision-" in page if method == "post" else "csrf_token" in page


@pytest.mark.parametrize("role", ["scheduler", "coordinator", "biller"])
def test_menu_shows_scheduler_pages_only_to_those_who_may_check(
        client: FlaskClient, login: Callable[[str], Any], session: Any, role: str) -> None:
    login(role)
    page = client.get("/admin/").get_data(as_text=True)
    shown = 'href="/admin/eligibility/"' in page and 'href="/admin/schedule/"' in page
    assert shown == (role in CHECKERS)


@pytest.mark.parametrize(("role", "offers_add"), [("coordinator", True), ("scheduler", False)])
def test_an_unknown_patient_is_not_on_file_with_what_to_add(
        client: FlaskClient, login: Callable[[str], Any], session: Any, role: str,
        offers_add: bool) -> None:
    build_world()
    login(role)
    page = check(client, patient="P404")
    decision = page[page.index('id="decision"'):page.index("</div>", page.index('id="decision"'))]
    assert "Patient not on file: P404" in decision
    assert "birth date, weight and the therapies" in decision
    assert "Not eligible" not in page and 'id="findings"' not in page
    assert ('id="add-patient"' in decision) is offers_add
