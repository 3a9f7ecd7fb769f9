"""An in-memory index of payers, drugs and every effective-dated policy version.

Policies change rarely and are read on every check. The index is rebuilt only when the
``policies`` revision counter in the database moves (one cheap query per check or batch), so it
stays correct across processes and hosts without a cache server.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from policy_service.audit import POLICY_REVISION
from policy_service.database import PreparedRead
from policy_service.domain.codes import external_id_key
from policy_service.domain.documentation import DocumentationItem, documentation_items
from policy_service.extensions import db
from policy_service.models import (
    Drug,
    Payer,
    Policy,
    PolicyVersion,
    Provider,
    ProviderEnrollment,
    Revision,
)


@dataclass(frozen=True, slots=True)
class StepView:
    """One step-therapy step, detached from the session."""

    any_of: tuple[str, ...]
    count: int
    min_days: int
    accepted_outcomes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PolicyView:
    """One policy version as the checks read it, detached from the session."""

    code: str
    number: int
    payer_code: str
    payer_name: str
    effective_from: dt.date
    effective_to: dt.date | None
    status: str
    hcpcs: tuple[str, ...]
    prior_auth_required: bool
    covered_diagnoses: tuple[str, ...]
    preferred_products: tuple[str, ...]
    sites_of_care: tuple[str, ...]
    max_dose_mg: Decimal | None
    max_dose_mg_per_kg: Decimal | None
    max_dose_units: int | None
    min_days_between_doses: int | None
    min_age: int | None
    max_age: int | None
    new_starts_only_lookback_days: int | None
    approval_days: int | None
    source: str | None
    steps: tuple[StepView, ...]
    drug_supply: str = "either"
    prescriber_specialties: tuple[str, ...] = ()
    documentation: tuple[DocumentationItem, ...] = ()

    def covers_date(self, day: dt.date) -> bool:
        """Return whether this version is in effect on ``day``."""
        ended = self.effective_to is not None and day > self.effective_to
        return self.effective_from <= day and not ended

    @property
    def label(self) -> str:
        """How a scheduler reads this policy: payer, drug family, version, effective date."""
        family = self.code.split("/", 1)[-1]
        return (f"{self.payer_name}'s {family} policy (v{self.number}, "
                f"effective {self.effective_from.isoformat()})")


@dataclass(frozen=True, slots=True)
class PackageView:
    """A package size of a drug."""

    amount: Decimal
    unit: str
    single_dose: bool
    ndc: str | None = None


@dataclass(frozen=True, slots=True)
class DrugView:
    """A drug's billing data, detached from the session."""

    hcpcs: str
    name: str
    generic: str
    biosimilar_of: str | None
    billing_unit_amount: Decimal
    billing_unit: str
    admin_class: str | None
    valid_from: dt.date | None
    valid_to: dt.date | None
    mue_units: int | None
    packages: tuple[PackageView, ...]

    @property
    def molecule(self) -> str:
        """The molecule without biosimilar suffix (infliximab-dyyb -> infliximab)."""
        return self.generic.split("-")[0].split(" ")[0].lower()


@dataclass(frozen=True, slots=True)
class PayerView:
    """A payer's billing settings, detached from the session."""

    code: str
    name: str
    kind: str
    requires_jw_jz: bool
    requires_ndc: bool
    timely_filing_days: int
    complex_admin_for_biologics: bool


@dataclass(frozen=True, slots=True)
class EnrollmentView:
    """One period a provider is enrolled with a payer."""

    payer_code: str
    effective_from: dt.date
    effective_to: dt.date | None

    def covers_date(self, day: dt.date) -> bool:
        """Return whether the enrollment is in effect on ``day``."""
        return self.effective_from <= day and (self.effective_to is None
                                               or day <= self.effective_to)


@dataclass(frozen=True, slots=True)
class ProviderView:
    """A provider's specialty and enrollments, detached from the session."""

    npi: str
    name: str
    specialty: str | None
    enrollments: tuple[EnrollmentView, ...]

    def enrolled_with(self, payer_code: str, day: dt.date) -> bool:
        """Return whether the provider is enrolled with the payer on ``day``."""
        return any(e.payer_code == payer_code and e.covers_date(day) for e in self.enrollments)


@dataclass
class PolicyIndex:
    """Payers, drugs and policy versions keyed for constant-time lookups."""

    revision: int
    payers: dict[str, PayerView] = field(default_factory=dict)
    # Database id of each payer code: the checks key stored authorizations by payer id.
    payer_ids: dict[str, int] = field(default_factory=dict)
    drugs: dict[str, DrugView] = field(default_factory=dict)
    versions: dict[tuple[str, str], list[PolicyView]] = field(default_factory=dict)
    # Providers by NPI: few (a practice's clinicians), read on every check that names one.
    providers: dict[str, ProviderView] = field(default_factory=dict)
    # Payer code by each external id (compared by ``external_id_key``); the first payer in
    # code order wins, should two ever share one.
    payer_codes_by_external_id: dict[str, str] = field(default_factory=dict)

    def policy_for(self, payer_code: str, hcpcs: str, day: dt.date) -> PolicyView | None:
        """Return the policy version in effect for this payer and drug on ``day``."""
        in_effect = [v for v in self.versions.get((payer_code, hcpcs), ()) if v.covers_date(day)]
        return max(in_effect, key=lambda v: v.effective_from) if in_effect else None

    def names_for(self, hcpcs: str) -> set[str]:
        """Every name a therapy record may use for this drug: code, generic, brand, molecule."""
        drug = self.drugs.get(hcpcs)
        if drug is None:
            return {hcpcs.lower()}
        return {hcpcs.lower(), drug.generic.lower(), drug.name.lower()}


def _decimal(value: Decimal | None) -> Decimal | None:
    return Decimal(value) if value is not None else None


def policy_view(version: PolicyVersion) -> PolicyView:
    """Return one stored policy version as the checks read it (its steps and payer loaded)."""
    payer = version.policy.payer
    return PolicyView(
        code=version.policy.code, number=version.number, payer_code=payer.code,
        payer_name=payer.name, effective_from=version.effective_from,
        effective_to=version.effective_to, status=version.status,
        hcpcs=tuple(version.hcpcs or ()), prior_auth_required=version.prior_auth_required,
        covered_diagnoses=tuple(version.covered_diagnoses or ()),
        preferred_products=tuple(version.preferred_products or ()),
        sites_of_care=tuple(version.sites_of_care or ()),
        max_dose_mg=_decimal(version.max_dose_mg),
        max_dose_mg_per_kg=_decimal(version.max_dose_mg_per_kg),
        max_dose_units=version.max_dose_units,
        min_days_between_doses=version.min_days_between_doses,
        min_age=version.min_age, max_age=version.max_age,
        new_starts_only_lookback_days=version.new_starts_only_lookback_days,
        approval_days=version.approval_days, source=version.source,
        steps=tuple(StepView(tuple(s.any_of or ()), s.count, s.min_days,
                             tuple(s.accepted_outcomes or ())) for s in version.steps),
        drug_supply=version.drug_supply or "either",
        prescriber_specialties=tuple(version.prescriber_specialties or ()),
        documentation=documentation_items(version.documentation_required),
    )


def load_index(revision: int) -> PolicyIndex:
    """Read every payer, drug and non-draft policy version into a new index."""
    # A session of its own on this transaction's connection: rows the caller's session loaded
    # before another writer moved the revision are not refreshed by a query, and the index is
    # then shared under the new revision by every request until the next change.
    with Session(bind=db.session.connection(), autoflush=False) as session:
        return _read_index(session, revision)


def _read_index(session: Session, revision: int) -> PolicyIndex:
    index = PolicyIndex(revision=revision)
    for payer in session.scalars(select(Payer).order_by(Payer.code)):
        index.payers[payer.code] = PayerView(
            payer.code, payer.name, payer.kind, payer.requires_jw_jz, payer.requires_ndc,
            payer.timely_filing_days, payer.complex_admin_for_biologics)
        index.payer_ids[payer.code] = payer.id
        for item in payer.external_ids or ():
            index.payer_codes_by_external_id.setdefault(external_id_key(item), payer.code)
    for drug in session.scalars(select(Drug).options(selectinload(Drug.packages))):
        index.drugs[drug.hcpcs] = DrugView(
            drug.hcpcs, drug.name, drug.generic, drug.biosimilar_of,
            Decimal(drug.billing_unit_amount), drug.billing_unit, drug.admin_class,
            drug.valid_from, drug.valid_to, drug.mue_units,
            tuple(PackageView(Decimal(p.amount), p.unit, p.single_dose, p.ndc)
                  for p in drug.packages))
    query = (
        select(PolicyVersion)
        .where(PolicyVersion.status != "draft")
        .options(selectinload(PolicyVersion.steps),
                 selectinload(PolicyVersion.policy).selectinload(Policy.payer))
    )
    versions: dict[tuple[str, str], list[PolicyView]] = defaultdict(list)
    for version in session.scalars(query):
        view = policy_view(version)
        for hcpcs in view.hcpcs:
            versions[(view.payer_code, hcpcs)].append(view)
    index.versions = {key: sorted(views, key=lambda v: v.effective_from)
                      for key, views in versions.items()}
    for provider in session.scalars(select(Provider).options(
            selectinload(Provider.enrollments).selectinload(ProviderEnrollment.payer))):
        index.providers[provider.npi] = ProviderView(
            provider.npi, provider.name, provider.specialty,
            tuple(EnrollmentView(e.payer.code, e.effective_from, e.effective_to)
                  for e in provider.enrollments))
    return index


# Read before every check, so it runs as a prepared read (see ``PreparedRead``).
_revisions = Revision.__table__
_STORED_REVISION = PreparedRead(
    select(_revisions.c.value).where(_revisions.c.name == POLICY_REVISION))


def stored_revision() -> int:
    """Return the policy revision counter stored in the database (0 before any change)."""
    return _STORED_REVISION.scalar() or 0


class IndexCache:
    """The process's current index of each database, rebuilt when its stored revision moves.

    Kept per database as well as per revision: two databases can hold the same revision value
    (0 before any policy change), and one process may serve both (tests, a command run
    against another store).
    """

    def __init__(self) -> None:
        self._indexes: dict[Any, PolicyIndex] = {}
        self._lock = threading.Lock()

    def current(self) -> PolicyIndex:
        """Return an index matching the database's current revision."""
        revision = stored_revision()
        database = db.engine.url
        index = self._indexes.get(database)
        if index is not None and index.revision == revision:
            return index
        with self._lock:
            index = self._indexes.get(database)
            if index is None or index.revision != revision:
                index = self._indexes[database] = load_index(revision)
            return index

    def clear(self) -> None:
        """Forget every index (tests that switch databases)."""
        self._indexes = {}


index_cache = IndexCache()
