"""The ``check`` fixture: POST a claim as a biller."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def check(client: Any, auth_header: Callable[[str], dict[str, str]]) -> Callable[..., Any]:
    """POST a claim as a biller; return the 200 body (fails the test on any other status)."""
    headers = auth_header("biller")

    def post(body: dict[str, Any]) -> dict[str, Any]:
        response = client.post("/api/v1/claims/check", json=body, headers=headers)
        assert response.status_code == 200, response.json
        return response.json

    return post

