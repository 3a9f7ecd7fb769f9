"""Prior authorizations and the units and visits each paid claim draws from them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from policy_service.extensions import db
from policy_service.models.patient import Patient
from policy_service.models.reference import Payer

AUTHORIZATION_STATUSES = (
    "requested",
    "pending",
    "approved",
    "partially_approved",
    "denied",
    "appealed",
    "expired",
    "exhausted",
    "cancelled",
)
USABLE_STATUSES = ("approved", "partially_approved")


class Authorization(db.Model):
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
    approved_units: Mapped[int | None]
    approved_visits: Mapped[int | None]
    used_units: Mapped[int] = mapped_column(default=0)
    used_visits: Mapped[int] = mapped_column(default=0)
    valid_from: Mapped[dt.date]
    valid_to: Mapped[dt.date]
    diagnoses: Mapped[list[str]] = mapped_column(JSON, default=list)
    site_of_care: Mapped[str | None] = mapped_column(String(40))
    notes: Mapped[str | None] = mapped_column(String(2000))
    version: Mapped[int] = mapped_column(default=1)
    # Moves (in the same transaction) on any change to the authorization or its use: stored
    # appointment checks are keyed on it. Bumped in SQL by policy_service.revisions.
    revision: Mapped[int] = mapped_column(default=1, server_default="1")

    patient: Mapped[Patient] = relationship()
    payer: Mapped[Payer] = relationship()
    usages: Mapped[list[AuthorizationUsage]] = relationship(
        back_populates="authorization", order_by="AuthorizationUsage.recorded_at"
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def remaining_units(self) -> int | None:
        """Units still available, never below zero; None when no unit limit was approved."""
        if self.approved_units is None:
            return None
        return max(self.approved_units - (self.used_units or 0), 0)

    @property
    def remaining_visits(self) -> int | None:
        """Visits still available, never below zero; None when no visit limit was approved."""
        if self.approved_visits is None:
            return None
        return max(self.approved_visits - (self.used_visits or 0), 0)

    def __str__(self) -> str:
        return self.number


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
