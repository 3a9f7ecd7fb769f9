"""The stored schedule in the admin: Upcoming, one appointment's check, "keep as schedule",
the schedule template, and an authorization's forecast timeline."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from typing import Any

import openpyxl
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from policy_service import database
from policy_service.extensions import db
from policy_service.models import Appointment
from policy_service.schemas.appointments import load_appointment
from policy_service.services import appointments
from tests.factories import make_authorization, make_drug, make_patient, make_payer, make_policy
from tests.test_policy_index import count_queries

TODAY = dt.date.today()


def day(offset: int) -> str:
    return (TODAY + dt.timedelta(days=offset)).isoformat()


def body(offset: int, **changes: Any) -> dict[str, Any]:
    return {"patient": {"id": "P001"}, "payer": "MEDICARE-B", "date_of_service": day(offset),
            "site_of_care": "office", "diagnosis_codes": ["M05.79"], "hcpcs": "J1745",
            "dose": {"mg": 400}, **changes}


@pytest.fixture
def world(session: Any) -> dict[str, Any]:
    """An authorization from a month ago for half a year, and three stored appointments."""
    payer = make_payer()
    make_drug("J1745")
    policy = make_policy(payer=payer, effective_from=TODAY - dt.timedelta(days=400))
    patient = make_patient("P001")
    auth = make_authorization("A-1001", patient=patient, payer=payer,
                              valid_from=TODAY - dt.timedelta(days=30),
                              valid_to=TODAY + dt.timedelta(days=180))
    for appointment_id, offset, changes in [("TOMORROW-1", 1, {}),
                                            ("SOON-1", 2, {"diagnosis_codes": ["J45.909"]}),
                                            ("LATER-1", 40, {})]:
        appointments.upsert(appointment_id, load_appointment(body(offset, **changes)),
                            "scheduler@example.org")
    return {"policy": policy, "authorization": auth, "patient": patient}


def rows(page: str) -> list[str]:
    return re.findall(r'<tr class="upcoming-row[^"]*" data-appointment="([^"]+)"', page)


def get(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def test_upcoming_ranges_filters_and_sorting(client: FlaskClient, login: Callable[[str], Any],
                                             world: dict[str, Any]) -> None:
    login("scheduler")
    assert rows(get(client, "/admin/upcoming/?range=tomorrow")) == ["TOMORROW-1"]
    everything = f"/admin/upcoming/?range=dates&start={day(0)}&end={day(60)}"
    assert rows(get(client, everything)) == ["TOMORROW-1", "SOON-1", "LATER-1"]
    assert rows(get(client, everything + "&decision=not_eligible")) == ["SOON-1"]
    assert rows(get(client, everything + "&payer=UHC")) == []
    assert rows(get(client, everything + "&sort=decision")) == ["SOON-1", "TOMORROW-1",
                                                                 "LATER-1"]
    assert rows(get(client, everything + "&sort=date&dir=desc")) == ["LATER-1", "SOON-1",
                                                                      "TOMORROW-1"]
    page = get(client, "/admin/upcoming/?range=dates&start=not-a-date")
    assert "start: &#39;not-a-date&#39; is not a date" in page


def test_rows_link_to_their_check_and_authorization_and_show_units(
        client: FlaskClient, login: Callable[[str], Any], world: dict[str, Any]) -> None:
    login("biller")
    page = get(client, f"/admin/upcoming/?range=dates&start={day(0)}&end={day(60)}")
    assert 'href="/admin/upcoming/appointment/TOMORROW-1"' in page
    auth_id = world["authorization"].id
    assert f'href="/admin/authorization/details/?id={auth_id}' in page
    # Three appointments of 40 units draw on it (the uncovered diagnosis still names it).
    assert "0 used / 120 scheduled / 40 free" in page
    # The print layout is in the admin's stylesheet (no inline style under the CSP).
    assert "/ui/static/app.css" in page
    assert "@media print" in client.get("/ui/static/app.css").get_data(as_text=True)


def test_a_changed_decision_is_marked(client: FlaskClient, login: Callable[[str], Any],
                                      world: dict[str, Any]) -> None:
    login("scheduler")
    url = "/admin/upcoming/?range=tomorrow"
    assert "badge-info changed-mark" not in get(client, url)
    world["authorization"].status = "denied"
    db.session.flush()
    page = get(client, url)
    assert re.search(r'upcoming-row decision-needs_authorization changed"', page)
    assert "was eligible" in page


def test_export_is_the_same_rows_as_csv(client: FlaskClient, login: Callable[[str], Any],
                                        world: dict[str, Any]) -> None:
    login("coordinator")
    response = client.get(f"/admin/upcoming/export.csv?range=dates&start={day(0)}"
                          f"&end={day(60)}&sort=decision")
    assert response.mimetype == "text/csv"
    lines = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["appointment_id"] for r in lines] == ["SOON-1", "TOMORROW-1", "LATER-1"]
    assert lines[1]["decision"] == "eligible"
    assert lines[1]["authorization_units"] == "0 used / 120 scheduled / 40 free"
    assert "DIAGNOSIS_NOT_COVERED" in lines[0]["codes"]


def test_one_appointments_check(client: FlaskClient, login: Callable[[str], Any],
                                world: dict[str, Any]) -> None:
    login("biller")
    page = get(client, "/admin/upcoming/appointment/SOON-1")
    assert "decision-not_eligible" in page
    assert "DIAGNOSIS_NOT_COVERED" in page
    assert client.get("/admin/upcoming/appointment/NOPE").status_code == 404


def test_authorization_page_shows_the_forecast_timeline(
        client: FlaskClient, login: Callable[[str], Any], world: dict[str, Any]) -> None:
    login("coordinator")
    page = get(client, f"/admin/authorization/details/?id={world['authorization'].id}")
    assert 'id="forecast"' in page
    assert page.count('class="forecast-stop covered"') == 3
    assert "0 used / 120 scheduled / 40 free" in page


def upload(client: FlaskClient, text: str) -> str:
    return client.post("/admin/schedule/", data={"file": (io.BytesIO(text.encode()), "s.csv")},
                       content_type="multipart/form-data").get_data(as_text=True)


SCHEDULE = ("appointment_id,patient_id,payer,date_of_service,hcpcs,site_of_care,"
            "diagnosis_codes,dose_mg\n"
            f"NEW-1,P001,medicare-b,{TODAY + dt.timedelta(days=3):%m/%d/%Y},J1745,Office,"
            "M05.79,400\n"
            f"LATER-1,P001,MEDICARE-B,{day(41)},J1745,office,M05.79,400\n")


def test_keep_as_schedule_stores_every_row(client: FlaskClient, login: Callable[[str], Any],
                                           world: dict[str, Any]) -> None:
    login("scheduler")
    page = upload(client, SCHEDULE)
    keep = re.search(r'action="([^"]+)" class="ml-2" id="keep-form"', page)
    assert keep
    response = client.post(keep[1])
    assert response.status_code == 302
    assert "/admin/upcoming/" in response.headers["Location"]
    stored = {a.appointment_id: a for a in db.session.scalars(select(Appointment))}
    assert stored["NEW-1"].date_of_service == TODAY + dt.timedelta(days=3)
    assert stored["LATER-1"].date_of_service == TODAY + dt.timedelta(days=41)
    # The upload became the schedule: it cannot be kept twice.
    assert client.post(keep[1]).status_code == 404


def test_keep_as_schedule_names_every_bad_row_and_keeps_none(
        client: FlaskClient, login: Callable[[str], Any], world: dict[str, Any]) -> None:
    login("coordinator")
    page = upload(client, SCHEDULE + f",P001,MEDICARE-B,{day(5)},J1745,office,M05.79,400\n"
                                     f"BAD-2,P404,MEDICARE-B,{day(5)},J1745,office,M05.79,400\n")
    assert "2 rows without an" not in page
    keep = re.search(r'action="([^"]+)" class="ml-2" id="keep-form"', page)
    assert keep
    page = client.post(keep[1]).get_data(as_text=True)
    errors = re.findall(r'<li class="keep-error">([^<]+)</li>', page)
    assert errors == ["row 4, appointment_id: Needed to keep the row as an appointment.",
                      "row 5, patient_id: Unknown patient &#39;P404&#39;."]
    assert db.session.scalar(select(Appointment).where(
        Appointment.appointment_id == "NEW-1")) is None


def test_billers_read_the_schedule_but_cannot_keep_one(
        client: FlaskClient, login: Callable[[str], Any], world: dict[str, Any]) -> None:
    login("biller")
    assert client.get("/admin/upcoming/").status_code == 200
    assert client.post("/admin/schedule/keep/abcdefghijklmnopqrstuvwxyz").status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient, world: dict[str, Any]) -> None:
    for url in ["/admin/upcoming/", "/admin/upcoming/export.csv",
                "/admin/upcoming/appointment/SOON-1"]:
        response = client.get(url)
        assert response.status_code == 302
        assert "/login" in response.headers["Location"]


def test_the_template_downloads_as_csv_and_xlsx(client: FlaskClient,
                                                login: Callable[[str], Any],
                                                session: Any) -> None:
    login("scheduler")
    text = client.get("/admin/schedule/template.csv").get_data(as_text=True)
    assert text.splitlines()[0].startswith("appointment_id,patient_id,")
    data = client.get("/admin/schedule/template.xlsx").data
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    assert sheet.cell(1, 1).value == "appointment_id"
    assert sheet.cell(2, 1).value == "APT-1001"


def test_an_appointments_check_is_saved_as_a_test_case(
        client: FlaskClient, login: Callable[[str], Any], world: dict[str, Any]) -> None:
    from tests.admin.test_documentation_pages import _hidden

    world["policy"].documentation_required = [{"code": "TB_SCREENING", "label": "TB screening",
                                               "max_age_days": 365}]
    db.session.flush()
    login("coordinator")
    page = get(client, "/admin/upcoming/appointment/SOON-1")
    assert 'documentation-item documentation-missing' in page
    data = {name: _hidden(page, name) for name in ("request_json", "policy", "version")}
    response = client.post("/admin/eligibility/save-case",
                           data={**data, "name": "SOON-1 asthma"})
    assert response.status_code == 302, response.get_data(as_text=True)
    [case] = world["policy"].cases
    assert (case.name, case.expect_decision) == ("SOON-1 asthma", "not_eligible")
    assert {"DIAGNOSIS_NOT_COVERED", "DOCUMENTATION_MISSING"} <= set(case.expect_codes)
    assert case.request["diagnosis_codes"] == ["J45.909"]


def test_authorization_list_reads_units_for_the_page_in_one_pass(
        client: FlaskClient, login: Callable[[str], Any], world: dict[str, Any]) -> None:
    login("coordinator")
    more = {"patient": world["patient"], "payer": world["authorization"].payer,
            "valid_from": TODAY - dt.timedelta(days=30), "valid_to": TODAY + dt.timedelta(days=180)}
    make_authorization("A-2", **more)
    client.get("/admin/authorization/")  # the first request loads the user and the index
    make_authorization("A-3", **more)
    with count_queries() as few:
        page = get(client, "/admin/authorization/")
    assert "0 used / 120 scheduled / 40 free" in page
    for n in range(4, 14):
        # Each of another patient: the patients shown are read with the rows, not one by one.
        make_authorization(f"A-{n}", **{**more, "patient": make_patient(f"P{n:03}")})
    # One more of P001's, so this read recomputes the checks (and expires the rows) as before.
    make_authorization("A-14", **more)
    with count_queries() as many:
        page = get(client, "/admin/authorization/")
    assert page.count("0 used / 0 scheduled / 160 free") == 13
    # The schedule is read once for the page and the rows reloaded once: no query per row.
    assert len(many) == len(few)


def test_work_queue_shows_units_of_each_authorization(
        client: FlaskClient, login: Callable[[str], Any], world: dict[str, Any]) -> None:
    login("coordinator")
    page = get(client, "/admin/work/all")
    rows = re.findall(r'<tr class="work-item[^"]*"[^>]*data-authorization="A-1001">(.*?)</tr>',
                      page, re.S)
    assert rows
    assert all("Units: 0 used / 120 scheduled / 40 free" in row for row in rows)


def test_work_queue_reads_its_authorizations_in_slices(
        client: FlaskClient, login: Callable[[str], Any], world: dict[str, Any],
        bound_parameters: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """A queue naming more authorizations than one IN list may hold (PostgreSQL refuses a
    statement with more than 65,535 parameters) still shows each with its units."""
    numbers = [f"A-{3000 + n}" for n in range(12)]
    for n, number in enumerate(numbers):
        make_authorization(number, patient=make_patient(f"P{300 + n}"),
                           payer=world["authorization"].payer,
                           valid_from=TODAY - dt.timedelta(days=300),
                           valid_to=TODAY + dt.timedelta(days=5))
    login("coordinator")
    monkeypatch.setattr(database, "IN_LIMIT", 2)
    bound_parameters.clear()
    page = get(client, "/admin/work/all")
    for number in numbers:
        row = re.search(rf'<tr class="work-item[^"]*"[^>]*data-authorization="{number}">(.*?)</tr>',
                        page, re.S)
        assert row is not None
        assert "Units: 0 used / 0 scheduled / 160 free" in row[1]
    assert max(bound_parameters) < len(numbers)


def test_work_queue_is_short_by_the_units_every_page_shows(
        client: FlaskClient, login: Callable[[str], Any], world: dict[str, Any]) -> None:
    # Two more infusions beyond the next 90 days: 200 units scheduled on 160 approved.
    for appointment_id, offset in [("LATER-2", 100), ("LATER-3", 130)]:
        appointments.upsert(appointment_id, load_appointment(body(offset)),
                            "scheduler@example.org")
    figures = "0 used / 200 scheduled / 0 free (40 short)"
    login("coordinator")
    page = get(client, "/admin/work/all")
    short = re.search(r'<tr class="work-item[^"]*" data-kind="units_short" '
                      r'data-authorization="A-1001">(.*?)</tr>', page, re.S)
    assert short is not None
    assert "200 units scheduled, 160 remain (40 short)" in short[1]
    assert "LATER-3" in short[1]
    assert f"Units: {figures}" in short[1]
    assert figures in get(client, "/admin/authorization/")
    details = get(client, f"/admin/authorization/details/?id={world['authorization'].id}")
    doses = re.search(r'id="doses">(.*?)</p>', details, re.S)
    assert doses is not None
    assert " ".join(doses[1].split()).startswith("4 dose(s) left at the scheduled 40 units")


def test_forecast_of_a_request_says_its_units_are_not_approved(
        client: FlaskClient, login: Callable[[str], Any], world: dict[str, Any]) -> None:
    request = make_authorization("A-REQ", patient=world["patient"],
                                 payer=world["authorization"].payer, status="requested",
                                 approved_units=None, approved_visits=None)
    login("coordinator")
    page = get(client, f"/admin/authorization/details/?id={request.id}")
    units = re.search(r'id="forecast-units">(.*?)·', page, re.S)
    assert units is not None
    assert " ".join(units[1].split()) == "Units: not approved"
