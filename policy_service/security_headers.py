"""Security headers on every response: CSP, frame denial, no sniffing, no referrer leaks.

The Content-Security-Policy allows scripts and styles from this origin only: no inline
``<script>``, ``<style>``, ``style=""`` or ``onclick=""``. The admin's own CSS and JS are static
files (admin/static). The one inline script Flask-Admin can still write (its modal forms)
carries a per-request nonce, which the policy names only on responses that used one.
"""

import secrets

from flask import Flask, Response, g

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'{nonce}; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'self'; object-src 'none'"
)


def csp_nonce() -> str:
    """This request's script nonce, made on first use (Flask-Admin's csp_nonce_generator)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def content_security_policy() -> str:
    """The policy for this response: a nonce source only when the page used one."""
    nonce = g.get("csp_nonce")
    return CONTENT_SECURITY_POLICY.format(nonce=f" 'nonce-{nonce}'" if nonce else "")


def init_security_headers(app: Flask) -> None:
    """Add the security headers to every response of ``app``."""

    @app.after_request
    def add_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", content_security_policy())
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        return response
