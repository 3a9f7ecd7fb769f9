"""The API and CDS Hooks authenticate each call by its token, never by a browser's cookie.

A signed-in browser cannot lend its login to an API call, and those paths neither read nor
set a session cookie (they also skip the cost of loading one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import g
from flask.testing import FlaskClient

from policy_service.auth import token_authenticated
from tests.admin.conftest import PASSWORD


def _sign_in(client: FlaskClient, make_user: Callable[..., tuple[Any, str]]) -> str:
    user, token = make_user("admin")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.get_data(as_text=True)[-3000:]
    assert client.get("/admin/").status_code == 200  # the cookie signs this browser in
    return token


def test_a_signed_in_browser_cookie_does_not_authenticate_an_api_call(
        client: FlaskClient, make_user: Callable[..., tuple[Any, str]]) -> None:
    _sign_in(client, make_user)
    response = client.get("/api/v1/payers")
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers


def test_api_and_cds_answers_set_no_cookie(client: FlaskClient,
                                           make_user: Callable[..., tuple[Any, str]]) -> None:
    token = _sign_in(client, make_user)
    bearer = {"Authorization": f"Bearer {token}"}
    for response in (client.get("/api/v1/payers", headers=bearer),
                     client.get("/api/v1/openapi.json", headers=bearer),
                     client.get("/cds-services")):
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers
    # The browser pages keep their session.
    page = client.get("/admin/")
    assert page.status_code == 200
    assert "session=" in page.headers.get("Set-Cookie", "")


def test_token_paths_skip_the_browser_identity(client: FlaskClient,
                                               make_user: Callable[..., tuple[Any, str]]) -> None:
    token = _sign_in(client, make_user)
    client.get("/api/v1/payers", headers={"Authorization": f"Bearer {token}"})
    assert g.identity.id is None  # the test's app context outlives its requests
    client.get("/admin/")
    assert g.identity.id is not None


def test_which_paths_are_token_authenticated() -> None:
    assert token_authenticated("/api/v1/eligibility")
    assert token_authenticated("/cds-services/order-sign-crd")
    assert token_authenticated("/cds-services")
    assert not token_authenticated("/admin/")
    assert not token_authenticated("/login")
    assert not token_authenticated("/apis")
