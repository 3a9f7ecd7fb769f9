"""The remittance import and the denials report in a real Chromium."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from policy_service.extensions import db
from policy_service.models import Authorization, Patient, Payer
from policy_service.services.reason_codes import load_reason_codes, read_reason_code_file
from tests.remittances.builder import Cas, Claim, Line, build_835

pytestmark = pytest.mark.browser

SignIn = Callable[[Page, str], None]
Screenshot = Callable[[Page, str], Path]
REASON_CODES = Path(__file__).resolve().parents[2] / "seed_data" / "codes" / "reason_codes.yaml"


@pytest.fixture
def remittance_file(live_server) -> str:
    """An authorization of its own for a new patient, the reason codes, and an 835 paying one
    claim and denying another (CO-197 with N54)."""
    today = dt.date.today()
    with live_server.app.app_context():
        if not db.session.scalar(select(Patient.id).where(Patient.external_id == "P-ERA")):
            load_reason_codes(read_reason_code_file(REASON_CODES))
            payer = db.session.scalar(select(Payer).where(Payer.code == "ACME"))
            db.session.add(Authorization(
                number="A-ERA-1", patient=Patient(external_id="P-ERA"), payer=payer,
                hcpcs=["J1745"], status="approved", approved_units=100, approved_visits=4,
                valid_from=today - dt.timedelta(days=30), valid_to=today + dt.timedelta(days=60)))
            db.session.commit()
    claims = [
        Claim("ERA-CLM-1", [Line("J1745", 1000, units=35, adjustments=[Cas("CO", "45", 200)])],
              patient="P-ERA", authorization="A-ERA-1"),
        Claim("ERA-CLM-2", [Line("96413", 300, adjustments=[Cas("CO", "197", 300)],
                                 rarcs=["N54"])], patient="P-ERA", status="4"),
    ]
    return build_835(claims, trace=f"ERA-{today:%Y%m%d}", paid_on=today, produced_on=today,
                     default_day=today - dt.timedelta(days=3))


def test_biller_previews_confirms_and_reads_the_denials(page: Page, live_server,
                                                        sign_in: SignIn, screenshot: Screenshot,
                                                        remittance_file: str) -> None:
    sign_in(page, "biller")
    page.goto(f"{live_server.url}/admin/remittances/")
    page.set_input_files("#file", files=[{"name": "era.835", "mimeType": "text/plain",
                                          "buffer": remittance_file.encode()}])
    page.click("#remittance-preview")
    expect(page.locator("#remittance-preview-note")).to_contain_text("Nothing has been written")
    first = page.locator('tr.remittance-claim[data-claim="ERA-CLM-1"]')
    expect(first.locator(".claim-outcome")).to_have_text("paid")
    expect(first.locator(".claim-usage")).to_contain_text("uses 35 unit(s), 1 visit(s)")
    second = page.locator('tr.remittance-claim[data-claim="ERA-CLM-2"]')
    expect(second.locator(".claim-outcome")).to_have_text("denied")
    expect(second.locator(".claim-denial")).to_contain_text("CO-197")
    screenshot(page, "remittance-preview")

    page.click("#remittance-confirm")
    expect(page.locator("#remittance-imported")).to_contain_text("era.835")
    with live_server.app.app_context():
        auth = db.session.scalar(select(Authorization).where(Authorization.number == "A-ERA-1"))
        assert (auth.used_units, auth.used_visits) == (35, 1)

    page.click("#to-denials")
    expect(page.locator("#chart-rate")).to_be_visible()
    expect(page.locator("#chart-reasons")).to_contain_text("197")
    expect(page.locator("#chart-preventable")).to_be_visible()
    expect(page.locator("#chart-trend")).to_be_visible()
    row = page.locator('tr.denial-row[data-claim="ERA-CLM-2"]')
    expect(row).to_contain_text("CO-197")
    expect(row).to_contain_text("AUTH_DRUG_MISMATCH")
    screenshot(page, "denials")
    page.fill("#carc", "29")
    page.click("#denial-filter-apply")
    expect(page.locator("#no-denials")).to_be_visible()


def test_coordinator_reads_denials_but_cannot_import(page: Page, live_server,
                                                     sign_in: SignIn) -> None:
    sign_in(page, "coordinator")
    response = page.goto(f"{live_server.url}/admin/remittances/")
    assert response is not None and response.status == 403
    response = page.goto(f"{live_server.url}/admin/denials/")
    assert response is not None and response.status == 200
    expect(page.locator("#denial-filters")).to_be_visible()
