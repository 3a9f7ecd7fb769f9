"""Request schemas of the authorization write API (docs/contract.md, "Authorizations")."""

from __future__ import annotations

from marshmallow import fields, validate

from policy_service.models import AUTHORIZATION_STATUSES
from policy_service.schemas.bundle import AuthorizationSchema
from policy_service.schemas.common import StrictSchema


class AuthorizationCreateSchema(AuthorizationSchema):
    """A new authorization in bundle shape; use is recorded by claims, not here."""

    class Meta(AuthorizationSchema.Meta):
        exclude = ("used_units", "used_visits")


class AuthorizationPatchSchema(AuthorizationSchema):
    """Fields to change; the number is the URL's and status moves only by transition."""

    class Meta(AuthorizationSchema.Meta):
        exclude = ("used_units", "used_visits", "number", "status")


class TransitionSchema(StrictSchema):
    """One move of the payer's process, with what the payer's answer says."""

    to = fields.String(required=True, validate=validate.OneOf(AUTHORIZATION_STATUSES))
    on = fields.Date(metadata={"description": "Day it happened; today when left out."})
    reason = fields.String(validate=validate.Length(max=2000))
    approved_units = fields.Integer(strict=True, allow_none=True,
                                    validate=validate.Range(min=0))
    approved_visits = fields.Integer(strict=True, allow_none=True,
                                     validate=validate.Range(min=0))
    valid_from = fields.Date()
    valid_to = fields.Date()
    payer_reference = fields.String(allow_none=True, validate=validate.Length(min=1, max=64))
    denial_reason = fields.String(allow_none=True, validate=validate.Length(max=2000))
    appeal_due = fields.Date(allow_none=True)
    follow_up_on = fields.Date(allow_none=True)


class NoteSchema(StrictSchema):
    """An append-only note."""

    text = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class WorklistArgs(StrictSchema):
    """``owner=me`` keeps the signed-in user's items."""

    owner = fields.String(validate=validate.OneOf(["me"]))
