"""Prior authorizations, their lifecycle events and letters, and the use claims draw from them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from policy_service.extensions import db
from policy_service.models.patient import Patient
from policy_service.models.reference import Payer
from policy_service.models.users import User

# The payer's answer, as stored. ``expired`` and ``exhausted`` are never stored: they are
# derived on read (``Authorization.state``) from the window and what remains.
AUTHORIZATION_STATUSES = (
    "requested",
    "submitted",
    "info_requested",
    "approved",
    "partially_approved",
    "denied",
    "appealed",
    "cancelled",
)
# Statuses the first release stored (and bundles may still say), read as the status they mean.
LEGACY_STATUSES = {"pending": "submitted", "expired": "approved", "exhausted": "approved"}
# What ``state`` can say: a status, or one of the two derived states of an approved one.
AUTHORIZATION_STATES = (*AUTHORIZATION_STATUSES, "expired", "exhausted")
USABLE_STATUSES = ("approved", "partially_approved")


def remaining(approved: int | None, used: int | None) -> int | None:
    """What is left of an approved number of units or visits, never below zero; None when
    none was approved (no limit)."""
    if approved is None:
        return None
    return max(approved - (used or 0), 0)


CHANNELS = ("portal", "fax", "phone", "electronic")
EVENT_KINDS = ("transition", "note")


class UnitsLeft:
    """What is left of an authorization's approved units and visits: the stored model and the
    checks' detached record (``services.eligibility.AuthorizationRecord``) share it."""

    # Read from the subclass: approved_units, approved_visits, used_units, used_visits.
    __slots__ = ()

    @property
    def remaining_units(self) -> int | None:
        """Units still available, never below zero; None when no unit limit was approved."""
        return remaining(self.approved_units, self.used_units)

    @property
    def remaining_visits(self) -> int | None:
        """Visits still available, never below zero; None when no visit limit was approved."""
        return remaining(self.approved_visits, self.used_visits)


class Authorization(UnitsLeft, db.Model):
    """A payer's prior authorization for one patient, drug(s), window and site of care."""

    __tablename__ = "authorizations"
    __table_args__ = (
        Index("ix_authorizations_lookup", "patient_id", "payer_id", "valid_from", "valid_to"),
        Index("ix_authorizations_valid_to", "valid_to"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))
    hcpcs: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="requested", index=True)
    requested_units: Mapped[int | None]
    requested_visits: Mapped[int | None]
    approved_units: Mapped[int | None]
    approved_visits: Mapped[int | None]
    used_units: Mapped[int] = mapped_column(default=0)
    used_visits: Mapped[int] = mapped_column(default=0)
    valid_from: Mapped[dt.date]
    valid_to: Mapped[dt.date]
    diagnoses: Mapped[list[str]] = mapped_column(JSON, default=list)
    site_of_care: Mapped[str | None] = mapped_column(String(40))
    notes: Mapped[str | None] = mapped_column(String(2000))
    submitted_on: Mapped[dt.date | None]
    decided_on: Mapped[dt.date | None]
    payer_reference: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(20))
    ordering_npi: Mapped[str | None] = mapped_column(String(10))
    denial_reason: Mapped[str | None] = mapped_column(String(2000))
    appeal_due: Mapped[dt.date | None]
    follow_up_on: Mapped[dt.date | None] = mapped_column(index=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True)
    # Unique: an authorization is renewed at most once, even by two racing requests.
    renewal_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("authorizations.id", ondelete="SET NULL"), unique=True)
    version: Mapped[int] = mapped_column(default=1)
    # Moves (in the same transaction) on any change to the authorization or its use: stored
    # appointment checks are keyed on it. Bumped in SQL by policy_service.revisions.
    revision: Mapped[int] = mapped_column(default=1, server_default="1")

    patient: Mapped[Patient] = relationship()
    payer: Mapped[Payer] = relationship()
    owner: Mapped[User | None] = relationship()
    renewal_of: Mapped[Authorization | None] = relationship(
        remote_side=[id], back_populates="renewed_by")
    renewed_by: Mapped[Authorization | None] = relationship(
        back_populates="renewal_of", uselist=False)
    usages: Mapped[list[AuthorizationUsage]] = relationship(
        back_populates="authorization", order_by="AuthorizationUsage.recorded_at"
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_approved(self) -> bool:
        """Whether the payer approved it (fully or in part), whatever its window says."""
        return self.status in USABLE_STATUSES

    def state_on(self, day: dt.date) -> str:
        """The status, or ``expired`` / ``exhausted`` for an approved one past its end or limit."""
        if not self.is_approved:
            return self.status
        if self.valid_to < day:
            return "expired"
        if self.remaining_units == 0 or self.remaining_visits == 0:
            return "exhausted"
        return self.status

    @property
    def state(self) -> str:
        """The state today (see ``state_on``)."""
        return self.state_on(dt.date.today())

    @property
    def owner_email(self) -> str | None:
        """The email of the coordinator who owns it, if anyone does."""
        return self.owner.email if self.owner is not None else None

    def __str__(self) -> str:
        return self.number


class AuthorizationEvent(db.Model):
    """One step of an authorization's life: a transition with its reason, or a note."""

    __tablename__ = "authorization_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    authorization_id: Mapped[int] = mapped_column(
        ForeignKey("authorizations.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime]
    actor: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    # The day the payer's answer or our submission happened (may differ from ``at``).
    on: Mapped[dt.date | None]
    reason: Mapped[str | None] = mapped_column(String(2000))
    text: Mapped[str | None] = mapped_column(String(4000))

    authorization: Mapped[Authorization] = relationship()


class AuthorizationAttachment(db.Model):
    """A letter (approval, denial) kept in the database so every host can serve it."""

    __tablename__ = "authorization_attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    authorization_id: Mapped[int] = mapped_column(
        ForeignKey("authorizations.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    uploaded_at: Mapped[dt.datetime]
    uploaded_by: Mapped[str] = mapped_column(String(255))

    authorization: Mapped[Authorization] = relationship()


class AuthorizationUsage(db.Model):
    """Units and a visit a claim drew from an authorization; idempotent by claim reference."""

    __tablename__ = "authorization_usages"
    __table_args__ = (UniqueConstraint("authorization_id", "claim_reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    authorization_id: Mapped[int] = mapped_column(
        ForeignKey("authorizations.id", ondelete="CASCADE"), index=True
    )
    claim_reference: Mapped[str] = mapped_column(String(64))
    date_of_service: Mapped[dt.date]
    units: Mapped[int] = mapped_column(default=0)
    visits: Mapped[int] = mapped_column(default=1)
    recorded_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    recorded_by: Mapped[str] = mapped_column(String(255))
    voided_at: Mapped[dt.datetime | None]
    voided_by: Mapped[str | None] = mapped_column(String(255))

    authorization: Mapped[Authorization] = relationship(back_populates="usages")
