"""Configuration: defaults, then POLICY_* from the environment, then the test mapping."""

from __future__ import annotations

import pytest

from policy_service import create_app
from policy_service.config import ConfigError


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


def test_the_display_timezone_is_declared_and_read_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    test_config = {"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "test"}
    assert create_app(test_config).config["DISPLAY_TIMEZONE"] is None
    monkeypatch.setenv("POLICY_DISPLAY_TIMEZONE", "America/Chicago")
    assert create_app(test_config).config["DISPLAY_TIMEZONE"] == "America/Chicago"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "America/New York", "../etc/passwd", 5])
def test_an_unknown_display_timezone_stops_the_app_at_startup(zone: object) -> None:
    with pytest.raises(ConfigError, match=r"POLICY_DISPLAY_TIMEZONE: .* is not a known time "
                                          r"zone name; use an IANA name"):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "test",
                    "DISPLAY_TIMEZONE": zone})
