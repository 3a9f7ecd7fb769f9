"""The stored schedule in a real Chromium: keep an upload as the schedule, Upcoming (ranges,
sorting, changed rows, print, export), one appointment's check, the authorization forecast."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from policy_service.extensions import db

pytestmark = pytest.mark.browser

SignIn = Callable[[Page, str], None]
Screenshot = Callable[[Page, str], Path]
TODAY = dt.date.today()


def us(offset: int) -> str:
    return (TODAY + dt.timedelta(days=offset)).strftime("%m/%d/%Y")


SCHEDULE = (
    "Appointment ID,Patient ID,Payer,Date of service,HCPCS,Site of care,Diagnosis codes,Dose mg\n"
    f"BR-1,P003,acme,{us(1)},J1745,Office,M05.79,350\n"
    f"BR-2,P003,ACME,{us(2)},J1745,Office,J45.909,350\n"
    f"BR-3,P003,ACME,{us(3)},j1745,office,M05.79,350\n"
)


@pytest.fixture(scope="module")
def schedule_world(live_server) -> object:
    """P003 (methotrexate tried), with authorization A-3003 for 100 units over half a year."""
    from policy_service.models import Patient, Payer
    from tests.factories import METHOTREXATE_FAILED, make_authorization, make_patient

    assert live_server.app is not None
    with live_server.app.app_context():
        if db.session.scalar(select(Patient).where(Patient.external_id == "P003")) is None:
            payer = db.session.scalar(select(Payer).where(Payer.code == "ACME"))
            patient = make_patient("P003", therapies=[METHOTREXATE_FAILED],
                                   birth_date=dt.date(1968, 2, 1),
                                   weight_kg=Decimal(70))
            make_authorization("A-3003", patient=patient, payer=payer, approved_units=100,
                               approved_visits=6, valid_from=TODAY - dt.timedelta(days=10),
                               valid_to=TODAY + dt.timedelta(days=180))
            db.session.commit()
    return live_server


def keep_schedule(page: Page, url: str) -> None:
    page.goto(f"{url}/admin/schedule/")
    page.set_input_files("#file", files=[{"name": "week.csv", "mimeType": "text/csv",
                                          "buffer": SCHEDULE.encode()}])
    page.click("#check-schedule")
    expect(page.locator("tr.schedule-row")).to_have_count(3)
    page.click("#keep-schedule")


def test_keep_as_schedule_then_upcoming(page: Page, schedule_world, sign_in: SignIn,
                                        screenshot: Screenshot) -> None:
    url = schedule_world.url
    sign_in(page, "scheduler")
    keep_schedule(page, url)
    expect(page).to_have_url(f"{url}/admin/upcoming/?range=dates&start="
                             f"{TODAY + dt.timedelta(days=1)}&end={TODAY + dt.timedelta(days=3)}")
    expect(page.locator(".alert-success")).to_contain_text("Kept 3 appointment(s)")
    rows = page.locator("tr.upcoming-row")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Eligible")
    expect(rows.nth(1)).to_contain_text("Not eligible")
    # 35 units each for BR-1 and BR-3, and BR-2 names it too: 105 of 100 scheduled.
    expect(rows.nth(0)).to_contain_text("0 used / 105 scheduled / 0 free (5 short)")

    page.click("a.sort-decision")
    expect(rows.nth(0)).to_have_attribute("data-appointment", "BR-2")
    page.click("#range-tomorrow")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_have_attribute("data-appointment", "BR-1")
    screenshot(page, "upcoming")

    with page.expect_download() as download_info:
        page.click("#export-csv")
    text = Path(download_info.value.path()).read_text()
    assert text.splitlines()[0].startswith("appointment_id,date_of_service,patient_id")
    assert "BR-1," in text and "BR-2," not in text

    page.emulate_media(media="print")
    expect(page.locator("#upcoming-filters")).to_be_hidden()
    expect(page.locator("#upcoming")).to_be_visible()
    page.emulate_media(media="screen")

    page.click("a.check-link")
    expect(page.locator("#decision")).to_contain_text("Eligible")
    expect(page.locator("#units-outlook")).to_contain_text("105 scheduled")
    page.click("#authorization-link")
    expect(page.locator("#forecast")).to_be_visible()
    expect(page.locator("#forecast .forecast-stop")).to_have_count(3)
    expect(page.locator("#runs-out")).to_contain_text("BR-3")
    screenshot(page, "authorization-forecast")


def test_a_changed_decision_stands_out(page: Page, schedule_world, sign_in: SignIn) -> None:
    from policy_service.models import Authorization

    url = schedule_world.url
    sign_in(page, "coordinator")
    keep_schedule(page, url)
    page.goto(f"{url}/admin/upcoming/?range=tomorrow")
    row = page.locator("tr.upcoming-row", has_text="BR-1")
    expect(row).to_contain_text("Eligible")
    with schedule_world.app.app_context():
        auth = db.session.scalar(select(Authorization).where(Authorization.number == "A-3003"))
        auth.status = "denied"
        db.session.commit()
    try:
        page.reload()
        expect(row).to_contain_text("Needs authorization")
        expect(row.locator(".changed-mark")).to_be_visible()
        expect(row).to_contain_text("was eligible")
    finally:
        with schedule_world.app.app_context():
            auth = db.session.scalar(select(Authorization)
                                     .where(Authorization.number == "A-3003"))
            auth.status = "approved"
            db.session.commit()


def test_billers_read_upcoming_without_keeping(page: Page, schedule_world,
                                              sign_in: SignIn) -> None:
    sign_in(page, "biller")
    page.click("text=Checks")
    page.click("text=Upcoming")
    expect(page.locator("#upcoming")).to_be_visible()
    page.goto(f"{schedule_world.url}/admin/schedule/")
    expect(page.locator("#error-title")).to_have_text("You do not have access to this page")
