"""Patients (minimal PHI: an external id, birth date and weight) and their therapy history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from policy_service.extensions import db

THERAPY_OUTCOMES = (
    "inadequate_response",
    "intolerance",
    "contraindication",
    "ongoing",
    "response",
    "other",
)


class Patient(db.Model):
    """A patient known by the practice's own identifier; no names are stored."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64), unique=True)
    birth_date: Mapped[dt.date | None]
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    version: Mapped[int] = mapped_column(default=1)
    # Moves (in the same transaction) on any change to the patient, their therapies, their
    # authorizations or their use: stored appointment checks are keyed on it. Bumped in SQL by
    # policy_service.revisions, so read it with a query, not from a loaded object.
    revision: Mapped[int] = mapped_column(default=1, server_default="1")

    therapies: Mapped[list[Therapy]] = relationship(
        back_populates="patient",
        cascade="all, delete-orphan",
        order_by="(Therapy.start, Therapy.drug)",
    )
    documents: Mapped[list[PatientDocument]] = relationship(
        back_populates="patient",
        cascade="all, delete-orphan",
        order_by="(PatientDocument.code, PatientDocument.on_date)",
    )

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return self.external_id


class Therapy(db.Model):
    """One course of a drug the patient received, with how it ended."""

    __tablename__ = "therapies"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    # A generic name (methotrexate) or a HCPCS code (J1745) of a drug given in the office.
    drug: Mapped[str] = mapped_column(String(100))
    start: Mapped[dt.date]
    end: Mapped[dt.date | None]
    outcome: Mapped[str | None] = mapped_column(String(30))

    patient: Mapped[Patient] = relationship(back_populates="therapies")

    def __str__(self) -> str:
        return f"{self.drug} {self.start}–{self.end or 'ongoing'}"


class PatientDocument(db.Model):
    """A document the practice has on file for a patient (a TB screening result, ...): which
    checklist code it satisfies and the date it was done. Only the code and date: no content."""

    __tablename__ = "patient_documents"
    __table_args__ = (UniqueConstraint("patient_id", "code", "on_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(40))
    on_date: Mapped[dt.date]

    patient: Mapped[Patient] = relationship(back_populates="documents")

    def __str__(self) -> str:
        return f"{self.code} {self.on_date}"
