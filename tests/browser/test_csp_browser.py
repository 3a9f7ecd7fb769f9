"""No page breaks the Content-Security-Policy in a real Chromium: every report of a refused
script, style or handler fails the test, across the pages of every role and the widgets that
run Flask-Admin's scripts (filters, inline lists, bulk actions, delete confirmation)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

SignIn = Callable[[Page, str], None]

# Chromium reports a refusal on the console ("Refused to apply inline style ... because it
# violates the following Content Security Policy directive") and as a DOM event.
REPORT_EVENT = """
document.addEventListener('securitypolicyviolation', (e) => {
  console.error('CSP violation: ' + e.violatedDirective + ' ' + (e.blockedURI || 'inline')
                + ' at ' + e.sourceFile + ':' + e.lineNumber);
});
"""


@pytest.fixture
def watched(context: BrowserContext) -> Iterator[tuple[Page, list[str]]]:
    """A page whose CSP violations (console or event) and script errors are collected."""
    context.add_init_script(REPORT_EVENT)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(f"{page.url}: {message.text}")
            if re.search(r"Content Security Policy|CSP violation", message.text) else None)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: script error {error}"))
    yield page, problems


def menu_pages(page: Page, base: str) -> list[str]:
    """Every admin page the signed-in user's menu links to."""
    hrefs = page.eval_on_selector_all(
        "nav a[href^='/admin/']", "links => links.map(a => a.getAttribute('href'))")
    return sorted({href for href in hrefs if "#" not in href})


@pytest.mark.parametrize("role", ["admin", "coordinator", "scheduler", "biller"])
def test_no_page_of_any_role_violates_the_policy(watched: tuple[Page, list[str]], live_server,
                                                 sign_in: SignIn, role: str) -> None:
    page, problems = watched
    page.goto(f"{live_server.url}/login")
    sign_in(page, role)
    pages = menu_pages(page, live_server.url)
    assert len(pages) >= 5
    details = [f"/admin/authorization/details/?id={live_server.authorization_id}",
               f"/admin/policyversion/details/?id={live_server.version_id}"]
    for path in [*pages, *details]:
        page.goto(f"{live_server.url}{path}")
        page.wait_for_load_state("load")
    assert problems == [], "\n".join(problems)


def test_admin_widgets_run_under_the_policy(watched: tuple[Page, list[str]], live_server,
                                            sign_in: SignIn) -> None:
    page, problems = watched
    sign_in(page, "admin")
    base = live_server.url
    # Forms: date pickers, select2 selects, inline lists ("Add" runs Flask-Admin's form.js).
    for path in (f"/admin/authorization/edit/?id={live_server.authorization_id}",
                 f"/admin/policyversion/edit/?id={live_server.version_id}",
                 "/admin/authorization/new/", "/admin/drug/new/", "/admin/patient/new/"):
        page.goto(f"{base}{path}")
        page.wait_for_load_state("load")
    page.goto(f"{base}/admin/drug/new/")
    add = page.locator("a[data-inline-add]").first
    before = page.locator(".inline-field").count()
    add.click()
    expect(page.locator(".inline-field")).to_have_count(before + 1)

    # A list's filter menu adds a filter row without leaving the page.
    page.goto(f"{base}/admin/authorization/")
    page.get_by_text("Add Filter").click()
    page.locator("a.filter").first.click()
    expect(page.locator(".filters tr")).not_to_have_count(0)
    assert page.url == f"{base}/admin/authorization/"

    # Bulk action and row delete ask first; dismissing keeps everything.
    page.goto(f"{base}/admin/payer/")
    asked: list[str] = []

    def dismiss(dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.locator("input.action-checkbox").first.check()
    page.get_by_text("With selected").click()
    page.locator("a[data-model-action]").first.click()
    page.locator("button[data-confirm-click]").first.click()
    assert len(asked) == 2
    expect(page.locator("body")).to_contain_text("ACME")
    assert problems == [], "\n".join(problems)


def test_the_sign_in_pages_keep_to_the_policy(watched: tuple[Page, list[str]],
                                              live_server) -> None:
    page, problems = watched
    page.goto(f"{live_server.url}/login")
    expect(page.locator(".signin .brand")).to_be_visible()
    # The styles came from the static file: the card sits on a tinted page.
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(244, 246, 248)"
    assert problems == [], "\n".join(problems)
