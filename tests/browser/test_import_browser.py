"""The import page in a real Chromium: upload a bundle, preview it, confirm, see the result."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SignIn = Callable[[Page, str], None]
Screenshot = Callable[[Page, str], Path]


def test_coordinator_previews_and_confirms_an_import(page: Page, live_server, sign_in: SignIn,
                                                     screenshot: Screenshot) -> None:
    today = dt.date.today()
    bundle = {
        "payers": [{"id": "IMPORTED", "name": "Imported Health", "kind": "commercial"}],
        "authorizations": [{
            "number": "A-IMPORT-1", "payer": "IMPORTED", "patient": "P001",
            "hcpcs": ["J1745"], "status": "approved", "approved_units": 100,
            "approved_visits": 3, "valid_from": today.isoformat(),
            "valid_to": (today + dt.timedelta(days=120)).isoformat(),
            "diagnoses": ["M05.79"], "site_of_care": "office"}],
    }
    sign_in(page, "coordinator")
    page.get_by_role("link", name="Import").click()
    expect(page).to_have_url(f"{live_server.url}/admin/import/")
    page.set_input_files("#file", files=[{"name": "bundle.json", "mimeType": "application/json",
                                          "buffer": json.dumps(bundle).encode()}])
    page.click("#preview-button")

    expect(page.locator("#import-preview-note")).to_contain_text("Nothing has been written yet")
    expect(page.locator("#count-payers-created")).to_have_text("1")
    expect(page.locator("#count-authorizations-created")).to_have_text("1")
    screenshot(page, "import")
    # A second tab of the same session: the preview wrote nothing.
    listing = page.context.new_page()
    listing.goto(f"{live_server.url}/admin/authorization/")
    expect(listing.locator("table.model-list")).to_contain_text("A-1001")
    expect(listing.locator("table.model-list")).not_to_contain_text("A-IMPORT-1")
    listing.close()

    page.click("#confirm-button")
    expect(page.locator("#import-done")).to_contain_text("bundle.json was imported")
    expect(page.locator("#count-authorizations-created")).to_have_text("1")
    screenshot(page, "import-result")
    page.goto(f"{live_server.url}/admin/authorization/")
    expect(page.locator("table.model-list")).to_contain_text("A-IMPORT-1")
    page.goto(f"{live_server.url}/admin/changerecord/?search=A-IMPORT-1")
    expect(page.locator("table.model-list")).to_contain_text("coordinator@example.org")
