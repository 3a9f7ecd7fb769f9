"""The served OpenAPI document: every route, problem+json errors, ids and links."""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from tests.test_hostile_input import api_routes, openapi_path

PROBLEM = "application/problem+json"


def served(client: FlaskClient, auth_header: Callable[[str], dict[str, str]]) -> dict:
    response = client.get("/api/v1/openapi.json", headers=auth_header("scheduler"))
    assert response.status_code == 200
    return response.json


def test_every_api_route_is_documented(app: Flask, client: FlaskClient, auth_header) -> None:
    """Fuzzing reads the document: a route missing from it would never be fuzzed."""
    paths = served(client, auth_header)["paths"]
    for pattern, method in api_routes(app):
        assert method.lower() in paths.get(openapi_path(pattern), {}), (method, pattern)


def test_every_operation_answers_errors_in_problem_json(client: FlaskClient,
                                                        auth_header) -> None:
    document = served(client, auth_header)
    assert document["openapi"].startswith("3.")
    ids = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            ids.append(operation["operationId"])
            responses = operation["responses"]
            assert any(status.startswith("2") for status in responses), (method, path)
            statuses = {"400", "401", "403", "404", "422", "default"}
            if method != "get":
                statuses |= {"409", "412", "413", "428"}
            for status in statuses:
                response = responses[status]
                if "$ref" in response:
                    name = response["$ref"].rsplit("/", 1)[-1]
                    response = document["components"]["responses"][name]
                assert PROBLEM in response["content"], (method, path, status)
    assert len(ids) == len(set(ids))
    # No numeric keyword is written as a string (the old document had "minimum": "0").
    text = json.dumps(document)
    assert '"minimum": "' not in text and '"maximum": "' not in text


def test_dose_one_of_and_links_are_expressed(client: FlaskClient, auth_header) -> None:
    document = served(client, auth_header)
    dose = document["components"]["schemas"]["EligibilityDose"]
    assert dose["oneOf"] == [{"required": ["mg"]}, {"required": ["mg_per_kg"]}]
    usage = document["paths"]["/api/v1/authorizations/{number}/usage"]["post"]
    links = usage["responses"]["201"]["links"]
    void = links["delete_api_v1_authorizations_number_usage_claim_reference"]
    assert void["parameters"]["claim_reference"] == "$response.body#/claim_reference"
    listing = document["paths"]["/api/v1/drugs"]["get"]["responses"]["200"]["links"]
    assert listing["get_api_v1_drugs_hcpcs"]["parameters"] == {
        "hcpcs": "$response.body#/items/0/hcpcs"}
