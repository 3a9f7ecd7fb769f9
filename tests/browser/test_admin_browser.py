"""The admin UI in a real Chromium: sign-in, roles, policy editing, stale edits, dashboard."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from admin.security import CORRECT_FIELDS_MESSAGE, STALE_MESSAGE

pytestmark = pytest.mark.browser

SignIn = Callable[[Page, str], None]
Screenshot = Callable[[Page, str], Path]


def test_login_and_logout(page: Page, live_server, sign_in: SignIn,
                          screenshot: Screenshot) -> None:
    page.goto(f"{live_server.url}/admin/")
    expect(page).to_have_url(f"{live_server.url}/login?next=/admin/")
    screenshot(page, "login")
    sign_in(page, "coordinator")
    expect(page.locator("#signed-in-as")).to_contain_text("coordinator@example.org")
    page.click("#logout")
    expect(page).to_have_url(f"{live_server.url}/login")
    page.goto(f"{live_server.url}/admin/payer/")
    expect(page).to_have_url(f"{live_server.url}/login?next=/admin/payer/")


def test_dashboard_lists_expiring_authorization(page: Page, live_server, sign_in: SignIn,
                                                screenshot: Screenshot) -> None:
    sign_in(page, "biller")
    expiring = page.locator("#expiring-14")
    expect(expiring).to_contain_text("A-1001")
    expect(page.locator("#low-remaining")).to_contain_text("A-1001")
    screenshot(page, "dashboard")
    expiring.get_by_role("link", name="A-1001").click()
    expect(page).to_have_url(
        f"{live_server.url}/admin/authorization/details/?id={live_server.authorization_id}")
    expect(page.locator("body")).to_contain_text("M05.79")


def test_scheduler_cannot_edit_a_policy(page: Page, live_server, sign_in: SignIn,
                                        screenshot: Screenshot) -> None:
    sign_in(page, "scheduler")
    page.goto(f"{live_server.url}/admin/policyversion/")
    expect(page.locator("body")).to_contain_text("ACME/infliximab")
    expect(page.locator("a[href*='/policyversion/edit/']")).to_have_count(0)
    expect(page.locator("a[href*='/policyversion/new/']")).to_have_count(0)
    screenshot(page, "policy-versions-scheduler")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    forged = page.request.post(
        f"{live_server.url}/admin/policyversion/edit/?id={live_server.version_id}",
        form={"csrf_token": token or "", "status": "retired"})
    assert forged.status == 403
    page.goto(f"{live_server.url}/admin/policyversion/details/?id={live_server.version_id}")
    expect(page.locator("body")).to_contain_text("active")


def test_coordinator_creates_a_policy_and_its_first_version_in_one_form(
        page: Page, live_server, sign_in: SignIn, screenshot: Screenshot) -> None:
    sign_in(page, "coordinator")
    page.goto(f"{live_server.url}/admin/policy/new/")
    # The HCPCS codes are required like the payer and the date: marked, and asked by the browser.
    expect(page.locator("label[for=hcpcs]")).to_contain_text("*")
    assert page.locator("#hcpcs").evaluate("field => field.validity.valueMissing")
    page.locator("select#payer").select_option(label="ACME (Acme Health)", force=True)
    page.fill("#title", "Vedolizumab IV")
    # The code is left empty: the suggested one is used.
    page.fill("#hcpcs", "J3380")
    page.fill("#covered_diagnoses", "K50, K51")
    page.fill("#source", "https://payer.example/vedolizumab")
    page.fill("#effective_from", "2031-01-01")
    page.fill("#effective_to", "2030-12-31")
    page.locator("input[type=submit][value=Save]").click()
    field = page.locator("#effective_to").locator("xpath=..")
    expect(field).to_contain_text("Must not be before effective_from (2031-01-01).")
    screenshot(page, "policy-new-refused")

    page.fill("#effective_to", "")
    page.locator("input[type=submit][value=Save]").click()
    expect(page.locator("#lifecycle-title")).to_contain_text(
        "ACME/vedolizumab-iv — version 1 (draft)")
    screenshot(page, "policy-new-created")


def add_version(page: Page, url: str, effective_from: str, diagnoses: str) -> None:
    """Fill the new-version form with one step and save it."""
    page.goto(f"{url}/admin/policyversion/new/")
    # Required, as on the new policy form: marked, and asked by the browser.
    expect(page.locator("label[for=hcpcs]")).to_contain_text("*")
    page.locator("select#policy").select_option(label="ACME/infliximab", force=True)
    page.fill("#effective_from", effective_from)
    # No status field: a new version is always a draft (services/policies.py).
    page.fill("#hcpcs", "J1745")
    page.fill("#covered_diagnoses", diagnoses)
    page.locator("select#sites_of_care").select_option(["office", "home"])
    page.click("#steps-button")
    page.fill("#steps-0-any_of", "methotrexate, leflunomide")
    page.fill("#steps-0-count", "1")
    page.fill("#steps-0-min_days", "90")
    page.locator("input[type=submit][value=Save]").click()


def test_coordinator_creates_version_then_bad_icd10_is_refused(
        page: Page, live_server, sign_in: SignIn, screenshot: Screenshot) -> None:
    sign_in(page, "coordinator")
    add_version(page, live_server.url, "2031-01-01", "M05, L40.5")
    expect(page.locator(".alert-success")).to_contain_text("Record was successfully created")
    expect(page.locator("body")).to_contain_text("2031-01-01")
    screenshot(page, "policy-versions-coordinator")

    add_version(page, live_server.url, "2032-01-01", "M05, Q99.9X9")
    field = page.locator("#covered_diagnoses").locator("xpath=..")
    expect(field).to_contain_text("'Q99.9X9' is not an ICD-10-CM code or code family.")
    screenshot(page, "policy-version-invalid-icd10")
    page.goto(f"{live_server.url}/admin/policyversion/")
    expect(page.locator("body")).not_to_contain_text("2032-01-01")


def test_stale_edit_is_refused(context: BrowserContext, live_server, sign_in: SignIn,
                               screenshot: Screenshot) -> None:
    first, second = context.new_page(), context.new_page()
    sign_in(first, "coordinator")
    edit_url = f"{live_server.url}/admin/authorization/edit/?id={live_server.authorization_id}"
    first.goto(edit_url)
    second.goto(edit_url)
    screenshot(first, "authorization-edit")
    first.fill("#notes", "Called the payer on Monday")
    first.locator("input[type=submit][value=Save]").click()
    expect(first.locator(".alert-success")).to_contain_text("Record was successfully saved")
    second.fill("#notes", "Faxed the renewal")
    second.locator("input[type=submit][value=Save]").click()
    expect(second.locator(".alert")).to_contain_text(STALE_MESSAGE)
    screenshot(second, "authorization-stale-edit")
    second.goto(edit_url)
    expect(second.locator("#notes")).to_have_value("Called the payer on Monday")


def test_main_lists_render(page: Page, live_server, sign_in: SignIn,
                           screenshot: Screenshot) -> None:
    sign_in(page, "admin")
    for view, expected in [("authorization", "A-1001"), ("patient", "P001"),
                           ("payer", "ACME"), ("drug", "J1745"), ("policy", "ACME/infliximab"),
                           ("changerecord", "A-1001")]:
        page.goto(f"{live_server.url}/admin/{view}/")
        expect(page.locator("table.model-list")).to_contain_text(expected)
        screenshot(page, f"list-{view}")


def test_biller_records_and_voids_use_on_the_usage_page(page: Page, live_server,
                                                        sign_in: SignIn,
                                                        screenshot: Screenshot) -> None:
    sign_in(page, "biller")
    page.goto(f"{live_server.url}/admin/authorization/")
    page.locator("table.model-list a", has_text="Usage").first.click()
    expect(page.locator("#usage-summary")).to_contain_text("150 used / 0 scheduled / 10 free")
    page.fill("#claim_reference", "CLM-BROWSER")
    page.fill("#units", "11")
    page.click("#record-use")
    expect(page.locator("#form-errors")).to_contain_text(
        "Recording 11 units would exceed the 10 remaining on A-1001.")
    page.fill("#units", "5")
    page.click("#record-use")
    expect(page.locator(".alert-success")).to_contain_text("Recorded 5 units")
    expect(page.locator("#usage-summary")).to_contain_text("155 used / 0 scheduled / 5 free")
    screenshot(page, "authorization-usage")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#void-CLM-BROWSER")
    expect(page.locator(".alert-success")).to_contain_text("Voided CLM-BROWSER")
    expect(page.locator("#usage-summary")).to_contain_text("150 used / 0 scheduled / 10 free")
    expect(page.locator("tr.usage-voided")).to_contain_text("CLM-BROWSER")


def test_admin_is_told_what_a_new_user_needs_then_creates_one(
        page: Page, live_server, sign_in: SignIn) -> None:
    sign_in(page, "admin")
    page.goto(f"{live_server.url}/admin/users/")
    page.click("#create-user")
    for field, message in [("email", "Type the new user's email address."),
                           ("role", "Choose the new user's role."),
                           ("password", "Type an initial password.")]:
        expect(page.locator(f"#{field}").locator("xpath=..")).to_contain_text(message)
    expect(page.locator("#create-user-form")).not_to_contain_text("This field is required.")
    page.fill("#email", "new.scheduler@example.org")
    page.select_option("#role", "scheduler")
    page.fill("#password", "long-enough-password")
    page.click("#create-user")
    expect(page.locator(".alert-success")).to_contain_text(
        "Created new.scheduler@example.org (scheduler).")
    row = page.locator("#users tr", has_text="new.scheduler@example.org")
    expect(row.locator("select[name=role]")).to_have_value("scheduler")
    expect(row.locator(".user-active")).to_have_text("Yes")


def refuse_a_taken_payer_code(page: Page, url: str) -> None:
    """Fill the new payer form with the code ACME (already on file) and save it."""
    page.goto(f"{url}/admin/payer/new/")
    page.fill("#code", "ACME")
    page.fill("#name", "Acme again")
    page.locator("input[type=submit][value=Save]").click()


def test_a_taken_payer_code_is_named_on_its_field_under_one_banner(
        page: Page, live_server, sign_in: SignIn, screenshot: Screenshot) -> None:
    sign_in(page, "coordinator")
    refuse_a_taken_payer_code(page, live_server.url)
    expect(page.locator("#code").locator("xpath=..")).to_contain_text(
        "Another payer already has the code ACME: type a different one, or edit that payer.")
    expect(page.locator(".alert")).to_have_count(1)
    expect(page.locator(".alert")).to_contain_text(CORRECT_FIELDS_MESSAGE)
    expect(page.locator("body")).not_to_contain_text("Already exists.")
    screenshot(page, "payer-code-taken")


@pytest.mark.parametrize("role", ["coordinator", "admin"])
def test_top_menu_fits_one_line_at_1366(context: BrowserContext, live_server, sign_in: SignIn,
                                        role: str) -> None:
    page = context.new_page()
    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, role)
    navbar = page.locator("nav.navbar").first.bounding_box()
    assert navbar is not None
    # One line of Bootstrap's navbar is about 56 px; a wrapped menu is twice that.
    assert navbar["height"] < 70
    page.click("text=Checks")
    expect(page.locator(".dropdown-menu.show")).to_contain_text("Eligibility check")


@pytest.mark.parametrize(("role", "path", "status", "title"), [
    ("scheduler", "/admin/users/", 403, "You do not have access to this page"),
    ("biller", "/admin/no-such-page/", 404, "Page not found"),
])
def test_refusals_and_missing_pages_keep_the_layout_and_a_way_back(
        page: Page, live_server, sign_in: SignIn, role: str, path: str, status: int,
        title: str) -> None:
    sign_in(page, role)
    response = page.goto(f"{live_server.url}{path}")
    assert response is not None and response.status == status
    expect(page.locator("h1")).to_have_text(title)
    expect(page.locator("nav .navbar-brand")).to_have_text("Policy service")
    expect(page.locator("link[rel=icon]")).to_have_attribute("href", "/ui/static/favicon.svg")
    page.click("#back-to-dashboard")
    page.wait_for_url(f"{live_server.url}/admin/")


@pytest.mark.parametrize(("view", "last_columns"), [
    ("policyversion", ["Source", "Lifecycle", "History"]),
    ("drug", ["Source", "History"]),
    ("authorization", ["Visits", "Usage"]),
    ("patient", ["History"]),
])
def test_lists_fit_a_1366_px_screen(context: BrowserContext, live_server, sign_in: SignIn,
                                    view: str, last_columns: list[str]) -> None:
    page = context.new_page()
    page.set_viewport_size({"width": 1366, "height": 768})
    sign_in(page, "coordinator")
    page.goto(f"{live_server.url}/admin/{view}/")
    table = page.locator("table.model-list")
    width = table.evaluate("t => [t.scrollWidth, t.parentElement.clientWidth]")
    assert width[0] <= width[1], f"{view} list is {width[0]} px wide in {width[1]} px"
    for name in last_columns:
        header = page.locator("table.model-list th", has_text=name).first.bounding_box()
        assert header is not None and header["x"] + header["width"] <= 1366, name
