"""Change history: every change to an audited record is written in the same flush.

Audited records are aggregates (a drug with its packages, a policy version with its steps, a
patient with their therapies). The ``before`` snapshot is rebuilt from SQLAlchemy's attribute
history, so no extra query is made and every writer (import, admin, API) is covered.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import secrets
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from flask import has_request_context
from sqlalchemy import event, inspect, update
from sqlalchemy.orm import Session

from policy_service.domain.fields import (
    AUTHORIZATION_FIELDS,
    CASE_FIELDS,
    DOCUMENT_FIELDS,
    DRUG_FIELDS,
    PACKAGE_FIELDS,
    PATIENT_FIELDS,
    PAYER_FIELDS,
    PROVIDER_FIELDS,
    STEP_FIELDS,
    THERAPY_FIELDS,
    VERSION_FIELDS,
)
from policy_service.models import (
    Appointment,
    Authorization,
    ChangeRecord,
    Drug,
    DrugPackage,
    Patient,
    PatientDocument,
    Payer,
    Policy,
    PolicyCase,
    PolicyVersion,
    Provider,
    ProviderEnrollment,
    Revision,
    StepTherapyStep,
    Therapy,
)
from policy_service.models.policy import sync_policy_codes

POLICY_REVISION = "policies"

_actor: ContextVar[str | None] = ContextVar("policy_service_actor", default=None)


@contextlib.contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Attribute every change made inside the block to ``actor`` (a user email or ``system``)."""
    token = _actor.set(actor)
    try:
        yield
    finally:
        _actor.reset(token)


def current_actor() -> str:
    """Return who is making changes now: the explicit actor, the signed-in user, or ``system``."""
    explicit = _actor.get()
    if explicit:
        return explicit
    if has_request_context():
        from flask import g
        from flask_security import current_user

        token_user = getattr(g, "api_user", None)
        if token_user is not None:
            return token_user.email
        if current_user and current_user.is_authenticated:
            return current_user.email
    return "system"


def _plain(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _value(obj: Any, attr: str, old: bool) -> Any:
    if old:
        history = inspect(obj).attrs[attr].history
        if history.deleted:
            return history.deleted[0]
        if history.added and not history.unchanged:
            return None
    return getattr(obj, attr)


def _related(obj: Any, relation: str, old: bool) -> Any:
    """The record a many-to-one ``relation`` names; with ``old``, the one it named before this
    flush (the current relation already names the record it is moving to)."""
    if not old:
        return getattr(obj, relation)
    state = inspect(obj)
    history = state.attrs[relation].history
    if history.deleted or history.unchanged:
        return (list(history.deleted) + list(history.unchanged))[0]
    if not history.added:
        return getattr(obj, relation)
    # Replaced before the record it named was loaded (a write in a fresh session): the foreign
    # key keeps naming that record until this flush copies the new one's key into it.
    prop = state.mapper.relationships[relation]
    [column] = prop.local_columns
    key_history = state.attrs[state.mapper.get_property_by_column(column).key].load_history()
    previous = (list(key_history.deleted) + list(key_history.unchanged) or [None])[0]
    session = state.session
    return None if previous is None or session is None else session.get(
        prop.mapper.class_, previous)


def _members(obj: Any, relation: str, old: bool) -> list[Any]:
    if not old:
        return list(getattr(obj, relation))
    history = inspect(obj).attrs[relation].history
    return list(history.unchanged or ()) + list(history.deleted or ())


def _fields(obj: Any, names: tuple[str, ...], old: bool) -> dict[str, Any]:
    return {name: _plain(_value(obj, name, old)) for name in names}


APPOINTMENT_FIELDS = ("appointment_id", "status", "series", "hcpcs", "date_of_service", "dose_mg",
                      "dose_mg_per_kg", "site_of_care", "diagnosis_codes", "packages",
                      "authorization_number", "drug_supply", "rendering_npi")


def _snapshot_appointment(obj: Appointment, old: bool) -> dict[str, Any]:
    data = _fields(obj, APPOINTMENT_FIELDS, old)
    patient, payer = _related(obj, "patient", old), _related(obj, "payer", old)
    data["patient"] = patient.external_id if patient else None
    data["payer"] = payer.code if payer else None
    return data


def _snapshot_payer(obj: Payer, old: bool) -> dict[str, Any]:
    return _fields(obj, PAYER_FIELDS, old)


def _snapshot_drug(obj: Drug, old: bool) -> dict[str, Any]:
    data = _fields(obj, DRUG_FIELDS, old)
    packages = sorted(_members(obj, "packages", old), key=lambda p: p.position or 0)
    data["packages"] = [_fields(p, PACKAGE_FIELDS, old) for p in packages]
    return data


def _snapshot_version(obj: PolicyVersion, old: bool) -> dict[str, Any]:
    data = _fields(obj, VERSION_FIELDS, old)
    # The admin's version form can move a draft to another policy.
    policy = _related(obj, "policy", old)
    data["policy"] = policy.code if policy else None
    steps = sorted(_members(obj, "steps", old), key=lambda s: s.position or 0)
    data["step_therapy"] = [_fields(s, STEP_FIELDS, old) for s in steps]
    cases = sorted(_members(obj, "cases", old), key=lambda c: c.name or "")
    data["cases"] = [_fields(c, CASE_FIELDS, old) for c in cases]
    return data


def _snapshot_patient(obj: Patient, old: bool) -> dict[str, Any]:
    data = _fields(obj, PATIENT_FIELDS, old)
    data["therapies"] = [_fields(t, THERAPY_FIELDS, old) for t in _members(obj, "therapies", old)]
    data["documentation"] = [_fields(d, DOCUMENT_FIELDS, old)
                             for d in _members(obj, "documents", old)]
    return data


def _snapshot_authorization(obj: Authorization, old: bool) -> dict[str, Any]:
    data = _fields(obj, AUTHORIZATION_FIELDS, old)
    payer, patient = _related(obj, "payer", old), _related(obj, "patient", old)
    owner, renewal_of = _related(obj, "owner", old), _related(obj, "renewal_of", old)
    data["payer"] = payer.code if payer else None
    data["patient"] = patient.external_id if patient else None
    data["owner"] = owner.email if owner else None
    data["renewal_of"] = renewal_of.number if renewal_of else None
    return data


def _snapshot_provider(obj: Provider, old: bool) -> dict[str, Any]:
    data = _fields(obj, PROVIDER_FIELDS, old)
    enrollments = sorted(_members(obj, "enrollments", old), key=lambda e: e.position or 0)
    data["enrollments"] = [{"payer": payer.code if payer else None,
                            **_fields(e, ("effective_from", "effective_to"), old)}
                           for e in enrollments for payer in [_related(e, "payer", old)]]
    return data


def _snapshot_policy(obj: Policy, old: bool) -> dict[str, Any]:
    data = _fields(obj, ("code", "title"), old)
    payer = _related(obj, "payer", old)
    data["payer"] = payer.code if payer else None
    return data


def _version_key(obj: PolicyVersion) -> str:
    code = obj.policy.code if obj.policy else "?"
    return f"{code}@{_plain(obj.effective_from)}"


# entity type, key function, snapshot function
AUDITED: dict[type, tuple[str, Callable[[Any], str], Callable[[Any, bool], dict[str, Any]]]] = {
    Payer: ("payer", lambda o: o.code, _snapshot_payer),
    Drug: ("drug", lambda o: o.hcpcs, _snapshot_drug),
    Policy: ("policy", lambda o: o.code, _snapshot_policy),
    PolicyVersion: ("policy", _version_key, _snapshot_version),
    Patient: ("patient", lambda o: o.external_id, _snapshot_patient),
    Authorization: ("authorization", lambda o: o.number, _snapshot_authorization),
    Appointment: ("appointment", lambda o: o.appointment_id, _snapshot_appointment),
    Provider: ("provider", lambda o: o.npi, _snapshot_provider),
}

# Child records are audited as part of their parent aggregate.
PARENT_OF: dict[type, str] = {
    DrugPackage: "drug",
    StepTherapyStep: "policy_version",
    PolicyCase: "policy_version",
    Therapy: "patient",
    ProviderEnrollment: "provider",
    PatientDocument: "patient",
}

# What the policy index holds: a change to any of it moves the revision every check reads.
POLICY_DATA = (Payer, Drug, DrugPackage, Policy, PolicyVersion, StepTherapyStep, Provider,
               ProviderEnrollment)


def _roots(session: Session) -> tuple[set[Any], set[Any], set[Any]]:
    new, dirty, deleted = set(), set(), set()
    for obj in session.new:
        (new if type(obj) in AUDITED else dirty).add(obj)
    for obj in session.dirty:
        if session.is_modified(obj, include_collections=True):
            dirty.add(obj)
    for obj in session.deleted:
        (deleted if type(obj) in AUDITED else dirty).add(obj)
    resolved_dirty = set()
    for obj in dirty:
        parent_attr = PARENT_OF.get(type(obj))
        if parent_attr:
            parent = getattr(obj, parent_attr, None)
            if parent is None:
                continue
            obj = parent
        if type(obj) in AUDITED and obj not in new and obj not in deleted:
            resolved_dirty.add(obj)
    return new, resolved_dirty, deleted


def _bump_revision(session: Session) -> None:
    marker = secrets.randbits(62) + 1
    result = session.execute(
        update(Revision).where(Revision.name == POLICY_REVISION).values(value=marker)
    )
    if result.rowcount == 0:
        session.add(Revision(name=POLICY_REVISION, value=marker))


def _before_flush(session: Session, _flush_context: Any, _instances: Any) -> None:
    touched = list(session.new) + list(session.dirty) + list(session.deleted)
    if not touched:
        return
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, PolicyVersion):
            sync_policy_codes(obj)
    actor = current_actor()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with session.no_autoflush:
        new, dirty, deleted = _roots(session)
        records = []
        for obj in new:
            kind, key, snap = AUDITED[type(obj)]
            records.append(("create", kind, key(obj), None, snap(obj, False)))
        for obj in dirty:
            kind, key, snap = AUDITED[type(obj)]
            before, after = snap(obj, True), snap(obj, False)
            if before != after:
                records.append(("update", kind, key(obj), before, after))
        for obj in deleted:
            kind, key, snap = AUDITED[type(obj)]
            records.append(("delete", kind, key(obj), snap(obj, True), None))
        for action, kind, key, before, after in records:
            session.add(ChangeRecord(at=now, actor=actor, action=action, entity_type=kind,
                                     entity_key=key, before=before, after=after))
        if any(isinstance(obj, POLICY_DATA) for obj in touched):
            _bump_revision(session)


def init_audit() -> None:
    """Attach the change-history listener to every ORM session (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
