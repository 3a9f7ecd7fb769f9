"""Providers (by NPI) and their enrollments with payers: who may bill a payer on a date."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from policy_service.extensions import db
from policy_service.models.reference import Payer


class Provider(db.Model):
    """A rendering or prescribing clinician, identified by their National Provider Identifier."""

    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    npi: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Lower-case words as policies name them ("rheumatology"); compared for equality.
    specialty: Mapped[str | None] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(default=1)

    enrollments: Mapped[list[ProviderEnrollment]] = relationship(
        back_populates="provider", cascade="all, delete-orphan",
        order_by="ProviderEnrollment.position")

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return f"{self.npi} {self.name}"


class ProviderEnrollment(db.Model):
    """One period in which a provider is enrolled (credentialed) with a payer."""

    __tablename__ = "provider_enrollments"
    __table_args__ = (
        UniqueConstraint("provider_id", "position"),
        Index("ix_provider_enrollments_payer", "payer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))
    effective_from: Mapped[dt.date]
    effective_to: Mapped[dt.date | None]

    provider: Mapped[Provider] = relationship(back_populates="enrollments")
    payer: Mapped[Payer] = relationship()

    def covers_date(self, day: dt.date) -> bool:
        """Return whether the enrollment is in effect on ``day``."""
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to)

    def __str__(self) -> str:
        end = self.effective_to.isoformat() if self.effective_to else "open"
        payer = self.payer.code if self.payer else "?"
        return f"{payer} {self.effective_from.isoformat()} to {end}"
