"""The Rules page in a real Chromium: any role finds a finding's reason, source and cases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

SignIn = Callable[[Page, str], None]
Screenshot = Callable[[Page, str], Path]


def test_a_scheduler_reads_why_a_finding_exists(page: Page, live_server, sign_in: SignIn,
                                                screenshot: Screenshot) -> None:
    sign_in(page, "scheduler")
    page.goto(f"{live_server.url}/admin/rules/")
    rule = page.locator("#rule-step_therapy_not_met")
    expect(rule.locator(".rule-code")).to_have_text("STEP_THERAPY_NOT_MET")
    expect(rule.locator(".rule-category")).to_have_text("coverage")
    expect(rule.locator(".rule-why")).to_contain_text("new starts only")
    expect(rule.locator(".case-fires")).to_have_count(1)
    screenshot(page, "rules")
    page.select_option("#category", "drug billing")
    page.fill("#code", "jw_missing")
    page.click("#rules-filter button[type=submit]")
    expect(page.locator(".rule")).to_have_count(1)
    jw = page.locator("#rule-jw_missing")
    expect(jw.locator(".rule-severity")).to_have_text("block")
    expect(jw.locator(".rule-source")).to_have_attribute(
        "href", "https://med.noridianmedicare.com/web/jfb/topics/modifiers/JW")
    expect(jw.locator(".rule-cases tbody tr")).to_have_count(3)
    screenshot(page, "rules-jw-missing")


def test_the_rules_page_is_in_the_menu_for_a_biller(page: Page, live_server, sign_in: SignIn
                                                    ) -> None:
    sign_in(page, "biller")
    page.get_by_role("link", name="Reference").click()
    page.get_by_role("link", name="Rules").click()
    expect(page).to_have_url(f"{live_server.url}/admin/rules/")
    expect(page.locator("#ruleset-claims")).to_contain_text("IMAGING_BUNDLED")
