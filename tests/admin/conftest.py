"""Fixtures for the admin UI: signing in through the real login form, a small data set."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.factories import Records, make_admin_records

PASSWORD = "correct-horse-battery"


@pytest.fixture
def login(client: FlaskClient, make_user: Callable[..., tuple[Any, str]]) -> Callable[[str], Any]:
    """Sign a new user with ``role`` in through the /login form of ``client``."""

    def sign_in(role: str) -> Any:
        user, _token = make_user(role)
        response = client.post("/login", data={"email": user.email, "password": PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)
        return user

    return sign_in


@pytest.fixture
def records(session: Session) -> Records:
    """A payer, drug, policy version with a step, patient and an authorization expiring soon."""
    return make_admin_records(accepted_outcomes=["intolerance"])
