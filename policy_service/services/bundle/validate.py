"""Validating a bundle: every record, its references and the stored records it changes.

Every error is reported with its path (``policies[3].covered_diagnoses[1]``), all at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from marshmallow import Schema, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from policy_service.domain.fields import (
    AUTHORIZATION_DEFAULTS,
    stored_values,
)
from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import (
    Authorization,
    AuthorizationUsage,
    Drug,
    Patient,
    Payer,
    Policy,
    Provider,
)
from policy_service.schemas.bundle import (
    BUNDLE_KINDS,
    AuthorizationSchema,
    DrugSchema,
    PatientSchema,
    PayerSchema,
    PolicyVersionSchema,
    ProviderSchema,
    approval_errors,
    validate_authorization_fields,
    validate_drug_fields,
    validate_policy_version_fields,
)
from policy_service.services.authorizations import (
    Known,
    record_values,
    reference_errors,
    stored_references,
)
from policy_service.services.payers import external_id_conflicts
from policy_service.services.policies import (
    case_errors,
    hcpcs_errors,
    lock_errors,
    plan_version_numbers,
)
from policy_service.services.providers import unknown_payer_errors

Tree = dict[Any, Any]
Entries = list[tuple[int, dict[str, Any]]]
Loaded = dict[str, Entries]

RECORD_SCHEMAS: dict[str, type[Schema]] = {
    "payers": PayerSchema,
    "drugs": DrugSchema,
    "policies": PolicyVersionSchema,
    "patients": PatientSchema,
    "authorizations": AuthorizationSchema,
    "providers": ProviderSchema,
}
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "payers": ("id",),
    "drugs": ("hcpcs",),
    "policies": ("id", "effective_from"),
    "patients": ("id",),
    "authorizations": ("number",),
    "providers": ("npi",),
}
# Keys a record needs when it does not exist yet (the database has no default for them).
REQUIRED_ON_CREATE: dict[str, tuple[str, ...]] = {
    "payers": ("name",),
    "drugs": ("name", "generic", "billing_unit"),
    "patients": (),
    "authorizations": ("payer", "patient", "valid_from", "valid_to"),
    "providers": ("name",),
}


def _add(tree: Tree, path: Sequence[Any], message: str) -> None:
    node = tree
    for key in path[:-1]:
        node = node.setdefault(key, {})
    messages = node.setdefault(path[-1], [])
    if message not in messages:
        messages.append(message)


def _merge_tree(tree: Tree, prefix: Sequence[Any], messages: Any) -> None:
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            _merge_tree(tree, [*prefix, key], value)
    elif isinstance(messages, (list, tuple)) and all(isinstance(m, str) for m in messages):
        for message in messages:
            _add(tree, prefix, message)
    elif isinstance(messages, (list, tuple)):
        for message in messages:
            _merge_tree(tree, prefix, message)
    else:
        _add(tree, prefix, str(messages))


def _ordered(tree: Any) -> Any:
    """Return the error tree with kinds in bundle order and record indexes ascending."""
    if not isinstance(tree, dict):
        return tree
    rank = {kind: i for i, kind in enumerate(BUNDLE_KINDS)}

    def sort_key(key: Any) -> tuple[int, Any, str]:
        if isinstance(key, int):
            return (0, key, "")
        return (1, rank.get(key, len(rank)), str(key))

    if all(isinstance(k, int) for k in tree) or set(tree) <= set(BUNDLE_KINDS):
        return {k: _ordered(tree[k]) for k in sorted(tree, key=sort_key)}
    return {k: _ordered(v) for k, v in tree.items()}


def _key_of(kind: str, record: Any) -> tuple[Any, ...] | None:
    """Return the natural key of a raw or loaded record, or None when it has none usable."""
    if not isinstance(record, Mapping):
        return None
    values = tuple(record.get(name) for name in NATURAL_KEYS[kind])
    if any(v is None or isinstance(v, (dict, list)) for v in values):
        return None
    return tuple(v.isoformat() if isinstance(v, dt.date) else str(v) for v in values)


class _Existing:
    """The stored records a bundle refers to, fetched in one query per kind."""

    def __init__(self, raw: Mapping[str, list[Any]], loaded: Loaded) -> None:
        payer_refs = {str(r.get("id")) for r in raw["payers"] if isinstance(r, Mapping)}
        drug_refs = {str(r.get("hcpcs")) for r in raw["drugs"] if isinstance(r, Mapping)}
        patient_refs = {str(r.get("id")) for r in raw["patients"] if isinstance(r, Mapping)}
        policy_codes: set[str] = set()
        for _, entry in loaded["policies"]:
            if "id" in entry:
                policy_codes.add(entry["id"])
            if "payer" in entry:
                payer_refs.add(entry["payer"])
            drug_refs.update(entry.get("hcpcs", []))
            drug_refs.update(entry.get("preferred_products", []))
        for _, entry in loaded["drugs"]:
            if entry.get("biosimilar_of"):
                drug_refs.add(entry["biosimilar_of"])
        for _, entry in loaded["authorizations"]:
            if "payer" in entry:
                payer_refs.add(entry["payer"])
            if "patient" in entry:
                patient_refs.add(entry["patient"])
            drug_refs.update(entry.get("hcpcs", []))
        numbers = [entry["number"] for _, entry in loaded["authorizations"] if "number" in entry]
        for _, entry in loaded["providers"]:
            payer_refs.update(row["payer"] for row in entry.get("enrollments", [])
                              if isinstance(row, Mapping) and "payer" in row)
        npis = [entry["npi"] for _, entry in loaded["providers"] if "npi" in entry]

        session = db.session
        self.payers = set(session.scalars(select(Payer.code).where(Payer.code.in_(payer_refs))))
        self.drugs = {d.hcpcs: d for d in session.scalars(
            select(Drug).where(Drug.hcpcs.in_(drug_refs)))}
        self.patients = set(session.scalars(
            select(Patient.external_id).where(Patient.external_id.in_(patient_refs))))
        self.policies = {p.code: p for p in session.scalars(
            select(Policy).where(Policy.code.in_(policy_codes))
            .options(selectinload(Policy.versions)))}
        self.authorizations = {a.number: a for a in session.scalars(
            select(Authorization).where(Authorization.number.in_(numbers)))}
        self.providers = set(session.scalars(select(Provider.npi).where(Provider.npi.in_(npis))))
        # Owners and renewed authorizations the bundle names that are stored.
        self.authorization_references = stored_references(
            entry for _, entry in loaded["authorizations"])

    def exists(self, kind: str, key: str) -> bool:
        """Return whether a record of ``kind`` with natural key ``key`` is stored."""
        stored: Mapping[str, Any] | set[str] = {
            "payers": self.payers, "drugs": self.drugs, "patients": self.patients,
            "authorizations": self.authorizations, "providers": self.providers,
        }[kind]
        return key in stored


def _top_level(data: Any, tree: Tree) -> dict[str, list[Any]]:
    sections: dict[str, list[Any]] = {kind: [] for kind in BUNDLE_KINDS}
    if not isinstance(data, Mapping):
        _add(tree, ["(body)"], "A bundle must be a mapping with any of: "
             + ", ".join(BUNDLE_KINDS) + ".")
        return sections
    for key, value in data.items():
        if key not in BUNDLE_KINDS:
            _add(tree, [str(key)], "Unknown field.")
        elif value is None:
            continue
        elif not isinstance(value, list):
            _add(tree, [key], "Not a valid list.")
        else:
            sections[key] = value
    return sections


def _load_records(sections: Mapping[str, list[Any]], tree: Tree) -> tuple[Loaded, Loaded]:
    """Load every record; return the valid ones and, for reference checks, every record's
    valid part (so a record with one bad field still has its references checked)."""
    loaded: Loaded = {kind: [] for kind in BUNDLE_KINDS}
    partial: Loaded = {kind: [] for kind in BUNDLE_KINDS}
    for kind in BUNDLE_KINDS:
        schema = RECORD_SCHEMAS[kind]()
        seen: dict[tuple[Any, ...], int] = {}
        for index, raw in enumerate(sections[kind]):
            key = _key_of(kind, raw)
            if key is not None and key in seen:
                names = " and ".join(NATURAL_KEYS[kind])
                _add(tree, [kind, index, NATURAL_KEYS[kind][0]],
                     f"Duplicate {names}: already given in {kind}[{seen[key]}].")
            elif key is not None:
                seen[key] = index
            try:
                entry = schema.load(raw)
            except ValidationError as exc:
                _merge_tree(tree, [kind, index], exc.messages)
                if isinstance(exc.valid_data, dict):
                    partial[kind].append((index, exc.valid_data))
            else:
                loaded[kind].append((index, entry))
                partial[kind].append((index, entry))
    return loaded, partial


def _check_references(sections: Mapping[str, list[Any]],
                      loaded: Loaded,
                      existing: _Existing, tree: Tree) -> None:
    def keys(kind: str, field: str) -> set[str]:
        return {str(r[field]) for r in sections[kind] if isinstance(r, Mapping) and field in r}

    payers = keys("payers", "id") | existing.payers
    drugs = keys("drugs", "hcpcs") | set(existing.drugs)
    patients = keys("patients", "id") | existing.patients

    def need(known: set[str], value: str, path: list[Any], what: str) -> None:
        if value not in known:
            _add(tree, path, f"Unknown {what} {value!r}: not in this bundle or the database.")

    for index, entry in loaded["drugs"]:
        if entry.get("biosimilar_of"):
            need(drugs, entry["biosimilar_of"], ["drugs", index, "biosimilar_of"], "drug")
    for index, entry in loaded["policies"]:
        if "payer" in entry:
            need(payers, entry["payer"], ["policies", index, "payer"], "payer")
        for field in ("hcpcs", "preferred_products"):
            for position, code in enumerate(entry.get(field, [])):
                need(drugs, code, ["policies", index, field, position], "drug")
    for index, entry in loaded["providers"]:
        _merge_tree(tree, ["providers", index], unknown_payer_errors(entry, payers))
    # The authorizations' own reference rules, with this bundle's records counted as known.
    known = existing.authorization_references | Known(
        payers=payers, patients=patients, drugs=drugs,
        authorizations=keys("authorizations", "number"))
    for index, entry in loaded["authorizations"]:
        _merge_tree(tree, ["authorizations", index], reference_errors(entry, known))


def _check_new_records(loaded: Loaded, existing: _Existing,
                       tree: Tree) -> None:
    for kind, required in REQUIRED_ON_CREATE.items():
        natural = NATURAL_KEYS[kind][0]
        for index, entry in loaded[kind]:
            if existing.exists(kind, entry[natural]):
                continue
            for field in required:
                if field not in entry:
                    _add(tree, [kind, index, field], f"Required to create {kind[:-1]} "
                         f"{entry[natural]!r}, which is not in the database yet.")


def _recorded_use(authorization_ids: list[int]) -> dict[int, dict[str, int]]:
    """Units and visits that recorded (not voided) claims drew, per authorization."""
    if not authorization_ids:
        return {}
    rows = db.session.execute(
        select(AuthorizationUsage.authorization_id, func.sum(AuthorizationUsage.units),
               func.sum(AuthorizationUsage.visits))
        .where(AuthorizationUsage.authorization_id.in_(authorization_ids),
               AuthorizationUsage.voided_at.is_(None))
        .group_by(AuthorizationUsage.authorization_id))
    return {auth_id: {"used_units": int(units or 0), "used_visits": int(visits or 0)}
            for auth_id, units, visits in rows}


def _check_against_stored(loaded: Loaded, existing: _Existing,
                          tree: Tree) -> None:
    """Run the cross-field checks on stored values overlaid with the bundle's (partial) ones."""
    for index, entry in loaded["drugs"]:
        drug = existing.drugs.get(entry["hcpcs"])
        if drug is not None:
            merged = {**stored_values(drug, ("hcpcs", "biosimilar_of", "valid_from",
                                              "valid_to")), **entry}
            _merge_tree(tree, ["drugs", index], validate_drug_fields(merged))
    recorded = _recorded_use([a.id for a in existing.authorizations.values()])
    for index, entry in loaded["authorizations"]:
        authorization = existing.authorizations.get(entry["number"])
        stored_record = (record_values(authorization) if authorization is not None
                         else AUTHORIZATION_DEFAULTS)
        # The whole record's rules (an approved one needs a limit); references were checked
        # against the bundle as well as the database above.
        merged = {**stored_record, **entry}
        _merge_tree(tree, ["authorizations", index], validate_authorization_fields(merged))
        _merge_tree(tree, ["authorizations", index], approval_errors(merged))
        if authorization is not None:
            claimed = recorded.get(authorization.id, {})
            for field, total in claimed.items():
                if field in entry and (entry[field] or 0) < total:
                    _add(tree, ["authorizations", index, field],
                         f"Recorded claims already use {total}; void them rather than lower "
                         f"{field}.")
    for index, entry in loaded["policies"]:
        policy = existing.policies.get(entry["id"])
        stored = next((v for v in policy.versions if v.effective_from == entry["effective_from"]),
                      None) if policy else None
        _merge_tree(tree, ["policies", index], hcpcs_errors(entry, creating=stored is None))
        if entry.get("cases"):
            _merge_tree(tree, ["policies", index, "cases"], case_errors(entry["cases"]))
        if stored is not None:
            merged = {**stored_values(stored, ("effective_from", "effective_to", "min_age",
                                                "max_age")), **entry}
            _merge_tree(tree, ["policies", index], validate_policy_version_fields(merged))
            _merge_tree(tree, ["policies", index], lock_errors(stored, entry))


def _check_payer_external_ids(loaded: Loaded, tree: Tree) -> None:
    """An external id names one payer, across the bundle and the stored payers."""
    wanted = {entry["id"]: entry["external_ids"] for _, entry in loaded["payers"]
              if "external_ids" in entry}
    conflicts = external_id_conflicts(wanted)
    for index, entry in loaded["payers"]:
        for message in conflicts.get(entry["id"], []):
            _add(tree, ["payers", index, "external_ids"], message)


def _check_policy_groups(loaded: Loaded, existing: _Existing,
                         tree: Tree) -> None:
    """Entries of one policy must agree on payer and title; a new policy needs a payer."""
    first_seen: dict[str, dict[str, tuple[int, Any]]] = {}
    for index, entry in loaded["policies"]:
        group = first_seen.setdefault(entry["id"], {})
        for field in ("payer", "title"):
            if field not in entry:
                continue
            if field in group and group[field][1] != entry[field]:
                other, value = group[field]
                _add(tree, ["policies", index, field],
                     f"Differs from policies[{other}] ({value!r}) for the same policy id.")
            group.setdefault(field, (index, entry[field]))
    for code, group in first_seen.items():
        if code not in existing.policies and "payer" not in group:
            index = next(i for i, e in loaded["policies"] if e["id"] == code)
            _add(tree, ["policies", index, "payer"],
                 f"Required to create policy {code!r}, which is not in the database yet.")


def check_bundle(data: Any) -> tuple[Loaded, _Existing, dict[int, int]]:
    tree: Tree = {}
    sections = _top_level(data, tree)
    loaded, partial = _load_records(sections, tree)
    existing = _Existing(sections, partial)
    _check_references(sections, partial, existing, tree)
    _check_new_records(loaded, existing, tree)
    _check_policy_groups(loaded, existing, tree)
    _check_against_stored(loaded, existing, tree)
    _check_payer_external_ids(loaded, tree)
    numbers, clashes = plan_version_numbers(loaded["policies"], existing.policies)
    _merge_tree(tree, [], clashes)
    if tree:
        raise Invalid(_ordered(tree))
    return loaded, existing, numbers


def validate_bundle(data: Any) -> dict[str, list[dict[str, Any]]]:
    """Return the loaded bundle, or raise Invalid naming every bad record and field."""
    loaded, _existing, _numbers = check_bundle(data)
    return {kind: [entry for _, entry in loaded[kind]] for kind in BUNDLE_KINDS}


