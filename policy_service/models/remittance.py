"""Remittance advice (X12 835) as received, the claims it settled, denials, and reason codes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from policy_service.extensions import db
from policy_service.models.authorization import Authorization
from policy_service.models.patient import Patient
from policy_service.models.reference import Payer

# What a claim payment (CLP) came to: the contract's vocabulary.
CLAIM_OUTCOMES = ("paid", "partially_paid", "denied", "reversed")
# CAS01: contractual obligation, patient responsibility, other, payer initiated reduction.
ADJUSTMENT_GROUPS = ("CO", "PR", "OA", "PI")
REASON_CODE_KINDS = ("CARC", "RARC")


class ReasonCode(db.Model):
    """A CARC or RARC, what it means, and which of our findings catch its cause beforehand."""

    __tablename__ = "reason_codes"
    __table_args__ = (UniqueConstraint("kind", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(4))
    code: Mapped[str] = mapped_column(String(10))
    description: Mapped[str] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(500))
    # CARCs only: whether an adjustment with this code is a denial (CO-45 is not, CO-197 is).
    denial: Mapped[bool] = mapped_column(default=True)
    preventable_by: Mapped[list[str]] = mapped_column(JSON, default=list)
    why: Mapped[str | None] = mapped_column(String(1000))

    def __str__(self) -> str:
        return f"{self.kind} {self.code}"


class Remittance(db.Model):
    """One payment (or zero-pay advice) from a payer: the 835's BPR/TRN, imported once."""

    __tablename__ = "remittances"
    # A payer's trace number (TRN02) names one payment: the same file twice is one remittance.
    __table_args__ = (UniqueConstraint("payer_id", "trace_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"), index=True)
    trace_number: Mapped[str] = mapped_column(String(50))
    paid_on: Mapped[dt.date | None]
    # The day the payer decided (DTM*405, else the payment date): appeal windows start here.
    adjudicated_on: Mapped[dt.date]
    total_paid: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    file_digest: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime]
    imported_by: Mapped[str] = mapped_column(String(255))

    payer: Mapped[Payer] = relationship()
    claims: Mapped[list[RemittanceClaim]] = relationship(
        back_populates="remittance", cascade="all, delete-orphan",
        order_by="RemittanceClaim.position")

    def __str__(self) -> str:
        return self.trace_number


class RemittanceClaim(db.Model):
    """One claim payment (CLP) of a remittance and what it did to authorization use."""

    __tablename__ = "remittance_claims"
    __table_args__ = (Index("ix_remittance_claims_reference", "claim_reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    remittance_id: Mapped[int] = mapped_column(ForeignKey("remittances.id", ondelete="CASCADE"),
                                               index=True)
    position: Mapped[int] = mapped_column(default=0)
    claim_reference: Mapped[str] = mapped_column(String(64))
    payer_claim_number: Mapped[str | None] = mapped_column(String(50))
    status_code: Mapped[str] = mapped_column(String(2))
    outcome: Mapped[str] = mapped_column(String(20))
    charged: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    paid: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    date_of_service: Mapped[dt.date | None]
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    authorization_id: Mapped[int | None] = mapped_column(ForeignKey("authorizations.id"))
    units_recorded: Mapped[int] = mapped_column(default=0)
    visits_recorded: Mapped[int] = mapped_column(default=0)
    # Why use was not recorded (unknown authorization, over what remains...), for the biller.
    usage_problem: Mapped[str | None] = mapped_column(String(500))

    remittance: Mapped[Remittance] = relationship(back_populates="claims")
    patient: Mapped[Patient | None] = relationship()
    authorization: Mapped[Authorization | None] = relationship()
    denials: Mapped[list[Denial]] = relationship(
        back_populates="claim", cascade="all, delete-orphan", order_by="Denial.id")

    def __str__(self) -> str:
        return self.claim_reference


class Denial(db.Model):
    """One adjustment (CAS) with a denial reason: what to appeal or fix, and by when."""

    __tablename__ = "denials"
    __table_args__ = (Index("ix_denials_payer_adjudicated", "payer_id", "adjudicated_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    remittance_claim_id: Mapped[int] = mapped_column(
        ForeignKey("remittance_claims.id", ondelete="CASCADE"), index=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))
    authorization_id: Mapped[int | None] = mapped_column(ForeignKey("authorizations.id"),
                                                         index=True)
    claim_reference: Mapped[str] = mapped_column(String(64), index=True)
    # The service line's code (SVC01-2); None for a claim-level adjustment.
    service_code: Mapped[str | None] = mapped_column(String(10))
    group_code: Mapped[str] = mapped_column(String(2))
    carc: Mapped[str] = mapped_column(String(10), index=True)
    rarcs: Mapped[list[str]] = mapped_column(JSON, default=list)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    date_of_service: Mapped[dt.date | None]
    adjudicated_on: Mapped[dt.date]
    appeal_due: Mapped[dt.date | None]

    claim: Mapped[RemittanceClaim] = relationship(back_populates="denials")
    payer: Mapped[Payer] = relationship()
    authorization: Mapped[Authorization | None] = relationship()

    def __str__(self) -> str:
        return f"{self.claim_reference} {self.group_code}-{self.carc}"
