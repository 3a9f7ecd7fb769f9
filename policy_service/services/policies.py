"""The one write path for policies: version numbers, the draft lock, HCPCS codes, activation.

The admin views, the bundle import and the API all call these functions, so a rule about
policy versions holds whichever way a version is written. Values arrive in bundle shape (as
``PolicyVersionSchema`` loads them: ``max_dose`` nested, ``step_therapy`` as a list). Functions
flush at most; the caller commits once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, or_, select

from policy_service.audit import current_actor
from policy_service.domain.fields import (
    MAX_DOSE_COLUMNS,
    STEP_ATTRS,
    STEP_DEFAULTS,
    VERSION_ATTRS,
    VERSION_DEFAULTS,
    apply_values,
    stored_values,
    sync_children,
)
from policy_service.errors import Conflict, Invalid
from policy_service.extensions import db
from policy_service.models import (
    ChangeRecord,
    Drug,
    Policy,
    PolicyCase,
    PolicyVersion,
    StepTherapyStep,
)
from policy_service.models.policy import PolicyCode, sync_policy_codes
from policy_service.models.reference import Payer
from policy_service.schemas.eligibility import load_request
from policy_service.services import policy_review

DRAFT, ACTIVE, RETIRED = "draft", "active", "retired"
VERSION_LOCKED = "POLICY_VERSION_LOCKED"
CASES_FAILING = "POLICY_CASES_FAILING"
HCPCS_REQUIRED = "Name at least one HCPCS code."
CODE_REQUIRED = "Give the policy a code, e.g. ACME/infliximab."
PAYER_REQUIRED = "Choose the payer."
# What identifies a version rather than describes it: never copied into a new draft.
IDENTITY_FIELDS = ("number", "effective_from", "effective_to", "status")
# What a draft's fields may say (the API's PATCH, the admin's version form): the version's
# criteria and dates, never its number or status.
DRAFT_FIELDS = ("effective_from", "hcpcs", "effective_to", "prior_auth_required",
                "covered_diagnoses", "preferred_products", "sites_of_care", "max_dose",
                "min_days_between_doses", "min_age", "max_age", "step_therapy",
                "new_starts_only_lookback_days", "approval_days", "documentation_required",
                "drug_supply", "prescriber_specialties", "source", "notes")


def plan_version_numbers(entries: Sequence[tuple[int, Mapping[str, Any]]],
                         policies: Mapping[str, Policy]) -> tuple[dict[int, int], dict[Any, Any]]:
    """Return the version number of each policy entry (by bundle index) and any clashes.

    The bundle's ``version`` wins; a stored version keeps its number; a new one gets max + 1.
    """
    numbers: dict[int, int] = {}
    errors: dict[Any, Any] = {}
    taken: dict[str, dict[int, dt.date]] = {}
    stored_by_date: dict[str, dict[dt.date, int]] = {}
    touched = {(e["id"], e["effective_from"]) for _, e in entries}
    for code, policy in policies.items():
        stored_by_date[code] = {v.effective_from: v.number for v in policy.versions}
        taken[code] = {v.number: v.effective_from for v in policy.versions
                       if (code, v.effective_from) not in touched}
    pending: list[tuple[int, Mapping[str, Any]]] = []
    for index, entry in entries:
        code, day = entry["id"], entry["effective_from"]
        number = entry.get("version") or stored_by_date.get(code, {}).get(day)
        if number is None:
            pending.append((index, entry))
            continue
        owners = taken.setdefault(code, {})
        if number in owners and owners[number] != day:
            errors.setdefault("policies", {}).setdefault(index, {})["version"] = [
                f"Version {number} of {code} is already the version effective "
                f"{owners[number].isoformat()}."]
            continue
        owners[number] = day
        numbers[index] = number
    for index, entry in pending:
        owners = taken.setdefault(entry["id"], {})
        number = max(owners, default=0) + 1
        owners[number] = entry["effective_from"]
        numbers[index] = number
    return numbers, errors


def versions_naming_drug(term: str) -> Select[Any]:
    """The ids of the policy versions that cover a drug named by ``term``: its HCPCS code
    (``J1745``, any case) or text in its brand or generic name (``remicade``, ``inflix``)."""
    text = term.strip()
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    named = select(Drug.hcpcs).where(or_(
        Drug.name.ilike(pattern, escape="\\"), Drug.generic.ilike(pattern, escape="\\")))
    return select(PolicyCode.policy_version_id).where(
        or_(PolicyCode.hcpcs == text.upper(), PolicyCode.hcpcs.in_(named)))


def locked_message(version: PolicyVersion) -> str:
    """The one sentence the admin, the import and the API give for a locked version."""
    code = version.policy.code if version.policy else "this policy"
    return (f"Version {version.number} of {code} is {version.status}: only drafts can be "
            "edited. Make a new version instead.")


def is_locked(version: PolicyVersion) -> bool:
    """Return whether ``version`` is active or retired (criteria frozen as they were applied)."""
    return version.status != DRAFT


def ensure_editable(version: PolicyVersion) -> None:
    """Raise Conflict (POLICY_VERSION_LOCKED) unless ``version`` is a draft."""
    if is_locked(version):
        raise Conflict(locked_message(version), code=VERSION_LOCKED)


def next_number(policy: Policy) -> int:
    """The number the policy's next version gets: one more than its highest."""
    return max((v.number or 0 for v in policy.versions), default=0) + 1


def start_errors(policy: Policy, day: dt.date,
                 version: PolicyVersion | None = None) -> dict[str, list[str]]:
    """``{"effective_from": [why]}`` when a version of ``policy`` other than ``version``
    already starts on ``day``: a policy's versions are told apart by their start."""
    if any(other is not version and other.effective_from == day for other in policy.versions):
        return {"effective_from": [
            f"Another version of {policy.code} starts on {day.isoformat()}."]}
    return {}


def hcpcs_errors(values: Mapping[str, Any], creating: bool) -> dict[str, list[str]]:
    """A version must name at least one HCPCS code (when created, or when its list is given)."""
    if ("hcpcs" in values or creating) and not values.get("hcpcs"):
        return {"hcpcs": [HCPCS_REQUIRED]}
    return {}


def column_values(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Return a bundle-shaped version's stored column values (only the keys it gives)."""
    values = {name: entry[name] for name in VERSION_ATTRS if name in entry}
    max_dose = entry.get("max_dose")
    if "max_dose" in entry and max_dose is None:
        values.update({column: None for column in MAX_DOSE_COLUMNS.values()})
    for key, column in MAX_DOSE_COLUMNS.items():
        if key in (max_dose or {}):
            values[column] = max_dose[key]
    return values


def step_rows(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Return step-therapy steps as stored rows, defaults filled and positions numbered."""
    return [{**STEP_DEFAULTS, **{k: v for k, v in step.items() if k in STEP_ATTRS},
             "position": position} for position, step in enumerate(steps)]


def _same(stored: Any, wanted: Any) -> bool:
    if isinstance(stored, Decimal) or isinstance(wanted, Decimal):
        return stored is not None and wanted is not None and Decimal(stored) == Decimal(wanted)
    return bool(stored == wanted)


def changed_fields(version: PolicyVersion, entry: Mapping[str, Any]) -> list[str]:
    """Return the bundle fields of ``entry`` whose value differs from the stored version."""
    changed = [name for name in ("effective_from", *VERSION_ATTRS)
               if name in entry and not _same(getattr(version, name), entry[name])]
    if "max_dose" in entry:
        wanted = column_values({"max_dose": entry["max_dose"]})
        if any(not _same(getattr(version, c), v) or (getattr(version, c) is None) != (v is None)
               for c, v in wanted.items()):
            changed.append("max_dose")
    if "step_therapy" in entry:
        stored = [{**stored_values(s, STEP_ATTRS), "position": s.position} for s in version.steps]
        if stored != step_rows(entry["step_therapy"]):
            changed.append("step_therapy")
    return changed


def lock_errors(version: PolicyVersion, entry: Mapping[str, Any]) -> dict[str, list[str]]:
    """Return the lock message on every field ``entry`` would change in a locked version."""
    if not is_locked(version):
        return {}
    return {name: [locked_message(version)] for name in changed_fields(version, entry)}


def _write(version: PolicyVersion, entry: Mapping[str, Any]) -> bool:
    changed = apply_values(version, column_values(entry))
    if "effective_from" in entry:
        changed |= apply_values(version, {"effective_from": entry["effective_from"]})
    if "step_therapy" in entry:
        changed |= sync_children(version.steps, step_rows(entry["step_therapy"]),
                                 StepTherapyStep)
    if "cases" in entry:
        # Cases are how a version is tried, not its criteria: they change on any version.
        changed |= sync_cases(version, entry["cases"])
    return changed


def create_version(policy: Policy, entry: Mapping[str, Any],
                   number: int | None = None) -> PolicyVersion:
    """Add a version to ``policy`` from bundle-shaped values; a draft unless ``status`` says.

    Raises Invalid naming ``hcpcs`` when it names no code and ``effective_from`` when another
    version of the policy starts that day; nothing is added then.
    """
    errors = hcpcs_errors(entry, creating=True)
    errors.update(start_errors(policy, entry["effective_from"]))
    if errors:
        raise Invalid(errors)
    version = PolicyVersion(effective_from=entry["effective_from"],
                            number=number or next_number(policy),
                            **{**VERSION_DEFAULTS, **column_values(entry)})
    policy.versions.append(version)
    if "step_therapy" in entry:
        version.steps = [StepTherapyStep(**row) for row in step_rows(entry["step_therapy"])]
    if "cases" in entry:
        sync_cases(version, entry["cases"])
    if version.status == ACTIVE:
        end_predecessors(version)
    return version


def code_errors(code: str, policy: Policy | None = None) -> dict[str, list[str]]:
    """``{"code": [why]}`` when a policy other than ``policy`` has ``code``, else nothing."""
    others = select(Policy.id).where(Policy.code == code)
    if policy is not None and policy.id is not None:
        others = others.where(Policy.id != policy.id)
    if db.session.scalar(others) is None:
        return {}
    return {"code": [f"Another policy already has the code {code}: type a different one."]}


def create_policy(payer: Payer, code: str, title: str | None,
                  first_version: Mapping[str, Any]) -> Policy:
    """Add a policy with its first version (a draft) from bundle-shaped version values.

    Raises Invalid naming ``code`` when another policy has it, and the version's own errors
    (``hcpcs``...); nothing is added then. Flushes; the caller commits.
    """
    errors = code_errors(code)
    errors.update(hcpcs_errors(first_version, creating=True))
    if errors:
        raise Invalid(errors)
    policy = Policy(code=code, payer=payer, payer_id=payer.id, title=title)
    db.session.add(policy)
    create_version(policy, {**first_version, "status": DRAFT}, number=1)
    db.session.flush()
    return policy


def update_policy(policy: Policy, values: Mapping[str, Any]) -> bool:
    """Change a policy's own fields (``code``, ``title``, ``payer``); return whether any did.

    Only the keys given change. Raises Invalid naming ``code`` when another policy has it
    (or it is empty) and ``payer`` when it is None; nothing changes then. A new payer moves
    every version's indexed (payer, HCPCS) rows with it. The caller commits; the flush
    writes the change history and moves the policy revision, as for every policy write.
    """
    errors: dict[str, list[str]] = {}
    if "code" in values:
        if not values["code"]:
            errors["code"] = [CODE_REQUIRED]
        else:
            errors.update(code_errors(values["code"], policy))
    if "payer" in values and values["payer"] is None:
        errors["payer"] = [PAYER_REQUIRED]
    if errors:
        raise Invalid(errors)
    wanted = {name: values[name] for name in ("code", "title", "payer") if name in values}
    changed = apply_values(policy, wanted)
    payer = wanted.get("payer")
    if payer is not None and policy.payer_id != payer.id:
        policy.payer_id = payer.id
        # The indexed (payer, HCPCS) rows of every version follow the policy.
        for version in policy.versions:
            sync_policy_codes(version)
    return changed


def update_version(version: PolicyVersion, entry: Mapping[str, Any]) -> bool:
    """Change a version from bundle-shaped values; return whether anything changed.

    Raises Conflict (POLICY_VERSION_LOCKED) when the version is active or retired and the
    values differ from what is stored: those are the criteria payers applied, kept as history.
    Raises Invalid naming ``hcpcs`` when emptied and ``effective_from`` when another version of
    the policy starts on the new date; nothing changes then.
    """
    if is_locked(version) and changed_fields(version, entry):
        ensure_editable(version)
    errors = hcpcs_errors(entry, creating=False)
    if "effective_from" in entry and version.policy is not None:
        errors.update(start_errors(version.policy, entry["effective_from"], version))
    if errors:
        raise Invalid(errors)
    was_active = version.status == ACTIVE
    changed = _write(version, entry)
    if version.status == ACTIVE and not was_active:
        end_predecessors(version)
    return changed


def draft_values(version: PolicyVersion) -> dict[str, Any]:
    """Return a version's criteria in bundle shape, as a new draft copies them."""
    values: dict[str, Any] = {name: getattr(version, name) for name in VERSION_ATTRS
                              if name not in IDENTITY_FIELDS}
    values["max_dose"] = {key: getattr(version, column)
                          for key, column in MAX_DOSE_COLUMNS.items()}
    values["step_therapy"] = [stored_values(s, STEP_ATTRS) for s in version.steps]
    return values


def newest_version(policy: Policy) -> PolicyVersion | None:
    """The version with the highest number (the one a new draft starts from)."""
    return max(policy.versions, key=lambda v: v.number or 0, default=None)


def new_draft(policy: Policy, changes: Mapping[str, Any]) -> PolicyVersion:
    """Copy the newest version into a new draft with ``changes`` applied.

    The draft starts the day after the newest version's start unless ``changes`` gives
    ``effective_from``; a date another version already starts on is refused.
    """
    newest = newest_version(policy)
    base = draft_values(newest) if newest is not None else {}
    entry = {**base, **changes, "status": DRAFT}
    if "effective_from" not in entry:
        start = newest.effective_from if newest is not None else dt.date.today()
        entry["effective_from"] = max(start + dt.timedelta(days=1), dt.date.today())
    entry.setdefault("effective_to", None)
    version = create_version(policy, entry)
    db.session.flush()
    return version


@dataclass
class Activation:
    """What activating a version changed: the versions it ended and those it retired."""

    version: PolicyVersion
    ended: list[PolicyVersion] = field(default_factory=list)
    retired: list[PolicyVersion] = field(default_factory=list)
    impact: dict[str, Any] = field(default_factory=dict)


def end_predecessors(version: PolicyVersion) -> Activation:
    """End every other active version open on the new version's start the day before it.

    Versions that start on or after the new one's start are fully replaced: they are retired.
    Two versions are then never both open for the same dates.
    """
    result = Activation(version)
    start = version.effective_from
    for other in version.policy.versions if version.policy else ():
        if other is version or other.status != ACTIVE:
            continue
        if other.effective_from >= start:
            other.status = RETIRED
            result.retired.append(other)
        elif other.effective_to is None or other.effective_to >= start:
            other.effective_to = start - dt.timedelta(days=1)
            result.ended.append(other)
    return result


class CasesFailing(Conflict):
    """Activation refused: some of the version's (or its predecessor's) cases fail."""

    code = CASES_FAILING

    def __init__(self, detail: str, failed: list[dict[str, Any]]) -> None:
        super().__init__(detail)
        self.failed = failed

    def problem(self) -> dict[str, Any]:
        """The problem body, with each failing case's expected and actual outcome."""
        return {**super().problem(), "failed": self.failed}


def version_key(version: PolicyVersion) -> str:
    """How the change history names a version: ``policy code@effective from``."""
    return f"{version.policy.code}@{version.effective_from.isoformat()}"


def require_passing_cases(version: PolicyVersion,
                          cases: Sequence[PolicyCase] | None = None) -> dict[str, Any]:
    """Run the cases that gate activating ``version``; raise CasesFailing if any fails.

    ``cases`` defaults to the version's and its predecessor's. The API, the admin and the
    bundle import all activate through this gate.
    """
    tested = policy_review.run_cases(version, cases)
    if tested["failed"]:
        names = ", ".join(f["name"] for f in tested["failed"])
        raise CasesFailing(f"{len(tested['failed'])} case(s) fail: {names}. Fix the draft or "
                           "the cases before activating.", tested["failed"])
    return tested


def activate(version: PolicyVersion) -> Activation:
    """Make a draft the active version; end or retire the versions it replaces.

    Refused (POLICY_CASES_FAILING) while any case of the version or its predecessor fails.
    The change history records the activation, its author and the appointments it changes.
    """
    ensure_editable(version)
    tested = require_passing_cases(version)
    impact = policy_review.impact(version)
    version.status = ACTIVE
    result = end_predecessors(version)
    db.session.add(ChangeRecord(
        at=dt.datetime.now(dt.UTC).replace(tzinfo=None), actor=current_actor(),
        action="activate", entity_type="policy", entity_key=version_key(version), before=None,
        after={"version": version.number, "cases_passed": tested["passed"],
               "appointments": impact["appointments"], "changed": len(impact["changed"]),
               "ended": [v.number for v in result.ended],
               "retired": [v.number for v in result.retired]}))
    result.impact = impact
    db.session.flush()
    return result


def add_case(version: PolicyVersion, name: str, request: Mapping[str, Any],
             expect: Mapping[str, Any] | None = None) -> PolicyCase:
    """Add a test case to a version; its request is checked like an eligibility request.

    Without ``expect`` ("Save as test case"), the case expects what checking the request
    under this version gives now: its decision and every finding code.
    """
    errors: dict[str, Any] = {}
    loaded = load_request(dict(request))
    if isinstance(loaded, Invalid):
        errors.update({f"request.{e['field']}": [e["message"]] for e in loaded.errors})
    if any(case.name == name for case in version.cases):
        errors["name"] = [f"Version {version.number} already has a case named {name!r}."]
    if expect is None and not errors:
        observed = policy_review.observed_expectation(version, request)
        if isinstance(observed, Invalid):
            errors.update({f"request.{e['field']}": [e["message"]] for e in observed.errors})
        else:
            expect = observed
    if errors:
        raise Invalid(errors)
    assert expect is not None
    case = PolicyCase(name=name, request=dict(request), expect_decision=expect["decision"],
                      expect_codes=list(expect.get("codes", [])),
                      expect_absent=list(expect.get("absent", [])))
    version.cases.append(case)
    db.session.flush()
    return case


def case_errors(cases: Sequence[Mapping[str, Any]]) -> dict[int, Any]:
    """Return ``{position: {"request": {field: [message]}}}`` for each case whose request is bad."""
    errors: dict[int, Any] = {}
    seen: set[str] = set()
    for position, case in enumerate(cases):
        loaded = load_request(dict(case["request"]))
        if isinstance(loaded, Invalid):
            errors[position] = {"request": {e["field"]: [e["message"]] for e in loaded.errors}}
        if case["name"] in seen:
            errors.setdefault(position, {})["name"] = ["Another case has this name."]
        seen.add(case["name"])
    return errors


def sync_cases(version: PolicyVersion, cases: Sequence[Mapping[str, Any]]) -> bool:
    """Make the version's cases exactly ``cases`` (bundle shape), by name; return if changed."""
    wanted = {case["name"]: {"request": dict(case["request"]),
                             "expect_decision": case["expect"]["decision"],
                             "expect_codes": list(case["expect"].get("codes", [])),
                             "expect_absent": list(case["expect"].get("absent", []))}
              for case in cases}
    changed = False
    for case in list(version.cases):
        if case.name not in wanted:
            version.cases.remove(case)
            changed = True
    stored = {case.name: case for case in version.cases}
    for name, values in wanted.items():
        if name in stored:
            changed |= apply_values(stored[name], values)
        else:
            version.cases.append(PolicyCase(name=name, **values))
            changed = True
    return changed
