"""Login hardening: rate-limited failures, expiring sessions, cookie flags, a styled page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from admin.login_guard import LoginRateLimiter
from policy_service.models import LoginFailure

PASSWORD = "correct-horse-battery"


def test_login_page_looks_like_the_product(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    assert "Policy service" in page
    assert 'name="password"' in page


def test_failed_logins_are_rate_limited(app: Flask, client: FlaskClient,
                                        make_user: Callable[..., tuple[Any, str]]) -> None:
    user, _ = make_user("coordinator")
    other, _ = make_user("scheduler")
    limit = app.config["LOGIN_RATE_LIMIT"]
    for _ in range(limit):
        failed = client.post("/login", data={"email": user.email, "password": "wrong-password"})
        assert failed.status_code == 200
    refused = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert refused.status_code == 429
    assert "Too many failed sign-in attempts" in refused.get_data(as_text=True)
    assert int(refused.headers["Retry-After"]) > 0
    assert client.get("/admin/").status_code == 302
    # Another account from the same address is not locked out.
    assert client.post("/login", data={"email": other.email,
                                       "password": PASSWORD}).status_code == 302


def test_rate_limit_window_slides(session: Session) -> None:
    limiter = LoginRateLimiter(limit=2, window_seconds=60)
    key = ("a@example.org", "127.0.0.1")
    limiter.record_failure(key, now=0)
    limiter.record_failure(key, now=10)
    assert limiter.retry_after(key, now=20) == 41
    assert limiter.retry_after(key, now=61) == 0


def test_every_worker_counts_the_same_failures(session: Session) -> None:
    """Two limiters (two gunicorn workers) share one count through the database."""
    first, second = LoginRateLimiter(2, 60), LoginRateLimiter(2, 60)
    key = ("a@example.org", "127.0.0.1")
    first.record_failure(key, now=100)
    second.record_failure(key, now=101)
    assert first.retry_after(key, now=102) == second.retry_after(key, now=102) == 59
    stored = session.scalars(select(LoginFailure.key_digest)).all()
    assert len(stored) == 2 and all(len(d) == 64 and "@" not in d for d in stored)
    second.reset(key)
    assert first.retry_after(key, now=102) == 0


def test_session_cookie_expires_and_is_protected(client: FlaskClient,
                                                 login: Callable[[str], Any]) -> None:
    login("biller")
    response = client.get("/admin/")
    cookie = response.headers.get("Set-Cookie", "")
    assert "Expires=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert response.headers["X-Frame-Options"] == "DENY"


def test_logout_ends_the_session(client: FlaskClient, login: Callable[[str], Any]) -> None:
    login("coordinator")
    assert client.get("/admin/").status_code == 200
    page = client.get("/admin/").get_data(as_text=True)
    assert 'action="/logout"' in page
    assert client.post("/logout").status_code == 302
    assert client.get("/admin/").location.startswith("/login")
