"""Recording and voiding authorization use on the usage page, and who may do it."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from policy_service.models import Authorization, AuthorizationUsage
from policy_service.services.usage import record_usage

Login = Callable[[str], Any]
PAGE = "/admin/authorization-usage/?number=A-1001"
RECORD = "/admin/authorization-usage/record/?number=A-1001"
VOID = "/admin/authorization-usage/void/?number=A-1001"


def use(**changes: str) -> dict[str, str]:
    """The record form as a biller fills it in, with ``changes``."""
    return {"claim_reference": "CLM-1", "date_of_service": dt.date.today().isoformat(),
            "units": "40", "visits": "1", **changes}


def text(page: str) -> str:
    """The page's visible text, tags dropped and entities decoded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def totals(session: Session) -> tuple[int, int]:
    """Units and visits A-1001 has used, as stored."""
    session.expire_all()
    auth = session.scalar(select(Authorization).where(Authorization.number == "A-1001"))
    assert auth is not None
    return auth.used_units, auth.used_visits


@pytest.mark.parametrize("role", ["biller", "admin"])
def test_biller_records_then_voids_through_the_page(client: FlaskClient, login: Login,
                                                    records: Any, session: Session,
                                                    role: str) -> None:
    user = login(role)
    page = client.get(PAGE).get_data(as_text=True)
    assert 'id="record-usage"' in page
    response = client.post(RECORD, data=use(), follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Recorded 40 units and 1 visit for CLM-1." in text(page)
    assert "Units (used / scheduled / free): 40 used / 0 scheduled / 120 free." in text(page)
    assert totals(session) == (40, 1)
    row = session.scalar(select(AuthorizationUsage).where(
        AuthorizationUsage.claim_reference == "CLM-1"))
    assert row is not None and row.recorded_by == user.email
    assert 'id="void-CLM-1"' in page

    page = client.post(VOID, data={"claim_reference": "CLM-1"},
                       follow_redirects=True).get_data(as_text=True)
    assert "Voided CLM-1: its units and visit are back on A-1001." in text(page)
    assert "Units (used / scheduled / free): 0 used / 0 scheduled / 160 free." in text(page)
    assert totals(session) == (0, 0)
    assert f"by {user.email}" in text(page)
    # A voided row has no Void button left.
    assert 'id="void-CLM-1"' not in page


def test_recording_the_same_claim_twice_changes_nothing(client: FlaskClient, login: Login,
                                                        records: Any, session: Session) -> None:
    login("biller")
    client.post(RECORD, data=use())
    page = client.post(RECORD, data=use(), follow_redirects=True).get_data(as_text=True)
    assert "CLM-1 was already recorded on A-1001; nothing changed." in text(page)
    assert totals(session) == (40, 1)


@pytest.mark.parametrize(("changes", "message"), [
    ({"units": "161"}, "Recording 161 units would exceed the 160 remaining on A-1001."),
    ({"claim_reference": "CLM 1/2"}, "Use letters, digits, '.', '_' and '-' only."),
    ({"units": "-1"}, "Number must be at least 0."),
    ({"date_of_service": ""}, "This field is required."),
])
def test_refused_use_is_explained_and_nothing_is_spent(client: FlaskClient, login: Login,
                                                       records: Any, session: Session,
                                                       changes: dict[str, str],
                                                       message: str) -> None:
    login("biller")
    response = client.post(RECORD, data=use(**changes))
    assert response.status_code == 200
    assert message in text(response.get_data(as_text=True))
    assert totals(session) == (0, 0)


def test_date_outside_the_window_is_shown_on_the_date(client: FlaskClient, login: Login,
                                                      records: Any, session: Session) -> None:
    login("biller")
    late = records.authorization.valid_to + dt.timedelta(days=1)
    page = client.post(RECORD, data=use(date_of_service=late.isoformat())).get_data(
        as_text=True)
    field = page[page.index('id="date_of_service"'):]
    assert "is outside the authorization&#39;s window" in field[:field.index("</div>") + 200]
    assert totals(session) == (0, 0)


def test_no_visits_left_and_unapproved_authorizations_are_refused(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    login("biller")
    for number in range(4):
        client.post(RECORD, data=use(claim_reference=f"CLM-{number}", units="1"))
    assert totals(session) == (4, 4)
    page = client.post(RECORD, data=use(claim_reference="CLM-5", units="1")).get_data(
        as_text=True)
    assert "No visits remain on A-1001 (4 approved)." in text(page)
    records.authorization.status = "denied"
    session.flush()
    page = client.post(RECORD, data=use(claim_reference="CLM-6", units="1")).get_data(
        as_text=True)
    assert ("A-1001 is denied; use can only be recorded on an approved authorization."
            in text(page))
    assert totals(session) == (4, 4)


def test_voiding_an_unknown_claim_says_so(client: FlaskClient, login: Login, records: Any,
                                          session: Session) -> None:
    login("biller")
    page = client.post(VOID, data={"claim_reference": "CLM-404"},
                       follow_redirects=True).get_data(as_text=True)
    assert "No recorded use CLM-404 on A-1001." in text(page)


@pytest.mark.parametrize("role", ["scheduler", "coordinator"])
def test_users_without_record_usage_see_no_form_and_forged_posts_get_403(
        client: FlaskClient, login: Login, records: Any, session: Session, role: str) -> None:
    record_usage("A-1001", "CLM-1", dt.date.today(), 40, 1, "biller@example.org")
    login(role)
    page = client.get(PAGE).get_data(as_text=True)
    assert "CLM-1" in page
    assert 'id="record-usage"' not in page
    assert 'id="void-CLM-1"' not in page
    assert client.post(RECORD, data=use(claim_reference="CLM-2")).status_code == 403
    assert client.post(VOID, data={"claim_reference": "CLM-1"}).status_code == 403
    assert totals(session) == (40, 1)


def test_forms_need_the_csrf_token(app: Flask, client: FlaskClient, login: Login, records: Any,
                                   session: Session) -> None:
    login("biller")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        page = client.get(PAGE).get_data(as_text=True)
        assert 'name="csrf_token"' in page
        assert client.post(RECORD, data=use()).status_code == 400
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
        assert token is not None
        response = client.post(RECORD, data={**use(), "csrf_token": token[1]})
        assert response.status_code == 302
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert totals(session) == (40, 1)


def test_claim_check_links_to_the_matched_authorizations_usage(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    login("biller")
    form = {"payer": "ACME", "patient": "P001", "date_of_service": dt.date.today().isoformat(),
            "diagnoses": "M05.79", "place_of_service": "11", "drug": "J1745",
            "administered_mg": "350", "packages": "100x4",
            "lines-0-code": "J1745", "lines-0-units": "35"}
    page = client.post("/admin/claims/", data=form).get_data(as_text=True)
    link = re.search(r'<a id="matched-usage" href="([^"]+)">([^<]+)</a>', page)
    assert link is not None
    # The record form opens with the claim's date and the units it bills for the drug.
    assert html.unescape(link[1]) == f"{PAGE}&units=35&date={dt.date.today().isoformat()}"
    assert "record or void this claim's use" in html.unescape(link[2])
