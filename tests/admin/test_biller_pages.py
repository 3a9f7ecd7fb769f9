"""Biller pages: the claim form, the 837P upload and authorization usage, with permissions."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from admin.biller import pair_lines
from policy_service.services.usage import record_usage, void_usage
from tests.claims.world import METHOTREXATE_FAILED, build_world
from tests.factories import make_authorization, make_drug, make_patient, make_payer, make_policy

DATA = Path(__file__).resolve().parent.parent / "data"
ROLES = ["anonymous", "admin", "coordinator", "scheduler", "biller"]
CLAIM_CHECKERS = {"admin", "biller"}

# The clean claim of tests/claims/world.py, as the form posts it.
CLEAN_FORM = {
    "payer": "MEDICARE-B", "patient": "P001", "date_of_service": "2026-03-10",
    "submitted_on": "2026-03-12", "diagnoses": "M05.79", "authorization_number": "A-1001",
    "place_of_service": "11", "drug": "J1745", "administered_mg": "350", "packages": "100x4",
    "infusions-0-kind": "complex", "infusions-0-start": "10:00", "infusions-0-stop": "12:10",
    "lines-0-code": "J1745", "lines-0-units": "35", "lines-0-ndc": "57894-0030-01",
    "lines-1-code": "J1745", "lines-1-units": "5", "lines-1-modifiers": "JW",
    "lines-2-code": "96413", "lines-2-units": "1",
    "lines-3-code": "96415", "lines-3-units": "1",
    "lines-4-code": "99214", "lines-4-units": "1", "lines-4-modifiers": "25",
}


def post_claim(client: FlaskClient, **changes: str) -> str:
    """Submit the claim form with ``changes``; return the page."""
    response = client.post("/admin/claims/", data={**CLEAN_FORM, **changes})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def line_rows(page: str) -> list[tuple[str, str, str, str]]:
    """The side-by-side table: (row class, submitted, expected, finding codes) per row."""
    rows = []
    for cls, body in re.findall(r'<tr class="claim-line (line-\w+)">(.*?)</tr>', page, re.S):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)

        def text(cell: str) -> str:
            return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())

        codes = " ".join(re.findall(r"<code>(\w+)</code>", cells[4]))
        rows.append((cls, text(cells[1]), text(cells[3]), codes))
    return rows


def error_near(page: str, field: str) -> str:
    """The error messages shown under the form field ``field``."""
    start = page.index(f'id="{field}"')
    end = page.index("</td>", start) if "</td>" in page[start:start + 2000] else start + 2000
    return html.unescape(" ".join(re.findall(r'invalid-feedback d-block">([^<]+)<',
                                             page[start:end])))


# --- claim form ----------------------------------------------------------------------------

def test_clean_claim_shows_every_line_matching(client: FlaskClient, login: Callable[[str], Any],
                                               session: Any) -> None:
    build_world()
    login("biller")
    page = post_claim(client)
    assert 'class="alert alert-success decision-banner claim-clean"' in page
    assert "Clean: ready to submit" in page
    assert line_rows(page) == [
        ("line-match", "J1745 × 35", "J1745 × 35", ""),
        ("line-match", "J1745-JW × 5", "J1745-JW × 5", ""),
        ("line-match", "96413 × 1", "96413 × 1", ""),
        ("line-match", "96415 × 1", "96415 × 1", ""),
        ("line-match", "99214-25 × 1", "99214-25 × 1", ""),
    ]
    assert "/admin/authorization-usage/?number=A-1001" in page


def test_wrong_units_are_flagged_beside_the_expected_lines(client: FlaskClient,
                                                           login: Callable[[str], Any],
                                                           session: Any) -> None:
    build_world()
    login("biller")
    # 40 units billed with no JW line, and no add-on hour for a 2 h 10 min infusion.
    page = post_claim(client, **{"lines-0-units": "40", "lines-1-code": "", "lines-1-units": "",
                                 "lines-1-modifiers": "", "lines-3-code": "",
                                 "lines-3-units": ""})
    assert "Needs correction" in page
    assert 'class="alert alert-warning decision-banner claim-needs_correction"' in page
    rows = line_rows(page)
    assert rows[0][:3] == ("line-mismatch", "J1745 × 40", "J1745 × 35")
    assert "UNITS_MISMATCH" in rows[0][3]
    assert ("line-match", "96413 × 1", "96413 × 1", "") in rows
    assert ("line-mismatch", "not billed", "J1745-JW × 5", "") in rows
    assert ("line-mismatch", "not billed", "96415 × 1", "") in rows
    assert "JW_MISSING" in page


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"lines-2-units": "one"}, "lines-2-units", "Not a valid integer value."),
    ({"lines-1-modifiers": "JWX"}, "lines-1-modifiers", "A modifier is two letters or digits"),
    ({"lines-0-ndc": "123"}, "lines-0-ndc", "An NDC is 5-4-2"),
    ({"lines-2-code": "9"}, "lines-2-code", "HCPCS"),
    ({"infusions-0-stop": "noon"}, "infusions-0-stop", "is not a time"),
    ({"packages": "100x1"}, "packages", "100"),
    ({"diagnoses": "QQQ"}, "diagnoses", "QQQ"),
    ({"place_of_service": "99"}, "place_of_service", "Not a valid choice."),
    ({"rendering_npi": "1234567890"}, "rendering_npi", "check digit"),
    ({"ordering_npi": "99"}, "ordering_npi", "10 digits"),
])
def test_bad_claim_input_is_shown_on_its_field(client: FlaskClient, login: Callable[[str], Any],
                                               session: Any, changes: dict[str, str],
                                               field: str, message: str) -> None:
    build_world()
    login("biller")
    page = post_claim(client, **changes)
    assert message in error_near(page, field)
    assert 'id="claim-status"' not in page


def test_a_claim_without_lines_is_refused_with_a_message(client: FlaskClient,
                                                         login: Callable[[str], Any],
                                                         session: Any) -> None:
    build_world()
    login("admin")
    no_lines = {k: v for k, v in CLEAN_FORM.items() if not k.startswith("lines-")}
    page = client.post("/admin/claims/", data=no_lines).get_data(as_text=True)
    assert 'id="form-errors"' in page
    assert "lines:" in page
    assert 'id="claim-status"' not in page


def test_unknown_patient_claim_is_checked_and_unknown_authorization_refused(
        client: FlaskClient, login: Callable[[str], Any], session: Any) -> None:
    build_world()
    login("biller")
    page = post_claim(client, authorization_number="A-404")
    assert "No authorization &#39;A-404&#39;." in page
    assert 'id="claim-status"' not in page


def test_pair_lines_keeps_submitted_order_and_appends_missing_expected() -> None:
    submitted = [{"code": "96413", "units": 1, "modifiers": []},
                 {"code": "J1745", "units": 40, "modifiers": []}]
    expected = [{"code": "J1745", "units": 35, "modifiers": []},
                {"code": "J1745", "units": 5, "modifiers": ["JW"]},
                {"code": "96413", "units": 1, "modifiers": []}]
    rows = pair_lines(submitted, expected, [{"line": 1, "code": "UNITS_MISMATCH"}])
    assert [(r.submitted and r.submitted["units"], r.expected and r.expected["units"],
             r.matches) for r in rows] == [(1, 1, True), (40, 35, False), (None, 5, False)]
    assert rows[1].findings == [{"line": 1, "code": "UNITS_MISMATCH"}]
    assert rows[1].differs("units") and not rows[1].differs("code")


# --- 837P upload -----------------------------------------------------------------------------

def upload_837(client: FlaskClient, name: str) -> str:
    """Upload one of the test data files to the 837P form; return the page."""
    data = (DATA / name).read_bytes()
    response = client.post("/admin/claims/837/", data={"file": (io.BytesIO(data), name)},
                           content_type="multipart/form-data")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_837_upload_shows_each_claims_findings(client: FlaskClient,
                                               login: Callable[[str], Any],
                                               session: Any) -> None:
    build_world()
    login("biller")
    page = upload_837(client, "claims_sample.837")
    first = page[page.index('id="x12-CLM-0001"'):page.index('id="x12-CLM-0002"')]
    second = page[page.index('id="x12-CLM-0002"'):page.index('id="claim-form"')]
    assert "Clean: ready to submit" in first
    assert [row[0] for row in line_rows(first)] == ["line-match"] * 5
    assert "Needs correction" in second
    rows = line_rows(second)
    assert rows[0][:3] == ("line-mismatch", "J1745 × 40", "J1745-JZ × 40")
    assert "JZ_MISSING" in rows[0][3]
    assert any("ADMIN_CODE_MISMATCH" in r[3] for r in rows)
    assert any(r[1] == "99211 × 1" and "EM_NOT_PAYABLE" in r[3] for r in rows)


def test_837_claim_that_cannot_be_checked_says_why_and_others_are_checked(
        client: FlaskClient, login: Callable[[str], Any], session: Any) -> None:
    build_world()
    login("biller")
    page = html.unescape(upload_837(client, "claims_malformed.837"))
    assert "Not checked:" in page
    assert "line 3 (segment 33): SV104 'ONE' is not a whole number of units" in page
    assert "0 checked (0 clean, 0 needing correction), 1 not checked." in page


def test_structurally_broken_837_names_the_segment(client: FlaskClient,
                                                   login: Callable[[str], Any],
                                                   session: Any) -> None:
    build_world()
    login("biller")
    text = (DATA / "claims_sample.837").read_text(encoding="ascii")
    broken = text.replace("\nSE*57*", "\nSE*58*").encode("ascii")
    page = html.unescape(client.post(
        "/admin/claims/837/", data={"file": (io.BytesIO(broken), "broken.837")},
        content_type="multipart/form-data").get_data(as_text=True))
    assert "segment 59: SE count of 58 for SE02=0001 is wrong. I count 57" in page
    assert "x12-claim" not in page


def test_837_upload_of_a_binary_file_is_explained(client: FlaskClient,
                                                  login: Callable[[str], Any],
                                                  session: Any) -> None:
    login("biller")
    page = client.post("/admin/claims/837/",
                       data={"file": (io.BytesIO(b"\x89PNG\r\n"), "x.png")},
                       content_type="multipart/form-data").get_data(as_text=True)
    assert "Not an X12 file: byte 0 is not ASCII." in page


# --- usage history ---------------------------------------------------------------------------

def test_usage_history_lists_every_use_and_voids(client: FlaskClient,
                                                 login: Callable[[str], Any],
                                                 session: Any) -> None:
    build_world()
    record_usage("A-1001", "CLM-0001", dt.date(2026, 3, 10), 40, 1, "biller@example.org")
    record_usage("A-1001", "CLM-0002", dt.date(2026, 4, 7), 35, 1, "biller@example.org")
    void_usage("A-1001", "CLM-0002", "admin@example.org")
    login("coordinator")
    page = client.get("/admin/authorization-usage/?number=A-1001").get_data(as_text=True)
    rows = re.findall(r'<tr class="usage-row([^"]*)">(.*?)</tr>', page, re.S)
    cells = [re.findall(r"<td>(.*?)</td>", body, re.S) for _cls, body in rows]
    assert [c[:5] for c in cells] == [
        ["2026-03-10", "CLM-0001", "40", "1", "biller@example.org"],
        ["2026-04-07", "CLM-0002", "35", "1", "biller@example.org"],
    ]
    assert cells[0][6] == "no"
    assert "by admin@example.org" in cells[1][6]
    assert "usage-voided" in rows[1][0]
    summary = page[page.index('id="usage-summary"'):page.index('id="usage-rows"')]
    assert ("Units (used / scheduled / free): 40 used / 0 scheduled / 120 free."
            in " ".join(summary.split()))


def test_usage_history_of_unknown_or_unused_authorization(client: FlaskClient,
                                                          login: Callable[[str], Any],
                                                          session: Any) -> None:
    build_world()
    login("scheduler")
    assert "No authorization NOPE." in client.get(
        "/admin/authorization-usage/?number=NOPE").get_data(as_text=True)
    page = client.get("/admin/authorization-usage/?number=A-1001").get_data(as_text=True)
    assert "No claim has drawn on this authorization yet." in page
    assert '<option value="A-1001">' in client.get(
        "/admin/authorization-usage/").get_data(as_text=True)


# --- permissions ---------------------------------------------------------------------------

def claim_request(client: FlaskClient, endpoint: str) -> Any:
    """Call one biller endpoint the way its page would."""
    if endpoint == "claim_get":
        return client.get("/admin/claims/")
    if endpoint == "claim_post":
        return client.post("/admin/claims/", data=CLEAN_FORM)
    if endpoint == "x12_post":
        data = (DATA / "claims_sample.837").read_bytes()
        return client.post("/admin/claims/837/",
                           data={"file": (io.BytesIO(data), "claims_sample.837")},
                           content_type="multipart/form-data")
    if endpoint == "usage_get":
        return client.get("/admin/authorization-usage/?number=A-1001")
    if endpoint == "usage_post":
        return client.post("/admin/authorization-usage/record/?number=A-1001",
                           data={"claim_reference": "CLM-9", "date_of_service": "2026-03-10",
                                 "units": "35", "visits": "1"})
    raise AssertionError(endpoint)


def expected_status(role: str, endpoint: str) -> int:
    """The status a user with ``role`` must get from a biller endpoint."""
    if role == "anonymous":
        return 302
    if endpoint == "usage_get":
        return 200
    if endpoint == "usage_post":
        return 302 if role in CLAIM_CHECKERS else 403  # recorded, back to the usage page
    return 200 if role in CLAIM_CHECKERS else 403


@pytest.mark.parametrize("endpoint", ["claim_get", "claim_post", "x12_post", "usage_get",
                                      "usage_post"])
@pytest.mark.parametrize("role", ROLES)
def test_biller_page_permissions(client: FlaskClient, login: Callable[[str], Any],
                                 session: Any, role: str, endpoint: str) -> None:
    build_world()
    if role != "anonymous":
        login(role)
    response = claim_request(client, endpoint)
    assert response.status_code == expected_status(role, endpoint)
    page = response.get_data(as_text=True)
    if response.status_code == 302 and role == "anonymous":
        assert response.location.startswith("/login")
    elif response.status_code == 302:
        assert response.location.endswith("/admin/authorization-usage/?number=A-1001")
    elif response.status_code == 200 and endpoint != "claim_get":
        assert "Clean: ready to submit" in page or "A-1001" in page


@pytest.mark.parametrize("role", ["biller", "scheduler", "coordinator"])
def test_menu_shows_claim_check_only_to_billers_and_admins(
        client: FlaskClient, login: Callable[[str], Any], session: Any, role: str) -> None:
    login(role)
    page = client.get("/admin/").get_data(as_text=True)
    assert ('href="/admin/claims/"' in page) == (role in CLAIM_CHECKERS)
    # The usage history is reached from the claim and eligibility results, not the menu.
    assert 'href="/admin/authorization-usage/"' not in page


def test_claim_page_shows_the_authorization_the_check_chose(client: FlaskClient, login: Any,
                                                            session: Any) -> None:
    """Two authorizations hold the date; the check draws on the one with units left, and the
    page links to that one (it used to pick the latest-ending one by its own query)."""

    payer = make_payer()
    make_drug("J1745")
    make_policy(payer=payer)
    person = make_patient("P001", therapies=[METHOTREXATE_FAILED])
    make_authorization("A-0001", patient=person, payer=payer, used_units=160, used_visits=4,
                       valid_to=dt.date(2026, 12, 31))
    make_authorization("A-0002", patient=person, payer=payer)
    login("biller")
    page = post_claim(client, authorization_number="")
    link = re.search(r'<a id="matched-usage" href="([^"]+)">([^<]+)</a>', page)
    assert link is not None
    assert "A-0002" in html.unescape(link[2])
    assert "AUTH_UNITS_EXCEEDED" not in page


def test_record_this_claims_use_opens_prefilled(client: FlaskClient,
                                                login: Callable[[str], Any],
                                                session: Any) -> None:
    build_world()
    login("biller")
    page = post_claim(client, claim_reference="CLM-77")
    link = html.unescape(re.search(r'<a id="matched-usage" href="([^"]+)"', page)[1])
    # J1745 x 35 and J1745-JW x 5 draw on the authorization; the administration codes do not.
    assert link == ("/admin/authorization-usage/?number=A-1001&units=40&claim=CLM-77"
                    "&date=2026-03-10")
    # The authorization the claim draws on, with its units as every page shows them.
    units = re.search(r'id="matched-units">(.*?)</p>', page, re.S)
    assert units is not None
    assert " ".join(units[1].split()) == (
        "Units of A-1001 (used / scheduled / free): 0 used / 0 scheduled / 160 free")
    usage = client.get(link).get_data(as_text=True)

    def value_of(field: str) -> str:
        tag = re.search(rf'<input[^>]*id="{field}"[^>]*>', usage)
        assert tag is not None, field
        return re.search(r'value="([^"]*)"', tag[0])[1]  # type: ignore[index]

    assert (value_of("claim_reference"), value_of("date_of_service"), value_of("units")) == (
        "CLM-77", "2026-03-10", "40")


def test_837_results_link_each_claims_use_and_download_as_csv(client: FlaskClient,
                                                              login: Callable[[str], Any],
                                                              session: Any) -> None:
    build_world()
    login("biller")
    page = html.unescape(upload_837(client, "claims_sample.837"))
    first = page[page.index('id="x12-CLM-0001"'):page.index('id="x12-CLM-0002"')]
    usage = re.search(r'<a class="x12-usage" href="([^"]+)"', first)
    assert usage is not None
    assert "number=A-1001" in usage[1] and "claim=CLM-0001" in usage[1]
    assert "units=" in usage[1] and "date=" in usage[1]
    assert "Units of A-1001 (used / scheduled / free): 0 used / 0 scheduled / 160 free" in first
    download = re.search(r'id="x12-download" download="837p-results.csv" '
                         r'href="data:text/csv;charset=utf-8,([^"]+)"', page)
    assert download is not None
    rows = urllib.parse.unquote(download[1]).splitlines()
    assert rows[0] == "claim,status,line,submitted,expected,severity,code,message"
    assert rows[1].startswith("CLM-0001,clean,")
    assert any(row.startswith("CLM-0002,needs_correction,1,J1745 x 40,J1745-JZ x 40,")
               and ",JZ_MISSING," in row for row in rows)
