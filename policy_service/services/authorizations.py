"""The one write path for authorizations: create, edit, lifecycle, notes, renewal, letters.

The API, the admin views and the bundle import all call these functions, so an authorization
is checked the same way whoever writes it (field rules, references to payers, patients, drugs,
users and other authorizations, and the state machine). Functions flush; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from policy_service.domain.icd10 import normalise_code
from policy_service.errors import Conflict, Invalid, NotFound, StaleRecord
from policy_service.extensions import db
from policy_service.logging import get_logger
from policy_service.models import (
    Authorization,
    AuthorizationAttachment,
    AuthorizationEvent,
    Drug,
    Patient,
    Payer,
    User,
)
from policy_service.models.authorization import USABLE_STATUSES
from policy_service.schemas.bundle import (
    Messages,
    approval_errors,
    validate_authorization_fields,
)

log = get_logger("authorizations")

# The payer's process as a state machine: status -> the statuses it may move to.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "requested": ("submitted", "cancelled"),
    "submitted": ("info_requested", "approved", "partially_approved", "denied", "cancelled"),
    "info_requested": ("submitted", "cancelled"),
    "denied": ("appealed", "cancelled"),
    "appealed": ("approved", "partially_approved", "denied"),
    "approved": ("cancelled",),
    "partially_approved": ("cancelled",),
    "cancelled": (),
}
DECISIONS = ("approved", "partially_approved", "denied")
# Fields a write may set directly; ``status`` moves only by transition and use only by claims.
EDITABLE_FIELDS = (
    "payer", "patient", "hcpcs", "requested_units", "requested_visits", "approved_units",
    "approved_visits", "valid_from", "valid_to", "diagnoses", "site_of_care", "notes",
    "submitted_on", "decided_on", "payer_reference", "channel", "ordering_npi", "denial_reason",
    "appeal_due", "follow_up_on", "owner", "renewal_of",
)
# Stored as they are given (the references above are resolved to records).
PLAIN_FIELDS = tuple(name for name in EDITABLE_FIELDS
                     if name not in ("payer", "patient", "owner", "renewal_of"))
# What the bundle import may also set: the stored status and use of a loaded record.
IMPORTED_FIELDS = (*EDITABLE_FIELDS, "status", "used_units", "used_visits")
# A transition may record what the payer's answer says in the same step.
DECISION_FIELDS = ("approved_units", "approved_visits", "valid_from", "valid_to",
                   "payer_reference", "denial_reason", "appeal_due", "follow_up_on")
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
# Letters arrive as scans or PDFs: the first bytes say what a file is, whatever its name says.
SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


class InvalidTransition(Conflict):
    """A status move the payer's process does not have."""

    code = "INVALID_TRANSITION"


class RenewalExists(Conflict):
    """The authorization already has a renewal."""

    code = "RENEWAL_EXISTS"


# --- references ------------------------------------------------------------------------------


@dataclass
class Known:
    """The natural keys a set of authorization values may refer to."""

    payers: set[str] = field(default_factory=set)
    patients: set[str] = field(default_factory=set)
    drugs: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    authorizations: set[str] = field(default_factory=set)

    def __or__(self, other: Known) -> Known:
        return Known(self.payers | other.payers, self.patients | other.patients,
                     self.drugs | other.drugs, self.users | other.users,
                     self.authorizations | other.authorizations)


def stored_references(entries: Iterable[Mapping[str, Any]]) -> Known:
    """Return which of the keys ``entries`` name are stored, in one query per kind."""
    entries = list(entries)

    def named(name: str) -> set[str]:
        return {str(e[name]) for e in entries if e.get(name) is not None}

    drugs = {str(code) for e in entries for code in e.get("hcpcs") or []}
    session = db.session
    return Known(
        payers=set(session.scalars(select(Payer.code).where(Payer.code.in_(named("payer"))))),
        patients=set(session.scalars(select(Patient.external_id).where(
            Patient.external_id.in_(named("patient"))))),
        drugs=set(session.scalars(select(Drug.hcpcs).where(Drug.hcpcs.in_(drugs)))),
        users=set(session.scalars(select(User.email).where(
            User.email.in_({e.lower() for e in named("owner")}), User.active.is_(True)))),
        authorizations=set(session.scalars(select(Authorization.number).where(
            Authorization.number.in_(named("renewal_of"))))),
    )


def reference_errors(values: Mapping[str, Any], known: Known) -> Messages:
    """Return an error on each payer, patient, drug, owner or renewed number not known."""
    errors: Messages = {}

    def need(name: str, value: Any, keys: set[str], what: str, where: Any = None) -> None:
        if value is not None and str(value) not in keys:
            message = f"Unknown {what} {value!r}: not in this bundle or the database."
            if where is None:
                errors.setdefault(name, []).append(message)
            else:
                errors.setdefault(name, {}).setdefault(where, []).append(message)

    need("payer", values.get("payer"), known.payers, "payer")
    need("patient", values.get("patient"), known.patients, "patient")
    for position, code in enumerate(values.get("hcpcs") or []):
        need("hcpcs", code, known.drugs, "drug", position)
    owner = values.get("owner")
    need("owner", owner.lower() if isinstance(owner, str) else owner, known.users,
         "active user")
    need("renewal_of", values.get("renewal_of"), known.authorizations, "authorization")
    if values.get("renewal_of") is not None and values.get("renewal_of") == values.get("number"):
        errors.setdefault("renewal_of", []).append("An authorization cannot renew itself.")
    return errors


def authorization_errors(values: Mapping[str, Any], known: Known) -> Messages:
    """Every rule an authorization's whole values must meet, whoever writes them."""
    errors = validate_authorization_fields(values)
    for name, messages in approval_errors(values).items():
        errors.setdefault(name, []).extend(messages)
    for name, messages in reference_errors(values, known).items():
        if isinstance(messages, dict):
            bucket = errors.setdefault(name, {})
            if isinstance(bucket, dict):
                for position, texts in messages.items():
                    bucket.setdefault(position, []).extend(texts)
        else:
            errors.setdefault(name, []).extend(messages)
    return errors


def record_values(auth: Authorization) -> dict[str, Any]:
    """The authorization's current values under their bundle names (references as keys)."""
    values = {name: getattr(auth, name) for name in PLAIN_FIELDS}
    values.update(number=auth.number, status=auth.status, used_units=auth.used_units,
                  used_visits=auth.used_visits,
                  payer=auth.payer.code if auth.payer else None,
                  patient=auth.patient.external_id if auth.patient else None,
                  owner=auth.owner_email,
                  renewal_of=auth.renewal_of.number if auth.renewal_of else None)
    return values


# --- reading ---------------------------------------------------------------------------------


def get_authorization(number: str, *, lock: bool = False) -> Authorization:
    """Return the authorization ``number`` (row-locked when asked) or raise NotFound."""
    query = select(Authorization).where(Authorization.number == number)
    if lock:
        query = query.with_for_update()
    auth = db.session.scalar(query)
    if auth is None:
        raise NotFound(f"No authorization {number}.")
    return auth


def allowed_transitions(auth: Authorization) -> tuple[str, ...]:
    """The statuses ``auth`` may move to now."""
    return TRANSITIONS.get(auth.status, ())


def events(auth: Authorization) -> list[AuthorizationEvent]:
    """Transitions and notes of ``auth``, oldest first."""
    return list(db.session.scalars(
        select(AuthorizationEvent).where(AuthorizationEvent.authorization_id == auth.id)
        .order_by(AuthorizationEvent.at, AuthorizationEvent.id)))


# --- writing ---------------------------------------------------------------------------------


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _resolve(values: Mapping[str, Any]) -> dict[str, Any]:
    """Turn the natural keys among ``values`` into the records they name."""
    resolved: dict[str, Any] = {}
    session = db.session
    if "payer" in values:
        resolved["payer"] = session.scalar(select(Payer).where(Payer.code == values["payer"]))
    if "patient" in values:
        resolved["patient"] = session.scalar(
            select(Patient).where(Patient.external_id == values["patient"]))
    if "owner" in values:
        owner = values["owner"]
        resolved["owner"] = None if owner is None else session.scalar(
            select(User).where(User.email == owner.lower()))
    if "renewal_of" in values:
        number = values["renewal_of"]
        resolved["renewal_of"] = None if number is None else session.scalar(
            select(Authorization).where(Authorization.number == number))
    return resolved


def _apply(auth: Authorization, values: Mapping[str, Any]) -> bool:
    """Set ``values`` on ``auth`` (references already resolved); return whether any changed."""
    changed = False
    for name, value in values.items():
        if name == "diagnoses":
            value = [normalise_code(code) for code in value or []]
        elif name == "hcpcs":
            value = list(value or [])
        if getattr(auth, name) != value:
            setattr(auth, name, value)
            changed = True
    return changed


def _check(merged: Mapping[str, Any], known: Known | None = None) -> None:
    known = known if known is not None else stored_references([merged])
    if errors := authorization_errors(merged, known):
        raise Invalid(errors)


def _require(values: Mapping[str, Any], names: Iterable[str]) -> None:
    missing = {name: ["Required to create an authorization."] for name in names
               if values.get(name) in (None, "", [])}
    if missing:
        raise Invalid(missing)


CREATE_REQUIRED = ("number", "payer", "patient", "hcpcs", "valid_from", "valid_to")
DEFAULTS: dict[str, Any] = {"hcpcs": [], "status": "requested", "used_units": 0,
                            "used_visits": 0, "diagnoses": []}


def number_errors(number: str, auth: Authorization | None = None) -> dict[str, list[str]]:
    """``{"number": [why]}`` when an authorization other than ``auth`` has ``number``."""
    others = select(Authorization.id).where(Authorization.number == number)
    if auth is not None and auth.id is not None:
        others = others.where(Authorization.id != auth.id)
    if db.session.scalar(others) is None:
        return {}
    return {"number": [f"Authorization {number} already exists: open it to change it, or "
                       "check the number."]}


def create_authorization(values: Mapping[str, Any], actor: str) -> Authorization:
    """Create an authorization from bundle-shaped values (status defaults to ``requested``)."""
    _require(values, CREATE_REQUIRED)
    unknown = set(values) - {*IMPORTED_FIELDS, "number"}
    if unknown:
        raise Invalid({name: ["Unknown field."] for name in sorted(unknown)})
    merged = {**DEFAULTS, **values}
    _check(merged)
    if errors := number_errors(values["number"]):
        raise Invalid(errors)
    resolved = _resolve(merged)
    _check_renewal_free(resolved.get("renewal_of"), None)
    auth = Authorization(number=values["number"])
    _apply(auth, {**{k: v for k, v in merged.items()
                     if k not in ("number", "payer", "patient", "owner", "renewal_of")},
                  **resolved})
    db.session.add(auth)
    _flush_unique(auth)
    log.info("authorization_created", authorization_id=auth.id, status=auth.status)
    return auth


def _check_renewal_free(original: Authorization | None, renewal: Authorization | None) -> None:
    if original is None:
        return
    current = original.renewed_by
    if current is not None and current is not renewal:
        raise RenewalExists(f"{original.number} is already renewed by {current.number}.")


def _flush_unique(auth: Authorization) -> None:
    """Flush; a renewal that another request recorded first is a 409, not a crash."""
    try:
        with db.session.begin_nested():
            db.session.flush()
    except IntegrityError as exc:
        original = auth.renewal_of
        if original is not None:
            raise RenewalExists(f"{original.number} is already renewed.") from exc
        raise Conflict(f"Authorization {auth.number} already exists.") from exc


def update_authorization(auth: Authorization, values: Mapping[str, Any], actor: str,
                         expected_version: int | None = None) -> Authorization:
    """Change fields of ``auth``; refuse a stale write and any attempt to move its status."""
    if expected_version is not None and expected_version != auth.version:
        raise StaleRecord(f"{auth.number} changed since it was read (version {auth.version}, "
                          f"not {expected_version}); read it again.")
    refused = {name: ["Changes only through a transition."] if name == "status"
               else ["Unknown field."] for name in values if name not in EDITABLE_FIELDS}
    if refused:
        raise Invalid(refused)
    merged = {**record_values(auth), **values}
    # Named on the limit the caller lowered, not on the use the claims recorded.
    _check_used_within(auth, merged)
    _check(merged)
    resolved = _resolve({k: v for k, v in values.items()
                         if k in ("payer", "patient", "owner", "renewal_of")})
    _check_renewal_free(resolved.get("renewal_of"), auth)
    plain = {k: v for k, v in values.items() if k not in resolved}
    if _apply(auth, {**plain, **resolved}):
        _flush_unique(auth)
        log.info("authorization_updated", authorization_id=auth.id,
                 fields=sorted(values))
    return auth


def _check_used_within(auth: Authorization, merged: Mapping[str, Any]) -> None:
    errors: Messages = {}
    for used, approved in (("used_units", "approved_units"), ("used_visits", "approved_visits")):
        limit = merged.get(approved)
        if limit is not None and (getattr(auth, used) or 0) > limit:
            errors[approved] = [f"Recorded claims already use {getattr(auth, used)}; void them "
                                f"rather than lower {approved}."]
    if errors:
        raise Invalid(errors)


def import_authorization(values: Mapping[str, Any], actor: str) -> tuple[Authorization, bool]:
    """Create or update from an imported (already validated) record; return it and whether it
    changed. A status change is applied as a transition, so the import obeys the lifecycle."""
    auth = db.session.scalar(select(Authorization).where(
        Authorization.number == values["number"]))
    if auth is None:
        return create_authorization(values, actor), True
    status = values.get("status")
    fields = {k: v for k, v in values.items()
              if k not in ("number", "status", "used_units", "used_visits")}
    changed = False
    if status is not None and status != auth.status:
        transition(auth, status, actor, reason="Imported from a bundle.")
        changed = True
    resolved = _resolve({k: v for k, v in fields.items()
                         if k in ("payer", "patient", "owner", "renewal_of")})
    plain = {k: v for k, v in fields.items() if k not in resolved}
    use = {k: values[k] for k in ("used_units", "used_visits") if k in values}
    if _apply(auth, {**plain, **resolved, **use}):
        changed = True
    db.session.flush()
    return auth, changed


def transition(auth: Authorization, to: str, actor: str, *, on: dt.date | None = None,
               reason: str | None = None, decision: Mapping[str, Any] | None = None,
               expected_version: int | None = None) -> Authorization:
    """Move ``auth`` to ``to`` if the payer's process allows it; record who, when and why.

    ``decision`` may carry what the payer's answer says (approved units, window, reference).
    """
    if expected_version is not None and expected_version != auth.version:
        raise StaleRecord(f"{auth.number} changed since it was read; read it again.")
    allowed = allowed_transitions(auth)
    if to not in allowed:
        choices = ", ".join(allowed) if allowed else "none (it is final)"
        raise InvalidTransition(
            f"{auth.number} is {auth.status}; it cannot move to {to}. Allowed: {choices}.")
    on = on or dt.date.today()
    decision = dict(decision or {})
    unknown = set(decision) - set(DECISION_FIELDS)
    if unknown:
        raise Invalid({name: ["Unknown field."] for name in sorted(unknown)})
    values = {**decision, **_consequences(auth, to, on, reason, decision)}
    merged = {**record_values(auth), **values, "status": to}
    _check_used_within(auth, merged)
    _check(merged)
    before = auth.status
    _apply(auth, values)
    auth.status = to
    db.session.add(AuthorizationEvent(authorization=auth, at=_now(), actor=actor,
                                      kind="transition", from_status=before, to_status=to,
                                      on=on, reason=reason))
    db.session.flush()
    log.info("authorization_transition", authorization_id=auth.id, from_status=before,
             to_status=to)
    return auth


def _consequences(auth: Authorization, to: str, on: dt.date, reason: str | None,
                  decision: Mapping[str, Any]) -> dict[str, Any]:
    """The dates a transition fills in when the caller did not give them."""
    values: dict[str, Any] = {}
    if to == "submitted" and auth.submitted_on is None:
        values["submitted_on"] = on
    if to in DECISIONS:
        values["decided_on"] = on
    if to == "denied":
        if reason and "denial_reason" not in decision:
            values["denial_reason"] = reason
        if "appeal_due" not in decision:
            values["appeal_due"] = on + dt.timedelta(days=auth.payer.appeal_days)
    if to in USABLE_STATUSES and "approved_units" not in decision and (
            auth.approved_units is None and auth.approved_visits is None):
        # The payer approved what was asked unless the answer says otherwise.
        if auth.requested_units is not None:
            values["approved_units"] = auth.requested_units
        if auth.requested_visits is not None and "approved_visits" not in decision:
            values["approved_visits"] = auth.requested_visits
    return values


def add_note(auth: Authorization, text: str, actor: str) -> AuthorizationEvent:
    """Append a note to ``auth`` (notes are never edited or deleted)."""
    text = (text or "").strip()
    if not text:
        raise Invalid({"text": ["Write something."]})
    if len(text) > 4000:
        raise Invalid({"text": ["At most 4000 characters."]})
    note = AuthorizationEvent(authorization=auth, at=_now(), actor=actor, kind="note", text=text)
    db.session.add(note)
    db.session.flush()
    return note


def set_follow_up(auth: Authorization, day: dt.date | None, actor: str) -> Authorization:
    """Set (or clear) the day someone should look at ``auth`` again."""
    return update_authorization(auth, {"follow_up_on": day}, actor)


def assign(auth: Authorization, owner_email: str | None, actor: str) -> Authorization:
    """Make the user ``owner_email`` (or nobody) the owner of ``auth``."""
    return update_authorization(auth, {"owner": owner_email}, actor)


def renew(auth: Authorization, actor: str) -> Authorization:
    """Create the next request: same patient, payer, codes, diagnoses and site, starting the day
    after ``auth`` ends, linked both ways; a second renewal is refused."""
    if auth.renewed_by is not None:
        raise RenewalExists(f"{auth.number} is already renewed by {auth.renewed_by.number}.")
    length = auth.valid_to - auth.valid_from
    start = auth.valid_to + dt.timedelta(days=1)
    values = {
        "number": _renewal_number(auth.number), "payer": auth.payer.code,
        "patient": auth.patient.external_id, "hcpcs": list(auth.hcpcs or []),
        "diagnoses": list(auth.diagnoses or []), "site_of_care": auth.site_of_care,
        "valid_from": start, "valid_to": start + length,
        "requested_units": auth.approved_units or auth.requested_units,
        "requested_visits": auth.approved_visits or auth.requested_visits,
        "ordering_npi": auth.ordering_npi, "channel": auth.channel,
        "owner": auth.owner_email, "renewal_of": auth.number,
    }
    return create_authorization(values, actor)


def _renewal_number(number: str) -> str:
    """``A-1001`` -> ``A-1001-R1``; ``A-1001-R1`` -> ``A-1001-R2`` (the next free one)."""
    stem, _, suffix = number.rpartition("-R")
    base, count = (stem, int(suffix)) if stem and suffix.isdigit() else (number, 0)
    while True:
        count += 1
        candidate = f"{base}-R{count}"[:64]
        taken = db.session.scalar(select(func.count()).select_from(Authorization).where(
            Authorization.number == candidate))
        if not taken:
            return candidate


# --- letters ---------------------------------------------------------------------------------


def sniff_content_type(data: bytes) -> str | None:
    """Return the type the file's first bytes declare, or None if it is not one we keep."""
    return next((kind for magic, kind in SIGNATURES if data.startswith(magic)), None)


def add_attachment(auth: Authorization, filename: str, data: bytes,
                   actor: str) -> AuthorizationAttachment:
    """Keep a letter (PDF, PNG, JPEG or TIFF by content, at most 10 MB) with ``auth``."""
    if not data:
        raise Invalid({"file": ["The file is empty."]})
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise Invalid({"file": [f"At most {MAX_ATTACHMENT_BYTES / (1024 * 1024):g} MB."]})
    content_type = sniff_content_type(data)
    if content_type is None:
        raise Invalid({"file": ["Only PDF, PNG, JPEG or TIFF files (checked by content)."]})
    name = _safe_filename(filename, content_type)
    attachment = AuthorizationAttachment(
        authorization=auth, filename=name, content_type=content_type, size=len(data),
        sha256=hashlib.sha256(data).hexdigest(), content=data, uploaded_at=_now(),
        uploaded_by=actor)
    db.session.add(attachment)
    db.session.flush()
    return attachment


EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg",
              "image/tiff": ".tif"}


def _safe_filename(filename: str, content_type: str) -> str:
    """A download name with no path, quotes or control characters, ending as its content is."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isalnum() or c in " ._-()")[:200].strip(" .")
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return f"{stem or 'letter'}{EXTENSIONS[content_type]}"


def attachments(auth: Authorization) -> list[AuthorizationAttachment]:
    """The letters kept with ``auth``, oldest first (without their content)."""
    return list(db.session.scalars(
        select(AuthorizationAttachment)
        .where(AuthorizationAttachment.authorization_id == auth.id)
        .order_by(AuthorizationAttachment.uploaded_at, AuthorizationAttachment.id)))


def get_attachment(auth: Authorization, attachment_id: int) -> AuthorizationAttachment:
    """Return one letter of ``auth`` or raise NotFound."""
    attachment = db.session.get(AuthorizationAttachment, attachment_id)
    if attachment is None or attachment.authorization_id != auth.id:
        raise NotFound(f"No attachment {attachment_id} on {auth.number}.")
    return attachment
