"""Login hardening: failed logins rate-limited per email and address; sessions expire.

The failure counts live in process memory: the limit slows guessing through one worker,
which is what matters for a small practice deployment, and needs no extra server.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque

from flask import Flask, Response, render_template, request, session
from flask_security import current_user

LOGIN_ENDPOINT = "security.login"


class LoginRateLimiter:
    """Counts failed logins per key in a sliding window."""

    def __init__(self, limit: int, window_seconds: int) -> None:
        self.limit = limit
        self.window_seconds = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        return failures

    def retry_after(self, key: tuple[str, str], now: float | None = None) -> int:
        """Return seconds until ``key`` may try again (0 when it may try now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(key, now)
            if len(failures) < self.limit:
                return 0
            return max(int(failures[0] + self.window_seconds - now) + 1, 1)

    def record_failure(self, key: tuple[str, str], now: float | None = None) -> None:
        """Count one failed login for ``key``."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._recent(key, now).append(now)

    def reset(self, key: tuple[str, str]) -> None:
        """Forget the failures of ``key`` after a successful login."""
        with self._lock:
            self._failures.pop(key, None)


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
        # The token-authenticated API keeps no session, so it gets no cookie.
        if not request.path.startswith("/api/"):
            session.permanent = True
        if not _is_login_post():
            return None
        wait = limiter.retry_after(_login_key())
        if not wait:
            return None
        minutes = max(round(wait / 60), 1)
        body = render_template("security/rate_limited.html", minutes=minutes)
        return Response(body, status=429, headers={"Retry-After": str(wait)})

    @app.after_request
    def count_failed_login(response: Response) -> Response:
        if _is_login_post() and response.status_code != 429:
            if current_user.is_authenticated:
                limiter.reset(_login_key())
            else:
                limiter.record_failure(_login_key())
        return response

    return limiter
