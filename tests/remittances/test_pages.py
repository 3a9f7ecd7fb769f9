"""The remittance import page (preview, confirm, roles) and the denials report page."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from admin.remittances import EXPIRED_MESSAGE
from policy_service.models import Denial, Remittance
from tests.remittances.builder import Cas, Claim, Line, build_835
from tests.remittances.conftest import World

PASSWORD = "correct-horse-battery"
URL = "/admin/remittances/"
DRUG = Line("J1745", 1000, units=35, adjustments=[Cas("CO", "45", 200)])
DENIED = Line("96413", 300, adjustments=[Cas("CO", "197", 300)], rarcs=["N54"])
FILE = build_835([Claim("CLM-1", [DRUG, DENIED], authorization="A-1001"),
                  Claim("CLM-2", [Line("J1745", 500, units=10,
                                       adjustments=[Cas("CO", "29", 500)])], status="4")])


@pytest.fixture
def login(client: FlaskClient, make_user: Callable[..., tuple[Any, str]]) -> Callable[[str], Any]:
    """Sign a new user with ``role`` in through the login form."""

    def sign_in(role: str) -> Any:
        user, _token = make_user(role)
        response = client.post("/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 302
        return user

    return sign_in


def upload(client: FlaskClient, text: str = FILE, name: str = "era.835"):
    return client.post(URL, data={"file": (io.BytesIO(text.encode()), name)},
                       content_type="multipart/form-data")


def payload(page: str) -> str:
    return re.search(r'name="payload" type="hidden" value="([^"]+)"', page).group(1)


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_preview_shows_each_claim_and_writes_nothing(client: FlaskClient, session: Session,
                                                     login, world: World) -> None:
    login("biller")
    page = upload(client).get_data(as_text=True)
    assert "Nothing has been written yet" in page
    assert 'data-claim="CLM-1"' in page and "partially paid" in page and "CO-197" in page
    assert "uses 35 unit(s), 1 visit(s)" in page and "AUTH_DRUG_MISMATCH" in page
    assert count(session, Remittance) == 0 and world.authorization.used_units == 0


def test_confirm_imports_all_of_it_as_the_signed_in_user(client: FlaskClient, session: Session,
                                                         login, world: World) -> None:
    user = login("biller")
    preview = upload(client).get_data(as_text=True)
    page = client.post(f"{URL}confirm/", data={"payload": payload(preview)}).get_data(
        as_text=True)
    assert "Imported" in page and "CLM-2" in page
    remittance = session.scalars(select(Remittance)).one()
    assert remittance.imported_by == user.email and count(session, Denial) == 2
    assert world.authorization.used_units == 35
    again = upload(client).get_data(as_text=True)
    assert "already imported" in again and 'id="remittance-confirm"' not in again


def test_a_malformed_file_is_named_and_nothing_is_written(client: FlaskClient,
                                                          session: Session, login,
                                                          world: World) -> None:
    login("biller")
    page = upload(client, FILE.replace("CAS*CO*197", "CAS*QQ*197")).get_data(as_text=True)
    assert "Nothing was written" in page and "element CAS01" in page
    assert count(session, Remittance) == 0


def test_a_forged_confirm_is_refused(client: FlaskClient, session: Session, login,
                                     world: World) -> None:
    login("biller")
    response = client.post(f"{URL}confirm/", data={"payload": "forged"},
                           follow_redirects=True)
    assert EXPIRED_MESSAGE in response.get_data(as_text=True)
    assert count(session, Remittance) == 0


@pytest.mark.parametrize(("role", "status"), [("biller", 200), ("admin", 200),
                                              ("coordinator", 403), ("scheduler", 403)])
def test_who_may_import_on_the_page(client: FlaskClient, login, world: World, role: str,
                                    status: int) -> None:
    login(role)
    assert client.get(URL).status_code == status
    assert upload(client).status_code == status


@pytest.mark.parametrize(("role", "status"), [("biller", 200), ("coordinator", 200),
                                              ("admin", 200), ("scheduler", 403)])
def test_who_may_read_the_denials_page(client: FlaskClient, login, world: World, role: str,
                                       status: int) -> None:
    login(role)
    assert client.get("/admin/denials/").status_code == status


def test_denials_page_charts_and_filters(client: FlaskClient, login, world: World) -> None:
    login("biller")
    preview = upload(client).get_data(as_text=True)
    client.post(f"{URL}confirm/", data={"payload": payload(preview)})
    page = client.get("/admin/denials/").get_data(as_text=True)
    for chart in ("chart-rate", "chart-reasons", "chart-preventable", "chart-trend"):
        assert f'id="{chart}"' in page
    charts = page.split('id="denial-filters"', 1)[1].split('id="denials-table"', 1)[0]
    assert "<svg" in charts and "<script" not in charts
    assert page.count('class="denial-row"') == 2
    # Both claims of ACME were denied in part or whole: the rate is 100%.
    assert "100% of 2" in page
    assert "2 of 2 denials" in page
    only_29 = client.get("/admin/denials/?carc=29").get_data(as_text=True)
    assert only_29.count('class="denial-row"') == 1 and "TIMELY_FILING_EXCEEDED" in only_29
    later = client.get("/admin/denials/?start=2026-04-01").get_data(as_text=True)
    assert 'id="no-denials"' in later
    bad = client.get("/admin/denials/?start=2026-05-01&end=2026-04-01").get_data(as_text=True)
    assert "filter-error" in bad
