"""POST /api/v1/remittances, GET /api/v1/denials and the import-remittance command."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient, FlaskCliRunner

from tests.remittances.builder import Cas, Claim, Line, build_835
from tests.remittances.conftest import World

DRUG = Line("J1745", 1000, units=35, adjustments=[Cas("CO", "45", 200)])
DENIED = Line("96413", 300, adjustments=[Cas("CO", "197", 300)], rarcs=["N54"])
FILE = build_835([Claim("CLM-1", [DRUG, DENIED], authorization="A-1001")])


def post(client: FlaskClient, headers: dict, body: str | bytes = FILE,
         content_type: str = "application/edi-x12"):
    return client.post("/api/v1/remittances", data=body,
                       headers={**headers, "Content-Type": content_type})


def test_post_imports_then_the_same_file_again_is_200_and_changes_nothing(
        client: FlaskClient, world: World, auth_header) -> None:
    headers = auth_header("biller")
    first = post(client, headers)
    assert first.status_code == 201, first.get_json()
    (payment,) = first.get_json()
    (claim,) = payment["claims"]
    assert (claim["outcome"], claim["authorization"], claim["units_recorded"]) == (
        "partially_paid", "A-1001", 35)
    assert claim["denials"][0]["carc"] == "197" and claim["denials"][0]["rarc"] == "N54"
    again = post(client, headers, content_type="text/plain")
    assert again.status_code == 200 and again.get_json()[0]["already_imported"] is True
    assert world.authorization.used_units == 35


def test_a_malformed_body_is_a_422_naming_segment_and_element(client: FlaskClient, world: World,
                                                              auth_header) -> None:
    bad = FILE.replace("CLP*CLM-1*1*1300", "CLP*CLM-1*1*13X0")
    response = post(client, auth_header("biller"), bad)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["errors"][0]["field"] == "segment 13 (CLP), element CLP03"
    assert world.authorization.used_units == 0


@pytest.mark.parametrize(("body", "content_type", "status"), [
    (FILE, "application/json", 415),
    ("ISA*é".encode(), "text/plain", 422),
])
def test_wrong_content_type_or_bytes(client: FlaskClient, world: World, auth_header, body,
                                     content_type, status) -> None:
    response = post(client, auth_header("biller"), body, content_type)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(("role", "status"), [("admin", 201), ("biller", 201),
                                              ("coordinator", 403), ("scheduler", 403)])
def test_who_may_import(client: FlaskClient, world: World, auth_header, role, status) -> None:
    assert post(client, auth_header(role)).status_code == status


@pytest.mark.parametrize(("role", "status"), [("admin", 200), ("biller", 200),
                                              ("coordinator", 200), ("scheduler", 403)])
def test_who_may_read_denials(client: FlaskClient, world: World, auth_header, role,
                              status) -> None:
    assert client.get("/api/v1/denials", headers=auth_header(role)).status_code == status


def test_denials_filter_by_payer_and_dates_and_say_what_prevents_them(
        client: FlaskClient, world: World, auth_header) -> None:
    post(client, auth_header("biller"))
    headers = auth_header("coordinator")
    body = client.get("/api/v1/denials?payer=ACME&from=2026-03-01&to=2026-03-31",
                      headers=headers).get_json()
    assert body["total"] == 1
    (denial,) = body["items"]
    assert {k: denial[k] for k in ("carc", "rarc", "group", "claim_reference", "authorization",
                                   "amount", "appeal_due")} == {
        "carc": "197", "rarc": "N54", "group": "CO", "claim_reference": "CLM-1",
        "authorization": "A-1001", "amount": "300.00", "appeal_due": "2026-06-16"}
    assert denial["description"] and "AUTH_DRUG_MISMATCH" in denial["preventable_by"]
    later = client.get("/api/v1/denials?from=2026-04-01", headers=headers).get_json()
    assert later["total"] == 0
    unknown = client.get("/api/v1/denials?payer=NOPE", headers=headers)
    assert unknown.status_code == 422 and unknown.get_json()["errors"][0]["field"] == "payer"
    bad = client.get("/api/v1/denials?from=March", headers=headers)
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "from"


def test_cli_imports_and_a_second_run_changes_nothing(runner: FlaskCliRunner, world: World,
                                                      tmp_path: Path) -> None:
    path = tmp_path / "era.835"
    path.write_text(FILE)
    first = runner.invoke(args=["import-remittance", str(path)])
    assert first.exit_code == 0, first.output
    assert "CLM-1: partially_paid" in first.output and "CO-197" in first.output
    assert "used 35 unit(s) and 1 visit(s) of A-1001" in first.output
    second = runner.invoke(args=["import-remittance", str(path)])
    assert second.exit_code == 0 and "nothing changed" in second.output
    assert world.authorization.used_units == 35


def test_cli_names_the_bad_segment_and_exits_1(runner: FlaskCliRunner, world: World,
                                               tmp_path: Path) -> None:
    path = tmp_path / "bad.835"
    path.write_text(FILE.replace("CAS*CO*197", "CAS*ZZ*197"))
    result = runner.invoke(args=["import-remittance", str(path)])
    assert result.exit_code == 1
    assert "Nothing was written" in result.output and "element CAS01" in result.output
    assert world.authorization.used_units == 0
