"""Login hardening: rate-limited failures, expiring sessions, cookie flags, a styled page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, g
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


def _saved_session(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def _replay(client: FlaskClient, saved: str) -> int:
    """Put a saved session cookie back and return the status of the admin home page."""
    # The test's app context outlives requests, and Flask-Login caches the signed-in user on
    # ``g`` there; a server starts each request without it.
    g.pop("_login_user", None)
    client.set_cookie("session", saved)
    return client.get("/admin/").status_code


def test_a_saved_session_cookie_is_dead_after_logout(client: FlaskClient,
                                                     login: Callable[[str], Any]) -> None:
    login("coordinator")
    saved = _saved_session(client)
    assert client.post("/logout").status_code == 302
    assert _replay(client, saved) == 302


def test_deactivation_ends_sessions_for_good(app: Flask, client: FlaskClient,
                                             login: Callable[[str], Any]) -> None:
    from policy_service.auth import set_user_active

    user = login("scheduler")
    saved = _saved_session(client)
    set_user_active(user, False)
    assert _replay(client, saved) == 302
    set_user_active(user, True)
    # Reactivated: the user signs in again; the old cookie stays dead.
    assert _replay(client, saved) == 302


def test_role_change_ends_sessions(client: FlaskClient, login: Callable[[str], Any]) -> None:
    from policy_service.auth import set_user_role

    user = login("coordinator")
    saved = _saved_session(client)
    set_user_role(user, "scheduler")
    assert _replay(client, saved) == 302


def test_login_pages_send_a_well_formed_cache_control(client: FlaskClient) -> None:
    for url in ("/login", "/change-password"):
        header = client.get(url).headers["Cache-Control"]
        assert "=True" not in header
        assert "no-store" in header


def test_remember_cookie_is_same_site(app: Flask, client: FlaskClient,
                                      make_user: Callable[..., tuple[Any, str]]) -> None:
    user, _ = make_user("biller")
    response = client.post("/login", data={"email": user.email, "password": PASSWORD,
                                           "remember": "y"})
    assert response.status_code == 302
    remember = [c for c in response.headers.getlist("Set-Cookie")
                if c.startswith(app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))]
    assert remember and all("SameSite=Lax" in c and "HttpOnly" in c for c in remember)


def test_parallel_failed_logins_never_pass_the_limit(app: Flask, committed_db: None) -> None:
    """Each attempt is counted before its password is checked, so parallel ones cannot race
    past the limit (20 at once used to get 8 password checks against a limit of 5)."""
    from concurrent.futures import ThreadPoolExecutor

    from policy_service.auth import create_user
    from policy_service.extensions import db

    email = create_user("parallel@example.org", "biller", PASSWORD).email
    db.session.commit()
    # This thread must hold no SQLite read transaction while the attempts write.
    db.session.close()

    def attempt(_: int) -> int:
        return app.test_client().post(
            "/login", data={"email": email, "password": "wrong-password"}).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(attempt, range(20)))
    checked = statuses.count(200)
    assert checked <= app.config["LOGIN_RATE_LIMIT"]
    assert statuses.count(429) == 20 - checked
