"""The payer page edits external ids as a list and refuses one another payer holds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from policy_service.models import Payer
from tests.factories import make_payer

Login = Callable[[str], Any]


def payer_form(payer: Payer, **overrides: str) -> dict[str, str]:
    """Edit-form data for ``payer`` as the page posts it."""
    data = {"code": payer.code, "name": payer.name, "kind": payer.kind,
            "timely_filing_days": str(payer.timely_filing_days), "external_ids": "",
            "notes": "", "expected_version": str(payer.version)}
    data.update(overrides)
    return data


def test_admin_saves_external_ids_as_a_list(client: FlaskClient, login: Login,
                                            session: Session) -> None:
    payer = make_payer("AETNA", name="Aetna", kind="commercial")
    login("admin")
    response = client.post(f"/admin/payer/edit/?id={payer.id}",
                           data=payer_form(payer, external_ids="60054,  AET01 "))
    assert response.status_code == 302, response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Payer, payer.id).external_ids == ["60054", "AET01"]
    listing = client.get("/admin/payer/").get_data(as_text=True)
    assert "60054, AET01" in listing


def test_admin_refuses_an_id_another_payer_holds(client: FlaskClient, login: Login,
                                                 session: Session) -> None:
    make_payer("UHC", name="UHC", kind="commercial", external_ids=["87726"])
    payer = make_payer("UHC-MA", name="UHC MA", kind="medicare_advantage")
    login("admin")
    response = client.post(f"/admin/payer/edit/?id={payer.id}",
                           data=payer_form(payer, external_ids="87726"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "already names payer UHC" in page
    session.expire_all()
    assert session.get(Payer, payer.id).external_ids == []
