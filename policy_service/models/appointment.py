"""Appointments: planned infusions kept as a schedule, each with its standing eligibility check."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from policy_service.extensions import db
from policy_service.models.patient import Patient
from policy_service.models.reference import Payer

APPOINTMENT_STATUSES = ("scheduled", "cancelled")
# The practice's own id, also a URL segment: letters, digits and . _ - only.
APPOINTMENT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
APPOINTMENT_ID_RULE = "Use 1 to 64 letters, digits, '.', '_' or '-'."


class Appointment(db.Model):
    """One planned infusion or injection, and the eligibility answer last computed for it.

    The stored check is keyed on the revisions it was computed from (the policy revision, the
    patient's and the authorization's ``revision``, the check logic's fingerprint); a read
    recomputes it only when one of them moved, so it is never older than the data.
    """

    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointments_day_status", "date_of_service", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(12), default="scheduled")
    # The series' id prefix when the appointment was created as part of one (informational).
    series: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"), index=True)
    hcpcs: Mapped[str] = mapped_column(String(5), index=True)
    date_of_service: Mapped[dt.date]
    dose_mg: Mapped[Decimal | None] = mapped_column(Numeric(12, 3))
    dose_mg_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(12, 3))
    site_of_care: Mapped[str | None] = mapped_column(String(40))
    diagnosis_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Vials planned: [{"amount": "100", "count": 4}]; empty means the least waste is chosen.
    packages: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    authorization_number: Mapped[str | None] = mapped_column(String(64))
    drug_supply: Mapped[str] = mapped_column(String(20), default="buy_and_bill")
    rendering_npi: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[dt.datetime]
    created_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[dt.datetime]
    updated_by: Mapped[str] = mapped_column(String(255))

    # The standing check and the revisions it was computed from.
    check_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    check_decision: Mapped[str | None] = mapped_column(String(30), index=True)
    check_units: Mapped[int | None]
    check_authorization_id: Mapped[int | None] = mapped_column(
        ForeignKey("authorizations.id", ondelete="SET NULL"), index=True)
    check_policy_revision: Mapped[int | None] = mapped_column(BigInteger)
    check_patient_revision: Mapped[int | None]
    check_authorization_revision: Mapped[int | None]
    check_logic: Mapped[str | None] = mapped_column(String(16))
    checked_at: Mapped[dt.datetime | None]
    previous_decision: Mapped[str | None] = mapped_column(String(30))
    decision_changed_at: Mapped[dt.datetime | None]

    patient: Mapped[Patient] = relationship()
    payer: Mapped[Payer] = relationship()

    def __str__(self) -> str:
        return self.appointment_id


class ScheduleUpload(db.Model):
    """An uploaded schedule awaiting "keep as schedule": kept in the database, not on a host."""

    __tablename__ = "schedule_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Random, unguessable: the form carries it; the owner check still applies.
    token: Mapped[str] = mapped_column(String(64), unique=True)
    owner: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(index=True)
    # The parsed rows: [{"row": 2, "appointment_id": ..., "item": {...}}].
    rows: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
