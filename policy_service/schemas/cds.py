"""The CDS Hooks 2.0 request envelope; the FHIR inside it is checked by fhir.resources."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, ValidationError, fields, validate, validates_schema

from policy_service.schemas.common import StrictSchema


class FhirAuthorizationSchema(StrictSchema):
    """The OAuth 2.0 token the EHR lends us to read its FHIR server."""

    class Meta:
        # Token responses may carry more than these (e.g. id_token); we never use the rest.
        unknown = EXCLUDE

    access_token = fields.String(required=True, validate=validate.Length(min=1, max=8000))
    token_type = fields.String(required=True, validate=validate.Equal("Bearer"))
    expires_in = fields.Integer(required=True, validate=validate.Range(min=0))
    scope = fields.String(required=True, validate=validate.Length(max=8000))
    subject = fields.String(required=True, validate=validate.Length(max=500))
    patient = fields.String(validate=validate.Length(max=200))


class HookRequestSchema(StrictSchema):
    """A hook call: which hook, its instance, its context, prefetch and extension."""

    hook = fields.String(required=True, validate=validate.Length(min=1, max=100))
    hookInstance = fields.String(required=True, validate=validate.Length(min=1, max=200))
    fhirServer = fields.Url(require_tld=False, schemes={"http", "https"})
    fhirAuthorization = fields.Nested(FhirAuthorizationSchema, allow_none=True)
    context = fields.Dict(keys=fields.String(), required=True)
    prefetch = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True),
                           allow_none=True)
    extension = fields.Dict(keys=fields.String(), allow_none=True)

    @validates_schema
    def _fhir_authorization_needs_server(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("fhirAuthorization") and not data.get("fhirServer"):
            raise ValidationError("fhirAuthorization is only given with fhirServer.",
                                  "fhirAuthorization")


class CrdConfigurationSchema(StrictSchema):
    """``davinci-crd.configuration``: the options we declare; others are for other services."""

    class Meta:
        unknown = EXCLUDE

    coverage_info = fields.Boolean(data_key="coverage-info", truthy={True}, falsy={False})
    max_cards = fields.Integer(data_key="max-cards", strict=True,
                               validate=validate.Range(min=0, max=100))
