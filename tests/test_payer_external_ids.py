"""Payers named by others: external ids in bundles, the read API, the admin and the lookup."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from policy_service.errors import Invalid
from policy_service.services.bundle import export_bundle, import_bundle
from policy_service.services.payers import find_payer_by_external_id
from tests.factories import make_payer


def _payer(code: str, *external_ids: str) -> dict[str, Any]:
    return {"id": code, "name": f"{code} plan", "external_ids": list(external_ids)}


def test_bundle_round_trip_keeps_external_ids(session: Session) -> None:
    import_bundle({"payers": [_payer("UHC", "87726"), _payer("AETNA", "60054", "AETNA1")]},
                  "system")
    exported = {p["id"]: p for p in export_bundle()["payers"]}
    assert exported["AETNA"]["external_ids"] == ["60054", "AETNA1"]
    assert exported["UHC"]["external_ids"] == ["87726"]


def test_payer_without_external_ids_exports_an_empty_list(session: Session) -> None:
    import_bundle({"payers": [{"id": "LOCAL", "name": "Local plan"}]}, "system")
    exported = {p["id"]: p for p in export_bundle()["payers"]}
    assert exported["LOCAL"]["external_ids"] == []


@pytest.mark.parametrize(("payers", "field", "message"), [
    ([_payer("A", "87726"), _payer("B", "87726")], "payers[0].external_ids",
     "already names payer B"),
    ([_payer("A", "87726", " 87726 ")], "payers[0].external_ids", "is given twice"),
    ([_payer("A", "  ")], "payers[0].external_ids", "cannot be blank"),
    ([{"id": "A", "name": "A", "external_ids": "87726"}], "payers[0].external_ids",
     "Not a valid list"),
])
def test_bad_external_ids_are_refused(session: Session, payers: list[dict[str, Any]],
                                      field: str, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        import_bundle({"payers": payers}, "system")
    assert any(e["field"] == field and message in e["message"] for e in caught.value.errors)
    assert find_payer_by_external_id("87726") is None


def test_an_id_stored_on_another_payer_is_refused(session: Session) -> None:
    make_payer("UHC", external_ids=["87726"])
    with pytest.raises(Invalid) as caught:
        import_bundle({"payers": [_payer("UHC-MA", "87726")]}, "system")
    assert "'87726' already names payer UHC" in caught.value.errors[0]["message"]


def test_moving_an_id_between_payers_in_one_bundle_is_allowed(session: Session) -> None:
    make_payer("UHC", external_ids=["87726"])
    import_bundle({"payers": [_payer("UHC"), _payer("UHC-MA", "87726")]}, "system")
    assert find_payer_by_external_id("87726").code == "UHC-MA"


def test_lookup_by_payer_id_ignores_case_and_spaces(session: Session) -> None:
    make_payer("AETNA", external_ids=["60054", "Aet01"])
    assert find_payer_by_external_id(" 60054 ").code == "AETNA"
    assert find_payer_by_external_id("AET01").code == "AETNA"
    assert find_payer_by_external_id("AETNA").code == "AETNA"
    assert find_payer_by_external_id("99999") is None
    assert find_payer_by_external_id("") is None


def test_an_edit_to_a_payers_external_ids_is_found_by_the_next_lookup(session: Session) -> None:
    # The lookup reads the policy index, which a payer edit rebuilds (payers are policy data).
    payer = make_payer("AETNA", external_ids=["60054"])
    assert find_payer_by_external_id("60054").code == "AETNA"
    payer.external_ids = ["AET02"]
    session.flush()
    assert find_payer_by_external_id("60054") is None
    assert find_payer_by_external_id("aet02").code == "AETNA"


def test_our_own_id_wins_over_another_payers_external_id(session: Session) -> None:
    make_payer("CIGNA", external_ids=["62308"])
    make_payer("62308", name="A payer whose id looks like a payer id")
    assert find_payer_by_external_id("62308").code == "62308"


def test_api_shows_and_filters_by_external_id(client: FlaskClient, session: Session,
                                              auth_header: Any) -> None:
    make_payer("UHC", external_ids=["87726"])
    make_payer("AETNA", external_ids=["60054"])
    headers = auth_header("biller")
    one = client.get("/api/v1/payers/UHC", headers=headers).json
    assert one["external_ids"] == ["87726"]
    found = client.get("/api/v1/payers?external_id=60054", headers=headers).json
    assert [p["id"] for p in found["items"]] == ["AETNA"]
    none = client.get("/api/v1/payers?external_id=11111", headers=headers).json
    assert none["items"] == [] and none["total"] == 0


def test_seeded_payers_carry_payer_ids(runner: Any, session: Session) -> None:
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    assert find_payer_by_external_id("87726").code == "UHC"
    assert find_payer_by_external_id("03302").code == "MEDICARE-B"
