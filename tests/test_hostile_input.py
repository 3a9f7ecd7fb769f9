"""Hostile input against every JSON endpoint: each answer is a 4xx problem+json, quickly.

Endpoints come from the app's route list and their fields from the served OpenAPI document, so
an endpoint added later is covered without touching this file. Known endpoints start from a
valid request (so a hostile value reaches the service, not only the schema); others start from
their documented example, or an empty object.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.claims.world import CLEAN_CLAIM
from tests.claims.world import build_world as build_claims_world
from tests.eligibility.world import BASE_REQUEST

PROBLEM = "application/problem+json"
# A hostile request must be answered long before a worker is killed (60 s); the bound is loose
# so a busy test machine does not make it flaky.
ANSWER_WITHIN_SECONDS = 3.0
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
PLACEHOLDER = "__hostile_raw_token__"

# Valid requests to mutate, keyed by route pattern and method.
BASES: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/v1/eligibility", "POST"): BASE_REQUEST,
    ("/api/v1/eligibility/batch", "POST"): {"items": [BASE_REQUEST]},
    ("/api/v1/claims/check", "POST"): CLEAN_CLAIM,
    ("/api/v1/authorizations/<number>/usage", "POST"): {
        "claim_reference": "CLM-HOSTILE-1", "date_of_service": "2026-03-10", "units": 1},
}
PATH_VALUES = {"number": "A-1001", "hcpcs": "J1745", "code": "MEDICARE-B",
               "claim_reference": "CLM-HOSTILE-1"}


@dataclass(frozen=True)
class Hostile:
    """A value to put in a field: ``raw`` is JSON text, spliced in as is."""

    name: str
    raw: str
    kinds: frozenset[str]  # leaf kinds it is invalid for: number, integer, string, date, any


def _hostile(name: str, raw: str, *kinds: str) -> Hostile:
    return Hostile(name, raw, frozenset(kinds))


FIELD_VALUES = [
    # Decimal exponents that stalled a worker, and their neighbours.
    _hostile("exp-huge", "1e999999999", "number", "integer"),
    _hostile("exp-huge-text", '"1e999999999"', "number", "integer", "date"),
    _hostile("exp-tiny-text", '"1e-999999999"', "number", "integer", "date"),
    _hostile("exp-1e-30", "1e-30", "number", "integer"),
    _hostile("exp-1E+100000-text", '"1E+100000"', "number", "integer", "date"),
    _hostile("int-4301-digits", "9" * 4301, "number", "integer", "string", "date", "any"),
    _hostile("int-40-digits", "9" * 40, "number", "integer", "string", "date"),
    _hostile("negative", "-1", "number", "integer", "string", "date"),
    _hostile("fraction-for-int", "1.5", "integer", "string", "date"),
    # Decimals may come as text (exact values); integers may not.
    _hostile("int-as-text", '"5"', "integer", "date"),
    _hostile("boolean", "true", "number", "integer", "string", "date"),
    # Text PostgreSQL or UTF-8 cannot hold.
    _hostile("nul", '"a\\u0000b"', "number", "integer", "string", "date", "any"),
    _hostile("lone-surrogate", '"\\ud800"', "number", "integer", "string", "date", "any"),
    _hostile("long-text", json.dumps("x" * 100_000), "number", "integer", "string", "date"),
    # Dates at the edge of the calendar and times mixing zones.
    _hostile("date-9999", '"9999-12-31"', "date"),
    _hostile("date-0001", '"0001-01-01"', "date"),
    _hostile("date-invalid", '"2026-02-30"', "date"),
    _hostile("nested-deep", "[" * 5000 + "]" * 5000, "number", "integer", "string", "date",
             "any"),
]

BODIES: list[tuple[str, bytes, str, int | None]] = [
    # (name, raw body, content type, exact status expected or None for any 4xx)
    ("nested-10000", b"[" * 10_000 + b"]" * 10_000, "application/json", 400),
    ("object-nested-10000", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "application/json", 400),
    ("int-5000-digits", b'{"units": ' + b"9" * 5000 + b"}", "application/json", 400),
    ("nan-literal", b'{"units": NaN}', "application/json", None),
    ("not-json", b'{"units": ', "application/json", None),
    ("not-utf8", b'{"a": "\xff\xfe"}', "application/json", 400),
    ("lone-surrogate", b'{"a": "\\udfff"}', "application/json", 400),
    ("nul-key", b'{"a\\u0000": 1}', "application/json", 400),
    ("too-large", b'{"a": "' + b"x" * (5 * 1024 * 1024) + b'"}', "application/json", 413),
    ("array-body", b"[1, 2, 3]", "application/json", None),
    ("scalar-body", b'"text"', "application/json", None),
]


def api_routes(app: Flask) -> list[tuple[str, str]]:
    """Every (route pattern, method) of the JSON API, from the app's route list."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.rule.endswith("openapi.json"):
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.rule, method))
    return sorted(routes)


def fill_path(pattern: str, value: Callable[[str], str] | None = None) -> str:
    """The route pattern with each variable filled (a known key, or ``value(name)``)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        return value(name) if value else PATH_VALUES.get(name, "NOPE-1")

    return re.sub(r"<(?:(\w+):)?(\w+)>", replace, pattern)


def openapi_path(pattern: str) -> str:
    """The OpenAPI path of a Flask route pattern."""
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", pattern)


class Document:
    """The served OpenAPI document, with ``$ref`` resolution."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Follow ``$ref`` (and a single-branch allOf/oneOf wrapper) to a schema."""
        while "$ref" in schema:
            node: Any = self.spec
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def operation(self, pattern: str, method: str) -> dict[str, Any]:
        """The OpenAPI operation of a route, or an empty one when undocumented."""
        return self.spec.get("paths", {}).get(openapi_path(pattern), {}).get(method.lower(), {})

    def body_schema(self, operation: dict[str, Any]) -> dict[str, Any] | None:
        """The JSON request body schema of an operation."""
        content = operation.get("requestBody", {}).get("content", {})
        media = content.get("application/json")
        return self.resolve(media["schema"]) if media and "schema" in media else None

    def example(self, operation: dict[str, Any]) -> Any:
        """The documented example body of an operation, if any."""
        media = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "example" in media:
            return media["example"]
        examples = media.get("examples") or {}
        return next((e.get("value") for e in examples.values()), None)

    def leaves(self, schema: dict[str, Any], path: tuple[Any, ...] = (),
               depth: int = 0) -> Iterator[tuple[tuple[Any, ...], str]]:
        """Yield (path, kind) for every scalar field reachable in ``schema``."""
        schema = self.resolve(schema)
        if depth > 6:
            return
        branches = schema.get("oneOf") or schema.get("anyOf") or schema.get("allOf")
        if branches:
            for branch in branches:
                yield from self.leaves(branch, path, depth + 1)
            return
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            for name, sub in (schema.get("properties") or {}).items():
                if not self.resolve(sub).get("readOnly"):
                    yield from self.leaves(sub, (*path, name), depth + 1)
        elif kind == "array":
            yield from self.leaves(schema.get("items") or {}, (*path, 0), depth + 1)
        elif kind in ("integer", "number"):
            yield path, kind
        elif kind == "string":
            is_date = schema.get("format") in ("date", "date-time")
            yield path, "date" if is_date else "string"
        else:
            yield path, "any"


def set_path(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    """Return ``body`` with ``value`` at ``path``, creating objects and lists on the way."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(body) if isinstance(body, list) and body else [{}]
        items[0] = set_path(items[0], rest, value)
        return items
    node = dict(body) if isinstance(body, dict) else {}
    node[head] = set_path(node.get(head), rest, value)
    return node


def splice(body: Any, path: tuple[Any, ...], raw: str) -> bytes:
    """The body as JSON text with the raw token ``raw`` at ``path``."""
    text = json.dumps(set_path(copy.deepcopy(body), path, PLACEHOLDER))
    return text.replace(json.dumps(PLACEHOLDER), raw, 1).encode()


@pytest.fixture
def hostile_client(client: FlaskClient, auth_header: Callable[[str], dict[str, str]],
                   ) -> tuple[FlaskClient, dict[str, str]]:
    """A client in a world where the base requests are valid, with an admin token."""
    build_claims_world()
    headers = auth_header("admin")
    for (pattern, method), body in BASES.items():
        # Warm up: the first check of a process loads the rulesets, which is not what is timed.
        if method == "POST" and "usage" not in pattern:
            assert client.post(pattern, json=body, headers=headers).status_code == 200
    return client, headers


@pytest.fixture
def document(hostile_client: tuple[FlaskClient, dict[str, str]]) -> Document:
    """The OpenAPI document the app serves."""
    client, headers = hostile_client
    response = client.get("/api/v1/openapi.json", headers=headers)
    assert response.status_code == 200
    return Document(response.json)


def answer(client: FlaskClient, method: str, url: str, headers: dict[str, str],
           data: bytes | None = None, content_type: str = "application/json",
           ) -> tuple[int, str, float, str]:
    """Send one request; return status, content type, seconds taken and the body's start."""
    started = time.perf_counter()
    response = client.open(url, method=method, data=data, headers=headers,
                           content_type=content_type if data is not None else None)
    elapsed = time.perf_counter() - started
    return (response.status_code, response.mimetype, elapsed,
            response.get_data(as_text=True)[:160])


def refused(status: int, mimetype: str, elapsed: float, expected: int | None = None) -> bool:
    """Whether an answer is the quick 4xx problem+json a hostile request deserves."""
    in_range = status == expected if expected else 400 <= status < 500
    return in_range and mimetype == PROBLEM and elapsed < ANSWER_WITHIN_SECONDS


def test_routes_are_discovered(app: Flask) -> None:
    """The table runs against the real route list, which has every known endpoint."""
    found = set(api_routes(app))
    assert set(BASES) <= found
    assert ("/api/v1/drugs", "GET") in found


@pytest.mark.parametrize("hostile", FIELD_VALUES, ids=lambda h: h.name)
def test_hostile_field_values_are_refused(app: Flask, hostile_client, document,
                                          hostile: Hostile) -> None:
    """Every field of every JSON body refuses values it cannot take, quickly, as a problem."""
    client, headers = hostile_client
    failures = []
    tried = 0
    for pattern, method in api_routes(app):
        if method not in BODY_METHODS:
            continue
        operation = document.operation(pattern, method)
        schema = document.body_schema(operation)
        if schema is None:
            continue
        base = BASES.get((pattern, method)) or document.example(operation) or {}
        for path, kind in document.leaves(schema):
            if kind not in hostile.kinds:
                continue
            tried += 1
            status, mimetype, elapsed, text = answer(
                client, method, fill_path(pattern), headers, splice(base, path, hostile.raw))
            if not refused(status, mimetype, elapsed):
                failures.append((method, pattern, path, status, round(elapsed, 2), text))
    assert tried, "no field of any endpoint takes this kind of value"
    assert failures == []


@pytest.mark.parametrize(("name", "body", "content_type", "expected"), BODIES,
                         ids=[b[0] for b in BODIES])
def test_hostile_bodies_are_refused(app: Flask, hostile_client, document: Document, name: str,
                                    body: bytes, content_type: str,
                                    expected: int | None) -> None:
    """Every endpoint that reads a body refuses unreadable or oversized ones.

    An operation the document declares without a request body (renew) ignores what is sent.
    """
    client, headers = hostile_client
    failures = []
    for pattern, method in api_routes(app):
        operation = document.operation(pattern, method)
        takes_body = "requestBody" in operation or not operation
        if method in BODY_METHODS and takes_body:
            status, mimetype, elapsed, text = answer(client, method, fill_path(pattern),
                                                     headers, body, content_type)
            if not refused(status, mimetype, elapsed, expected):
                failures.append((method, pattern, status, round(elapsed, 2), text))
    assert failures == []


PATH_HOSTILES = [("nul", "A%00B"), ("lone-surrogate", "%ED%A0%80"),
                 ("encoded-surrogate-pair-half", "%ED%B0%80x"), ("too-long", "x" * 5000)]


@pytest.mark.parametrize(("name", "value"), PATH_HOSTILES, ids=[p[0] for p in PATH_HOSTILES])
def test_hostile_path_values_are_refused(app: Flask, hostile_client, name: str,
                                         value: str) -> None:
    """Every path variable of every route refuses NUL bytes, surrogates and huge values."""
    client, headers = hostile_client
    failures = []
    for pattern, method in api_routes(app):
        if "<" not in pattern:
            continue
        data = b"{}" if method in BODY_METHODS else None
        status, mimetype, elapsed, text = answer(
            client, method, fill_path(pattern, lambda _name: value), headers, data)
        if not refused(status, mimetype, elapsed):
            failures.append((method, pattern, status, text))
    assert failures == []


QUERY_HOSTILES: list[tuple[str, str, frozenset[str]]] = [
    ("nul", "a%00b", frozenset({"string", "integer", "number", "date", "any"})),
    # A query string is decoded with replacement characters: text filters just match nothing.
    ("lone-surrogate", "%ED%A0%80", frozenset({"integer", "number", "date"})),
    ("too-long", "x" * 5000, frozenset({"string", "integer", "number", "date", "any"})),
    ("int-40-digits", "9" * 40, frozenset({"integer", "number", "date"})),
    ("negative", "-1", frozenset({"integer", "date"})),
    ("fraction", "1.5", frozenset({"integer", "date"})),
    ("exponent", "1e999999999", frozenset({"integer", "number", "date"})),
    # A far date in a list filter just matches nothing; in a body it is refused (see above).
    ("date-9999-for-number", "9999-12-31", frozenset({"integer", "number"})),
]


@pytest.mark.parametrize(("name", "value", "kinds"), QUERY_HOSTILES,
                         ids=[q[0] for q in QUERY_HOSTILES])
def test_hostile_query_values_are_refused(app: Flask, hostile_client, document, name: str,
                                          value: str, kinds: frozenset[str]) -> None:
    """Every documented query parameter refuses values it cannot take (page far too deep...)."""
    client, headers = hostile_client
    failures = []
    tried = 0
    for pattern, method in api_routes(app):
        operation = document.operation(pattern, method)
        for parameter in operation.get("parameters", []):
            parameter = document.resolve(parameter)
            if parameter.get("in") != "query":
                continue
            schema = document.resolve(parameter.get("schema") or {})
            kind = schema.get("type", "any")
            if schema.get("format") in ("date", "date-time"):
                kind = "date"
            if kind not in kinds:
                continue
            tried += 1
            url = f"{fill_path(pattern)}?{parameter['name']}={value}"
            status, mimetype, elapsed, text = answer(client, method, url, headers)
            if not refused(status, mimetype, elapsed):
                failures.append((method, pattern, parameter["name"], status, text))
    assert tried
    assert failures == []
