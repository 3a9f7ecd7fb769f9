"""A refused admin form tells a screen reader which fields are wrong and why, and a Select2 choice
list is named by its label, not only by the chosen value (WCAG 1.3.1, 3.3.1, 4.1.2).

Each field message (Flask-Admin's invalid-feedback) is referenced by its field's
aria-describedby, the field says aria-invalid="true", and the first wrong field has the focus
when the refused page loads. The checks read the DOM and Chromium's accessibility tree as a
screen reader would, not the template's markup.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import AxeViolation
from tests.browser.test_accessibility_browser import assert_accessible

pytestmark = pytest.mark.browser

SignIn = Callable[[Page, str], None]
Axe = Callable[[Page], list[AxeViolation]]
TODAY = dt.date.today()

# For each field message on the page: the field it sits under, what the field (and, for a
# Select2 list, the combobox that takes its focus) says to assistive technology.
FIELD_MESSAGES = """
() => Array.from(document.querySelectorAll("form.admin-form .invalid-feedback")).map(box => {
  const group = box.closest(".form-group");
  // The field its own label is for (a Select2 list keeps a label of its own inside).
  const field = document.getElementById(group.querySelector(":scope > label[for]").htmlFor);
  const described = node => (node.getAttribute("aria-describedby") || "").split(/\\s+/)
      .filter(Boolean).map(id => document.getElementById(id))
      .map(target => target ? target.textContent.replace(/\\s+/g, " ").trim() : null);
  const state = node => node && {id: node.id, invalid: node.getAttribute("aria-invalid"),
                                 described: described(node)};
  const combobox = group.querySelector("[role=combobox]");
  return {field: field.id, message: box.textContent.replace(/\\s+/g, " ").trim(),
          input: state(field), combobox: state(combobox)};
})
"""


def field_messages(page: Page) -> dict[str, dict[str, Any]]:
    """The refused page's field messages by the id of their field."""
    return {entry["field"]: entry for entry in page.evaluate(FIELD_MESSAGES)}


def assert_linked(entry: dict[str, Any]) -> None:
    """The message is named by the field's aria-describedby and the field is marked invalid;
    for a Select2 list, by the combobox a keyboard or screen reader user is on as well."""
    for node in filter(None, (entry["input"], entry["combobox"])):
        assert node["invalid"] == "true", (entry["field"], node)
        assert None not in node["described"], (entry["field"], node)
        assert entry["message"] in " ".join(node["described"]), (entry["field"], node)


def submit_without_the_browsers_checks(page: Page) -> None:
    """Save the form as a browser without constraint validation would: the server's checks
    answer (the same ones a script or an old browser meets)."""
    page.locator("form.admin-form").evaluate("form => { form.noValidate = true; }")
    page.locator("input[type=submit][value=Save]").click()
    page.wait_for_load_state("load")


def test_a_refused_new_authorization_links_each_message_to_its_field(
        page: Page, live_server, sign_in: SignIn, axe: Axe) -> None:
    sign_in(page, "coordinator")
    page.goto(f"{live_server.url}/admin/authorization/new/")
    page.fill("#number", "A11Y-1")
    page.locator("select#patient").select_option(label="P001", force=True)
    # No payer; a window that ends before it starts.
    page.fill("#hcpcs", "J1745")
    page.fill("#diagnoses", "M05.79")
    page.fill("#valid_from", TODAY.isoformat())
    page.fill("#valid_to", (TODAY - dt.timedelta(days=1)).isoformat())
    submit_without_the_browsers_checks(page)

    messages = field_messages(page)
    assert {"payer", "valid_to"} <= set(messages), messages
    assert "Choose the payer." in messages["payer"]["message"]
    for entry in messages.values():
        assert_linked(entry)
    # The payer's list is a Select2 combobox: the one a user reaches carries the message.
    assert messages["payer"]["combobox"] is not None
    # The first wrong field (the payer) has the focus, named by its label.
    expect(page.get_by_role("combobox", name=re.compile(r"^Payer\b"))).to_be_focused()
    assert_accessible("refused-new-authorization",
                      {"/admin/authorization/new/ (refused)": axe(page)})


def test_a_refused_new_policy_links_each_message_to_its_field(
        page: Page, live_server, sign_in: SignIn, axe: Axe) -> None:
    sign_in(page, "coordinator")
    page.goto(f"{live_server.url}/admin/policy/new/")
    # No HCPCS code, an end before the start.
    page.locator("select#payer").select_option(label="ACME (Acme Health)", force=True)
    page.fill("#title", "Golimumab IV")
    page.fill("#covered_diagnoses", "M05")
    page.fill("#source", "https://payer.example/golimumab")
    page.fill("#effective_from", "2031-01-01")
    page.fill("#effective_to", "2030-12-31")
    submit_without_the_browsers_checks(page)

    messages = field_messages(page)
    assert {"hcpcs", "effective_to"} <= set(messages), messages
    assert "Name at least one HCPCS code." in messages["hcpcs"]["message"]
    for entry in messages.values():
        assert_linked(entry)
    # A field with a hint keeps it, next to the message, in its description.
    hcpcs = page.locator("#hcpcs")
    hint = page.locator("#hcpcs-hint")
    expect(hint).not_to_be_empty()
    expect(hcpcs).to_have_accessible_description(re.compile(
        re.escape("Name at least one HCPCS code.") + ".*" + re.escape(hint.inner_text().strip())))
    expect(hcpcs).to_be_focused()
    assert_accessible("refused-new-policy", {"/admin/policy/new/ (refused)": axe(page)})


def test_a_blank_form_marks_no_field_invalid_and_takes_no_focus(
        page: Page, live_server, sign_in: SignIn) -> None:
    sign_in(page, "coordinator")
    page.goto(f"{live_server.url}/admin/policy/new/")
    expect(page.locator("[aria-invalid=true]")).to_have_count(0)
    # Hints are still descriptions of their fields.
    expect(page.locator("#title")).to_have_accessible_description(
        re.compile("The drug or family the policy covers"))
    assert page.evaluate("document.activeElement === document.body")


def test_the_payer_list_is_named_by_its_label_and_its_choice(
        page: Page, live_server, sign_in: SignIn) -> None:
    sign_in(page, "coordinator")
    page.goto(f"{live_server.url}/admin/policy/new/")
    page.locator("select#payer").select_option(label="ACME (Acme Health)", force=True)
    payer = page.get_by_role("combobox", name=re.compile(r"^Payer\b.*ACME \(Acme Health\)"))
    expect(payer).to_have_count(1)
    # The same in the accessibility tree a screen reader reads.
    snapshot = page.locator("form.admin-form").aria_snapshot()
    assert re.search(r'combobox "Payer\b[^"]*ACME \(Acme Health\)"', snapshot), snapshot

    page.goto(f"{live_server.url}/admin/authorization/edit/?id={live_server.authorization_id}")
    expect(page.get_by_role("combobox", name=re.compile(r"^Payer\b.*ACME"))).to_have_count(1)
    expect(page.get_by_role("combobox", name=re.compile(r"^Patient\b.*P001"))).to_have_count(1)


def test_a_refused_eligibility_check_focuses_its_first_wrong_field(
        page: Page, live_server, sign_in: SignIn, axe: Axe) -> None:
    # The app's own forms (admin/templates/admin/eligibility_macros.html) link their messages
    # and hints as Flask-Admin's do, and app.js focuses their first wrong field too.
    sign_in(page, "scheduler")
    page.goto(f"{live_server.url}/admin/eligibility/")
    # A patient, but no dose and no date of service (the form has novalidate: the server answers).
    page.fill("#patient", "P001")
    page.select_option("#payer", "ACME")
    page.select_option("#drug", "J1745")
    page.select_option("#site_of_care", "office")
    page.fill("#diagnoses", "M05.79")
    page.click("#check-eligibility")
    page.wait_for_load_state("load")

    expect(page.locator("#decision")).to_have_count(0)
    dose = page.locator("#dose")
    expect(dose).to_be_focused()
    expect(dose).to_have_attribute("aria-invalid", "true")
    described = (dose.get_attribute("aria-describedby") or "").split()
    assert "dose-error" in described, described
    message = page.locator("#dose-error").inner_text().strip()
    assert message, "no message under the dose"
    expect(dose).to_have_accessible_description(re.compile(re.escape(message)))
    # The date has its message too; a field without one is neither marked nor described by one.
    expect(page.locator("#date_of_service")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#patient")).not_to_have_attribute("aria-invalid", "true")
    # A hint is still its field's description.
    expect(page.locator("#packages")).to_have_accessible_description(re.compile("100x4"))
    assert_accessible("refused-eligibility-check", {"/admin/eligibility/ (refused)": axe(page)})
