"""The JSON API under /api/v1: token-authenticated, documented by OpenAPI."""

from __future__ import annotations

from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, Response, request
from flask_smorest import Api
from marshmallow import Schema
from werkzeug.exceptions import HTTPException

from policy_service.api.openapi import complete_document
from policy_service.auth import Permission, require_token
from policy_service.errors import http_problem, problem_response, wants_problem
from policy_service.extensions import csrf


class ProblemApi(Api):
    """flask-smorest's Api answering errors in problem+json under /api, plain HTML elsewhere."""

    def handle_http_exception(self, error: HTTPException) -> Response | HTTPException:
        """Render an HTTP error as problem+json on API paths."""
        if wants_problem():
            return problem_response(http_problem(error))
        return error


def schema_name(schema: type[Schema] | Schema) -> str:
    """Name OpenAPI components by module and class (ClaimsLine, EligibilityLine), never twice."""
    cls = schema if isinstance(schema, type) else type(schema)
    module = cls.__module__.rsplit(".", 1)[-1]
    base = cls.__name__.removesuffix("Schema")
    return base if base.lower().startswith(module.lower()) else f"{module.title()}{base}"


OPENAPI_PATH = "/api/v1/openapi.json"
# Rules a field cannot say about itself, added to the named component schema.
SCHEMA_EXTRAS: dict[str, dict[str, Any]] = {
    # A dose is given in mg or in mg/kg, not both and not neither.
    "EligibilityDose": {"oneOf": [{"required": ["mg"]}, {"required": ["mg_per_kg"]}]},
}
API_BLUEPRINTS: list[str] = ["eligibility", "reference", "usage", "claims", "appointments",
                             "remittances", "policies",
                             "authorizations", "worklist", "providers"]


def init_api(app: Flask) -> Api:
    """Create the API for ``app`` and register every blueprint (tokens, not cookies: no CSRF)."""
    api = ProblemApi(app, spec_kwargs={
        "marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=schema_name),
        "components": {"securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearerAuth": []}],
    })
    from importlib import import_module

    for module_name in API_BLUEPRINTS:
        blueprint = import_module(f"policy_service.api.{module_name}").blp
        csrf.exempt(blueprint)
        api.register_blueprint(blueprint, url_prefix=f"/api/v1{blueprint.url_prefix or ''}")
    complete_document(api.spec, SCHEMA_EXTRAS)
    from policy_service.api.cds import bp as cds_blueprint

    # CDS Hooks callers sign JWTs; they have no session and no CSRF token.
    csrf.exempt(cds_blueprint)
    app.register_blueprint(cds_blueprint)

    @app.before_request
    def guard_openapi_document() -> None:
        # The API document is behind a token too: every endpoint needs login or a token.
        if request.path == OPENAPI_PATH:
            require_token(Permission.READ)

    app.extensions["policy_api"] = api
    return api
