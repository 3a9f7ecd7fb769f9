"""POST /api/v1/remittances (an X12 835 as the body) and GET /api/v1/denials."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint
from marshmallow import RAISE

from policy_service.audit import current_actor
from policy_service.auth import Permission, token_required
from policy_service.database import run_serialized
from policy_service.errors import DomainError, Invalid
from policy_service.schemas.remittance import (
    DenialListSchema,
    DenialsQuerySchema,
    RemittanceResultSchema,
)
from policy_service.services.denials import DenialFilters, list_denials
from policy_service.services.remittance import import_remittance

blp = Blueprint("remittances", __name__, url_prefix="",
                description="Remittance advice (X12 835) in; denials and their causes out.")

X12_MIMETYPES = frozenset({"application/edi-x12", "text/plain"})
MAX_835_BYTES = 5 * 1024 * 1024


class UnsupportedMediaType(DomainError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"
    title = "Unsupported media type"


def _body_text() -> str:
    """The request body as X12 text; 415 for another content type, 422 for non-ASCII."""
    if request.mimetype not in X12_MIMETYPES:
        raise UnsupportedMediaType(
            "Send the 835 as the body with Content-Type application/edi-x12 or text/plain.")
    if (request.content_length or 0) > MAX_835_BYTES:
        raise Invalid({"(body)": ["The file is larger than 5 MB."]})
    data = request.get_data(cache=False)
    if len(data) > MAX_835_BYTES:
        raise Invalid({"(body)": ["The file is larger than 5 MB."]})
    try:
        return data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise Invalid({"(body)": [f"Not an X12 file: byte {exc.start} is not ASCII."]}) from None


@blp.route("/remittances", methods=["POST"])
@token_required(Permission.IMPORT_REMITTANCES)
@blp.doc(requestBody={"required": True, "content": {
    mimetype: {"schema": {"type": "string", "description": "An X12 835 (005010X221A1)."}}
    for mimetype in sorted(X12_MIMETYPES)}})
@blp.response(201, RemittanceResultSchema(many=True))
def post_remittance() -> tuple[list[dict[str, Any]], int]:
    """Import an 835: per claim its outcome, authorization use, denials. 201 when anything was
    new; 200 when every payment in it was imported before (nothing changed)."""
    text = _body_text()
    actor = current_actor()
    results = run_serialized(lambda: import_remittance(text, actor))
    status = 200 if all(r["already_imported"] for r in results) else 201
    return results, status


@blp.route("/denials", methods=["GET"])
@token_required(Permission.READ_DENIALS)
@blp.arguments(DenialsQuerySchema(), location="query", unknown=RAISE)
@blp.response(200, DenialListSchema)
def get_denials(args: dict[str, Any]) -> dict[str, Any]:
    """Denials by payer and decision date, each with the findings that would have caught it."""
    filters = DenialFilters(payer=args.get("payer"), start=args.get("from_"),
                            end=args.get("to"), group=args.get("group"),
                            carc=args.get("carc"))
    return list_denials(filters, args["page"], args["per_page"])
