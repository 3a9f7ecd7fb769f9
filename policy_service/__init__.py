"""Payer-policy and authorization rules service for rheumatology biologic infusions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def create_app(test_config: dict[str, Any] | None = None, *, web: bool = True) -> Flask:
    """Build the Flask application: config, extensions, API, admin, CLI.

    ``web=False`` leaves out the HTTP API, CDS Hooks and the admin pages, for a command that
    serves no page (``check``, ``import``, ``seed``...): they are half of the start-up time.
    """
    from flask_security import Security, SQLAlchemyUserDatastore

    from policy_service.audit import init_audit
    from policy_service.auth import init_token_authenticated_paths
    from policy_service.config import ENV_PREFIX, build_config, check_config, engine_options
    from policy_service.database import init_engine_events
    from policy_service.errors import init_errors
    from policy_service.extensions import csrf, db, migrate
    from policy_service.logging import init_logging, init_request_log
    from policy_service.models import Role, User
    from policy_service.request_guard import init_request_guard
    from policy_service.revisions import init_revisions
    from policy_service.security_headers import init_security_headers

    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(build_config(Path(app.instance_path)))
    app.config.from_prefixed_env(ENV_PREFIX)
    if test_config:
        app.config.from_mapping(test_config)
    check_config(app.config)
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS",
                          engine_options(app.config["SQLALCHEMY_DATABASE_URI"]))

    init_logging(app)
    init_request_log(app)
    db.init_app(app)
    # SQLite cannot ALTER most things; batch mode rebuilds tables the same way on both.
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True,
                     compare_type=True)
    csrf.init_app(app)
    # One Security per app: Flask-Security keeps its settings (the password hashing among them)
    # on the object, so a shared one took the settings of whichever app was built last.
    Security(app, SQLAlchemyUserDatastore(db, User, Role))
    init_token_authenticated_paths(app)
    init_errors(app)
    init_request_guard(app)
    init_audit()
    init_revisions()
    init_engine_events()
    init_security_headers(app)

    if web:
        from policy_service.api import init_api

        init_api(app)

        from admin import init_admin

        init_admin(app)

    from policy_service.cli import register_commands

    register_commands(app)
    return app
