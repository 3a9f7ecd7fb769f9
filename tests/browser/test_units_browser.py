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


@pytest.fixture(scope="module")
def units_world(live_server) -> object:
    """P-UNITS with A-UNITS (200 units, 20 drawn by a claim, two 40-unit infusions booked)
    and A-UNITS-REQ, a request the payer has not answered."""
    from policy_service.models import Authorization, Patient, Payer, Therapy
    from policy_service.schemas.appointments import load_appointment
    from policy_service.services import appointments
    from policy_service.services.usage import record_usage

    assert live_server.app is not None
    with live_server.app.app_context():
        if db.session.scalar(select(Patient).where(Patient.external_id == "P-UNITS")) is None:
            payer = db.session.scalar(select(Payer).where(Payer.code == "ACME"))
            patient = Patient(external_id="P-UNITS", birth_date=dt.date(1968, 2, 3),
                              weight_kg=Decimal(80),
                              therapies=[Therapy(drug="methotrexate", start=dt.date(2025, 1, 1),
                                                 end=dt.date(2025, 6, 1),
                                                 outcome="inadequate_response")])
            window = {"payer": payer, "patient": patient, "hcpcs": ["J1745"],
                      "valid_from": TODAY - dt.timedelta(days=10),
                      "valid_to": TODAY + dt.timedelta(days=200), "diagnoses": ["M05.79"],
                      "site_of_care": "office", "used_units": 0, "used_visits": 0}
            db.session.add_all([
                Authorization(number="A-UNITS", status="approved", approved_units=200,
                              approved_visits=6, **window),
                Authorization(number="A-UNITS-REQ", status="requested", **window)])
            db.session.commit()
            record_usage("A-UNITS", "CLM-UNITS", TODAY - dt.timedelta(days=5), 20, 1,
                         "biller@example.org")
            for n, days in enumerate((14, 70), start=1):
                appointments.upsert(f"UNITS-{n}", load_appointment({
                    "patient": {"id": "P-UNITS"}, "payer": "ACME",
                    "date_of_service": (TODAY + dt.timedelta(days=days)).isoformat(),
                    "site_of_care": "office", "diagnosis_codes": ["M05.79"],
                    "hcpcs": "J1745", "dose": {"mg": 400},
                    "authorization_number": "A-UNITS"}), "scheduler@example.org")
            db.session.commit()
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
