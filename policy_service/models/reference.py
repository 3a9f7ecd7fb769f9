"""Payers and drugs: the reference data every policy and claim refers to."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from policy_service.extensions import db

PAYER_KINDS = ("medicare", "medicare_advantage", "medicaid", "commercial")

# How long a payer takes to decide a standard prior-authorization request, how long after a
# denial an appeal may be filed, and how early a renewal should go in, by kind of payer.
# A payer's own contract may say otherwise: these are only the values a new payer starts with.
PAYER_WORKFLOW_DEFAULTS: dict[str, dict[str, int]] = {
    # Medicare FFS prior authorization (hospital outpatient services, 42 CFR 419.80-419.89):
    # CMS's program guidance gives 10 business days, about 14 calendar days; redetermination
    # requests within 120 days of the initial determination, 42 CFR 405.942(a).
    "medicare": {"decision_days": 14, "appeal_days": 120, "renewal_lead_days": 30},
    # Medicare Advantage, standard pre-service decisions within 7 calendar days from
    # 2026-01-01 (CMS-0057-F, 42 CFR 422.568(b)(1)); reconsideration within 65 days,
    # 42 CFR 422.582(b).
    "medicare_advantage": {"decision_days": 7, "appeal_days": 65, "renewal_lead_days": 30},
    # Medicaid managed care: 7 calendar days from 2026-01-01 (CMS-0057-F, 42 CFR
    # 438.210(d)(1)); appeal within 60 days of the adverse benefit determination,
    # 42 CFR 438.402(c)(2)(ii).
    "medicaid": {"decision_days": 7, "appeal_days": 60, "renewal_lead_days": 30},
    # Employer (ERISA) plans: non-urgent pre-service claims within 15 days, 29 CFR
    # 2560.503-1(f)(2)(iii)(A); internal appeal within 180 days, 29 CFR 2560.503-1(h)(3)(i)
    # and 45 CFR 147.136(b).
    "commercial": {"decision_days": 15, "appeal_days": 180, "renewal_lead_days": 30},
}
# The renewal lead of 30 days is practice, not regulation: most payers accept a continuation
# request in the last 30 days of an approval, and a decision takes up to 15 days.
PAYER_WORKFLOW_SETTINGS = ("decision_days", "renewal_lead_days", "appeal_days")


def payer_workflow_default(kind: str | None, setting: str) -> int:
    """The documented default of a workflow ``setting`` for a payer of ``kind``."""
    return PAYER_WORKFLOW_DEFAULTS.get(kind or "commercial",
                                       PAYER_WORKFLOW_DEFAULTS["commercial"])[setting]


def _kind_default(setting: str) -> Any:
    def default(context: Any) -> int:
        # Forms ask for a default with no statement (None): they get the commercial one.
        kind = context.get_current_parameters().get("kind") if context is not None else None
        return payer_workflow_default(kind, setting)

    return default


class Payer(db.Model):
    """A payer (plan) with the billing settings its claims must follow."""

    __tablename__ = "payers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(30), default="commercial")
    requires_jw_jz: Mapped[bool] = mapped_column(default=False)
    requires_ndc: Mapped[bool] = mapped_column(default=False)
    timely_filing_days: Mapped[int] = mapped_column(default=365)
    complex_admin_for_biologics: Mapped[bool] = mapped_column(default=True)
    # How others name this payer: the payer id of NM1*PR NM109 on 837/835 files, a CDS Hooks
    # Coverage payor's identifier value. One value names at most one payer.
    external_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Defaults by kind (PAYER_WORKFLOW_DEFAULTS) whenever a writer leaves them out.
    decision_days: Mapped[int] = mapped_column(default=_kind_default("decision_days"))
    renewal_lead_days: Mapped[int] = mapped_column(default=_kind_default("renewal_lead_days"))
    appeal_days: Mapped[int] = mapped_column(default=_kind_default("appeal_days"))
    notes: Mapped[str | None] = mapped_column(String(2000))
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class Drug(db.Model):
    """A billable drug product: HCPCS code, billing unit and the packages it comes in."""

    __tablename__ = "drugs"

    id: Mapped[int] = mapped_column(primary_key=True)
    hcpcs: Mapped[str] = mapped_column(String(5), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    generic: Mapped[str] = mapped_column(String(100), index=True)
    biosimilar_of: Mapped[str | None] = mapped_column(String(5))
    billing_unit_amount: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    billing_unit: Mapped[str] = mapped_column(String(20), default="mg")
    route: Mapped[str | None] = mapped_column(String(20))
    # "biologic" drugs are billed with complex or therapeutic codes per payer setting.
    admin_class: Mapped[str | None] = mapped_column(String(30))
    valid_from: Mapped[dt.date | None]
    valid_to: Mapped[dt.date | None]
    # Medically unlikely edit: most units one provider bills for one patient on one day.
    mue_units: Mapped[int | None]
    # RxNorm concepts (RXCUI) of this product: EHR orders name drugs by RxNorm, claims by HCPCS.
    rxnorm: Mapped[list[str]] = mapped_column(JSON, default=list)
    source: Mapped[str | None] = mapped_column(String(1000))
    notes: Mapped[str | None] = mapped_column(String(2000))
    version: Mapped[int] = mapped_column(default=1)

    packages: Mapped[list[DrugPackage]] = relationship(
        back_populates="drug", cascade="all, delete-orphan", order_by="DrugPackage.position"
    )

    __mapper_args__ = {"version_id_col": version}

    def __str__(self) -> str:
        return f"{self.hcpcs} {self.name}"


class DrugPackage(db.Model):
    """One package size a drug is sold in (a vial, a syringe, a multi-dose vial)."""

    __tablename__ = "drug_packages"
    __table_args__ = (UniqueConstraint("drug_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    drug_id: Mapped[int] = mapped_column(ForeignKey("drugs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(default=0)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    unit: Mapped[str] = mapped_column(String(20), default="mg")
    single_dose: Mapped[bool] = mapped_column(default=True)
    ndc: Mapped[str | None] = mapped_column(String(20))

    drug: Mapped[Drug] = relationship(back_populates="packages")

    def __str__(self) -> str:
        kind = "single-dose" if self.single_dose else "multi-dose"
        # normalize(): 100.000 reads 100 (the column keeps three decimals).
        return f"{Decimal(self.amount).normalize():f} {self.unit} {kind}"
