"""Configuration: defaults, then POLICY_* from the environment, then the test mapping."""

from __future__ import annotations

import pytest

from policy_service import create_app


def test_policy_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICY_AUTH_EXPIRING_SOON_DAYS", "12")
    monkeypatch.setenv("POLICY_SESSION_COOKIE_SECURE", "true")
    monkeypatch.setenv("POLICY_SCHEDULE_UPLOAD_DIR", "/srv/uploads")
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "test",
                      "AUTH_UNITS_LOW_FRACTION": 0.5})
    assert app.config["AUTH_EXPIRING_SOON_DAYS"] == 12
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SCHEDULE_UPLOAD_DIR"] == "/srv/uploads"
    assert app.config["AUTH_UNITS_LOW_FRACTION"] == 0.5
