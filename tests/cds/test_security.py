"""The EHR's JWT: ES384/RS384 from a configured client, audience, expiry, jti once, jku."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from tests.cds.conftest import BASE_URL, ISSUER, medication_request, order_sign_call, write_clients

SERVICE_URL = f"{BASE_URL}/cds-services/order-sign"


@pytest.fixture
def body(world: dict[str, Any]) -> dict[str, Any]:
    """A valid order-sign call that the world can answer."""
    return order_sign_call(medication_request())


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_both_cds_hooks_algorithms_are_accepted(call: Callable[..., Any], sign: Callable[..., str],
                                                body: dict[str, Any], alg: str) -> None:
    assert call("order-sign", body, sign(alg=alg)).status_code == 200


@pytest.mark.parametrize("aud", [SERVICE_URL, [SERVICE_URL],
                                 ["https://other.example", SERVICE_URL]],
                         ids=["string", "array", "array-with-others"])
def test_aud_may_be_a_string_or_an_array_that_includes_the_service(
        call: Callable[..., Any], sign: Callable[..., str], body: dict[str, Any],
        aud: Any) -> None:
    assert call("order-sign", body, sign(aud=aud)).status_code == 200


def test_tenant_is_optional(call: Callable[..., Any], sign: Callable[..., str],
                            body: dict[str, Any]) -> None:
    assert call("order-sign", body, sign(tenant="clinic-7")).status_code == 200


def _other_key_token(sign_claims: dict[str, Any]) -> str:
    return jwt.encode(sign_claims, ec.generate_private_key(ec.SECP384R1()), algorithm="ES384",
                      headers={"kid": "ec-1"})


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": SERVICE_URL, "exp": now + 300, "iat": now, "jti": "j-1",
            **overrides}


@pytest.mark.parametrize(("make", "says"), [
    (lambda sign: sign(aud=f"{BASE_URL}/cds-services/appointment-book"), "Audience"),
    (lambda sign: sign(aud=["https://other.example"]), "Audience"),
    (lambda sign: sign(exp=int(time.time()) - 120, iat=int(time.time()) - 400), "expired"),
    (lambda sign: sign(iss="https://stranger.example"), "issuer is not a configured client"),
    (lambda sign: sign(jti=None), "jti"),
    (lambda sign: sign(exp=int(time.time()) + 7200), "longer than an hour"),
    (lambda sign: sign(headers={"kid": "unknown"}), "kid"),
    (lambda sign: _other_key_token(_claims()), "signature"),
    (lambda sign: jwt.encode(_claims(), "a-shared-secret-long-enough-for-hs384-" * 2,
                             algorithm="HS384"), "alg must be one of"),
    (lambda sign: jwt.encode(_claims(), None, algorithm="none"), "alg must be one of"),
    (lambda sign: sign(headers={"jku": "https://attacker.example/jwks.json"}), "jku"),
    (lambda sign: "not-a-jwt", "not a JWT"),
], ids=["other-service", "other-audience", "expired", "unknown-issuer", "no-jti",
        "too-long-lived", "unknown-kid", "wrong-key", "hmac", "alg-none", "unconfigured-jku",
        "garbage"])
def test_bad_tokens_are_401(call: Callable[..., Any], sign: Callable[..., str],
                            body: dict[str, Any], make: Callable[..., str], says: str) -> None:
    reply = call("order-sign", body, make(sign))
    assert reply.status_code == 401
    assert says in reply.get_json()["detail"]
    assert "cards" not in reply.get_json()


def test_no_token_is_401(client: FlaskClient, cds_config: Path, body: dict[str, Any]) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        reply = client.post("/cds-services/order-sign", json=body, headers=headers)
        assert reply.status_code == 401
        assert reply.get_json()["code"] == "CDS_TOKEN_MISSING"


def test_a_jti_is_accepted_only_once(call: Callable[..., Any], sign: Callable[..., str],
                                     body: dict[str, Any]) -> None:
    token = sign(jti="once-only")
    assert call("order-sign", body, token).status_code == 200
    second = call("order-sign", body, token)
    assert second.status_code == 401
    assert "already used" in second.get_json()["detail"]


def test_a_jti_spent_on_a_malformed_body_is_still_spent(
        call: Callable[..., Any], sign: Callable[..., str], body: dict[str, Any]) -> None:
    token = sign(jti="spent-on-400")
    assert call("order-sign", {"hook": "order-sign"}, token).status_code == 400
    assert call("order-sign", body, token).status_code == 401


def test_a_configured_jku_is_accepted_and_never_fetched(
        call: Callable[..., Any], sign: Callable[..., str], body: dict[str, Any],
        cds_config: Path, ehr_keys: dict[str, Any]) -> None:
    jku = "https://ehr.example.org/.well-known/jwks.json"
    write_clients(cds_config, ehr_keys["jwks"], jku=[jku])
    # The name does not resolve here: a fetch would fail the call; the configured keys are used.
    assert call("order-sign", body, sign(headers={"jku": jku})).status_code == 200


def test_the_audience_is_the_configured_public_url(
        call: Callable[..., Any], sign: Callable[..., str], body: dict[str, Any], app: Flask,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "CDS_BASE_URL", "https://policy.example.com/")
    public = "https://policy.example.com/cds-services/order-sign"
    assert call("order-sign", body, sign()).status_code == 401
    assert call("order-sign", body, sign(aud=public)).status_code == 200


@pytest.mark.parametrize("content", ["not json", json.dumps({"clients": [{"iss": "x"}]})],
                         ids=["not-json", "no-keys"])
def test_an_unusable_clients_file_lets_nobody_in(
        call: Callable[..., Any], sign: Callable[..., str], body: dict[str, Any],
        cds_config: Path, content: str) -> None:
    cds_config.write_text(content)
    assert call("order-sign", body, sign()).status_code == 401


def test_discovery_needs_no_token(client: FlaskClient) -> None:
    reply = client.get("/cds-services")
    assert reply.status_code == 200
    assert {s["id"] for s in reply.get_json()["services"]} == {"appointment-book", "order-sign"}


def test_two_workers_racing_with_one_token_let_it_in_once(
        app: Flask, committed_db: None, cds_config: Path, sign: Callable[..., str]) -> None:
    token = sign(jti="raced")
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def worker() -> None:
        client = app.test_client()
        barrier.wait(timeout=10)
        # A body that is malformed after the token check: 400 when the token was let in.
        reply = client.post("/cds-services/order-sign", json={"hook": "order-sign"},
                            headers={"Authorization": f"Bearer {token}"})
        statuses.append(reply.status_code)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [400, 401]
