"""marshmallow schemas: the explicit contracts of the bundle and the API."""

from policy_service.schemas.bundle import (
    AuthorizationSchema,
    BundleSchema,
    DrugSchema,
    PatientSchema,
    PayerSchema,
    PolicyVersionSchema,
)

__all__ = [
    "AuthorizationSchema",
    "BundleSchema",
    "DrugSchema",
    "PatientSchema",
    "PayerSchema",
    "PolicyVersionSchema",
]
