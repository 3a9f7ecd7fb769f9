"""Trying a policy version before it takes effect: its test cases, the diff in words, payers
compared. Nothing here writes; ``services.policies`` activates and records.

A version is evaluated "as if it were active" by checking the requests against a copy of the
policy index in which that version is the policy's only version, for every date.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import joinedload, selectinload

from policy_service.domain.documentation import documentation_items
from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import Appointment, Payer, Policy, PolicyCase, PolicyVersion
from policy_service.models.policy import PolicyCode
from policy_service.schemas.eligibility import load_request
from policy_service.services.appointments import appointment_request, checks_for
from policy_service.services.eligibility import check_batch
from policy_service.services.policy_index import PolicyIndex, index_cache, policy_view

SCHEDULED = "scheduled"


def index_with(version: PolicyVersion, index: PolicyIndex | None = None) -> PolicyIndex:
    """Return a copy of the index where ``version`` is its policy's only version, on any date.

    For the payer's codes it names it is also the only policy: where two policies of one payer
    name a code (Aetna's pharmacy-only Remicade beside its infliximab policy), the version
    under test decides its own cases.
    """
    base = index or index_cache.current()
    view = dataclasses.replace(policy_view(version), status="active",
                               effective_from=dt.date.min, effective_to=None)
    code = version.policy.code
    versions = {key: [v for v in views if v.code != code]
                for key, views in base.versions.items()}
    for hcpcs in view.hcpcs:
        versions[(view.payer_code, hcpcs)] = [view]
    return PolicyIndex(revision=base.revision, payers=base.payers, payer_ids=base.payer_ids,
                       drugs=base.drugs, providers=base.providers,
                       versions={key: views for key, views in versions.items() if views})


def predecessor(version: PolicyVersion) -> PolicyVersion | None:
    """The version numbered just below ``version`` (the one it was copied from or follows)."""
    earlier = [v for v in version.policy.versions if (v.number or 0) < (version.number or 0)]
    return max(earlier, key=lambda v: v.number, default=None)


def case_outcome(case: PolicyCase, result: Mapping[str, Any] | Invalid) -> dict[str, Any] | None:
    """Return the failure of ``case`` given its result, or None when it passed."""
    expected = case.expectation()
    if isinstance(result, Invalid):
        got: dict[str, Any] = {"error": result.errors}
        return {"name": case.name, "expected": expected, "got": got}
    codes = sorted({f["code"] for f in result["findings"]})
    got = {"decision": result["decision"], "codes": codes}
    passed = (result["decision"] == expected["decision"]
              and set(expected["codes"]) <= set(codes)
              and not set(expected["absent"]) & set(codes))
    return None if passed else {"name": case.name, "expected": expected, "got": got}


def run_cases(version: PolicyVersion, cases: Sequence[PolicyCase] | None = None
              ) -> dict[str, Any]:
    """Run the version's cases and its predecessor's against it: ``{passed, failed}``."""
    if cases is None:
        earlier = predecessor(version)
        cases = [*version.cases, *(earlier.cases if earlier is not None else [])]
    requests = [load_request(case.request) for case in cases]
    results = check_batch(requests, index=index_with(version)) if cases else []
    failed = [failure for case, result in zip(cases, results, strict=True)
              if (failure := case_outcome(case, result)) is not None]
    return {"passed": len(cases) - len(failed), "failed": failed}


def observed_expectation(version: PolicyVersion, request: Mapping[str, Any]
                         ) -> dict[str, Any] | Invalid:
    """What checking ``request`` under ``version`` (as if active) gives, as a case's
    expectation: the decision and every finding code. "Save as test case" records it."""
    loaded = load_request(dict(request))
    if isinstance(loaded, Invalid):
        return loaded
    [result] = check_batch([loaded], index=index_with(version))
    if isinstance(result, Invalid):
        return result
    return {"decision": str(result["decision"]),
            "codes": sorted({f["code"] for f in result["findings"]}), "absent": []}


def compare_results(keys: Sequence[str], before: Sequence[Any],
                    after: Sequence[Any]) -> list[dict[str, Any]]:
    """Return the entries whose decision or finding codes differ between two runs."""
    changed = []
    for key, old, new in zip(keys, before, after, strict=True):
        if isinstance(old, Invalid) or isinstance(new, Invalid):
            continue
        old_codes = {f["code"] for f in old["findings"]}
        new_codes = {f["code"] for f in new["findings"]}
        if old["decision"] != new["decision"] or old_codes != new_codes:
            changed.append({"appointment_id": key, "before": old["decision"],
                            "after": new["decision"],
                            "added_codes": sorted(new_codes - old_codes),
                            "removed_codes": sorted(old_codes - new_codes)})
    return changed


def governed_query(version: PolicyVersion) -> Select[Any]:
    """The scheduled appointments ``version`` would decide once active."""
    query = (select(Appointment).join(Appointment.payer)
             .where(Appointment.status == SCHEDULED, Payer.code == version.policy.payer.code,
                    Appointment.hcpcs.in_(list(version.hcpcs or ())),
                    Appointment.date_of_service >= version.effective_from)
             .options(joinedload(Appointment.patient), joinedload(Appointment.payer))
             .order_by(Appointment.date_of_service, Appointment.appointment_id))
    if version.effective_to is not None:
        query = query.where(Appointment.date_of_service <= version.effective_to)
    return query


def impact(version: PolicyVersion) -> dict[str, Any]:
    """Replay every appointment the version would govern under the current rules and under it.

    "Before" is each appointment's standing check (kept current by the schedule, recomputed
    only when a revision it depends on moved); "after" checks the same requests against an
    index where the version is in force. Returns ``{"appointments": N, "changed": [...]}``:
    each changed appointment by its id and the patient's record number, with the decision
    before and after and the finding codes that appear or go.
    """
    checked = checks_for(governed_query(version))
    requests = [appointment_request(c.appointment) for c in checked]
    after = check_batch(requests, index=index_with(version)) if requests else []
    changed = compare_results([c.appointment.appointment_id for c in checked],
                              [c.check.result for c in checked], after)
    patients = {c.appointment.appointment_id: c.patient for c in checked}
    for row in changed:
        row["patient"] = patients[row["appointment_id"]]
    return {"appointments": len(checked), "changed": changed}


# --- what changed, in words -------------------------------------------------------------------

FIELD_LABELS = {
    "hcpcs": "drugs covered", "effective_from": "effective from",
    "effective_to": "effective to", "prior_auth_required": "prior authorization",
    "covered_diagnoses": "covered diagnoses", "preferred_products": "preferred products",
    "sites_of_care": "sites of care", "max_dose": "dose limit",
    "min_days_between_doses": "minimum days between doses", "min_age": "minimum age",
    "max_age": "maximum age", "new_starts_only_lookback_days": "new-start look-back",
    "approval_days": "approval length (days)", "documentation_required": "documentation",
    "step_therapy": "step therapy", "drug_supply": "drug supply",
    "prescriber_specialties": "prescriber specialties", "source": "source", "notes": "notes",
}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def step_words(steps: Iterable[Mapping[str, Any]]) -> str:
    """Step therapy in words: ``1 of methotrexate, leflunomide for 90+ days``."""
    parts = [f"{s['count']} of {', '.join(s['any_of'])} for {s['min_days']}+ days"
             for s in steps]
    return "; then ".join(parts) or "none"


def dose_words(max_dose: Mapping[str, Any]) -> str:
    """A dose limit in words: ``10 mg/kg`` or ``1000 mg and 100 units``."""
    units = {"mg": "mg", "mg_per_kg": "mg/kg", "units": "units"}
    parts = [f"{_plain(max_dose[key])} {label}" for key, label in units.items()
             if max_dose.get(key) is not None]
    return " and ".join(parts) or "none"


def criteria(version: PolicyVersion) -> dict[str, Any]:
    """A version's criteria as plain values keyed like the bundle."""
    values = {name: _plain(getattr(version, name)) for name in FIELD_LABELS
              if name not in {"max_dose", "step_therapy"}}
    values["max_dose"] = {"mg": _plain(version.max_dose_mg),
                          "mg_per_kg": _plain(version.max_dose_mg_per_kg),
                          "units": version.max_dose_units}
    values["step_therapy"] = [s.as_dict() for s in version.steps]
    return values


def documentation_words(items: Iterable[Any]) -> list[str]:
    """Each checklist item in words: ``TB screening within 12 months (TB_SCREENING, at most
    365 days old)``."""
    words = []
    for item in documentation_items(items):
        age = f", at most {item.max_age_days} days old" if item.max_age_days else ""
        words.append(f"{item.label} ({item.code}{age})")
    return words


def _summary(field: str, before: Any, after: Any) -> str:
    label = FIELD_LABELS[field]
    if field == "documentation_required":
        before, after = documentation_words(before or []), documentation_words(after or [])
    if isinstance(before, list) and isinstance(after, list) and field != "step_therapy":
        added = [v for v in after if v not in before]
        removed = [v for v in before if v not in after]
        parts = []
        if added:
            parts.append(f"{', '.join(map(str, added))} added to {label}")
        if removed:
            parts.append(f"{', '.join(map(str, removed))} removed from {label}")
        return "; ".join(parts)
    if field == "step_therapy":
        before, after = step_words(before), step_words(after)
    elif field == "max_dose":
        before, after = dose_words(before), dose_words(after)
    elif field == "prior_auth_required":
        before, after = ("required" if v else "not required" for v in (before, after))
    return f"{label}: {'none' if before is None else before} -> " \
           f"{'none' if after is None else after}"


def diff(older: PolicyVersion, newer: PolicyVersion) -> list[dict[str, Any]]:
    """Return each criterion that differs between two versions, with a one-line summary."""
    before, after = criteria(older), criteria(newer)
    return [{"field": name, "before": before[name], "after": after[name],
             "summary": _summary(name, before[name], after[name])}
            for name in FIELD_LABELS if before[name] != after[name]]


def rules_in_words(version: PolicyVersion) -> list[tuple[str, str]]:
    """A version's criteria as a coordinator reads them, one line per rule."""
    values = criteria(version)
    ages = {"min": version.min_age, "max": version.max_age}
    age = ("any age" if ages["min"] is None and ages["max"] is None
           else f"{ages['min'] if ages['min'] is not None else 0} to "
                f"{ages['max'] if ages['max'] is not None else 'any age'}")
    interval = (f"at least {version.min_days_between_doses} days between doses"
                if version.min_days_between_doses else "no minimum")
    approval = f"; approved for {version.approval_days} days" if version.approval_days else ""
    return [
        ("Drugs", ", ".join(values["hcpcs"])),
        ("Prior authorization",
         ("required" if version.prior_auth_required else "not required") + approval),
        ("Covered diagnoses", ", ".join(values["covered_diagnoses"]) or "any"),
        ("Preferred products", ", ".join(values["preferred_products"]) or "none named"),
        ("Step therapy", step_words(values["step_therapy"])),
        ("Sites of care", ", ".join(s.replace("_", " ") for s in values["sites_of_care"])
         or "any"),
        ("Dose limit", dose_words(values["max_dose"])),
        ("Interval", interval),
        ("Age", age),
        ("Documentation", "; ".join(documentation_words(values["documentation_required"]))
         or "none listed"),
        ("Drug supply", (values["drug_supply"] or "either").replace("_", " ")),
        ("Prescriber specialties", ", ".join(values["prescriber_specialties"]) or "any"),
        ("Source", version.source or "not given"),
    ]


# --- one drug across payers -------------------------------------------------------------------


def in_effect(hcpcs: str, day: dt.date) -> list[PolicyVersion]:
    """The non-draft policy version each payer applies to ``hcpcs`` on ``day``."""
    rows = db.session.scalars(
        select(PolicyVersion).join(PolicyCode)
        .where(PolicyCode.hcpcs == hcpcs, PolicyVersion.status != "draft",
               PolicyVersion.effective_from <= day,
               (PolicyVersion.effective_to.is_(None)) | (PolicyVersion.effective_to >= day))
        .options(selectinload(PolicyVersion.steps),
                 selectinload(PolicyVersion.policy).selectinload(Policy.payer)))
    newest: dict[str, PolicyVersion] = {}
    for version in rows:
        payer = version.policy.payer.code
        if payer not in newest or version.effective_from > newest[payer].effective_from:
            newest[payer] = version
    return [newest[payer] for payer in sorted(newest)]


def compare_row(version: PolicyVersion) -> dict[str, Any]:
    """One payer's criteria for a drug, each in words, with the policy's source."""
    values = criteria(version)
    return {
        "payer": version.policy.payer.code, "payer_name": version.policy.payer.name,
        "policy": {"id": version.policy.code, "version": version.number,
                   "source": version.source},
        "prior_auth_required": version.prior_auth_required,
        "covered_diagnoses": values["covered_diagnoses"],
        "preferred_products": values["preferred_products"],
        "step_therapy": step_words(values["step_therapy"]),
        "sites_of_care": values["sites_of_care"],
        "dose_limit": dose_words(values["max_dose"]),
        "min_days_between_doses": version.min_days_between_doses,
        "approval_days": version.approval_days,
        "documentation": documentation_words(values["documentation_required"]),
        "source": version.source,
    }
