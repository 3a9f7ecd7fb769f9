"""The JSON API under /api/v1: token-authenticated, documented by OpenAPI."""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api

from policy_service.extensions import csrf

API_BLUEPRINTS: list[str] = []


def init_api(app: Flask) -> Api:
    """Create the API for ``app`` and register every blueprint (tokens, not cookies: no CSRF)."""
    api = Api(app, spec_kwargs={
        "components": {"securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    })
    from importlib import import_module

    for module_name in API_BLUEPRINTS:
        blueprint = import_module(f"policy_service.api.{module_name}").blp
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint, url_prefix=f"/api/v1{blueprint.url_prefix or ''}")
    app.extensions["policy_api"] = api
    return api
