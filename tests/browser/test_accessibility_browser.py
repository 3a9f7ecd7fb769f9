"""Every page of every role, and the answers of the checks, pass axe-core with no critical or
serious violation (nor one of a few lesser rules held to zero); the main task can be done with
the keyboard alone."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from admin.security import CORRECT_FIELDS_MESSAGE
from policy_service.extensions import db
from tests.browser.conftest import ROLES, SCREENSHOTS, AxeViolation
from tests.browser.test_admin_browser import refuse_a_taken_payer_code

pytestmark = pytest.mark.browser

SignIn = Callable[[Page, str], None]
Axe = Callable[[Page], list[AxeViolation]]
BLOCKING = frozenset({"critical", "serious"})
# Lesser rules held to zero as well: a skipped heading level misleads a screen reader's
# outline, a role an element may not have is ignored or misread (Select2's lists), and a column
# header without text leaves a screen reader's table navigation unnamed (the Users page).
BLOCKING_RULES = frozenset({"heading-order", "aria-allowed-role", "empty-table-header"})
REPORT_DIR = SCREENSHOTS.parent / "axe"
TODAY = dt.date.today()
SAMPLE_837 = Path(__file__).resolve().parent.parent / "data" / "claims_sample.837"


@pytest.fixture(scope="module")
def record_ids(live_server) -> dict[str, int]:
    """The id of one record of each model the admin lists, for its details and edit pages."""
    from policy_service.models import ChangeRecord, Drug, Patient, Payer, Policy

    assert live_server.app is not None
    with live_server.app.app_context():
        ids = {name: db.session.scalar(select(model.id).order_by(model.id))
               for name, model in (("patient", Patient), ("policy", Policy), ("payer", Payer),
                                   ("drug", Drug), ("changerecord", ChangeRecord))}
    ids["authorization"] = live_server.authorization_id
    ids["policyversion"] = live_server.version_id
    return ids


def pages_of_the_admin(ids: dict[str, int]) -> list[str]:
    """Every page reached from the menu, and the list, create, details and edit of each model."""
    paths = ["/admin/", "/admin/work/", "/admin/upcoming/", "/admin/eligibility/",
             "/admin/schedule/", "/admin/claims/", "/admin/remittances/", "/admin/denials/",
             "/admin/authorization-usage/?number=A-1001", "/admin/import/", "/admin/users/",
             "/admin/rules/", "/change-password", "/admin/no-such-page/",
             "/admin/provider/", "/admin/provider/new/",
             f"/admin/policyversion/lifecycle/?id={ids['policyversion']}"]
    for model, record_id in ids.items():
        paths += [f"/admin/{model}/", f"/admin/{model}/details/?id={record_id}"]
        if model != "changerecord":
            paths += [f"/admin/{model}/new/", f"/admin/{model}/edit/?id={record_id}"]
    return paths


def blocking(violations: list[AxeViolation]) -> list[str]:
    """The critical and serious violations and those of BLOCKING_RULES, one line each."""
    return [f"{v.impact} {v.rule} ({v.help}): {len(v.targets)} element(s), e.g. {v.targets[:3]}"
            for v in violations if v.impact in BLOCKING or v.rule in BLOCKING_RULES]


def save_report(name: str, found: dict[str, list[AxeViolation]]) -> None:
    """Keep what axe found per page as a test artifact (the figures in the issue note)."""
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    report = {page: [{"rule": v.rule, "impact": v.impact, "elements": len(v.targets),
                      "targets": v.targets[:8]}
                     for v in violations] for page, violations in found.items()}
    (REPORT_DIR / f"{name}.json").write_text(json.dumps(report, indent=1))


def assert_accessible(name: str, found: dict[str, list[AxeViolation]]) -> None:
    """Fail with every blocking violation of every page in ``found``."""
    save_report(name, found)
    failures = {page: lines for page, violations in found.items()
                if (lines := blocking(violations))}
    assert not failures, json.dumps(failures, indent=1)


def test_login_page_is_accessible(page: Page, live_server, axe: Axe) -> None:
    page.goto(f"{live_server.url}/login")
    assert_accessible("anonymous", {"/login": axe(page)})


@pytest.mark.parametrize("role", ROLES)
def test_every_page_of_the_role_is_accessible(page: Page, live_server, record_ids, role: str,
                                              sign_in: SignIn, axe: Axe) -> None:
    sign_in(page, role)
    found: dict[str, list[AxeViolation]] = {}
    for path in pages_of_the_admin(record_ids):
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status < 500, path
        found[f"{path} ({response.status})"] = axe(page)
    assert_accessible(role, found)


def test_a_refused_form_is_accessible(page: Page, live_server, sign_in: SignIn,
                                      axe: Axe) -> None:
    # The banner and the field's message (invalid-feedback) as a refused form shows them.
    sign_in(page, "coordinator")
    refuse_a_taken_payer_code(page, live_server.url)
    expect(page.locator(".alert")).to_contain_text(CORRECT_FIELDS_MESSAGE)
    assert_accessible("refused-form", {"/admin/payer/new/ (refused)": axe(page)})


def check_eligibility(page: Page) -> None:
    """Ask whether P001 (never tried methotrexate) may have infliximab today."""
    page.fill("#patient", "P001")
    page.select_option("#payer", "ACME")
    page.select_option("#drug", "J1745")
    page.fill("#dose", "350")
    page.fill("#date_of_service", TODAY.isoformat())
    page.select_option("#site_of_care", "office")
    page.fill("#diagnoses", "M05.79")
    page.click("#check-eligibility")
    expect(page.locator("#decision")).to_be_visible()


def check_claim(page: Page) -> None:
    """Check a claim billing 40 units where the dose needs 35."""
    page.select_option("#payer", "ACME")
    page.fill("#patient", "P001")
    page.fill("#date_of_service", (TODAY - dt.timedelta(days=1)).isoformat())
    page.fill("#diagnoses", "M05.79")
    page.fill("#authorization_number", "A-1001")
    page.select_option("#place_of_service", "11")
    page.select_option("#drug", "J1745")
    page.fill("#administered_mg", "350")
    page.fill("#packages", "100x4")
    page.fill("[name='lines-0-code']", "J1745")
    page.fill("[name='lines-0-units']", "40")
    page.click("#check-claim")
    expect(page.locator("#claim-status")).to_be_visible()


def check_837(page: Page) -> None:
    """Upload the sample 837P file."""
    text = SAMPLE_837.read_text(encoding="ascii").replace("PI*MEDICARE-B", "PI*ACME")
    page.set_input_files("#x12-form input[type=file]", files=[{
        "name": "claims.837", "mimeType": "text/plain", "buffer": text.encode("ascii")}])
    page.click("#check-837")
    expect(page.locator("#x12-summary")).to_be_visible()


def check_schedule(page: Page) -> None:
    """Upload a two-row schedule: one patient on file, one not."""
    today = TODAY.isoformat()
    schedule = ("patient_id,payer,date_of_service,site_of_care,diagnosis_codes,hcpcs,dose_mg\n"
                f"P001,ACME,{today},office,M05.79,J1745,350\n"
                f"P404,ACME,{today},office,M05.79,J1745,350\n")
    page.set_input_files("#file", files=[{"name": "schedule.csv", "mimeType": "text/csv",
                                          "buffer": schedule.encode()}])
    page.click("#check-schedule")
    expect(page.locator("tr.schedule-row")).to_have_count(2)


# (role, page, how to reach the answer) for every answer page a role can reach.
ANSWERS = [
    ("scheduler", "/admin/eligibility/", check_eligibility),
    ("scheduler", "/admin/schedule/", check_schedule),
    ("coordinator", "/admin/eligibility/", check_eligibility),
    ("coordinator", "/admin/schedule/", check_schedule),
    ("biller", "/admin/claims/", check_claim),
    ("biller", "/admin/claims/", check_837),
    ("admin", "/admin/claims/", check_claim),
]


@pytest.mark.parametrize(("role", "path", "fill"), ANSWERS,
                         ids=[f"{role}-{fill.__name__}" for role, _, fill in ANSWERS])
def test_check_answers_are_accessible(page: Page, live_server, sign_in: SignIn, axe: Axe,
                                      role: str, path: str,
                                      fill: Callable[[Page], None]) -> None:
    sign_in(page, role)
    page.goto(f"{live_server.url}{path}")
    fill(page)
    assert_accessible(f"{role}-{fill.__name__}", {path: axe(page)})


def test_a_scheduler_checks_eligibility_with_the_keyboard_alone(page: Page, live_server,
                                                                 sign_in: SignIn) -> None:
    sign_in(page, "scheduler")
    page.goto(f"{live_server.url}/admin/eligibility/")
    keys = page.keyboard

    def tab_to(selector: str) -> None:
        keys.press("Tab")
        expect(page.locator(selector)).to_be_focused()

    # The first Tab reaches the skip link, which jumps past the menu to the page.
    tab_to(".skip-link")
    keys.press("Enter")
    tab_to("#patient")
    keys.type("P001")
    tab_to("#payer")
    keys.type("ACME")
    tab_to("#drug")
    keys.type("J1745")
    tab_to("#dose")
    keys.type("350")
    tab_to("#dose_unit")
    tab_to("#date_of_service")
    keys.type(TODAY.strftime("%m%d%Y"))
    # Chromium's date field keeps one more stop (its calendar button) before the next field.
    keys.press("Tab")
    tab_to("#site_of_care")
    tab_to("#diagnoses")
    keys.type("M05.79")
    with page.expect_navigation():
        keys.press("Enter")
    expect(page.locator("#decision")).to_contain_text("Not eligible")
    expect(page.locator("#findings")).to_contain_text("STEP_THERAPY_NOT_MET")
    expect(page.locator("#payer")).to_have_value("ACME")
    expect(page.locator("#date_of_service")).to_have_value(TODAY.isoformat())
