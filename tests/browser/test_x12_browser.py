"""The biller's 837P upload in a real Chromium: a claim that cannot be checked says why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "claims_sample.837"


def test_837_upload_lists_checked_and_not_checked_claims(
        page: Page, live_server, sign_in: Callable[[Page, str], None],
        screenshot: Callable[[Page, str], Path]) -> None:
    # The browser world's payer is ACME; the first claim is coded in ICD-9.
    text = SAMPLE.read_text(encoding="ascii").replace("PI*MEDICARE-B", "PI*ACME")
    text = text.replace("HI*ABK:M0579", "HI*BK:7140", 1)
    sign_in(page, "biller")
    page.goto(f"{live_server.url}/admin/claims/")
    page.set_input_files("#x12-form input[type=file]", files=[{
        "name": "claims.837", "mimeType": "text/plain", "buffer": text.encode("ascii")}])
    page.click("#check-837")
    expect(page.locator("#x12-summary")).to_have_text(
        "1 checked (0 clean, 1 needing correction), 1 not checked.")
    first = page.locator("#x12-CLM-0001")
    expect(first.locator(".x12-not-checked")).to_contain_text(
        "ICD-9 codes are not supported (HI qualifier BK/BF)")
    expect(page.locator("#x12-CLM-0002")).to_contain_text("Needs correction")
    screenshot(page, "claims_837")
