"""Configuration: defaults, then the environment, then the test mapping."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Settings given as POLICY_<NAME> in the environment override the defaults below
# (Flask's from_prefixed_env: values are read as JSON, so "true" and "30" are typed).
ENV_PREFIX = "POLICY"


def _instance_secret(instance_path: Path) -> str:
    """Return the development secret kept in the instance folder, creating it once."""
    secret_file = instance_path / "secret_key"
    if not secret_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        secret_file.write_text(secrets.token_urlsafe(48))
        secret_file.chmod(0o600)
    return secret_file.read_text().strip()


def build_config(instance_path: Path) -> dict[str, Any]:
    """Return the default configuration for an app whose instance folder is ``instance_path``."""
    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance_path / 'policy.db'}"
    secret_key = os.environ.get("SECRET_KEY") or _instance_secret(instance_path)
    config: dict[str, Any] = {
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        # Flask-Security
        "SECURITY_PASSWORD_SALT": os.environ.get("SECURITY_PASSWORD_SALT") or secret_key,
        "SECURITY_PASSWORD_HASH": "argon2",
        "SECURITY_REGISTERABLE": False,
        "SECURITY_RECOVERABLE": False,
        "SECURITY_SEND_REGISTER_EMAIL": False,
        "SECURITY_TRACKABLE": False,
        # Every signed-in user changes their own password at /change-password; no mail is
        # configured, so Flask-Security must not try to send a change notice.
        "SECURITY_CHANGEABLE": True,
        "SECURITY_CHANGE_URL": "/change-password",
        "SECURITY_SEND_PASSWORD_CHANGE_EMAIL": False,
        "SECURITY_POST_LOGIN_VIEW": "/admin/",
        "SECURITY_POST_LOGOUT_VIEW": "/login",
        "SECURITY_URL_PREFIX": None,
        "SECURITY_TOKEN_AUTHENTICATION_HEADER": "X-Unused-Auth-Token",
        "SECURITY_PASSWORD_LENGTH_MIN": 10,
        "SECURITY_PASSWORD_CHECK_BREACHED": False,
        "SECURITY_USE_VERIFY_PASSWORD_CACHE": False,
        # Sessions expire and cookies are not readable from scripts or sent cross-site.
        "PERMANENT_SESSION_LIFETIME": 8 * 3600,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # Flask-Security's default ({"private": True, "no-store": True}) renders as the malformed
        # "private=True, no-store=True"; every response already gets "no-store".
        "SECURITY_CACHE_CONTROL": {},
        "SECURITY_DEFAULT_REMEMBER_ME": False,
        "WTF_CSRF_TIME_LIMIT": 8 * 3600,
        # Failed logins allowed per address before a lock-out window.
        # The app's log level (POLICY_LOG_LEVEL); the command line's reports use WARNING.
        "LOG_LEVEL": "INFO",
        "LOGIN_RATE_LIMIT": 5,
        "LOGIN_RATE_WINDOW_SECONDS": 300,
        # flask-smorest / OpenAPI
        "API_TITLE": "Payer-policy and authorization rules service",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        # Eligibility warnings
        "AUTH_EXPIRING_SOON_DAYS": 30,
        "AUTH_UNITS_LOW_FRACTION": 0.2,
        # CDS Hooks: the JSON file of EHR clients (issuer, keys, FHIR bases), the identifier
        # system whose value is our patient id, and the public base URL tokens are addressed to
        # (default: the URL the request came in on).
        "CDS_CLIENTS_FILE": None,
        "CDS_PATIENT_IDENTIFIER_SYSTEM": None,
        "CDS_BASE_URL": None,
        # The zone the admin shows stored (UTC) times in, as an IANA name such as
        # "America/New_York"; None: the server's own zone. Checked at startup.
        "DISPLAY_TIMEZONE": None,
    }
    return config


class ConfigError(ValueError):
    """A setting has a value the app cannot run with; the message names the setting."""


def check_config(config: dict[str, Any]) -> None:
    """Raise ConfigError for a setting that would only fail later, on some page."""
    zone = config.get("DISPLAY_TIMEZONE")
    if zone in (None, ""):
        return
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(
            f"{ENV_PREFIX}_DISPLAY_TIMEZONE: {zone!r} is not a known time zone name; use an IANA "
            "name such as America/New_York or UTC, or leave it unset for the server's zone."
        ) from None


def engine_options(database_url: str) -> dict[str, Any]:
    """Return SQLAlchemy engine options suited to the database behind ``database_url``."""
    # Database errors must not carry patient data into logs: hide their SQL parameters.
    if database_url.startswith("sqlite"):
        # Writers wait for each other instead of failing at once with "database is locked".
        return {"connect_args": {"timeout": 30}, "hide_parameters": True}
    return {"pool_pre_ping": True, "hide_parameters": True}
