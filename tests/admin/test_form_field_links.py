"""Admin form fields name their hint and messages for assistive technology (the markup; the
browser side is tests/browser/test_form_errors_browser.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

Login = Callable[[str], Any]
TAKEN_CODE = "Another policy already has the code ACME/infliximab: type a different one."


def tag(page: str, field: str) -> str:
    """The opening tag of the input with id ``field``."""
    found = re.search(rf'<input[^>]*\bid="{field}"[^>]*>', page)
    assert found is not None, field
    return found[0]


def refuse_a_taken_code(client: FlaskClient, records: Any) -> str:
    """Post the new policy form with a code already on file; the refused page."""
    refused = client.post("/admin/policy/new/", data={
        "payer": records.authorization.payer_id, "title": "Vedolizumab IV",
        "code": "ACME/infliximab", "hcpcs": "J3380", "covered_diagnoses": "K50",
        "effective_from": "2026-01-01", "effective_to": "", "prior_auth_required": "y",
        "source": "https://payer.example/vedolizumab", "notes": ""})
    assert refused.status_code == 200
    return refused.get_data(as_text=True)


def test_a_field_message_and_hint_are_the_fields_description(
        client: FlaskClient, login: Login, records: Any) -> None:
    login("coordinator")
    page = refuse_a_taken_code(client, records)
    code = tag(page, "code")
    assert 'aria-invalid="true"' in code
    assert 'aria-describedby="code-error code-hint"' in code
    error = re.search(r'<ul id="code-error"[^>]*>(.*?)</ul>', page, re.DOTALL)
    assert error is not None and TAKEN_CODE in error[1]
    # The hint stays under the field with a message: it says how to fix it.
    hint = re.search(r'<small id="code-hint"[^>]*>(.*?)</small>', page, re.DOTALL)
    assert hint is not None and "e.g. ACME/infliximab" in hint[1]
    assert '<label for="code" id="code-label"' in page
    # A field without a message: described by its hint only, not marked invalid.
    title = tag(page, "title")
    assert 'aria-describedby="title-hint"' in title and "aria-invalid" not in title


def test_a_refused_forms_marks_do_not_stick_to_the_next_form(
        client: FlaskClient, login: Login, records: Any) -> None:
    # Flask-Admin rendered the field with the view's own form_widget_args dict and wrote the
    # refused field's is-invalid class into it: every later form showed the code as wrong.
    login("coordinator")
    refuse_a_taken_code(client, records)
    blank = client.get("/admin/policy/new/").get_data(as_text=True)
    code = tag(blank, "code")
    assert "is-invalid" not in code and "aria-invalid" not in code
    assert 'aria-describedby="code-hint"' in code
    assert 'placeholder="suggested from the payer and the title"' in code
    assert "invalid-feedback" not in blank
