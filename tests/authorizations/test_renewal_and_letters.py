"""Renewal (one per authorization, linked both ways) and letters kept in the database."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from flask.testing import FlaskClient

from policy_service.errors import Invalid
from policy_service.services import authorizations as service
from policy_service.services.authorizations import add_attachment
from tests.authorizations.conftest import stored

URL = "/api/v1/authorizations"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
TIFF = b"II*\x00" + b"\x00" * 32


def test_renew_creates_the_next_request_linked_both_ways(
        client: FlaskClient, world: Any, coordinator: dict[str, str]) -> None:
    current = stored("approved", diagnoses=["M05.79"], site_of_care="office")
    response = client.post(f"{URL}/A-1001/renew", headers=coordinator)
    assert response.status_code == 201, response.get_json()
    renewal = response.get_json()
    assert renewal["status"] == "requested"
    assert renewal["renewal_of"] == "A-1001"
    assert renewal["valid_from"] == (current.valid_to + dt.timedelta(days=1)).isoformat()
    for name in ("payer", "patient", "hcpcs", "diagnoses", "site_of_care"):
        assert renewal[name] == client.get(f"{URL}/A-1001", headers=coordinator).get_json()[name]
    assert renewal["requested_units"] == 160
    original = client.get(f"{URL}/A-1001", headers=coordinator).get_json()
    assert original["renewed_by"] == renewal["number"]


def test_a_second_renewal_is_refused(client: FlaskClient, world: Any,
                                     coordinator: dict[str, str]) -> None:
    stored("approved")
    assert client.post(f"{URL}/A-1001/renew", headers=coordinator).status_code == 201
    again = client.post(f"{URL}/A-1001/renew", headers=coordinator)
    assert again.status_code == 409
    assert again.get_json()["code"] == "RENEWAL_EXISTS"


def upload(client: FlaskClient, headers: dict[str, str], data: bytes,
           name: str = "letter.pdf") -> Any:
    """POST one file as multipart ``file``."""
    return client.post(f"{URL}/A-1001/attachments", headers=headers,
                       data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


@pytest.mark.parametrize(("data", "kind", "extension"), [
    (PDF, "application/pdf", ".pdf"), (PNG, "image/png", ".png"),
    (JPEG, "image/jpeg", ".jpg"), (TIFF, "image/tiff", ".tif")])
def test_letters_are_kept_by_content(client: FlaskClient, world: Any,
                                     coordinator: dict[str, str], auth_header: Any,
                                     data: bytes, kind: str, extension: str) -> None:
    stored("approved")
    response = upload(client, coordinator, data, "../../approval letter.bin")
    assert response.status_code == 201, response.get_json()
    item = response.get_json()
    assert item["content_type"] == kind and item["size"] == len(data)
    assert item["filename"] == f"approval letter{extension}"
    listed = client.get(f"{URL}/A-1001/attachments", headers=coordinator).get_json()["items"]
    assert [a["id"] for a in listed] == [item["id"]]
    download = client.get(item["url"], headers=auth_header("scheduler"))
    assert download.status_code == 200 and download.data == data
    assert download.headers["Content-Type"] == kind
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(("data", "name"), [
    (b"<html><script>alert(1)</script></html>", "letter.pdf"),
    (b"MZ\x90\x00 executable", "scan.png"),
    (b"", "empty.pdf"),
])
def test_other_content_is_refused_whatever_its_name(
        client: FlaskClient, world: Any, coordinator: dict[str, str], data: bytes,
        name: str) -> None:
    stored("approved")
    response = upload(client, coordinator, data, name)
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "file"
    assert client.get(f"{URL}/A-1001/attachments",
                      headers=coordinator).get_json()["items"] == []


def test_letters_over_ten_megabytes_are_refused(world: Any) -> None:
    auth = stored("approved")
    limit = 10 * 1024 * 1024
    kept = add_attachment(auth, "letter.pdf", PDF + b"0" * (limit - len(PDF)), "c@example.org")
    assert kept.size == limit
    with pytest.raises(Invalid) as refused:
        add_attachment(auth, "letter.pdf", PDF + b"0" * (limit - len(PDF) + 1), "c@example.org")
    assert refused.value.errors == [{"field": "file", "message": "At most 10 MB."}]


def test_the_api_refuses_a_letter_over_the_limit(client: FlaskClient, world: Any,
                                                 coordinator: dict[str, str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # A smaller limit keeps the upload in memory; the check is the same.
    monkeypatch.setattr(service, "MAX_ATTACHMENT_BYTES", 1024)
    stored("approved")
    assert upload(client, coordinator, PDF + b"0" * 2048).status_code == 422
    assert upload(client, coordinator, PDF).status_code == 201


def test_letters_need_a_token_and_an_editor_to_upload(client: FlaskClient, world: Any,
                                                      auth_header: Any,
                                                      coordinator: dict[str, str]) -> None:
    stored("approved")
    item = upload(client, coordinator, PDF).get_json()
    assert client.get(item["url"]).status_code == 401
    assert upload(client, auth_header("biller"), PDF).status_code == 403
    assert client.get(f"{URL}/A-1001/attachments/999999", headers=coordinator).status_code == 404
