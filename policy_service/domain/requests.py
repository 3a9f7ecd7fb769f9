"""The requests the checks answer: one planned treatment, one claim (as the schemas load them).

Plain dataclasses, so the schemas can build them and the services read them without either
importing the other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from policy_service.billing.administration import Infusion
from policy_service.domain.documentation import DocumentOnFile
from rulesets.vocabulary import Decision


@dataclass(frozen=True)
class TherapyFact:
    """A course of a drug: from the stored history or the request's prior_therapies."""

    drug: str
    start: dt.date
    end: dt.date | None
    outcome: str | None


@dataclass
class EligibilityRequest:
    """One planned treatment, as loaded by the eligibility schema."""

    patient_id: str
    payer: str
    date_of_service: dt.date
    hcpcs: str
    diagnosis_codes: list[str] = field(default_factory=list)
    site_of_care: str | None = None
    birth_date: dt.date | None = None
    weight_kg: Decimal | None = None
    dose_mg: Decimal | None = None
    dose_mg_per_kg: Decimal | None = None
    packages: list[tuple[Decimal, int]] | None = None
    prior_therapies: list[TherapyFact] = field(default_factory=list)
    authorization_number: str | None = None
    last_dose_date: dt.date | None = None
    # Documents on file the request adds to the patient's stored ones.
    documentation_on_file: list[DocumentOnFile] = field(default_factory=list)
    # How the drug reaches the practice; the rendering and (when another) prescribing NPIs.
    drug_supply: str = "buy_and_bill"
    rendering_npi: str | None = None
    ordering_npi: str | None = None

    @property
    def prescriber_npi(self) -> str | None:
        """The prescriber: the ordering provider when named, else the rendering one."""
        return self.ordering_npi or self.rendering_npi


@dataclass(frozen=True)
class ClaimLine:
    """One submitted service line."""

    code: str
    units: int
    modifiers: tuple[str, ...] = ()
    ndc: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the line in the contract's JSON shape."""
        line: dict[str, Any] = {"code": self.code, "units": self.units,
                                "modifiers": list(self.modifiers)}
        if self.ndc:
            line["ndc"] = self.ndc
        return line


@dataclass(frozen=True)
class ClaimAdministration:
    """What was given at the encounter: the drug (none for hydration or a patient-supplied
    drug), the dose, the packages opened, the times."""

    hcpcs: str | None = None
    administered_mg: Decimal | None = None
    packages: list[tuple[Decimal, int]] | None = None
    infusions: list[Infusion] | None = None


@dataclass
class Claim:
    """A claim as loaded by the claims schema (or converted from an 837P claim)."""

    payer: str
    patient_id: str
    date_of_service: dt.date
    lines: list[ClaimLine]
    submitted_on: dt.date | None = None
    diagnosis_codes: list[str] = field(default_factory=list)
    authorization_number: str | None = None
    place_of_service: str | None = None
    administration: ClaimAdministration | None = None
    birth_date: dt.date | None = None
    weight_kg: Decimal | None = None
    # None: not said (a drug line billed means bought and billed).
    drug_supply: str | None = None
    rendering_npi: str | None = None
    ordering_npi: str | None = None


ERROR_DECISION = "error"
# The eligibility decisions, plus "error" for a stored appointment that can no longer be
# checked (its authorization was deleted, its drug removed).
CHECK_DECISIONS = (*(decision.value for decision in Decision), ERROR_DECISION)


@dataclass
class AppointmentInput:
    """One planned infusion as the API, an upload or a series describes it."""

    patient_id: str
    payer: str
    date_of_service: dt.date
    hcpcs: str
    dose_mg: Decimal | None = None
    dose_mg_per_kg: Decimal | None = None
    site_of_care: str | None = None
    diagnosis_codes: list[str] = field(default_factory=list)
    packages: list[tuple[Decimal, int]] = field(default_factory=list)
    authorization_number: str | None = None
    drug_supply: str = "buy_and_bill"
    rendering_npi: str | None = None


@dataclass(frozen=True)
class Filters:
    """What a schedule list selects (every field optional)."""

    date_from: dt.date | None = None
    date_to: dt.date | None = None
    decision: str | None = None
    payer: str | None = None
    hcpcs: str | None = None
    authorization: str | None = None
    patient: str | None = None
    status: str | None = "scheduled"
