"""Answer a CDS Hooks call (Da Vinci CRD): discovery, cards and coverage-information updates.

The decision for each order is the eligibility service's (``check_batch``, as the API calls it);
this module only turns its result into CRD's vocabulary and words a scheduler acts on.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fhir_core.fhirabstractmodel import FHIRAbstractModel
from marshmallow import ValidationError

from policy_service.errors import Invalid, NotFound
from policy_service.logging import get_logger
from policy_service.schemas.cds import CrdConfigurationSchema, HookRequestSchema
from policy_service.schemas.common import MAX_HOOK_ORDERS
from policy_service.services.cds.fhir import (
    ORDER_TYPES,
    FhirReader,
    MalformedFhir,
    Resources,
    parse_resource,
)
from policy_service.services.cds.mapping import (
    HCPCS_SYSTEMS,
    DrugCodes,
    OrderCase,
    based_on_references,
    order_case,
    patient_and_coverage,
)
from policy_service.services.cds.security import CdsClient
from policy_service.services.eligibility import check_batch
from rulesets.eligibility import RULESET as ELIGIBILITY_RULES
from rulesets.vocabulary import Decision, Severity

CRD_VERSIONS = ["2.2"]
COVERAGE_INFORMATION_URL = ("http://hl7.org/fhir/us/davinci-crd/StructureDefinition/"
                            "ext-coverage-information")
HCPCS_SYSTEM = sorted(HCPCS_SYSTEMS)[-1]  # the https form, as the guide writes it
CARD_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/cdshooks-card-type"
SERVICE_LABEL = "Payer policy service"
SUMMARY_LIMIT = 140
DEFAULT_MAX_CARDS = 10
INDICATOR_ORDER = {"critical": 0, "warning": 1, "info": 2}

CONFIGURATION_OPTIONS = [
    {"code": "coverage-info", "type": "boolean", "name": "Coverage Information",
     "description": "Whether the service is covered, needs prior authorization or has one on "
                    "file, as cards and coverage-information updates of each order or "
                    "appointment.",
     "default": True},
    {"code": "max-cards", "type": "integer", "name": "Maximum cards",
     "description": "At most this many cards; the most urgent are kept.",
     "default": DEFAULT_MAX_CARDS},
]
_COMMON_PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "coverage": "Coverage?patient={{context.patientId}}&status=active"
                "&_include=Coverage:payor",
}
_ORDER_PRACTITIONER_PATHS = ("context.draftOrders.entry.resource.requester",
                             "context.draftOrders.entry.resource.performer")
_APPOINTMENT_PRACTITIONER_PATHS = (
    "context.appointments.entry.resource.participant.actor",
    "%serviceRequests.entry.resource.requester", "%serviceRequests.entry.resource.performer",
    "%medicationRequests.entry.resource.requester",
    "%medicationRequests.entry.resource.performer")


def _practitioner_prefetch(paths: tuple[str, ...]) -> dict[str, str]:
    """Prefetch templates for the practitioners (and their roles) at ``paths``, for NPIs."""
    return {
        "practitionerRoles": "PractitionerRole?_id={{" + "|".join(
            f"{path}.resolve().ofType(PractitionerRole).id" for path in paths) + "}}",
        "practitioners": "Practitioner?_id={{%practitionerRoles.entry.resource.practitioner."
                         "resolve().id|" + "|".join(
            f"{path}.resolve().ofType(Practitioner).id" for path in paths) + "}}",
    }


SERVICES: dict[str, dict[str, Any]] = {
    "appointment-book": {
        "hook": "appointment-book",
        "title": "Infusion coverage requirements at booking",
        "description": "Whether the infusion being booked is covered by the patient's payer, "
                       "needs prior authorization, or draws on one already on file.",
        "prefetch": {
            **_COMMON_PREFETCH,
            "serviceRequests": "ServiceRequest?_id={{context.appointments.entry.resource."
                               "basedOn.resolve().ofType(ServiceRequest).id}}",
            "medicationRequests": "MedicationRequest?_id={{context.appointments.entry."
                                  "resource.basedOn.extension('http://hl7.org/fhir/"
                                  "StructureDefinition/alternate-reference').value.resolve()."
                                  "ofType(MedicationRequest).id}}",
            "medications": "Medication?_id={{%medicationRequests.entry.resource.medication."
                           "resolve().id}}",
            "locations": "Location?_id={{context.appointments.entry.resource.participant."
                         "actor.resolve().ofType(Location).id}}",
            # The booked clinician and the orders' prescriber and performer, for their NPIs
            # (the guide's own templates, cut to what we read).
            **_practitioner_prefetch(_APPOINTMENT_PRACTITIONER_PATHS),
        },
    },
    "order-sign": {
        "hook": "order-sign",
        "title": "Infusion coverage requirements at order signing",
        "description": "Whether the drug being ordered is covered by the patient's payer, needs "
                       "prior authorization, or draws on one already on file.",
        "prefetch": {
            **_COMMON_PREFETCH,
            "medications": "Medication?_id={{context.draftOrders.entry.resource.ofType("
                           "MedicationRequest).medication.resolve().id}}",
            "locations": "Location?_id={{context.draftOrders.entry.resource.ofType("
                         "ServiceRequest).locationReference.resolve().id}}",
            # The orders' prescriber and performer, and the signing user, for their NPIs.
            **_practitioner_prefetch(_ORDER_PRACTITIONER_PATHS),
            "userPractitionerRole": "PractitionerRole?_id={{userPractitionerRoleId}}"
                                    "&_include=PractitionerRole:practitioner",
            "userPractitioner": "Practitioner/{{userPractitionerId}}",
        },
    },
}
CONTEXT_BUNDLE = {"appointment-book": "appointments", "order-sign": "draftOrders"}

log = get_logger("cds")
DOCUMENTATION_MISSING = ELIGIBILITY_RULES.rule("documentation_missing").code


class MalformedHookCall(Invalid):
    """The hook call's body is not a CDS Hooks request we can read (HTTP 400, not 422)."""

    status = 400
    code = "CDS_MALFORMED_REQUEST"
    title = "Malformed CDS Hooks request"

    def __init__(self, detail: str, errors: Mapping[str, Any] | None = None) -> None:
        super().__init__(errors or {"(body)": [detail]}, detail)


def discovery() -> dict[str, Any]:
    """Return the discovery document: one service per hook, with the CRD extension."""
    extension = {"davinci-crd.version": CRD_VERSIONS,
                 "davinci-crd.configuration-options": CONFIGURATION_OPTIONS}
    return {"services": [{**service, "id": service_id, "extension": extension}
                         for service_id, service in SERVICES.items()]}


@dataclass(frozen=True)
class Configuration:
    """What the EHR asked for in ``davinci-crd.configuration``."""

    coverage_info: bool = True
    max_cards: int = DEFAULT_MAX_CARDS


def _configuration(extension: dict[str, Any] | None) -> Configuration:
    raw = (extension or {}).get("davinci-crd.configuration")
    if raw is None:
        return Configuration()
    try:
        loaded = CrdConfigurationSchema().load(raw)
    except ValidationError as exc:
        raise MalformedHookCall(f"extension.davinci-crd.configuration: {exc.messages}") from exc
    return Configuration(**loaded)


def _load_call(service_id: str, body: Any) -> dict[str, Any]:
    if service_id not in SERVICES:
        raise NotFound(f"There is no CDS service {service_id!r}; see GET /cds-services.")
    if not isinstance(body, dict):
        raise MalformedHookCall("The body must be a JSON object (a CDS Hooks request).")
    try:
        call = HookRequestSchema().load(body)
    except ValidationError as exc:
        raise MalformedHookCall("The CDS Hooks request is malformed.", exc.messages) from exc
    if call["hook"] != SERVICES[service_id]["hook"]:
        raise MalformedHookCall(f"This service answers the {SERVICES[service_id]['hook']} "
                                f"hook, not {call['hook']}.")
    for name in ("patientId", CONTEXT_BUNDLE[service_id]):
        if name not in call["context"]:
            raise MalformedHookCall(f"context.{name} is required for {call['hook']}.")
    return call


def _context_resources(service_id: str, context: dict[str, Any]) -> list[FHIRAbstractModel]:
    """Parse the hook's Bundle of proposed appointments or draft orders (an array is read too)."""
    name = CONTEXT_BUNDLE[service_id]
    value = context[name]
    entries = value.get("entry") if isinstance(value, dict) else value
    if isinstance(entries, list) and len(entries) > MAX_HOOK_ORDERS:
        # Counted before parsing: each entry is a FHIR resource to validate and an order to check.
        raise MalformedHookCall(
            f"context.{name} carries {len(entries):,} entries; at most {MAX_HOOK_ORDERS} per call.",
            {f"context.{name}": [f"At most {MAX_HOOK_ORDERS} entries per call."]})
    if isinstance(value, dict):
        bundle = parse_resource(value, f"context.{name}")
        if bundle.get_resource_type() != "Bundle":
            raise MalformedFhir(f"context.{name}", "must be a Bundle")
        return [entry.resource for entry in bundle.entry or () if entry.resource is not None]
    if isinstance(value, list):  # CDS Hooks 1.x sent a plain array of resources.
        return [parse_resource(item, f"context.{name}[{i}]") for i, item in enumerate(value)]
    raise MalformedFhir(f"context.{name}", "must be a Bundle")


def _cases(service_id: str, targets: Sequence[FHIRAbstractModel], resources: Resources,
           reader: FhirReader | None, identifier_system: str,
           context: dict[str, Any]) -> list[OrderCase]:
    who = patient_and_coverage(resources, str(context["patientId"]), identifier_system, reader)
    codes = DrugCodes.load()
    cases = []
    for target in targets:
        if service_id == "appointment-book":
            if target.get_resource_type() != "Appointment":
                continue
            orders = [resources.resolve(ref, reader) for ref in based_on_references(target)]
            drug_orders = [o for o in orders if o is not None
                           and o.get_resource_type() in ORDER_TYPES]
            order = drug_orders[0] if drug_orders else next((o for o in orders if o), None)
            cases.append(order_case(target, order, target, who, resources, reader, codes))
        else:
            # order-sign's user signs the orders, so names their prescriber when they do not;
            # appointment-book's user may be whoever books (a scheduler, the patient).
            cases.append(order_case(target, target, None, who, resources, reader, codes,
                                    user_id=context.get("userId")))
    return cases


def _assertion(case: OrderCase, result: dict[str, Any] | None,
               ) -> tuple[str, str | None, list[str]]:
    """Return (covered, pa-needed, reasons) in CRD's codes for one eligibility result."""
    if result is None:
        return "indeterminate", None, ["Could not be checked; missing: " + "; ".join(case.missing)]
    decision = result["decision"]
    blocking = [f["message"] for f in result["findings"] if f["severity"] == Severity.BLOCK]
    if decision == Decision.NOT_ELIGIBLE:
        return "not-covered", None, blocking
    if decision == Decision.NEEDS_INFORMATION:
        reasons = blocking or [f["message"] for f in result["findings"]]
        # Without a policy on file nothing can be said; with one, more information decides.
        return ("indeterminate" if result.get("policy") is None else "conditional"), None, \
            reasons
    if decision == Decision.NEEDS_AUTHORIZATION:
        return "covered", "auth-needed", blocking
    return "covered", "satisfied" if result.get("authorization") else "no-auth", []


def _documentation_finding(result: dict[str, Any] | None) -> dict[str, Any] | None:
    """The result's DOCUMENTATION_MISSING finding, if the policy's checklist is incomplete."""
    if result is None:
        return None
    return next((f for f in result["findings"] if f["code"] == DOCUMENTATION_MISSING), None)


def _coverage_information(case: OrderCase, result: dict[str, Any] | None,
                          assertion_id: str, today: dt.date) -> dict[str, Any]:
    """The ext-coverage-information of one answer, keeping the guide's invariants."""
    covered, pa_needed, reasons = _assertion(case, result)
    coverage_id = case.coverage.id if case.coverage is not None else None
    parts: list[dict[str, Any]] = [
        {"url": "coverage", "valueReference": {"reference": f"Coverage/{coverage_id}"}},
        {"url": "covered", "valueCode": covered}]
    if pa_needed:
        parts.append({"url": "pa-needed", "valueCode": pa_needed})
    if covered == "conditional":
        parts.append({"url": "info-needed", "valueCode": "OTH"})
    documentation = _documentation_finding(result)
    if documentation is not None and covered != "not-covered":
        # The policy's checklist (TB screening results, ...) comes from clinicians.
        parts.append({"url": "doc-needed", "valueCode": "clinical"})
        reasons = [*reasons, documentation["message"]]
    if case.request is not None:
        parts.append({"url": "billingCode", "valueCoding": {
            "system": HCPCS_SYSTEM, "code": case.request.hcpcs}})
    parts += [{"url": "reason", "valueCodeableConcept": {"text": text}} for text in reasons]
    parts.append({"url": "date", "valueDate": today.isoformat()})
    parts.append({"url": "coverage-assertion-id", "valueString": assertion_id})
    if result is not None and pa_needed == "satisfied":
        authorization = result["authorization"]
        parts.append({"url": "satisfied-pa-id", "valueString": authorization["number"]})
        parts.append({"url": "expiry-date", "valueDate": authorization["valid_to"]})
    return {"url": COVERAGE_INFORMATION_URL, "extension": parts}


def coverage_information_problems(extension: dict[str, Any]) -> list[str]:
    """Return which of the guide's rules an ext-coverage-information breaks (none: valid)."""
    values: dict[str, list[Any]] = {}
    for part in extension.get("extension", []):
        value = next((v for k, v in part.items() if k.startswith("value")), None)
        values.setdefault(part.get("url"), []).append(value)
    problems = [f"{name} is required (exactly once)" for name in
                ("coverage", "covered", "date", "coverage-assertion-id")
                if len(values.get(name, [])) != 1]
    covered = (values.get("covered") or [None])[0]
    pa_needed = (values.get("pa-needed") or [None])[0]
    graded = [covered, pa_needed, *values.get("doc-needed", [])]
    if covered == "not-covered" and "pa-needed" in values:
        problems.append("crd-ci-q2: not-covered has no pa-needed")
    if "conditional" in graded and "info-needed" not in values:
        problems.append("crd-ci-q3: conditional needs info-needed")
    if (pa_needed == "satisfied") != ("satisfied-pa-id" in values):
        problems.append("crd-ci-q5: satisfied if and only if satisfied-pa-id")
    if "OTH" in values.get("info-needed", []) and "reason" not in values:
        problems.append("crd-ci-q6: info-needed OTH needs a reason")
    if "indeterminate" in graded and "reason" not in values:
        problems.append("crd-ci-q9: indeterminate needs a reason")
    return problems


def _summary(text: str) -> str:
    return text if len(text) <= SUMMARY_LIMIT else text[:SUMMARY_LIMIT - 1].rstrip() + "…"


def _card(indicator: str, summary: str, detail: str, case: OrderCase,
          policy: dict[str, Any] | None) -> dict[str, Any]:
    label = f"{case.payer_name} coverage policy" if case.payer_name else SERVICE_LABEL
    source: dict[str, Any] = {"label": label, "topic": {
        "system": CARD_TYPE_SYSTEM, "code": "coverage-info", "display": "Coverage Information"}}
    card: dict[str, Any] = {"uuid": str(uuid.uuid4()), "summary": _summary(summary),
                            "indicator": indicator, "detail": detail, "source": source,
                            "extension": {"davinci-crd.associated-resource": [
                                {"reference": case.target_reference}]}}
    if policy and policy.get("source"):
        source["url"] = policy["source"]
        card["links"] = [{"label": f"Policy {policy['id']} (version {policy['version']})",
                          "url": policy["source"], "type": "absolute"}]
    return card


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _cards_for(case: OrderCase, result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The cards a person must act on for one order; none when it can simply go ahead."""
    what = case.target_reference
    if result is None:
        return [_card("info", f"Coverage not checked for {what}: information missing",
                      "Could not check coverage because the request lacks:\n"
                      + _bullets(case.missing), case, None)]
    drug = case.request.hcpcs if case.request else what
    payer = case.payer_name or case.payer_code
    decision = result["decision"]
    policy = result.get("policy")
    findings = result["findings"]
    blocking = [f["message"] for f in findings if f["severity"] == Severity.BLOCK]
    warnings = [f["message"] for f in findings if f["severity"] == Severity.WARN]
    if decision == Decision.NOT_ELIGIBLE:
        return [_card("critical", f"{drug} is not covered by {payer}",
                      _bullets(blocking), case, policy)]
    if decision == Decision.NEEDS_AUTHORIZATION:
        return [_card("warning", f"Prior authorization needed for {drug} ({payer})",
                      _bullets(blocking + warnings), case, policy)]
    if decision == Decision.NEEDS_INFORMATION:
        return [_card("warning", f"More information needed to decide coverage of {drug} "
                                 f"({payer})", _bullets(blocking + warnings), case, policy)]
    if warnings:
        number = (result.get("authorization") or {}).get("number")
        subject = f"Authorization {number}" if number else f"{drug} ({payer})"
        return [_card("warning", f"{subject}: act before it runs out", _bullets(warnings),
                      case, policy)]
    return []


def _update_action(case: OrderCase, extension: dict[str, Any]) -> dict[str, Any]:
    resource = case.target.model_dump(mode="json", exclude_none=True)
    resource["extension"] = [e for e in resource.get("extension", [])
                             if e.get("url") != COVERAGE_INFORMATION_URL] + [extension]
    return {"type": "update", "description": "Coverage information from the payer's policy",
            "resource": resource}


def answer_hook(service_id: str, body: Any, client: CdsClient, identifier_system: str,
                today: dt.date | None = None) -> dict[str, Any]:
    """Answer one hook call with cards and coverage-information updates (never raises 5xx).

    Raises ``NotFound`` for an unknown service and ``MalformedHookCall``/``Invalid`` (HTTP 400)
    for a body that is not a CDS Hooks request or whose FHIR is not valid R4.
    """
    call = _load_call(service_id, body)
    configuration = _configuration(call.get("extension"))
    try:
        targets = _context_resources(service_id, call["context"])
        resources = Resources()
        for key, value in (call.get("prefetch") or {}).items():
            resources.add(value, f"prefetch.{key}")
    except MalformedFhir as exc:
        raise MalformedHookCall(f"{exc.where} is not valid FHIR R4: {exc.problem}") from exc
    server = call.get("fhirServer")
    reader = None
    if server and client.allows_fhir_server(server):
        token = (call.get("fhirAuthorization") or {}).get("access_token")
        reader = FhirReader(server, token)
    if not configuration.coverage_info:
        log.info("cds_answered", service=service_id, hook_instance=call["hookInstance"],
                 assertions=[], coverage_info=False)
        return {"cards": [], "systemActions": []}
    cases = _cases(service_id, targets, resources, reader, identifier_system, call["context"])
    return _respond(service_id, call["hookInstance"], cases, configuration,
                    today or dt.date.today())


def _respond(service_id: str, hook_instance: str, cases: list[OrderCase],
             configuration: Configuration, today: dt.date) -> dict[str, Any]:
    checkable = [case for case in cases if case.request is not None]
    results = dict(zip(map(id, checkable), check_batch([c.request for c in checkable]),
                       strict=True))
    cards: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    assertions: list[dict[str, Any]] = []
    for case in cases:
        result = results.get(id(case))
        if isinstance(result, Invalid):
            case.missing.append(result.detail)
            case.request, result = None, None
        cards += _cards_for(case, result)
        if case.coverage is None:
            continue
        assertion_id = str(uuid.uuid4())
        extension = _coverage_information(case, result, assertion_id, today)
        actions.append(_update_action(case, extension))
        assertions.append({
            "assertion_id": assertion_id, "resource_type": case.target.get_resource_type(),
            "payer": case.payer_code, "hcpcs": case.request.hcpcs if case.request else None,
            "decision": result["decision"] if result else "not_checked"})
    cards.sort(key=lambda card: INDICATOR_ORDER[card["indicator"]])
    cards = cards[:configuration.max_cards]
    log.info("cds_answered", service=service_id, hook_instance=hook_instance,
             assertions=assertions, cards=len(cards))
    return {"cards": cards, "systemActions": actions}
