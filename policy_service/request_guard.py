"""Refuse hostile requests before any view runs: oversized bodies, overlong URLs, NUL bytes,
lone surrogates, and JSON that is nested too deep or holds numbers too long to parse.

Each refusal is a 4xx (problem+json under /api): a view, a schema or the database never sees
such input, so a new endpoint is covered the day it lands.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, RequestURITooLarge

# Attachments are at most 10 MB (docs/contract.md); multipart framing adds a little.
MAX_CONTENT_LENGTH = 12 * 1024 * 1024
# A JSON body: a batch of 5,000 eligibility requests fits in well under this.
MAX_JSON_BYTES = 4 * 1024 * 1024
# Longer URLs are refused by the app, before gunicorn's bare 414 page (its limit is 8190).
MAX_URL_LENGTH = 4096
# No request shape of the API nests deeper than a handful of levels.
MAX_JSON_DEPTH = 32
# Characters PostgreSQL text cannot store (NUL) and that UTF-8 cannot encode (lone surrogates).
FORBIDDEN_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


class MalformedRequest(BadRequest):
    """A request the service refuses to read (400)."""

    problem_code = "MALFORMED_REQUEST"

    def __init__(self, description: str) -> None:
        super().__init__(description)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes) -> Any:
    """Parse a JSON body, raising MalformedRequest for anything the API should not read."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("The body is not UTF-8 text.") from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise MalformedRequest(
            f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.") from None
    except json.JSONDecodeError:
        # Plain malformed JSON: the view decides (400 from the JSON API, 415 from an endpoint
        # that reads another format); nothing in it can hurt the service.
        return None
    except ValueError as exc:
        # NaN/Infinity, or an integer of more than 4,300 digits.
        reason = "a number is too long" if "digits" in str(exc) else "it is not valid JSON"
        raise MalformedRequest(f"The body could not be read: {reason}.") from None
    check_document(document)
    return document


def _strings(document: Any) -> Iterator[tuple[str, int]]:
    """Yield every string (keys too) of a parsed JSON document with its depth; no recursion."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            yield value, depth
        elif isinstance(value, dict):
            if depth > MAX_JSON_DEPTH:
                yield "", depth
            for key, item in value.items():
                yield key, depth
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_JSON_DEPTH:
                yield "", depth
            stack.extend((item, depth + 1) for item in value)


def check_document(document: Any) -> None:
    """Raise MalformedRequest when a parsed document nests too deep or holds bad characters."""
    for text, depth in _strings(document):
        if depth > MAX_JSON_DEPTH:
            raise MalformedRequest(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
        check_text(text, "The JSON body")


def check_text(text: str, where: str) -> None:
    """Raise MalformedRequest when ``text`` holds a NUL byte or a lone UTF-16 surrogate."""
    if FORBIDDEN_CHARACTERS.search(text):
        raise MalformedRequest(f"{where} contains a NUL byte or an unpaired surrogate, "
                               "which no field accepts.")


def guard_request() -> None:
    """Refuse the current request if it is too large, too long or carries unreadable text."""
    if len(request.environ.get("RAW_URI") or request.full_path) > MAX_URL_LENGTH:
        raise RequestURITooLarge(f"URLs are limited to {MAX_URL_LENGTH} characters.")
    check_text(request.path, "The path")
    for key, value in request.args.items(multi=True):
        check_text(key, "The query string")
        check_text(value, "The query string")
    if request.method in ("GET", "HEAD", "OPTIONS", "DELETE") and not request.content_length:
        return
    if request.mimetype == "application/json" or request.mimetype.endswith("+json"):
        if (request.content_length or 0) > MAX_JSON_BYTES:
            raise RequestEntityTooLarge(f"JSON bodies are limited to {MAX_JSON_BYTES} bytes.")
        data = request.get_data(cache=True)
        if len(data) > MAX_JSON_BYTES:
            raise RequestEntityTooLarge(f"JSON bodies are limited to {MAX_JSON_BYTES} bytes.")
        if data.strip():
            parse_json(data)
    elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key, value in request.form.items(multi=True):
            check_text(key, "A form field")
            check_text(value, "A form field")


def init_request_guard(app: Flask) -> None:
    """Bound request sizes and refuse unreadable input on every route of ``app``."""
    app.config.setdefault("MAX_CONTENT_LENGTH", MAX_CONTENT_LENGTH)
    app.before_request(guard_request)
