"""Complete the generated OpenAPI document: problem+json errors, success responses, ids, links.

flask-smorest documents what each view declares; this adds what holds for every operation, so
an endpoint added later is documented the same way: every error is ``application/problem+json``
(400, 401, 403, 404, 413, 414, 422, and 409/412/428 for writes), every operation has an
``operationId`` and a success response, and list and write operations link to the operations
that take the keys they return (schemathesis follows these links in its stateful phase).
"""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec

from policy_service.errors import PROBLEM_MIMETYPE

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An error (RFC 9457); ``errors`` names each bad field of a 422.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string", "pattern": "^[A-Z0-9_]+$"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "message"],
            "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
    },
    "required": ["type", "title", "status", "code"],
}

# Status -> description of the problem responses every operation (or every write) may give.
EVERY_OPERATION = {
    "400": "The request could not be read (malformed JSON, NUL bytes, nesting too deep).",
    "401": "No API token, or an unknown or revoked one.",
    "403": "The token's role may not do this.",
    "404": "No record with this key.",
    "414": "The URL is too long.",
    "422": "Invalid input; ``errors`` names every bad field.",
}
WRITES = {
    "409": "The request conflicts with the record's state (over-spent, already done...).",
    "412": "The record changed since it was read (stale If-Match).",
    "413": "The body is too large.",
    "428": "This change needs an If-Match header.",
}
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
METHODS = ("get", "put", "post", "delete", "patch")

# (source path, method, status) -> links to (target path, method, {parameter: expression}).
LINKS: dict[tuple[str, str, str], list[tuple[str, str, dict[str, str]]]] = {
    ("/api/v1/payers", "get", "200"): [
        ("/api/v1/payers/{code}", "get", {"code": "$response.body#/items/0/id"})],
    ("/api/v1/drugs", "get", "200"): [
        ("/api/v1/drugs/{hcpcs}", "get", {"hcpcs": "$response.body#/items/0/hcpcs"})],
    ("/api/v1/providers", "get", "200"): [
        ("/api/v1/providers/{npi}", "get", {"npi": "$response.body#/items/0/npi"})],
    ("/api/v1/policies", "get", "200"): [
        ("/api/v1/policies/{code}", "get", {"code": "$response.body#/items/0/id"})],
    ("/api/v1/authorizations", "get", "200"): [
        ("/api/v1/authorizations/{number}", "get",
         {"number": "$response.body#/items/0/number"}),
        ("/api/v1/authorizations/{number}/usage", "post",
         {"number": "$response.body#/items/0/number"})],
    ("/api/v1/authorizations/{number}", "get", "200"): [
        ("/api/v1/authorizations/{number}/usage", "post", {"number": "$response.body#/number"})],
    ("/api/v1/authorizations/{number}/usage", "post", "201"): [
        ("/api/v1/authorizations/{number}/usage/{claim_reference}", "delete",
         {"number": "$response.body#/number",
          "claim_reference": "$response.body#/claim_reference"}),
        ("/api/v1/authorizations/{number}", "get", {"number": "$response.body#/number"})],
}


def operation_id(method: str, path: str) -> str:
    """A stable operationId from the method and path (get_api_v1_drugs_hcpcs)."""
    words = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
    return f"{method}_{words}".lower()


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {
        PROBLEM_MIMETYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


def complete_document(spec: APISpec, schema_extras: dict[str, dict[str, Any]]) -> None:
    """Add problem responses, success responses, operationIds and links to every operation.

    ``schema_extras`` maps a component schema name to keywords its fields cannot express
    (``oneOf`` for "exactly one of mg or mg_per_kg").
    """
    spec.components.schema("Problem", PROBLEM_SCHEMA)
    components = spec.to_dict().get("components", {})
    for name, extra in schema_extras.items():
        if name in components.get("schemas", {}):
            spec.components.schemas[name].update(extra)  # type: ignore[attr-defined]
    # flask-smorest's own error responses: the body is a problem, in problem+json.
    for name in ("DEFAULT_ERROR", "UNPROCESSABLE_ENTITY"):
        if name in spec.components.responses:  # type: ignore[attr-defined]
            description = spec.components.responses[name].get(  # type: ignore[attr-defined]
                "description", name)
            spec.components.responses[name] = _problem(description)  # type: ignore[attr-defined]
    paths: dict[str, dict[str, Any]] = spec._paths  # noqa: SLF001 - apispec keeps them here
    for path, operations in paths.items():
        for method in METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            operation.setdefault("operationId", operation_id(method, path))
            responses = operation.setdefault("responses", {})
            if not any(str(status).startswith("2") for status in responses):
                responses["2XX"] = {"description": "Done.", "content": {
                    "application/json": {"schema": {"type": "object"}}}}
            errors = {**EVERY_OPERATION, **(WRITES if method in WRITE_METHODS else {})}
            for status, description in errors.items():
                responses.setdefault(status, _problem(description))
            responses["default"] = _problem("Any other error.")
    for (path, method, status), targets in LINKS.items():
        operation = paths.get(path, {}).get(method)
        if operation is None:
            continue
        response = operation["responses"].setdefault(status, {
            "description": "Done.",
            "content": {"application/json": {"schema": {"type": "object"}}}})
        if "$ref" in response:
            continue
        links = response.setdefault("links", {})
        for target_path, target_method, parameters in targets:
            target = paths.get(target_path, {}).get(target_method)
            if target is not None:
                links[target["operationId"]] = {"operationId": target["operationId"],
                                                "parameters": parameters}
