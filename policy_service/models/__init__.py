"""The data model: reference data, policies, patients, authorizations, users, change history."""

from policy_service.models.appointment import (
    APPOINTMENT_STATUSES,
    Appointment,
    ScheduleUpload,
)
from policy_service.models.audit import ChangeRecord, Revision
from policy_service.models.authorization import (
    AUTHORIZATION_STATES,
    AUTHORIZATION_STATUSES,
    CHANNELS,
    Authorization,
    AuthorizationAttachment,
    AuthorizationEvent,
    AuthorizationUsage,
)
from policy_service.models.cds import CdsTokenUse
from policy_service.models.patient import THERAPY_OUTCOMES, Patient, PatientDocument, Therapy
from policy_service.models.policy import (
    DRUG_SUPPLIES,
    POLICY_DRUG_SUPPLIES,
    POLICY_STATUSES,
    SITES_OF_CARE,
    Policy,
    PolicyCase,
    PolicyVersion,
    StepTherapyStep,
)
from policy_service.models.provider import Provider, ProviderEnrollment
from policy_service.models.reference import PAYER_KINDS, Drug, DrugPackage, Payer
from policy_service.models.remittance import (
    ADJUSTMENT_GROUPS,
    CLAIM_OUTCOMES,
    REASON_CODE_KINDS,
    Denial,
    ReasonCode,
    Remittance,
    RemittanceClaim,
)
from policy_service.models.users import ROLES, ApiToken, LoginFailure, Role, User

__all__ = [
    "ADJUSTMENT_GROUPS",
    "CLAIM_OUTCOMES",
    "REASON_CODE_KINDS",
    "Denial",
    "ReasonCode",
    "Remittance",
    "RemittanceClaim",
    "APPOINTMENT_STATUSES",
    "Appointment",
    "ScheduleUpload",
    "AUTHORIZATION_STATES",
    "AUTHORIZATION_STATUSES",
    "CHANNELS",
    "DRUG_SUPPLIES",
    "POLICY_DRUG_SUPPLIES",
    "POLICY_STATUSES",
    "PAYER_KINDS",
    "ROLES",
    "SITES_OF_CARE",
    "THERAPY_OUTCOMES",
    "ApiToken",
    "Authorization",
    "AuthorizationAttachment",
    "AuthorizationEvent",
    "AuthorizationUsage",
    "CdsTokenUse",
    "ChangeRecord",
    "Drug",
    "DrugPackage",
    "LoginFailure",
    "Patient",
    "PatientDocument",
    "Payer",
    "Policy",
    "PolicyCase",
    "PolicyVersion",
    "Provider",
    "ProviderEnrollment",
    "Revision",
    "Role",
    "StepTherapyStep",
    "Therapy",
    "User",
]
