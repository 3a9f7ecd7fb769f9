"""Policy bundles: parse, validate, import (all-or-nothing upsert) and export.

A bundle (docs/contract.md) holds payers, drugs, policy versions, patients and authorizations,
each identified by its natural key. Import validates every record first and reports every error
with its path (``policies[3].covered_diagnoses[1]``); only then does it write, flushing inside the
caller's transaction so the caller commits once or nothing at all is written.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from policy_service.audit import acting_as
from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import (
    Authorization,
    AuthorizationUsage,
    Drug,
    DrugPackage,
    Patient,
    Payer,
    Policy,
    PolicyVersion,
    StepTherapyStep,
    Therapy,
)
from policy_service.schemas.bundle import (
    BUNDLE_KINDS,
    AuthorizationSchema,
    BundleSchema,
    DrugSchema,
    PatientSchema,
    PayerSchema,
    PolicyVersionSchema,
    validate_authorization_fields,
    validate_drug_fields,
    validate_policy_version_fields,
)
from policy_service.services.payers import external_id_conflicts

Summary = dict[str, dict[str, int]]
Tree = dict[Any, Any]
Entries = list[tuple[int, dict[str, Any]]]
Loaded = dict[str, Entries]

RECORD_SCHEMAS: dict[str, type[Schema]] = {
    "payers": PayerSchema,
    "drugs": DrugSchema,
    "policies": PolicyVersionSchema,
    "patients": PatientSchema,
    "authorizations": AuthorizationSchema,
}
NATURAL_KEYS: dict[str, tuple[str, ...]] = {
    "payers": ("id",),
    "drugs": ("hcpcs",),
    "policies": ("id", "effective_from"),
    "patients": ("id",),
    "authorizations": ("number",),
}
# Keys a record needs when it does not exist yet (the database has no default for them).
REQUIRED_ON_CREATE: dict[str, tuple[str, ...]] = {
    "payers": ("name",),
    "drugs": ("name", "generic", "billing_unit"),
    "patients": (),
    "authorizations": ("payer", "patient", "valid_from", "valid_to"),
}

PAYER_ATTRS = ("name", "kind", "requires_jw_jz", "requires_ndc", "timely_filing_days",
               "complex_admin_for_biologics", "external_ids", "notes")
PAYER_DEFAULTS = {"kind": "commercial", "requires_jw_jz": False, "requires_ndc": False,
                  "timely_filing_days": 365, "complex_admin_for_biologics": True,
                  "external_ids": [], "notes": None}
DRUG_ATTRS = ("name", "generic", "biosimilar_of", "route", "admin_class", "valid_from",
              "valid_to", "mue_units", "rxnorm", "source", "notes")
DRUG_DEFAULTS = {"biosimilar_of": None, "route": None, "admin_class": None, "valid_from": None,
                 "valid_to": None, "mue_units": None, "rxnorm": [], "source": None,
                 "notes": None}
PACKAGE_DEFAULTS = {"unit": "mg", "single_dose": True, "ndc": None}
VERSION_ATTRS = ("hcpcs", "effective_to", "status", "prior_auth_required", "covered_diagnoses",
                 "preferred_products", "sites_of_care", "min_days_between_doses", "min_age",
                 "max_age", "new_starts_only_lookback_days", "approval_days",
                 "documentation_required", "source", "notes")
VERSION_DEFAULTS = {"effective_to": None, "status": "draft", "hcpcs": [],
                    "prior_auth_required": True, "covered_diagnoses": [],
                    "preferred_products": [], "sites_of_care": [], "max_dose_mg": None,
                    "max_dose_mg_per_kg": None, "max_dose_units": None,
                    "min_days_between_doses": None, "min_age": None, "max_age": None,
                    "new_starts_only_lookback_days": None, "approval_days": None,
                    "documentation_required": [], "source": None, "notes": None}
MAX_DOSE_COLUMNS = {"mg": "max_dose_mg", "mg_per_kg": "max_dose_mg_per_kg",
                    "units": "max_dose_units"}
STEP_DEFAULTS = {"count": 1, "min_days": 0, "accepted_outcomes": []}
PATIENT_ATTRS = ("birth_date", "weight_kg")
THERAPY_FIELDS = ("drug", "start", "end", "outcome")
THERAPY_DEFAULTS = {"end": None, "outcome": None}
AUTHORIZATION_ATTRS = ("hcpcs", "status", "approved_units", "approved_visits", "used_units",
                       "used_visits", "valid_from", "valid_to", "diagnoses", "site_of_care",
                       "notes")
AUTHORIZATION_DEFAULTS = {"hcpcs": [], "status": "requested", "approved_units": None,
                          "approved_visits": None, "used_units": 0, "used_visits": 0,
                          "diagnoses": [], "site_of_care": None, "notes": None}

BUNDLE_SUFFIXES = (".yaml", ".yml", ".json")


# --- parsing ---------------------------------------------------------------------------------


class _BundleYamlLoader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: dates stay text so JSON and YAML load alike."""


_BundleYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _file_error(message: str, detail: str) -> Invalid:
    return Invalid([{"field": "(file)", "message": message}], detail=detail)


def parse_bundle_text(text: str, filename: str = "bundle") -> dict[str, Any]:
    """Parse a JSON or YAML bundle (by extension, else by content); raise Invalid with position."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".json":
        is_json = True
    elif suffix in (".yaml", ".yml"):
        is_json = False
    else:
        is_json = text.lstrip().startswith(("{", "["))
    if is_json:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _file_error(
                f"Malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                f"{filename} is not valid JSON",
            ) from exc
    else:
        try:
            data = yaml.load(text, Loader=_BundleYamlLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise _file_error(_yaml_message(exc), f"{filename} is not valid YAML") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _file_error(
            f"A bundle must be a mapping with any of: {', '.join(BUNDLE_KINDS)}.",
            f"{filename} is not a bundle",
        )
    return data


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    reason = f"{problem} ({context})" if context else problem
    if mark is None:
        return f"Malformed YAML: {reason}"
    # PyYAML marks count from zero; editors count from one.
    return f"Malformed YAML at line {mark.line + 1}, column {mark.column + 1}: {reason}"


def read_bundle_file(path: Path) -> dict[str, Any]:
    """Read and parse one bundle file."""
    return parse_bundle_text(path.read_text(encoding="utf-8"), path.name)


# --- validation ------------------------------------------------------------------------------


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

    def exists(self, kind: str, key: str) -> bool:
        """Return whether a record of ``kind`` with natural key ``key`` is stored."""
        stored: Mapping[str, Any] | set[str] = {
            "payers": self.payers, "drugs": self.drugs, "patients": self.patients,
            "authorizations": self.authorizations,
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
    for index, entry in loaded["authorizations"]:
        if "payer" in entry:
            need(payers, entry["payer"], ["authorizations", index, "payer"], "payer")
        if "patient" in entry:
            need(patients, entry["patient"], ["authorizations", index, "patient"], "patient")
        for position, code in enumerate(entry.get("hcpcs", [])):
            need(drugs, code, ["authorizations", index, "hcpcs", position], "drug")


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


def _stored_values(record: Any, names: Iterable[str]) -> dict[str, Any]:
    return {name: getattr(record, name) for name in names}


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
            merged = {**_stored_values(drug, ("hcpcs", "biosimilar_of", "valid_from",
                                              "valid_to")), **entry}
            _merge_tree(tree, ["drugs", index], validate_drug_fields(merged))
    recorded = _recorded_use([a.id for a in existing.authorizations.values()])
    for index, entry in loaded["authorizations"]:
        authorization = existing.authorizations.get(entry["number"])
        if authorization is not None:
            merged = {**_stored_values(authorization, AUTHORIZATION_ATTRS), **entry}
            _merge_tree(tree, ["authorizations", index], validate_authorization_fields(merged))
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
        if stored is not None:
            merged = {**_stored_values(stored, ("effective_from", "effective_to", "min_age",
                                                "max_age")), **entry}
            _merge_tree(tree, ["policies", index], validate_policy_version_fields(merged))


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


def plan_version_numbers(entries: Sequence[tuple[int, Mapping[str, Any]]],
                         policies: Mapping[str, Policy]) -> tuple[dict[int, int], Tree]:
    """Return the version number of each policy entry (by bundle index) and any clashes.

    The bundle's ``version`` wins; a stored version keeps its number; a new one gets max + 1.
    """
    numbers: dict[int, int] = {}
    errors: Tree = {}
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
            _add(errors, ["policies", index, "version"],
                 f"Version {number} of {code} is already the version effective "
                 f"{owners[number].isoformat()}.")
            continue
        owners[number] = day
        numbers[index] = number
    for index, entry in pending:
        owners = taken.setdefault(entry["id"], {})
        number = max(owners, default=0) + 1
        owners[number] = entry["effective_from"]
        numbers[index] = number
    return numbers, errors


def _validate(data: Any) -> tuple[Loaded, _Existing, dict[int, int]]:
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
    loaded, _existing, _numbers = _validate(data)
    return {kind: [entry for _, entry in loaded[kind]] for kind in BUNDLE_KINDS}


# --- import ----------------------------------------------------------------------------------


def _apply(record: Any, values: Mapping[str, Any]) -> bool:
    """Set each attribute that differs; return whether any did (so unchanged rows stay clean)."""
    changed = False
    for name, value in values.items():
        if getattr(record, name) != value:
            # A fresh list for JSON columns: in-place mutation is invisible to the ORM.
            setattr(record, name, list(value) if isinstance(value, list) else value)
            changed = True
    return changed


def _sync_children(children: list[Any], wanted: Sequence[Mapping[str, Any]],
                   build: Callable[..., Any]) -> bool:
    """Make ``children`` match ``wanted`` position by position; return whether anything changed.

    Rows are updated in place rather than replaced, so (parent, position) stays unique at
    every step of the flush.
    """
    changed = False
    for position, values in enumerate(wanted):
        if position < len(children):
            changed |= _apply(children[position], values)
        else:
            children.append(build(**values))
            changed = True
    while len(children) > len(wanted):
        children.pop()
        changed = True
    return changed


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
            _count(summary, "payers", False, _apply(payer, values))
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
            changed = _apply(drug, values)
        if "packages" in entry:
            changed |= _sync_children(drug.packages, _package_values(entry["packages"]),
                                      DrugPackage)
        _count(summary, "drugs", created, changed)


def _version_values(entry: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: entry[name] for name in VERSION_ATTRS if name in entry}
    for key, column in MAX_DOSE_COLUMNS.items():
        if key in (entry.get("max_dose") or {}):
            values[column] = entry["max_dose"][key]
    if "max_dose" in entry and entry["max_dose"] is None:
        values.update({column: None for column in MAX_DOSE_COLUMNS.values()})
    return values


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
                     payers: Mapping[str, Payer], summary: Summary) -> None:
    from policy_service.models.policy import sync_policy_codes

    grouped = _policy_level_values(entries)
    stored = {p.code: p for p in db.session.scalars(
        select(Policy).where(Policy.code.in_(grouped))
        .options(selectinload(Policy.versions).selectinload(PolicyVersion.steps)))}
    seen: set[str] = set()
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
                changed = _apply(policy, values)
                if payer is not None and policy.payer_id != payer.id:
                    policy.payer_id = payer.id
                    # The indexed (payer, HCPCS) rows of every version follow the policy.
                    for version in policy.versions:
                        sync_policy_codes(version)
        values = {**_version_values(entry), "number": numbers[index]}
        version = next((v for v in policy.versions
                        if v.effective_from == entry["effective_from"]), None)
        if version is None:
            version = PolicyVersion(effective_from=entry["effective_from"],
                                    **{**VERSION_DEFAULTS, **values})
            policy.versions.append(version)
            created = True
        else:
            changed |= _apply(version, values)
        if "step_therapy" in entry:
            steps = [{**STEP_DEFAULTS, **step, "position": position}
                     for position, step in enumerate(entry["step_therapy"])]
            changed |= _sync_children(version.steps, steps, StepTherapyStep)
        _count(summary, "policies", created, changed)


def _therapy_sort_key(therapy: Mapping[str, Any]) -> tuple[Any, ...]:
    return (therapy["start"], therapy["drug"], therapy.get("end") or dt.date.max,
            therapy.get("outcome") or "")


def _import_patients(entries: Entries, summary: Summary) -> dict[str, Patient]:
    ids = [entry["id"] for _, entry in entries]
    stored = {p.external_id: p for p in db.session.scalars(
        select(Patient).where(Patient.external_id.in_(ids))
        .options(selectinload(Patient.therapies)))}
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
            changed = _apply(patient, values)
        if "therapies" in entry:
            wanted = sorted(({**THERAPY_DEFAULTS, **t} for t in entry["therapies"]),
                            key=_therapy_sort_key)
            current = sorted((_stored_values(t, THERAPY_FIELDS) for t in patient.therapies),
                             key=_therapy_sort_key)
            if current != wanted:
                patient.therapies = [Therapy(**t) for t in wanted]
                changed = True
        _count(summary, "patients", created, changed)
    return stored


def _import_authorizations(entries: Entries, payers: Mapping[str, Payer],
                           patients: Mapping[str, Patient], summary: Summary) -> None:
    numbers = [entry["number"] for _, entry in entries]
    stored = {a.number: a for a in db.session.scalars(
        select(Authorization).where(Authorization.number.in_(numbers)))}
    for _, entry in entries:
        values: dict[str, Any] = {name: entry[name] for name in AUTHORIZATION_ATTRS
                                  if name in entry}
        if "payer" in entry:
            values["payer"] = payers[entry["payer"]]
        if "patient" in entry:
            values["patient"] = patients[entry["patient"]]
        authorization = stored.get(entry["number"])
        if authorization is None:
            authorization = Authorization(number=entry["number"],
                                          **{**AUTHORIZATION_DEFAULTS, **values})
            db.session.add(authorization)
            _count(summary, "authorizations", True, True)
        else:
            _count(summary, "authorizations", False, _apply(authorization, values))


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
    loaded, _existing, numbers = _validate(data)
    summary: Summary = {kind: {"created": 0, "updated": 0, "unchanged": 0}
                        for kind in BUNDLE_KINDS}
    with acting_as(actor):
        payers = _import_payers(loaded["payers"], summary)
        _import_drugs(loaded["drugs"], summary)
        # Policies and authorizations need the ids of new payers and patients.
        db.session.flush()
        payer_refs = {e["payer"] for kind in ("policies", "authorizations")
                      for _, e in loaded[kind] if "payer" in e}
        payers = _referenced(Payer, Payer.code, payer_refs, payers)
        _import_policies(loaded["policies"], numbers, payers, summary)
        patients = _import_patients(loaded["patients"], summary)
        db.session.flush()
        patient_refs = {e["patient"] for _, e in loaded["authorizations"] if "patient" in e}
        patients = _referenced(Patient, Patient.external_id, patient_refs, patients)
        _import_authorizations(loaded["authorizations"], payers, patients, summary)
        db.session.flush()
    return summary


def has_changes(summary: Summary) -> bool:
    """Return whether an import summary created or updated anything."""
    return any(counts["created"] or counts["updated"] for counts in summary.values())


# --- files and seed data ---------------------------------------------------------------------


def seed_directory() -> Path:
    """Return the seed_data/ folder shipped at the top of the repository."""
    import policy_service

    return Path(policy_service.__file__).resolve().parent.parent / "seed_data"


def bundle_files(directory: Path) -> list[Path]:
    """Return the bundle files of ``directory`` in name order."""
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and p.suffix.lower() in BUNDLE_SUFFIXES)


_PATH = re.compile(r"^(?P<kind>[a-z_]+)\[(?P<index>\d+)\](?P<rest>.*)$")


def merge_bundle_files(paths: Sequence[Path]) -> tuple[dict[str, list[Any]], Callable[[str], str]]:
    """Concatenate several bundle files into one; return it and a mapper from merged paths
    back to ``file: kind[i]...`` paths for error messages."""
    merged: dict[str, list[Any]] = {kind: [] for kind in BUNDLE_KINDS}
    origins: dict[str, list[tuple[int, int, str]]] = {kind: [] for kind in BUNDLE_KINDS}
    errors: list[dict[str, str]] = []
    for path in paths:
        try:
            data = read_bundle_file(path)
        except Invalid as exc:
            errors.extend({"field": f"{path.name}: {e['field']}", "message": e["message"]}
                          for e in exc.errors)
            continue
        for key, value in data.items():
            if key not in BUNDLE_KINDS:
                errors.append({"field": f"{path.name}: {key}", "message": "Unknown field."})
            elif value is not None and not isinstance(value, list):
                errors.append({"field": f"{path.name}: {key}", "message": "Not a valid list."})
            elif value:
                origins[key].append((len(merged[key]), len(value), path.name))
                merged[key].extend(value)
    if errors:
        raise Invalid(errors)

    def origin(field: str) -> str:
        match = _PATH.match(field)
        if not match or match["kind"] not in origins:
            return field
        index = int(match["index"])
        for start, count, name in origins[match["kind"]]:
            if start <= index < start + count:
                return f"{name}: {match['kind']}[{index - start}]{match['rest']}"
        return field

    return merged, origin


def import_files(paths: Sequence[Path], actor: str = "system") -> Summary:
    """Import several bundle files as one all-or-nothing bundle; errors name the file."""
    merged, origin = merge_bundle_files(paths)
    try:
        return import_bundle(merged, actor)
    except Invalid as exc:
        raise Invalid([{"field": origin(e["field"]), "message": e["message"]}
                       for e in exc.errors]) from exc


# --- export ----------------------------------------------------------------------------------


def payer_record(payer: Payer) -> dict[str, Any]:
    """Return a payer as a raw bundle record (dump it with PayerSchema)."""
    return {"id": payer.code, **{name: getattr(payer, name) for name in PAYER_ATTRS}}


def drug_record(drug: Drug) -> dict[str, Any]:
    """Return a drug as a raw bundle record (dump it with DrugSchema)."""
    record: dict[str, Any] = {"hcpcs": drug.hcpcs}
    record.update({name: getattr(drug, name) for name in DRUG_ATTRS})
    record["billing_unit"] = {"amount": drug.billing_unit_amount, "unit": drug.billing_unit}
    record["packages"] = [{"amount": p.amount, "unit": p.unit, "single_dose": p.single_dose,
                           "ndc": p.ndc} for p in sorted(drug.packages, key=lambda p: p.position)]
    return record


def policy_record(policy: Policy, version: PolicyVersion) -> dict[str, Any]:
    """Return one policy version as a raw bundle record (dump it with PolicyVersionSchema)."""
    record: dict[str, Any] = {"id": policy.code, "version": version.number,
                              "payer": policy.payer.code, "title": policy.title,
                              "effective_from": version.effective_from}
    record.update({name: getattr(version, name) for name in VERSION_ATTRS})
    record["max_dose"] = {key: getattr(version, column)
                          for key, column in MAX_DOSE_COLUMNS.items()}
    record["step_therapy"] = [step.as_dict()
                              for step in sorted(version.steps, key=lambda s: s.position)]
    return record


def patient_record(patient: Patient) -> dict[str, Any]:
    """Return a patient as a raw bundle record (dump it with PatientSchema)."""
    therapies = [_stored_values(t, THERAPY_FIELDS) for t in patient.therapies]
    return {"id": patient.external_id, "birth_date": patient.birth_date,
            "weight_kg": patient.weight_kg,
            "therapies": sorted(therapies, key=_therapy_sort_key)}


def authorization_record(authorization: Authorization) -> dict[str, Any]:
    """Return an authorization as a raw bundle record (dump it with AuthorizationSchema)."""
    record: dict[str, Any] = {"number": authorization.number,
                              "payer": authorization.payer.code,
                              "patient": authorization.patient.external_id}
    record.update({name: getattr(authorization, name) for name in AUTHORIZATION_ATTRS})
    return record


def export_bundle() -> dict[str, Any]:
    """Return every stored record as a bundle, in a deterministic order, ready for JSON/YAML."""
    session = db.session
    payers = session.scalars(select(Payer).order_by(Payer.code))
    drugs = session.scalars(select(Drug).order_by(Drug.hcpcs).options(selectinload(Drug.packages)))
    policies = session.scalars(
        select(Policy).order_by(Policy.code)
        .options(selectinload(Policy.payer),
                 selectinload(Policy.versions).selectinload(PolicyVersion.steps)))
    patients = session.scalars(select(Patient).order_by(Patient.external_id)
                               .options(selectinload(Patient.therapies)))
    authorizations = session.scalars(
        select(Authorization).order_by(Authorization.number)
        .options(selectinload(Authorization.payer), selectinload(Authorization.patient)))
    raw = {
        "payers": [payer_record(p) for p in payers],
        "drugs": [drug_record(d) for d in drugs],
        "policies": [policy_record(p, v) for p in policies
                     for v in sorted(p.versions, key=lambda v: v.effective_from)],
        "patients": [patient_record(p) for p in patients],
        "authorizations": [authorization_record(a) for a in authorizations],
    }
    return BundleSchema().dump(raw)


def dump_bundle_text(bundle: Mapping[str, Any], filename: str) -> str:
    """Serialise a bundle as YAML when ``filename`` ends .yaml/.yml, else as JSON."""
    if Path(filename).suffix.lower() in (".yaml", ".yml"):
        return yaml.safe_dump(dict(bundle), sort_keys=False, allow_unicode=True, width=100)
    return json.dumps(bundle, indent=2, ensure_ascii=False) + "\n"
