"""FHIR in: each order (or appointment and the order it is based on) as an eligibility request.

Only translation lives here: code systems to our codes, FHIR elements to request fields. What
cannot be translated is named in ``OrderCase.missing``; whether the rest is covered is the
eligibility service's decision, never this module's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from fhir_core.fhirabstractmodel import FHIRAbstractModel
from marshmallow import ValidationError
from sqlalchemy import select

from policy_service.extensions import db
from policy_service.models import Drug, DrugPackage
from policy_service.schemas.common import dose_mg, dose_mg_per_kg
from policy_service.services.cds.fhir import FhirReader, Resources, reference_key
from policy_service.services.cds.practitioners import provider_npis
from policy_service.services.eligibility import EligibilityRequest
from policy_service.services.payers import find_payer_by_external_id

HCPCS_SYSTEMS = frozenset({"https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                           "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"})
RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC_SYSTEM = "http://hl7.org/fhir/sid/ndc"
ICD10_CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
PLACE_OF_SERVICE_SYSTEMS = frozenset({
    "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set",
    "http://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set",
    "https://terminology.hl7.org/CodeSystem/CMSPlaceofServiceCodes",
    "http://terminology.hl7.org/CodeSystem/CMSPlaceofServiceCodes",
})
# CMS place-of-service codes for the sites our policies name.
SITE_BY_PLACE_OF_SERVICE = {"11": "office", "19": "hospital_outpatient",
                            "22": "hospital_outpatient", "12": "home",
                            "49": "ambulatory_infusion_center"}
BILLING_OPTIONS_URL = ("http://hl7.org/fhir/us/davinci-crd/StructureDefinition/"
                       "ext-billing-options")
ALTERNATE_REFERENCE_URL = "http://hl7.org/fhir/StructureDefinition/alternate-reference"


@dataclass
class OrderCase:
    """One order or appointment to answer for, with what it mapped to and what was missing."""

    target: FHIRAbstractModel
    order: FHIRAbstractModel | None
    coverage: FHIRAbstractModel | None
    payer_code: str | None = None
    payer_name: str | None = None
    request: EligibilityRequest | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def target_reference(self) -> str:
        """``Type/id`` of the resource the answer is about."""
        return f"{self.target.get_resource_type()}/{self.target.id or ''}".rstrip("/")


def _codings(concept: Any) -> list[Any]:
    return list(getattr(concept, "coding", None) or []) if concept is not None else []


def _ndc_key(code: str) -> str | None:
    """Return an NDC in the 11-digit 5-4-2 form (or 5-4 for a product code), else None."""
    parts = code.strip().split("-")
    if len(parts) == 1:
        digits = parts[0]
        return f"{digits[:5]}-{digits[5:9]}-{digits[9:]}" if len(digits) == 11 and \
            digits.isdigit() else None
    if not all(p.isdigit() for p in parts) or len(parts) > 3:
        return None
    widths = (5, 4, 2)
    return "-".join(p.zfill(w) for p, w in zip(parts, widths, strict=False))


@dataclass
class DrugCodes:
    """Our drugs by every code an order may name them with."""

    hcpcs: set[str]
    by_rxnorm: dict[str, set[str]]
    by_ndc: dict[str, set[str]]

    @classmethod
    def load(cls) -> DrugCodes:
        """Read the drug table's HCPCS, RxNorm and package NDC codes (two small queries)."""
        by_rxnorm: dict[str, set[str]] = {}
        hcpcs: set[str] = set()
        for code, rxnorm in db.session.execute(select(Drug.hcpcs, Drug.rxnorm)).tuples():
            hcpcs.add(code)
            for concept in rxnorm or ():
                by_rxnorm.setdefault(str(concept), set()).add(code)
        by_ndc: dict[str, set[str]] = {}
        rows = db.session.execute(select(DrugPackage.ndc, Drug.hcpcs).join(Drug)
                                  .where(DrugPackage.ndc.is_not(None))).tuples()
        for ndc, code in rows:
            if key := _ndc_key(ndc):
                by_ndc.setdefault(key, set()).add(code)
                by_ndc.setdefault(key.rsplit("-", 1)[0], set()).add(code)
        return cls(hcpcs, by_rxnorm, by_ndc)

    def hcpcs_for(self, codings: Iterable[Any]) -> tuple[set[str], list[str]]:
        """Return our HCPCS codes for these codings and the codes seen that mapped to none."""
        found: set[str] = set()
        unmapped: list[str] = []
        for coding in codings:
            system, code = coding.system or "", (coding.code or "").strip()
            if not code:
                continue
            if system in HCPCS_SYSTEMS:
                matches = {code.upper()} & self.hcpcs
            elif system == RXNORM_SYSTEM:
                matches = self.by_rxnorm.get(code, set())
            elif system == NDC_SYSTEM:
                key = _ndc_key(code)
                matches = self.by_ndc.get(key, set()) if key else set()
            else:
                matches = set()
            found |= matches
            if not matches:
                unmapped.append(f"{code} ({system or 'no system'})")
        return found, unmapped


def _billing_option_codings(concept: Any) -> list[Any]:
    codings: list[Any] = []
    for extension in getattr(concept, "extension", None) or []:
        if extension.url == BILLING_OPTIONS_URL:
            codings.extend(_codings(extension.valueCodeableConcept))
    return codings


def _drug_codings(order: FHIRAbstractModel, resources: Resources,
                  reader: FhirReader | None) -> list[Any]:
    """Every coding that may name the drug: the code, billing options, the Medication's code."""
    if order.get_resource_type() == "ServiceRequest":
        concept = order.code
        return _codings(concept) + _billing_option_codings(concept)
    concept = order.medicationCodeableConcept
    codings = _codings(concept) + _billing_option_codings(concept)
    if order.medicationReference is not None:
        medication = resources.resolve(order.medicationReference.reference, reader)
        if medication is not None:
            codings += _codings(medication.code) + _billing_option_codings(medication.code)
    return codings


def _quantity_dose(quantity: Any) -> tuple[Decimal | None, Decimal | None]:
    """Return (mg, mg/kg) of a dose quantity written in mg or mg/kg."""
    if quantity is None or quantity.value is None:
        return None, None
    unit = (quantity.code or quantity.unit or "").replace(" ", "").lower()
    per_kg = unit in {"mg/kg", "mg/kg{body_weight}"}
    if unit != "mg" and not per_kg:
        return None, None
    # The API's own bounds (digits, exponent, range): FHIR lets a decimal be 1e999999999, which
    # no dose is and which the billing arithmetic must never see. Out of bounds is no dose.
    bounded = dose_mg_per_kg() if per_kg else dose_mg()
    try:
        value = bounded.deserialize(str(quantity.value))
    except ValidationError:
        return None, None
    return (None, value) if per_kg else (value, None)


def _dose(order: FHIRAbstractModel) -> tuple[Decimal | None, Decimal | None]:
    if order.get_resource_type() == "ServiceRequest":
        return _quantity_dose(order.quantityQuantity)
    for dosage in order.dosageInstruction or ():
        for dose_and_rate in dosage.doseAndRate or ():
            mg, mg_per_kg = _quantity_dose(dose_and_rate.doseQuantity)
            if mg is not None or mg_per_kg is not None:
                return mg, mg_per_kg
    return None, None


def _diagnoses(*resources: FHIRAbstractModel | None) -> list[str]:
    codes: list[str] = []
    for resource in resources:
        for concept in getattr(resource, "reasonCode", None) or ():
            codes += [c.code for c in _codings(concept) if c.system == ICD10_CM_SYSTEM and c.code]
    return list(dict.fromkeys(codes))


def _site(resources: Resources, *sources: FHIRAbstractModel | None) -> str | None:
    """Site of care from a CMS place-of-service code on the order or a location it names."""
    concepts: list[Any] = []
    for source in sources:
        if source is None:
            continue
        concepts += list(getattr(source, "locationCode", None) or [])
        references = [r.reference for r in getattr(source, "locationReference", None) or []]
        references += [p.actor.reference for p in getattr(source, "participant", None) or []
                       if p.actor is not None]
        for reference in references:
            key = reference_key(reference)
            if key and key[0] == "Location" and (location := resources.by_key.get(key)):
                concepts += list(location.type or [])
    if site := _site_of(concepts):
        return site
    # A medication order names no place: the call's own Locations (prefetched for this
    # context) decide, when their place-of-service codes agree.
    sites = {_site_of(location.type or []) for location in resources.by_type.get("Location", [])}
    sites.discard(None)
    return sites.pop() if len(sites) == 1 else None


def _site_of(concepts: Iterable[Any]) -> str | None:
    for concept in concepts:
        for coding in _codings(concept):
            if coding.system in PLACE_OF_SERVICE_SYSTEMS and coding.code in \
                    SITE_BY_PLACE_OF_SERVICE:
                return SITE_BY_PLACE_OF_SERVICE[coding.code]
    return None


def _as_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _service_date(appointment: FHIRAbstractModel | None,
                  order: FHIRAbstractModel | None) -> dt.date | None:
    if appointment is not None and (day := _as_date(appointment.start)):
        return day
    if order is None:
        return None
    if order.get_resource_type() == "ServiceRequest":
        period = order.occurrencePeriod
        return _as_date(order.occurrenceDateTime) or _as_date(period.start if period else None)
    validity = order.dispenseRequest.validityPeriod if order.dispenseRequest else None
    return _as_date(validity.start if validity else None)


def based_on_references(appointment: FHIRAbstractModel) -> list[str]:
    """The orders an appointment is based on, including CRD's alternate references."""
    references: list[str] = []
    for based_on in appointment.basedOn or ():
        if based_on.reference:
            references.append(based_on.reference)
        for extension in based_on.extension or ():
            if extension.url == ALTERNATE_REFERENCE_URL and extension.valueReference:
                references.append(extension.valueReference.reference)
    return references


@dataclass
class PatientAndCoverage:
    """Who the call is about and the coverage the answers assert under."""

    patient_id: str | None
    birth_date: dt.date | None
    coverage: FHIRAbstractModel | None
    payer_code: str | None
    payer_name: str | None
    missing: list[str]


def _payor_identifier_values(coverage: FHIRAbstractModel, resources: Resources,
                             reader: FhirReader | None) -> list[str]:
    values: list[str] = []
    for payor in coverage.payor or ():
        if payor.identifier is not None and payor.identifier.value:
            values.append(payor.identifier.value)
        organization = resources.resolve(payor.reference, reader)
        if organization is not None and organization.get_resource_type() == "Organization":
            values += [i.value for i in organization.identifier or () if i.value]
    return values


def patient_and_coverage(resources: Resources, patient_id: str | None, identifier_system: str,
                         reader: FhirReader | None) -> PatientAndCoverage:
    """Find our patient id, the coverage and our payer for it; name what could not be found."""
    missing: list[str] = []
    patient = resources.by_key.get(("Patient", patient_id or "")) or resources.first("Patient")
    if patient is None and reader is not None and patient_id:
        patient = resources.resolve(f"Patient/{patient_id}", reader)
    our_id = None
    if patient is None:
        missing.append("the Patient (not in prefetch and not readable from fhirServer)")
    else:
        our_id = next((i.value for i in patient.identifier or ()
                       if i.system == identifier_system and i.value), None)
        if our_id is None:
            missing.append(f"a patient identifier with system {identifier_system}")
    coverages = resources.by_type.get("Coverage", [])
    if not coverages and reader is not None and patient_id:
        bundle = reader.search("Coverage", {"patient": patient_id, "status": "active",
                                            "_include": "Coverage:payor"})
        if bundle is not None:
            resources.add(bundle, "fhirServer Coverage search")
            coverages = resources.by_type.get("Coverage", [])
    coverage = payer = None
    for candidate in coverages:
        coverage = coverage or candidate
        for value in _payor_identifier_values(candidate, resources, reader):
            if payer := find_payer_by_external_id(value):
                coverage = candidate
                break
        if payer:
            break
    if coverage is None:
        missing.append("the patient's Coverage (not in prefetch and not readable from "
                       "fhirServer)")
    elif payer is None:
        missing.append("a payer we hold policies for: no identifier of the Coverage's payor "
                       "Organization is one of our payer ids or external ids")
    return PatientAndCoverage(
        our_id, patient.birthDate if patient is not None else None, coverage,
        payer.code if payer else None, payer.name if payer else None, missing)


def order_case(target: FHIRAbstractModel, order: FHIRAbstractModel | None,
               appointment: FHIRAbstractModel | None, who: PatientAndCoverage,
               resources: Resources, reader: FhirReader | None, codes: DrugCodes,
               user_id: Any = None) -> OrderCase:
    """Map one order (with the appointment it is booked for, if any) to an eligibility request.

    ``user_id`` is the hook's ``context.userId``, given only where the user signs the order: it
    names the prescriber when the order itself does not.
    """
    case = OrderCase(target=target, order=order, coverage=who.coverage,
                     payer_code=who.payer_code, payer_name=who.payer_name,
                     missing=list(who.missing))
    hcpcs: set[str] = set()
    if order is None:
        case.missing.append("the order this appointment is based on (Appointment.basedOn, "
                            "not in prefetch and not readable from fhirServer)")
    elif order.get_resource_type() not in ("ServiceRequest", "MedicationRequest"):
        case.missing.append(f"a drug order: a {order.get_resource_type()} names no drug")
    else:
        hcpcs, unmapped = codes.hcpcs_for(_drug_codings(order, resources, reader))
        if not hcpcs:
            seen = "; ".join(unmapped) if unmapped else "no coded drug"
            case.missing.append(f"an HCPCS, RxNorm or NDC code of a drug we hold policies "
                                f"for (the order names {seen})")
        elif len(hcpcs) > 1:
            case.missing.append(f"one drug: the order's codes name {', '.join(sorted(hcpcs))}")
    if case.missing:
        return case
    mg, mg_per_kg = _dose(order)
    day = _service_date(appointment, order) or dt.date.today()
    npis = provider_npis(order, appointment, user_id, resources, reader)
    case.request = EligibilityRequest(
        patient_id=who.patient_id or "", payer=who.payer_code or "", date_of_service=day,
        hcpcs=next(iter(hcpcs)), diagnosis_codes=_diagnoses(order, appointment),
        site_of_care=_site(resources, order, appointment), birth_date=who.birth_date,
        dose_mg=mg, dose_mg_per_kg=mg_per_kg, rendering_npi=npis.rendering,
        ordering_npi=npis.ordering)
    return case
