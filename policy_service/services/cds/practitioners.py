"""Who prescribes and who gives the infusion: the practitioners' NPIs, as FHIR R4 names them.

CDS Hooks names the signing user in ``context.userId`` (``Practitioner/123`` or
``PractitionerRole/123``); an order names its prescriber in ``requester`` and whom it wants to
give it in ``performer``; an Appointment names its clinicians in ``participant.actor``. US Core
carries the NPI as the identifier whose system is ``http://hl7.org/fhir/sid/us-npi``, on the
Practitioner (a PractitionerRole points at its Practitioner). Each is found in the call's
prefetch first, and read from the EHR only when prefetch lacks it and a reader is allowed.

An NPI that is absent, ambiguous, or not 10 digits with a valid check digit is no NPI: the
request then names none, as before this adapter read them. Whether a named provider is enrolled
or of a covered specialty is the eligibility service's question, never this module's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fhir_core.fhirabstractmodel import FHIRAbstractModel

from policy_service.domain.codes import npi_error
from policy_service.services.cds.fhir import FhirReader, Resources, reference_key

NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
PRACTITIONER_TYPES = frozenset({"Practitioner", "PractitionerRole"})
PRACTITIONER_ONLY = frozenset({"Practitioner"})
# v3 ParticipationType "primary performer": which of several booked clinicians renders.
PARTICIPATION_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
PRIMARY_PERFORMER = "PPRF"


@dataclass(frozen=True)
class ProviderNpis:
    """The prescriber's and the rendering provider's NPIs, each None when not named."""

    ordering: str | None = None
    rendering: str | None = None


def _valid_npi(value: Any) -> str | None:
    return value if npi_error(value) is None else None


def _identifier_npi(identifiers: Iterable[Any] | None) -> str | None:
    """The first current, valid NPI among these identifiers."""
    for identifier in identifiers or ():
        if identifier.system == NPI_SYSTEM and identifier.use != "old" and \
                (npi := _valid_npi(identifier.value)):
            return npi
    return None


def _referenced_npi(reference: Any, resources: Resources, reader: FhirReader | None,
                    types: frozenset[str] = PRACTITIONER_TYPES) -> str | None:
    """The NPI of the practitioner a Reference names, by NPI identifier or by literal reference.

    ``types`` are the resource types the reference may point at.
    """
    if reference is None:
        return None
    if reference.type is not None and reference.type not in types:
        return None
    logical = reference.identifier
    if logical is not None and logical.system == NPI_SYSTEM:
        return _valid_npi(logical.value)
    return _resolved_npi(reference.reference, resources, reader, types)


def _resolved_npi(literal: str | None, resources: Resources, reader: FhirReader | None,
                  types: frozenset[str] = PRACTITIONER_TYPES) -> str | None:
    """The NPI of the Practitioner or PractitionerRole at ``literal`` (``Type/id`` or a URL)."""
    key = reference_key(literal)
    if key is None or key[0] not in types:
        return None
    resource = resources.resolve(literal, reader)
    if resource is None:
        return None
    if resource.get_resource_type() == "PractitionerRole":
        # The individual's NPI is the Practitioner's; a role's own identifiers come second. A
        # role's practitioner is a Practitioner, never another role.
        return _referenced_npi(resource.practitioner, resources, reader, PRACTITIONER_ONLY) \
            or _identifier_npi(resource.identifier)
    return _identifier_npi(resource.identifier)


def _the_one(npis: Iterable[str | None]) -> str | None:
    """The NPI when the candidates name exactly one; several are alternatives, not a choice."""
    found = set(filter(None, npis))
    return found.pop() if len(found) == 1 else None


def _is_primary_performer(participant: Any) -> bool:
    return any(coding.system == PARTICIPATION_TYPE_SYSTEM and coding.code == PRIMARY_PERFORMER
               for concept in participant.type or () for coding in concept.coding or ())


def _appointment_npi(appointment: FHIRAbstractModel, resources: Resources,
                     reader: FhirReader | None) -> str | None:
    """The practitioner booked to give the infusion: the primary performer, else the only one."""
    booked = [p for p in appointment.participant or ()
              if p.actor is not None and p.status != "declined"]
    primary = [p for p in booked if _is_primary_performer(p)]
    return _the_one(_referenced_npi(p.actor, resources, reader) for p in primary or booked)


def _performer_npi(order: FHIRAbstractModel, resources: Resources,
                   reader: FhirReader | None) -> str | None:
    performers = order.performer
    if performers is None:
        return None
    if not isinstance(performers, list):  # MedicationRequest names one, ServiceRequest a list
        performers = [performers]
    return _the_one(_referenced_npi(p, resources, reader) for p in performers)


def provider_npis(order: FHIRAbstractModel, appointment: FHIRAbstractModel | None,
                  user_id: Any, resources: Resources,
                  reader: FhirReader | None) -> ProviderNpis:
    """The NPIs an order (booked as ``appointment``, if any) names for its prescriber and the
    provider who gives it.

    Prescriber: the order's ``requester``; when the order names none, the hook's user
    (``user_id``: pass it only for a hook whose user signs the order). Rendering provider: the
    Appointment's practitioner participant, else the order's ``performer``.
    """
    requester = order.requester
    if requester is not None and (requester.reference or requester.identifier):
        ordering = _referenced_npi(requester, resources, reader)
    else:
        ordering = _resolved_npi(user_id, resources, reader) if isinstance(user_id, str) \
            else None
    rendering = _appointment_npi(appointment, resources, reader) \
        if appointment is not None else None
    return ProviderNpis(ordering=ordering,
                        rendering=rendering or _performer_npi(order, resources, reader))
