"""Importing a bundle: validate it all, then upsert by natural keys, flushing only."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from policy_service.audit import acting_as, current_actor
from policy_service.domain.fields import (
    DRUG_ATTRS,
    DRUG_DEFAULTS,
    PACKAGE_DEFAULTS,
    PATIENT_ATTRS,
    PAYER_ATTRS,
    PAYER_DEFAULTS,
    THERAPY_ATTRS,
    THERAPY_DEFAULTS,
    apply_values,
    stored_values,
    sync_children,
    therapy_order,
)
from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import (
    Authorization,
    Drug,
    DrugPackage,
    Patient,
    Payer,
    Policy,
    PolicyVersion,
    Therapy,
)
from policy_service.schemas.bundle import (
    BUNDLE_KINDS,
)
from policy_service.services.authorizations import (
    get_authorization,
    import_authorization,
    update_authorization,
)
from policy_service.services.bundle.parse import merge_bundle_files
from policy_service.services.bundle.validate import Entries, check_bundle
from policy_service.services.patients import set_documentation
from policy_service.services.policies import (
    ACTIVE,
    CasesFailing,
    create_version,
    require_passing_cases,
    update_policy,
    update_version,
)
from policy_service.services.policy_review import predecessor
from policy_service.services.providers import save_provider

Summary = dict[str, dict[str, int]]


@dataclass
class Activations:
    """The versions an import makes active (by entry index) and those it creates."""

    activated: list[tuple[int, PolicyVersion]] = dataclasses.field(default_factory=list)
    created: set[int] = dataclasses.field(default_factory=set)  # id() of each new version


def _count(summary: Summary, kind: str, created: bool, changed: bool) -> None:
    outcome = "created" if created else "updated" if changed else "unchanged"
    summary[kind][outcome] += 1


def _import_payers(entries: Entries, summary: Summary) -> dict[str, Payer]:
    codes = [entry["id"] for _, entry in entries]
    stored = {p.code: p for p in db.session.scalars(select(Payer).where(Payer.code.in_(codes)))}
    for _, entry in entries:
        values = {name: entry[name] for name in PAYER_ATTRS if name in entry}
        payer = stored.get(entry["id"])
        if payer is None:
            payer = Payer(code=entry["id"], **{**PAYER_DEFAULTS, **values})
            db.session.add(payer)
            stored[entry["id"]] = payer
            _count(summary, "payers", True, True)
        else:
            _count(summary, "payers", False, apply_values(payer, values))
    return stored


def _package_values(packages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**PACKAGE_DEFAULTS, **package, "position": position}
            for position, package in enumerate(packages)]


def _import_drugs(entries: Entries, summary: Summary) -> None:
    codes = [entry["hcpcs"] for _, entry in entries]
    stored = {d.hcpcs: d for d in db.session.scalars(
        select(Drug).where(Drug.hcpcs.in_(codes)).options(selectinload(Drug.packages)))}
    for _, entry in entries:
        values = {name: entry[name] for name in DRUG_ATTRS if name in entry}
        if "billing_unit" in entry:
            values["billing_unit_amount"] = entry["billing_unit"]["amount"]
            values["billing_unit"] = entry["billing_unit"]["unit"]
        drug = stored.get(entry["hcpcs"])
        created = drug is None
        if drug is None:
            drug = Drug(hcpcs=entry["hcpcs"], **{**DRUG_DEFAULTS, **values})
            db.session.add(drug)
            stored[entry["hcpcs"]] = drug
            changed = True
        else:
            changed = apply_values(drug, values)
        if "packages" in entry:
            changed |= sync_children(drug.packages, _package_values(entry["packages"]),
                                      DrugPackage)
        _count(summary, "drugs", created, changed)


def _policy_level_values(entries: Entries) -> dict[str, dict[str, Any]]:
    """Return each policy's payer and title: the first entry that gives one wins."""
    grouped: dict[str, dict[str, Any]] = {}
    for _, entry in entries:
        group = grouped.setdefault(entry["id"], {})
        for field in ("payer", "title"):
            if field in entry:
                group.setdefault(field, entry[field])
    return grouped


def _import_policies(entries: Entries, numbers: Mapping[int, int],
                     payers: Mapping[str, Payer], summary: Summary) -> Activations:
    """Upsert the policy versions; return those this import makes active and creates."""

    grouped = _policy_level_values(entries)
    stored = {p.code: p for p in db.session.scalars(
        select(Policy).where(Policy.code.in_(grouped))
        .options(selectinload(Policy.versions).selectinload(PolicyVersion.steps)))}
    seen: set[str] = set()
    activations = Activations()
    for index, entry in entries:
        code = entry["id"]
        policy = stored.get(code)
        created = changed = False
        if code not in seen:
            # Policy-level fields (payer, title) are counted on the policy's first entry.
            seen.add(code)
            group = grouped[code]
            payer = payers[group["payer"]] if "payer" in group else None
            if policy is None:
                assert payer is not None  # validation requires a payer for a new policy
                policy = Policy(code=code, payer=payer, payer_id=payer.id,
                                title=group.get("title"))
                db.session.add(policy)
                stored[code] = policy
                changed = True
            else:
                values: dict[str, Any] = {"title": group["title"]} if "title" in group else {}
                if payer is not None:
                    values["payer"] = payer
                changed = update_policy(policy, values)
        version = next((v for v in policy.versions
                        if v.effective_from == entry["effective_from"]), None)
        was_active = version is not None and version.status == ACTIVE
        if version is None:
            version = create_version(policy, entry, numbers[index])
            activations.created.add(id(version))
            created = True
        else:
            changed |= apply_values(version, {"number": numbers[index]})
            changed |= update_version(version, entry)
        if version.status == ACTIVE and not was_active:
            activations.activated.append((index, version))
        _count(summary, "policies", created, changed)
    return activations


def _check_activations(activations: Activations) -> None:
    """Refuse the import when a version it activates has failing cases, as the API does.

    The gate runs the version's cases and, as the API does, its predecessor's, but only when
    that predecessor was stored before this import: a bundle that brings a policy's whole
    history at once (the seed data, a move from another system) brings versions whose rules
    deliberately differ, and each earlier version's cases describe its own rules.
    """
    errors: dict[str, list[str]] = {}
    for index, version in activations.activated:
        earlier = predecessor(version)
        cases = [*version.cases, *(earlier.cases if earlier is not None
                                   and id(earlier) not in activations.created else [])]
        try:
            require_passing_cases(version, cases)
        except CasesFailing as exc:
            errors[f"policies[{index}].status"] = [
                f"{CasesFailing.code}: {version.policy.code} v{version.number} cannot be "
                f"activated: {exc.detail}"]
    if errors:
        raise Invalid(errors)


def _import_patients(entries: Entries, summary: Summary) -> dict[str, Patient]:
    ids = [entry["id"] for _, entry in entries]
    stored = {p.external_id: p for p in db.session.scalars(
        select(Patient).where(Patient.external_id.in_(ids))
        .options(selectinload(Patient.therapies), selectinload(Patient.documents)))}
    for _, entry in entries:
        values = {name: entry[name] for name in PATIENT_ATTRS if name in entry}
        patient = stored.get(entry["id"])
        created = patient is None
        if patient is None:
            patient = Patient(external_id=entry["id"], **{"birth_date": None, "weight_kg": None,
                                                          **values})
            db.session.add(patient)
            stored[entry["id"]] = patient
            changed = True
        else:
            changed = apply_values(patient, values)
        if "documentation" in entry:
            changed |= set_documentation(patient, entry["documentation"])
        if "therapies" in entry:
            wanted = sorted(({**THERAPY_DEFAULTS, **t} for t in entry["therapies"]),
                            key=therapy_order)
            current = sorted((stored_values(t, THERAPY_ATTRS) for t in patient.therapies),
                             key=therapy_order)
            if current != wanted:
                patient.therapies = [Therapy(**t) for t in wanted]
                changed = True
        _count(summary, "patients", created, changed)
    return stored


def _import_authorizations(entries: Entries, summary: Summary) -> None:
    """Write through the authorizations' own service; renewal links once every record exists."""
    numbers = [entry["number"] for _, entry in entries]
    stored = set(db.session.scalars(
        select(Authorization.number).where(Authorization.number.in_(numbers))))
    changes: dict[str, bool] = {}
    for _, entry in entries:
        values = {name: value for name, value in entry.items() if name != "renewal_of"}
        _authorization, changes[entry["number"]] = import_authorization(values, current_actor())
    for _, entry in entries:
        if "renewal_of" not in entry:
            continue
        authorization = get_authorization(entry["number"])
        linked = authorization.renewal_of.number if authorization.renewal_of else None
        if linked != entry["renewal_of"]:
            update_authorization(authorization, {"renewal_of": entry["renewal_of"]},
                                 current_actor())
            changes[entry["number"]] = True
    for number, changed in changes.items():
        _count(summary, "authorizations", number not in stored, changed)


def _import_providers(entries: Entries, payers: Mapping[str, Payer], summary: Summary) -> None:
    """Write through the providers' own service (the one write path)."""
    for _, entry in entries:
        _provider, created, changed = save_provider(entry, payers)
        _count(summary, "providers", created, changed)


def _referenced(model: Any, key: Any, wanted: set[str], known: dict[str, Any]) -> dict[str, Any]:
    missing = wanted - set(known)
    if missing:
        known = {**known, **{getattr(r, key.key): r for r in db.session.scalars(
            select(model).where(key.in_(missing)))}}
    return known


def import_bundle(data: Any, actor: str = "system") -> Summary:
    """Validate then upsert a whole bundle by natural keys; flush only, the caller commits.

    Returns ``{kind: {"created", "updated", "unchanged"}}``. Raises Invalid (nothing written)
    when any record is bad.
    """
    loaded, _existing, numbers = check_bundle(data)
    summary: Summary = {kind: {"created": 0, "updated": 0, "unchanged": 0}
                        for kind in BUNDLE_KINDS}
    with acting_as(actor):
        payers = _import_payers(loaded["payers"], summary)
        _import_drugs(loaded["drugs"], summary)
        # Policies and authorizations need the ids of new payers and patients.
        db.session.flush()
        payer_refs = {e["payer"] for kind in ("policies", "authorizations")
                      for _, e in loaded[kind] if "payer" in e}
        payer_refs |= {row["payer"] for _, e in loaded["providers"]
                       for row in e.get("enrollments", [])}
        payers = _referenced(Payer, Payer.code, payer_refs, payers)
        activations = _import_policies(loaded["policies"], numbers, payers, summary)
        _import_patients(loaded["patients"], summary)
        db.session.flush()
        _import_authorizations(loaded["authorizations"], summary)
        _import_providers(loaded["providers"], payers, summary)
        db.session.flush()
        # Cases may name the bundle's own patients and authorizations: run them last.
        _check_activations(activations)
    return summary


def has_changes(summary: Summary) -> bool:
    """Return whether an import summary created or updated anything."""
    return any(counts["created"] or counts["updated"] for counts in summary.values())


def import_files(paths: Sequence[Path], actor: str = "system") -> Summary:
    """Import several bundle files as one all-or-nothing bundle; errors name the file."""
    merged, origin = merge_bundle_files(paths)
    try:
        return import_bundle(merged, actor)
    except Invalid as exc:
        raise Invalid([{"field": origin(e["field"]), "message": e["message"]}
                       for e in exc.errors]) from exc


