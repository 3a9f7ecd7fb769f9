"""A coordinator submits a request, records the approval, renews it, and sees the queue change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SignIn = Callable[[Page, str], None]
Screenshot = Callable[[Page, str], Path]


def test_coordinator_moves_a_request_to_renewal(page: Page, live_server, sign_in: SignIn,
                                                screenshot: Screenshot) -> None:
    today = dt.date.today()
    sign_in(page, "coordinator")
    page.goto(f"{live_server.url}/admin/authorization/new/")
    page.fill("#number", "B-7001")
    page.locator("select#patient").select_option(label="P001", force=True)
    page.locator("select#payer").select_option(label="ACME (Acme Health)", force=True)
    page.fill("#hcpcs", "J1745")
    page.fill("#diagnoses", "M05.79")
    page.fill("#valid_from", today.isoformat())
    # Ends within ACME's 30 renewal lead days, so an approval puts it in the queue.
    page.fill("#valid_to", (today + dt.timedelta(days=20)).isoformat())
    page.fill("#requested_units", "100")
    page.locator("select#owner").select_option(label="coordinator@example.org", force=True)
    page.click("input[type=submit][value='Save']")
    expect(page.locator(".alert-success")).to_be_visible()

    page.goto(f"{live_server.url}/admin/authorization/?search=B-7001")
    page.locator("a[title='View Record']").first.click()
    expect(page.locator("#authorization-state")).to_have_text("requested")

    actions = page.locator(".transition-form")
    actions.locator("input[name=reason]").fill("Sent through the payer portal")
    actions.get_by_role("button", name="Submitted").click()
    expect(page.locator("#authorization-state")).to_have_text("submitted")

    actions = page.locator(".transition-form")
    actions.locator("input[name=approved_units]").fill("100")
    actions.locator("input[name=payer_reference]").fill("ACME-778")
    actions.locator("input[name=reason]").fill("Approval letter received")
    actions.get_by_role("button", name="Approved", exact=True).click()
    expect(page.locator("#authorization-state")).to_have_text("approved")
    expect(page.locator("#events")).to_contain_text("submitted → approved")
    screenshot(page, "authorization-approved")

    page.goto(f"{live_server.url}/admin/work/")
    row = page.locator("tr.work-item[data-authorization='B-7001']")
    expect(row).to_have_attribute("data-kind", "expiring_without_renewal")
    screenshot(page, "my-work-before-renewal")
    row.locator(".renew-form button").click()
    expect(page.locator(".alert-success")).to_contain_text("B-7001 renewed by B-7001-R1")
    expect(page.locator("tr.work-item[data-authorization='B-7001']")).to_have_count(0)
    screenshot(page, "my-work-after-renewal")


def test_scheduler_reads_the_queue_without_actions(page: Page, live_server,
                                                   sign_in: SignIn) -> None:
    sign_in(page, "scheduler")
    page.goto(f"{live_server.url}/admin/work/all")
    expect(page.locator("#worklist, #worklist-empty")).to_be_visible()
    expect(page.locator(".authorization-actions")).to_have_count(0)
