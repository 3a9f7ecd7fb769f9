"""Login hardening: failed logins rate-limited per email and address; sessions expire.

Failures are rows in the database, so every gunicorn worker (and every host) counts the same
attempts; a limit kept in process memory would let each worker allow its own five.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from typing import Any

from flask import Flask, Response, render_template, request, session
from flask_login import user_logged_out
from flask_security import current_user
from sqlalchemy import delete, func, select

from policy_service.auth import end_sessions, token_authenticated
from policy_service.database import run_serialized
from policy_service.extensions import db
from policy_service.models import LoginFailure

LOGIN_ENDPOINT = "security.login"


def _digest(key: tuple[str, str]) -> str:
    return hashlib.sha256("\x1f".join(key).encode()).hexdigest()


class LoginRateLimiter:
    """Counts failed logins per (email, address) in a sliding window, in the database."""

    def __init__(self, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window_seconds = window_seconds

    def retry_after(self, key: tuple[str, str], now: float | None = None) -> int:
        """Return seconds until ``key`` may try again (0 when it may try now)."""
        now = time.time() if now is None else now
        count, oldest = db.session.execute(
            select(func.count(), func.min(LoginFailure.at))
            .where(LoginFailure.key_digest == _digest(key),
                   LoginFailure.at > now - self.window_seconds)).one()
        if count < self.limit:
            return 0
        return max(int(oldest + self.window_seconds - now) + 1, 1)

    def admit(self, key: tuple[str, str], now: float | None = None) -> int:
        """Count this attempt before its password is checked; return seconds to wait (0: go on).

        The attempt is committed first and the count taken after, so of any number of parallel
        attempts at most ``limit`` see a count within the limit; a refused attempt is uncounted
        again, so hammering does not lengthen the lock-out.
        """
        now = time.time() if now is None else now
        digest = _digest(key)

        def count_attempt() -> LoginFailure:
            db.session.execute(delete(LoginFailure).where(
                LoginFailure.at <= now - self.window_seconds))
            attempt = LoginFailure(key_digest=digest, at=now)
            db.session.add(attempt)
            return attempt

        attempt = run_serialized(count_attempt)
        count, oldest = db.session.execute(
            select(func.count(), func.min(LoginFailure.at))
            .where(LoginFailure.key_digest == digest,
                   LoginFailure.at > now - self.window_seconds)).one()
        if count <= self.limit:
            return 0
        run_serialized(lambda: db.session.execute(
            delete(LoginFailure).where(LoginFailure.id == attempt.id)))
        return max(int(oldest + self.window_seconds - now) + 1, 1)

    def record_failure(self, key: tuple[str, str], now: float | None = None) -> None:
        """Count one failed login for ``key`` (and forget failures older than any window)."""
        now = time.time() if now is None else now
        db.session.execute(delete(LoginFailure).where(
            LoginFailure.at <= now - self.window_seconds))
        db.session.add(LoginFailure(key_digest=_digest(key), at=now))
        db.session.commit()

    def reset(self, key: tuple[str, str]) -> None:
        """Forget the failures of ``key`` after a successful login."""
        db.session.execute(delete(LoginFailure).where(LoginFailure.key_digest == _digest(key)))
        db.session.commit()


def _login_key() -> tuple[str, str]:
    email = request.form.get("email", "")
    if not email and request.is_json:
        email = str((request.get_json(silent=True) or {}).get("email", ""))
    return email.strip().lower(), request.remote_addr or "?"


def _is_login_post() -> bool:
    return request.endpoint == LOGIN_ENDPOINT and request.method == "POST"


def init_login_guard(app: Flask) -> LoginRateLimiter:
    """Install the login rate limit and session expiry on ``app``."""
    limiter = LoginRateLimiter(int(app.config.get("LOGIN_RATE_LIMIT", 5)),
                               int(app.config.get("LOGIN_RATE_WINDOW_SECONDS", 300)))
    app.extensions["login_rate_limiter"] = limiter
    lifetime = app.config.get("PERMANENT_SESSION_LIFETIME", 8 * 3600)
    seconds = lifetime.total_seconds() if isinstance(lifetime, dt.timedelta) else lifetime
    # "Remember me" must not outlive a session, or sessions would never really expire.
    app.config.setdefault("REMEMBER_COOKIE_DURATION", dt.timedelta(seconds=seconds))

    @app.before_request
    def refuse_rate_limited_login() -> Response | None:
        # Expiring cookies: the browser drops the session after PERMANENT_SESSION_LIFETIME.
        # Token-authenticated paths (the API, CDS Hooks) keep no session, so get no cookie.
        if not token_authenticated(request.path):
            session.permanent = True
        if not _is_login_post():
            return None
        wait = limiter.admit(_login_key())
        if not wait:
            return None
        minutes = max(round(wait / 60), 1)
        body = render_template("security/rate_limited.html", minutes=minutes)
        return Response(body, status=429, headers={"Retry-After": str(wait)})

    @app.after_request
    def forget_attempts_after_success(response: Response) -> Response:
        # Every attempt was counted before its password was checked; a success clears them.
        if _is_login_post() and response.status_code != 429 and current_user.is_authenticated:
            limiter.reset(_login_key())
        return response

    @user_logged_out.connect_via(app)
    def end_session_on_server(_app: Flask, user: Any = None, **_: Any) -> None:
        # The cookie is only cleared in this browser; a saved copy would still sign in.
        if user is not None and getattr(user, "id", None) is not None:
            end_sessions(user)
            db.session.commit()

    return limiter
