"""The policy version page in a real Chromium: rules in words, new draft, impact, activation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SignIn = Callable[[Page, str], None]
Screenshot = Callable[[Page, str], Path]


def test_coordinator_copies_tests_and_activates_a_version(
        page: Page, live_server, sign_in: SignIn, screenshot: Screenshot) -> None:
    sign_in(page, "coordinator")
    page.goto(f"{live_server.url}/admin/policyversion/lifecycle/?id={live_server.version_id}")
    words = page.locator("#rules-in-words")
    expect(words).to_contain_text("Covered diagnoses: M05, M06")
    expect(words).to_contain_text("Step therapy: 1 of methotrexate for 90+ days")
    expect(page.locator("#activate-form")).to_have_count(0)  # the active version
    screenshot(page, "policy-lifecycle-active")
    page.click("#new-version-button")
    expect(page.locator(".alert-success")).to_contain_text("created from the newest version")
    draft_id = page.url.rsplit("id=", 1)[1].split("&")[0]
    page.goto(f"{live_server.url}/admin/policyversion/lifecycle/?id={draft_id}")
    expect(page.locator("#lifecycle-title")).to_contain_text("(draft)")
    expect(page.locator("#test-results")).to_contain_text("0 failed")
    expect(page.locator("#impact-summary")).to_contain_text("scheduled appointment(s) would change")
    screenshot(page, "policy-lifecycle-draft")
    page.click("#activate-button")  # the browser refuses: the confirmation is required
    expect(page.locator("#lifecycle-title")).to_contain_text("(draft)")
    page.check("#confirm-activation")
    page.click("#activate-button")
    expect(page.locator(".alert-success")).to_contain_text("is active from")
    expect(page.locator("#lifecycle-title")).to_contain_text("(active)")
    screenshot(page, "policy-lifecycle-activated")


def test_scheduler_reads_the_rules_but_gets_no_forms(
        page: Page, live_server, sign_in: SignIn) -> None:
    sign_in(page, "scheduler")
    page.goto(f"{live_server.url}/admin/policyversion/lifecycle/?id={live_server.version_id}")
    expect(page.locator("#rules-in-words")).to_contain_text("Sites of care: office")
    expect(page.locator("#new-version-button")).to_have_count(0)
