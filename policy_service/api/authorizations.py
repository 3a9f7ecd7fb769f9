"""Authorization writes: create, PATCH with If-Match, transitions, notes, events, renewal,
letters. Reads of one authorization (with its ETag) are in api/reference.py."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from flask_smorest import Blueprint

from policy_service.audit import current_actor
from policy_service.auth import Permission, token_required
from policy_service.database import run_serialized
from policy_service.errors import DomainError, Invalid
from policy_service.models import Authorization, AuthorizationAttachment, AuthorizationEvent
from policy_service.schemas.authorizations import (
    AuthorizationCreateSchema,
    AuthorizationPatchSchema,
    NoteSchema,
    TransitionSchema,
)
from policy_service.schemas.bundle import AuthorizationSchema
from policy_service.services import authorizations as service
from policy_service.services.worklist import dose_outlook

blp = Blueprint("authorizations", __name__, url_prefix="/authorizations",
                description="Create and change authorizations along the payer's process.")

# One instance each for every dump: building a schema costs more than dumping with it.
_AUTHORIZATION_SCHEMA = AuthorizationSchema()


class PreconditionRequired(DomainError):
    """A write that must name the version it read (If-Match) did not."""

    status = 428
    code = "PRECONDITION_REQUIRED"
    title = "Precondition required"


def etag(auth: Authorization) -> str:
    """The strong ETag of an authorization: its row version."""
    return f'"{auth.version}"'


def if_match_version() -> int:
    """The version the client read, from If-Match; 428 without one, 412 if it is not ours."""
    header = request.headers.get("If-Match")
    if not header:
        raise PreconditionRequired("Send the ETag you read as If-Match to change this record.")
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise service.StaleRecord("If-Match does not name a version of this record.")
    return int(value)


def authorization_item(auth: Authorization, with_doses: bool = False) -> dict[str, Any]:
    """An authorization in bundle shape plus what remains, its state and its next moves;
    ``with_doses`` adds what the remaining units mean at the next scheduled dose."""
    item = _AUTHORIZATION_SCHEMA.dump(service.record_values(auth))
    if with_doses:
        outlook = dose_outlook(number=auth.number).get(auth.number)
        item["doses"] = None if outlook is None else {
            "units_per_dose": outlook.units_per_dose, "doses_left": outlook.doses_left,
            "low": outlook.low, "next_appointment": outlook.next_appointment}
    item["remaining_units"] = auth.remaining_units
    item["remaining_visits"] = auth.remaining_visits
    item["state"] = auth.state
    item["allowed_transitions"] = list(service.allowed_transitions(auth))
    item["renewed_by"] = auth.renewed_by.number if auth.renewed_by else None
    return item


def authorization_response(auth: Authorization, status: int = 200,
                           with_doses: bool = False) -> Response:
    """The authorization as a read shows it, with its ETag."""
    response = jsonify(authorization_item(auth, with_doses))
    response.status_code = status
    response.headers["ETag"] = etag(auth)
    return response


def event_item(event: AuthorizationEvent) -> dict[str, Any]:
    """One event as the contract shows it."""
    item: dict[str, Any] = {"at": event.at.isoformat(timespec="seconds") + "Z",
                            "by": event.actor, "kind": event.kind}
    if event.kind == "transition":
        item.update({"from": event.from_status, "to": event.to_status,
                     "on": event.on.isoformat() if event.on else None,
                     "reason": event.reason})
    else:
        item["text"] = event.text
    return item


def attachment_item(attachment: AuthorizationAttachment) -> dict[str, Any]:
    """One letter's metadata and where to download it."""
    number = attachment.authorization.number
    return {"id": attachment.id, "filename": attachment.filename,
            "content_type": attachment.content_type, "size": attachment.size,
            "sha256": attachment.sha256,
            "uploaded_at": attachment.uploaded_at.isoformat(timespec="seconds") + "Z",
            "uploaded_by": attachment.uploaded_by,
            "url": f"/api/v1/authorizations/{number}/attachments/{attachment.id}"}


@blp.route("", methods=["POST"])
@token_required(Permission.EDIT_AUTHORIZATIONS)
@blp.arguments(AuthorizationCreateSchema())
def create(body: dict[str, Any]) -> Response:
    """Create an authorization (status defaults to ``requested``)."""
    actor = current_actor()
    auth = run_serialized(lambda: service.create_authorization(body, actor))
    return authorization_response(auth, 201)


@blp.route("/<number>", methods=["PATCH"])
@token_required(Permission.EDIT_AUTHORIZATIONS)
@blp.arguments(AuthorizationPatchSchema(partial=True))
def patch(body: dict[str, Any], number: str) -> Response:
    """Change fields; If-Match must carry the ETag read (412 when stale, 428 when missing)."""
    expected = if_match_version()
    actor = current_actor()

    def change() -> Authorization:
        auth = service.get_authorization(number, lock=True)
        return service.update_authorization(auth, body, actor, expected_version=expected)

    return authorization_response(run_serialized(change))


@blp.route("/<number>/transitions", methods=["POST"])
@token_required(Permission.EDIT_AUTHORIZATIONS)
@blp.arguments(TransitionSchema())
def move(body: dict[str, Any], number: str) -> Response:
    """Move the status along the payer's process (409 naming the allowed moves otherwise)."""
    actor = current_actor()
    decision = {k: v for k, v in body.items() if k not in ("to", "on", "reason")}
    expected = if_match_version() if request.headers.get("If-Match") else None

    def apply() -> Authorization:
        auth = service.get_authorization(number, lock=True)
        return service.transition(auth, body["to"], actor, on=body.get("on"),
                                  reason=body.get("reason"), decision=decision,
                                  expected_version=expected)

    return authorization_response(run_serialized(apply))


@blp.route("/<number>/notes", methods=["POST"])
@token_required(Permission.EDIT_AUTHORIZATIONS)
@blp.arguments(NoteSchema())
def note(body: dict[str, Any], number: str) -> tuple[dict[str, Any], int]:
    """Append a note."""
    actor = current_actor()

    def add() -> AuthorizationEvent:
        return service.add_note(service.get_authorization(number), body["text"], actor)

    return event_item(run_serialized(add)), 201


@blp.route("/<number>/events", methods=["GET"])
@token_required(Permission.READ)
def list_events(number: str) -> dict[str, Any]:
    """Transitions and notes, oldest first."""
    auth = service.get_authorization(number)
    return {"items": [event_item(e) for e in service.events(auth)]}


@blp.route("/<number>/renew", methods=["POST"])
@token_required(Permission.EDIT_AUTHORIZATIONS)
def renew(number: str) -> Response:
    """Create the next request, starting the day after this one ends (409 if renewed)."""
    actor = current_actor()
    renewal = run_serialized(
        lambda: service.renew(service.get_authorization(number, lock=True), actor))
    return authorization_response(renewal, 201)


@blp.route("/<number>/attachments", methods=["POST"])
@token_required(Permission.EDIT_AUTHORIZATIONS)
def attach(number: str) -> tuple[dict[str, Any], int]:
    """Keep a letter (multipart ``file``): PDF, PNG, JPEG or TIFF by content, at most 10 MB."""
    upload = request.files.get("file")
    if upload is None:
        raise Invalid({"file": ["Send the letter as the multipart field 'file'."]})
    data = upload.stream.read(service.MAX_ATTACHMENT_BYTES + 1)
    actor = current_actor()

    def add() -> AuthorizationAttachment:
        return service.add_attachment(service.get_authorization(number),
                                      upload.filename or "", data, actor)

    return attachment_item(run_serialized(add)), 201


@blp.route("/<number>/attachments", methods=["GET"])
@token_required(Permission.READ)
def list_attachments(number: str) -> dict[str, Any]:
    """The letters kept with this authorization."""
    auth = service.get_authorization(number)
    return {"items": [attachment_item(a) for a in service.attachments(auth)]}


@blp.route("/<number>/attachments/<int:attachment_id>", methods=["GET"])
@token_required(Permission.READ)
def download(number: str, attachment_id: int) -> Response:
    """The letter itself, always as a download (never shown inline)."""
    attachment = service.get_attachment(service.get_authorization(number), attachment_id)
    return attachment_download(attachment)


def attachment_download(attachment: AuthorizationAttachment) -> Response:
    """A response that makes the browser save the letter, never render it."""
    return Response(attachment.content, mimetype=attachment.content_type, headers={
        "Content-Disposition": f'attachment; filename="{attachment.filename}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })
