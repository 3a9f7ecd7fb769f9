"""Units as used / scheduled / free in a real Chromium: the authorizations list and the biller's
claim check show the same figures."""

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
FIGURES = "20 used / 80 scheduled / 100 free"


def seed_schedule(live_server, patient_id: str, number: str, approved_units: int,
                  used_units: int, booked_days: tuple[int, ...],
                  request_number: str | None = None) -> None:
    """Once per server: ``patient_id`` with ``number`` (ACME, approved, 6 visits, ``used_units``
    drawn by a claim), 40-unit infusions booked on it ``booked_days`` ahead, and optionally a
    request the payer has not answered over the same window."""
    from policy_service.models import Authorization, Patient, Payer, Therapy
    from policy_service.schemas.appointments import load_appointment
    from policy_service.services import appointments
    from policy_service.services.usage import record_usage

    assert live_server.app is not None
    with live_server.app.app_context():
        if db.session.scalar(select(Patient).where(Patient.external_id == patient_id)):
            return
        payer = db.session.scalar(select(Payer).where(Payer.code == "ACME"))
        patient = Patient(external_id=patient_id, birth_date=dt.date(1968, 2, 3),
                          weight_kg=Decimal(80),
                          therapies=[Therapy(drug="methotrexate", start=dt.date(2025, 1, 1),
                                             end=dt.date(2025, 6, 1),
                                             outcome="inadequate_response")])
        window = {"payer": payer, "patient": patient, "hcpcs": ["J1745"],
                  "valid_from": TODAY - dt.timedelta(days=10),
                  "valid_to": TODAY + dt.timedelta(days=200), "diagnoses": ["M05.79"],
                  "site_of_care": "office", "used_units": 0, "used_visits": 0}
        db.session.add(Authorization(number=number, status="approved",
                                     approved_units=approved_units, approved_visits=6,
                                     **window))
        if request_number is not None:
            db.session.add(Authorization(number=request_number, status="requested", **window))
        db.session.commit()
        record_usage(number, f"CLM-{number}", TODAY - dt.timedelta(days=5), used_units, 1,
                     "biller@example.org")
        for n, days in enumerate(booked_days, start=1):
            appointments.upsert(f"{number}-{n}", load_appointment({
                "patient": {"id": patient_id}, "payer": "ACME",
                "date_of_service": (TODAY + dt.timedelta(days=days)).isoformat(),
                "site_of_care": "office", "diagnosis_codes": ["M05.79"],
                "hcpcs": "J1745", "dose": {"mg": 400},
                "authorization_number": number}), "scheduler@example.org")
        db.session.commit()


@pytest.fixture(scope="module")
def units_world(live_server) -> object:
    """P-UNITS with A-UNITS (200 units, 20 drawn by a claim, two 40-unit infusions booked)
    and A-UNITS-REQ, a request the payer has not answered."""
    seed_schedule(live_server, "P-UNITS", "A-UNITS", 200, 20, (14, 70),
                  request_number="A-UNITS-REQ")
    return live_server


@pytest.fixture(scope="module")
def short_world(live_server) -> object:
    """P-SHORT with A-SHORT (100 units, 20 drawn): three 40-unit infusions, the last one
    beyond the work queue's 90-day look at the schedule, need 40 more than remain."""
    seed_schedule(live_server, "P-SHORT", "A-SHORT", 100, 20, (14, 70, 120))
    return live_server


def test_authorizations_list_shows_units_used_scheduled_free(
        page: Page, units_world, sign_in: SignIn, screenshot: Screenshot) -> None:
    sign_in(page, "coordinator")
    page.goto(f"{units_world.url}/admin/authorization/?search=A-UNITS")
    header = page.locator("table.model-list th", has_text="Units (used / scheduled / free)")
    expect(header).to_have_count(1)
    approved = page.locator("table.model-list tr", has_text="A-UNITS").filter(
        has_not_text="A-UNITS-REQ")
    expect(approved.locator("td.col-units")).to_have_text(FIGURES)
    requested = page.locator("table.model-list tr", has_text="A-UNITS-REQ")
    expect(requested.locator("td.col-units")).to_have_text("not approved")
    screenshot(page, "authorization-units")


def test_biller_sees_the_same_units_where_a_claim_meets_its_authorization(
        page: Page, units_world, sign_in: SignIn, screenshot: Screenshot) -> None:
    sign_in(page, "biller")
    page.goto(f"{units_world.url}/admin/claims/")
    page.select_option("#payer", "ACME")
    page.fill("#patient", "P-UNITS")
    page.fill("#date_of_service", (TODAY - dt.timedelta(days=1)).isoformat())
    page.fill("#diagnoses", "M05.79")
    page.fill("#authorization_number", "A-UNITS")
    page.select_option("#place_of_service", "11")
    page.select_option("#drug", "J1745")
    page.fill("#administered_mg", "400")
    page.fill("#packages", "100x4")
    page.fill("[name='lines-0-code']", "J1745")
    page.fill("[name='lines-0-units']", "40")
    page.click("#check-claim")
    expect(page.locator("#matched-units")).to_have_text(
        f"Units of A-UNITS (used / scheduled / free): {FIGURES}")
    screenshot(page, "claim-units")
    page.click("#matched-usage")
    expect(page.locator("#usage-units")).to_have_text(
        f"Units (used / scheduled / free): {FIGURES}.")


def test_work_queue_is_short_by_the_same_figures_as_the_list(
        page: Page, short_world, sign_in: SignIn, screenshot: Screenshot) -> None:
    figures = "20 used / 120 scheduled / 0 free (40 short)"
    sign_in(page, "coordinator")
    page.goto(f"{short_world.url}/admin/work/all")
    row = page.locator("tr.work-item[data-kind='units_short'][data-authorization='A-SHORT']")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("120 units scheduled, 80 remain (40 short)")
    expect(row).to_contain_text("A-SHORT-3")
    expect(row.locator(".unit-balance")).to_have_text(f"Units: {figures}")
    screenshot(page, "work-queue-units-short")
    page.goto(f"{short_world.url}/admin/authorization/?search=A-SHORT")
    listed = page.locator("table.model-list tr", has_text="A-SHORT")
    expect(listed.locator("td.col-units")).to_have_text(figures)
