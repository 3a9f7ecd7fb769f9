"""Payer policies: effective-dated versions with coverage criteria and step therapy."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from policy_service.extensions import db
from policy_service.models.reference import Payer

POLICY_STATUSES = ("draft", "active", "retired")
SITES_OF_CARE = ("office", "hospital_outpatient", "ambulatory_infusion_center", "home")
# How the drug reaches the practice: bought and billed by it, or dispensed by a specialty
# pharmacy (the practice then bills the administration only).
DRUG_SUPPLIES = ("buy_and_bill", "specialty_pharmacy")
# What a policy allows: one of those, or either (the default).
POLICY_DRUG_SUPPLIES = (*DRUG_SUPPLIES, "either")


class Policy(db.Model):
    """A payer's policy for one drug family, identified by a stable code."""

    __tablename__ = "policies"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(120), unique=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"), index=True)
    title: Mapped[str | None] = mapped_column(String(200))

    payer: Mapped[Payer] = relationship()
    versions: Mapped[list[PolicyVersion]] = relationship(
        back_populates="policy",
        cascade="all, delete-orphan",
        order_by="PolicyVersion.effective_from",
    )

    def __str__(self) -> str:
        return self.code


class PolicyVersion(db.Model):
    """One effective-dated version of a policy: the criteria a payer applies in that window."""

    __tablename__ = "policy_versions"
    __table_args__ = (
        UniqueConstraint("policy_id", "effective_from"),
        UniqueConstraint("policy_id", "number"),
        Index("ix_policy_versions_window", "effective_from", "effective_to"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("policies.id", ondelete="CASCADE"))
    # The version number people cite ("v3"); assigned in order of creation.
    number: Mapped[int] = mapped_column(default=1)
    effective_from: Mapped[dt.date]
    effective_to: Mapped[dt.date | None]
    status: Mapped[str] = mapped_column(String(10), default="draft")
    hcpcs: Mapped[list[str]] = mapped_column(JSON, default=list)
    prior_auth_required: Mapped[bool] = mapped_column(default=True)
    covered_diagnoses: Mapped[list[str]] = mapped_column(JSON, default=list)
    preferred_products: Mapped[list[str]] = mapped_column(JSON, default=list)
    sites_of_care: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_dose_mg: Mapped[Decimal | None] = mapped_column(Numeric(12, 3))
    max_dose_mg_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(12, 3))
    max_dose_units: Mapped[int | None]
    min_days_between_doses: Mapped[int | None]
    min_age: Mapped[int | None]
    max_age: Mapped[int | None]
    new_starts_only_lookback_days: Mapped[int | None]
    approval_days: Mapped[int | None]
    drug_supply: Mapped[str] = mapped_column(String(20), default="either")
    # Specialties a prescriber must have (empty: any), as providers' specialties are spelled.
    prescriber_specialties: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Checklist items {"code", "label", "max_age_days"} (policy_service.domain.documentation).
    documentation_required: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    source: Mapped[str | None] = mapped_column(String(1000))
    notes: Mapped[str | None] = mapped_column(String(4000))
    version: Mapped[int] = mapped_column(default=1)

    policy: Mapped[Policy] = relationship(back_populates="versions")
    steps: Mapped[list[StepTherapyStep]] = relationship(
        back_populates="policy_version",
        cascade="all, delete-orphan",
        order_by="StepTherapyStep.position",
    )
    codes: Mapped[list[PolicyCode]] = relationship(cascade="all, delete-orphan")
    cases: Mapped[list[PolicyCase]] = relationship(
        back_populates="policy_version", cascade="all, delete-orphan", order_by="PolicyCase.name"
    )

    __mapper_args__ = {"version_id_col": version}

    def covers_date(self, day: dt.date) -> bool:
        """Return whether this version is in effect on ``day``."""
        return self.effective_from <= day and (
            self.effective_to is None or day <= self.effective_to
        )

    def __str__(self) -> str:
        return f"{self.policy.code if self.policy else '?'} v{self.number} ({self.effective_from})"


class PolicyCode(db.Model):
    """The HCPCS codes a policy version covers, kept as rows so lookups by code use an index."""

    __tablename__ = "policy_codes"
    __table_args__ = (Index("ix_policy_codes_payer_hcpcs", "payer_id", "hcpcs"),)

    policy_version_id: Mapped[int] = mapped_column(
        ForeignKey("policy_versions.id", ondelete="CASCADE"), primary_key=True
    )
    hcpcs: Mapped[str] = mapped_column(String(5), primary_key=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))

    payer: Mapped[Payer] = relationship()


class StepTherapyStep(db.Model):
    """One step of a policy's step therapy: try ``count`` of ``any_of`` for ``min_days``."""

    __tablename__ = "step_therapy_steps"
    __table_args__ = (UniqueConstraint("policy_version_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_version_id: Mapped[int] = mapped_column(
        ForeignKey("policy_versions.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(default=0)
    any_of: Mapped[list[str]] = mapped_column(JSON, default=list)
    count: Mapped[int] = mapped_column(default=1)
    min_days: Mapped[int] = mapped_column(default=0)
    accepted_outcomes: Mapped[list[str]] = mapped_column(JSON, default=list)

    policy_version: Mapped[PolicyVersion] = relationship(back_populates="steps")

    def as_dict(self) -> dict[str, Any]:
        """Return this step in bundle form."""
        return {
            "any_of": list(self.any_of),
            "count": self.count,
            "min_days": self.min_days,
            "accepted_outcomes": list(self.accepted_outcomes),
        }


def sync_policy_codes(version: PolicyVersion) -> None:
    """Make the indexed ``codes`` rows match the version's ``hcpcs`` list and payer."""
    payer = version.policy.payer if version.policy else None
    wanted = sorted(set(version.hcpcs or []))
    have = sorted(row.hcpcs for row in version.codes)
    if wanted != have or any(row.payer is not payer for row in version.codes):
        version.codes = [PolicyCode(hcpcs=code, payer=payer) for code in wanted]


class PolicyCase(db.Model):
    """A coordinator's test case for a policy version: a planned treatment and what to expect."""

    __tablename__ = "policy_cases"
    __table_args__ = (UniqueConstraint("policy_version_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_version_id: Mapped[int] = mapped_column(
        ForeignKey("policy_versions.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    # The eligibility request exactly as the API takes it (dates as text).
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    expect_decision: Mapped[str] = mapped_column(String(30))
    # Finding codes that must be present, and codes that must not be.
    expect_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    expect_absent: Mapped[list[str]] = mapped_column(JSON, default=list)

    policy_version: Mapped[PolicyVersion] = relationship(back_populates="cases")

    def expectation(self) -> dict[str, Any]:
        """Return what the case expects, in the API's shape."""
        return {"decision": self.expect_decision, "codes": list(self.expect_codes or []),
                "absent": list(self.expect_absent or [])}
