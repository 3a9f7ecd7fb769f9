"""Revision counters per patient and per authorization, moved in the same flush as any change.

Stored appointment checks are keyed on these counters (and on the policy revision marker of
policy_service.audit). Every writer goes through the ORM session (API, admin, import, usage
recording), so one listener covers them all: whatever touches a patient, a therapy, a document
on file, an authorization or a recorded use bumps the counters it affects, inside the same
transaction.
A change to an authorization or its use also moves its patient's counter, because a check
without an authorization number chooses among all of the patient's authorizations.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session

from policy_service.models import (
    Authorization,
    AuthorizationUsage,
    Patient,
    PatientDocument,
    Therapy,
)


def _history_values(obj: Any, attr: str) -> set[Any]:
    """The attribute's value now and before this flush (an object may move to another owner)."""
    history = inspect(obj).attrs[attr].history
    values = {getattr(obj, attr, None), *history.deleted}
    return {v for v in values if v is not None}


def _touched(session: Session) -> tuple[set[int], set[int]]:
    patient_ids: set[int] = set()
    authorization_ids: set[int] = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Patient):
            if obj.id is not None:
                patient_ids.add(obj.id)
        elif isinstance(obj, Therapy | PatientDocument):
            patient_ids |= _history_values(obj, "patient_id")
        elif isinstance(obj, Authorization):
            if obj.id is not None:
                authorization_ids.add(obj.id)
            patient_ids |= _history_values(obj, "patient_id")
        elif isinstance(obj, AuthorizationUsage):
            authorization_ids |= _history_values(obj, "authorization_id")
    return patient_ids, authorization_ids


def _after_flush(session: Session, _flush_context: Any) -> None:
    patient_ids, authorization_ids = _touched(session)
    if not patient_ids and not authorization_ids:
        return
    connection = session.connection()
    if authorization_ids:
        connection.execute(update(Authorization.__table__)
                           .where(Authorization.__table__.c.id.in_(authorization_ids))
                           .values(revision=Authorization.__table__.c.revision + 1))
        patient_ids |= set(connection.scalars(
            select(Authorization.__table__.c.patient_id)
            .where(Authorization.__table__.c.id.in_(authorization_ids))))
    if patient_ids:
        connection.execute(update(Patient.__table__)
                           .where(Patient.__table__.c.id.in_(patient_ids))
                           .values(revision=Patient.__table__.c.revision + 1))


def init_revisions() -> None:
    """Attach the revision listener to every ORM session (idempotent)."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
