"""The scheduler and biller pages in a real Chromium: eligibility, schedule upload, claim check."""

from __future__ import annotations

import datetime as dt
import re
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
# Row backgrounds of the schedule table (admin/templates/admin/eligibility_macros.html).
GREEN, AMBER, RED, GREY = ("rgb(212, 237, 218)", "rgb(255, 243, 205)", "rgb(248, 215, 218)",
                           "rgb(226, 227, 229)")


@pytest.fixture(scope="module")
def checks_world(live_server) -> object:
    """P002: methotrexate tried for five months, with authorization A-2002 for 200 units."""
    from policy_service.models import Patient, Payer
    from tests.factories import METHOTREXATE_FAILED, make_authorization, make_patient

    assert live_server.app is not None
    with live_server.app.app_context():
        if db.session.scalar(select(Patient).where(Patient.external_id == "P002")) is None:
            payer = db.session.scalar(select(Payer).where(Payer.code == "ACME"))
            patient = make_patient("P002", therapies=[METHOTREXATE_FAILED],
                                   birth_date=dt.date(1970, 5, 14),
                                   weight_kg=Decimal(70))
            make_authorization("A-2002", patient=patient, payer=payer, approved_units=200,
                               approved_visits=6, valid_from=TODAY - dt.timedelta(days=10),
                               valid_to=TODAY + dt.timedelta(days=200))
            db.session.commit()
    return live_server


def fill_eligibility(page: Page, patient: str, dose: str) -> None:
    """Fill the eligibility form for an ACME infliximab infusion today, in the office."""
    page.fill("#patient", patient)
    page.select_option("#payer", "ACME")
    page.select_option("#drug", "J1745")
    page.fill("#dose", dose)
    page.fill("#date_of_service", TODAY.isoformat())
    page.select_option("#site_of_care", "office")
    page.fill("#diagnoses", "M05.79")
    page.click("#check-eligibility")


def test_eligibility_check_shows_the_decision(page: Page, checks_world, sign_in: SignIn,
                                              screenshot: Screenshot) -> None:
    sign_in(page, "scheduler")
    page.click("text=Checks")
    page.click("text=Eligibility check")
    expect(page).to_have_url(f"{checks_world.url}/admin/eligibility/")
    fill_eligibility(page, "P002", "350")
    expect(page.locator("#decision")).to_contain_text("Eligible")
    expect(page.locator("#decision")).to_have_class(
        "alert alert-success decision-banner decision-eligible")
    expect(page.locator("#authorization")).to_contain_text("A-2002")
    expect(page.locator("#billing tr.billing-line")).to_have_count(1)
    expect(page.locator("#billing")).to_contain_text("35")
    # P001 never tried methotrexate: red, with the reason and the policy's source link.
    fill_eligibility(page, "P001", "350")
    expect(page.locator("#decision")).to_contain_text("Not eligible")
    step = page.locator("#findings tr", has_text="STEP_THERAPY_NOT_MET")
    expect(step).to_contain_text("block")
    expect(step.locator("a")).to_have_attribute("href", "https://example.org/acme.pdf#s3")
    expect(page.locator("#authorization")).to_contain_text("A-1001")
    screenshot(page, "eligibility")


def test_schedule_upload_colours_each_row(page: Page, checks_world, sign_in: SignIn,
                                          screenshot: Screenshot) -> None:
    later = (TODAY + dt.timedelta(days=260)).isoformat()
    today = TODAY.isoformat()
    schedule = (
        "patient_id,payer,date_of_service,site_of_care,diagnosis_codes,hcpcs,dose_mg\n"
        f"P002,ACME,{today},office,M05.79,J1745,350\n"
        f"P001,ACME,{today},office,M05.79,J1745,350\n"
        f"P002,ACME,{today},,M05.79,J1745,350\n"
        f"P002,ACME,{later},office,M05.79,J1745,350\n"
        f"P002,NOPE,{today},office,M05.79,J1745,350\n"
    )
    sign_in(page, "coordinator")
    page.goto(f"{checks_world.url}/admin/schedule/")
    expect(page.locator("#expected-columns")).to_contain_text("dose_mg_per_kg")
    page.set_input_files("#file", files=[{"name": "schedule.csv", "mimeType": "text/csv",
                                          "buffer": schedule.encode()}])
    page.click("#check-schedule")
    rows = page.locator("tr.schedule-row")
    expect(rows).to_have_count(5)
    expected = [("decision-eligible", "Eligible", GREEN),
                ("decision-not_eligible", "Not eligible", RED),
                ("decision-needs_information", "Needs information", AMBER),
                ("decision-needs_authorization", "Needs authorization", AMBER),
                ("decision-error", "Could not check", GREY)]
    for index, (css, label, colour) in enumerate(expected):
        row = rows.nth(index)
        expect(row).to_have_class(f"schedule-row {css}")
        expect(row).to_contain_text(label)
        expect(row.locator("td").first).to_have_css("background-color", colour)
    expect(rows.nth(1)).to_contain_text("STEP_THERAPY_NOT_MET")
    with page.expect_download() as download_info:
        page.click("#download-csv")
    text = Path(download_info.value.path()).read_text()
    assert text.splitlines()[0].startswith(
        "row,patient_id,payer,date_of_service,hcpcs,drug_supply,rendering_npi,decision")
    assert ",not_eligible," in text
    screenshot(page, "schedule")


def test_claim_check_shows_findings_beside_expected_lines(page: Page, checks_world,
                                                          sign_in: SignIn,
                                                          screenshot: Screenshot) -> None:
    sign_in(page, "biller")
    page.click("text=Checks")
    page.click("text=Claim check")
    day = (TODAY - dt.timedelta(days=1)).isoformat()
    page.select_option("#payer", "ACME")
    page.fill("#patient", "P002")
    page.fill("#date_of_service", day)
    page.fill("#diagnoses", "M05.79")
    page.fill("#authorization_number", "A-2002")
    page.select_option("#place_of_service", "11")
    page.select_option("#drug", "J1745")
    page.fill("#administered_mg", "350")
    page.fill("#packages", "100x4")
    page.select_option("[name='infusions-0-kind']", "complex")
    page.fill("[name='infusions-0-start']", "10:00")
    page.fill("[name='infusions-0-stop']", "12:10")
    for index, (code, units) in enumerate([("J1745", "40"), ("96413", "1")]):
        page.fill(f"[name='lines-{index}-code']", code)
        page.fill(f"[name='lines-{index}-units']", units)
    page.click("#check-claim")
    expect(page.locator("#claim-status")).to_contain_text("Needs correction")
    drug_row = page.locator("#claim-lines tr.claim-line").first
    expect(drug_row).to_have_class("claim-line line-mismatch")
    expect(drug_row).to_contain_text("J1745 × 40")
    expect(drug_row).to_contain_text("J1745 × 35")
    expect(drug_row).to_contain_text("UNITS_MISMATCH")
    expect(page.locator("#claim-lines tr.line-mismatch", has_text="96415")).to_contain_text(
        "not billed")
    screenshot(page, "claims")


def test_a_coordinator_saves_a_checked_infusion_as_a_test_case(
        page: Page, checks_world, sign_in: SignIn, screenshot: Screenshot) -> None:
    sign_in(page, "coordinator")
    page.goto(f"{checks_world.url}/admin/eligibility/")
    fill_eligibility(page, "P001", "350")
    expect(page.locator("#decision")).to_contain_text("Not eligible")
    expect(page.locator("#save-case")).to_contain_text("Test case of ACME/infliximab")
    page.fill("#name", "P001 without methotrexate is refused (browser)")
    screenshot(page, "eligibility-save-as-test-case")
    page.click("#save-as-test-case")
    expect(page.locator(".alert-success")).to_contain_text(
        "Saved test case 'P001 without methotrexate is refused (browser)'")
    expect(page.locator(".alert-success")).to_contain_text("STEP_THERAPY_NOT_MET")
    expect(page).to_have_url(re.compile(r"/admin/policyversion/lifecycle/\?id=\d+"))
    expect(page.locator("body")).to_contain_text("P001 without methotrexate is refused (browser)")
