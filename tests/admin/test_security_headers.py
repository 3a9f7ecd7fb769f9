"""The Content-Security-Policy is strict (no inline script or style), and no page needs more:
every admin page is free of inline handlers, style attributes, <style> blocks and un-nonced
inline scripts."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.admin.conftest import Records

STRICT = {
    "default-src": "'self'", "img-src": "'self' data:", "style-src": "'self'",
    "script-src": "'self'", "frame-ancestors": "'none'", "form-action": "'self'",
    "base-uri": "'self'", "object-src": "'none'",
}


def directives(response: Any) -> dict[str, str]:
    """The response's CSP as {directive: sources}."""
    policy = response.headers["Content-Security-Policy"]
    parts = (part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    return {name: sources for name, sources in parts}


class InlineCode(HTMLParser):
    """Collects what a strict CSP would block: inline handlers, style attributes, <style>
    blocks, inline scripts without the page's nonce, javascript: form actions."""

    def __init__(self, nonce: str | None) -> None:
        super().__init__()
        self.nonce = nonce
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Note every attribute and element the policy would refuse."""
        named = dict(attrs)
        for name, _value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}=...>")
        if tag == "style":
            self.found.append("<style>")
        if tag == "script" and not named.get("src") and named.get("nonce") != self.nonce:
            self.found.append("<script> without the nonce")


def inline_code(response: Any) -> list[str]:
    """What in this page a strict CSP would block."""
    nonce = re.search(r"'nonce-([^']+)'", directives(response)["script-src"])
    parser = InlineCode(nonce.group(1) if nonce else None)
    parser.feed(response.get_data(as_text=True))
    return parser.found


@pytest.mark.parametrize(("path", "status"), [
    ("/admin/", 200), ("/admin/authorization/", 200), ("/ui/static/app.js", 200),
    ("/api/v1/payers", 401), ("/admin/no-such-page/", 404)])
def test_every_response_carries_the_strict_policy(client: FlaskClient, records: Records,
                                                  login: Callable[[str], Any],
                                                  path: str, status: int) -> None:
    login("admin")
    response = client.get(path)
    assert response.status_code == status
    policy = directives(response)
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert {k: v for k, v in policy.items() if k != "script-src"} == {
        k: v for k, v in STRICT.items() if k != "script-src"}
    # A nonce only when the page wrote an inline script that needs one.
    assert re.fullmatch(r"'self'( 'nonce-[\w-]{20,}')?", policy["script-src"])
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_signed_out_page_has_no_inline_code(client: FlaskClient) -> None:
    for path in ("/login", "/admin/"):
        response = client.get(path, follow_redirects=True)
        assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
        assert inline_code(response) == [], path


def admin_pages(client: FlaskClient, records: Records) -> list[str]:
    """Every page the admin's menu links to, and the create, edit and details pages of the
    records (forms with inline lists, date pickers, selects)."""
    home = client.get("/admin/").get_data(as_text=True)
    menu = sorted(set(re.findall(r'href="(/admin/[^"#?]*)"', home)))
    ids = {"payer": records.payer.id, "drug": records.drug.id, "policy": records.policy.id,
           "policyversion": records.version.id, "patient": records.patient.id,
           "authorization": records.authorization.id}
    forms = [f"/admin/{view}/{kind}/?id={record}" for view, record in ids.items()
             for kind in ("edit", "details")]
    forms += [f"/admin/{view}/new/" for view in ids]
    return menu + forms


def test_no_admin_page_has_inline_code(client: FlaskClient, records: Records,
                                       login: Callable[[str], Any]) -> None:
    login("admin")
    pages = admin_pages(client, records)
    assert len(pages) > 30
    checked = 0
    for path in pages:
        response = client.get(path)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        checked += 1
        assert inline_code(response) == [], path
    assert checked > 25


def test_the_static_files_the_pages_need_are_served(client: FlaskClient) -> None:
    for name in ("app.css", "app.js"):
        response = client.get(f"/ui/static/{name}")
        assert response.status_code == 200
        assert response.get_data()
