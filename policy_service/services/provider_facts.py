"""Facts about who gives and who prescribes a treatment, and how its drug is supplied.

Pure functions over the policy index's detached views: the eligibility and claim case builders
both call them, so a provider is judged enrolled (or a prescriber's specialty covered) the same
way before the infusion and on the claim.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from policy_service.services.policy_index import PolicyIndex, PolicyView

BUY_AND_BILL, SPECIALTY_PHARMACY = "buy_and_bill", "specialty_pharmacy"
ENROLLED, NOT_ENROLLED, UNKNOWN_NPI = "enrolled", "not_enrolled", "unknown_npi"


def pharmacy_supplied(drug_supply: str | None, policy: PolicyView | None) -> bool:
    """Whether the drug comes from a specialty pharmacy: planned so, or the policy requires it.

    Either way the practice bills the administration only, never a drug line.
    """
    return drug_supply == SPECIALTY_PHARMACY or (
        policy is not None and policy.drug_supply == SPECIALTY_PHARMACY)


@dataclass(frozen=True)
class Enrollment:
    """Whether a rendering provider may bill the payer on the date, and why not in words."""

    state: str
    words: str


def rendering_enrollment(index: PolicyIndex, npi: str, payer_code: str,
                         day: dt.date) -> Enrollment:
    """The rendering provider's enrollment with the payer on ``day``."""
    payer = index.payers[payer_code].name if payer_code in index.payers else payer_code
    provider = index.providers.get(npi)
    if provider is None:
        return Enrollment(UNKNOWN_NPI, f"rendering NPI {npi} is not a provider on file, so its "
                                       f"enrollment with {payer} cannot be confirmed")
    if provider.enrolled_with(payer_code, day):
        return Enrollment(ENROLLED, f"{provider.name} ({npi}) is enrolled with {payer}")
    periods = [e for e in provider.enrollments if e.payer_code == payer_code]
    detail = "; enrolled " + ", ".join(
        f"{e.effective_from.isoformat()} to "
        f"{e.effective_to.isoformat() if e.effective_to else 'open'}"
        for e in periods) if periods else ""
    return Enrollment(NOT_ENROLLED, f"{provider.name} ({npi}) is not enrolled with {payer} "
                                    f"on {day.isoformat()}{detail}")


@dataclass(frozen=True)
class Prescriber:
    """The prescriber's specialty against the policy's: covered, not, or unknown (missing)."""

    covered: bool | None
    words: str
    missing_reason: str | None = None


def prescriber_specialty(index: PolicyIndex, npi: str | None, policy: PolicyView) -> Prescriber:
    """Judge the prescriber named by ``npi`` against ``policy.prescriber_specialties``."""
    wanted = ", ".join(policy.prescriber_specialties)
    if npi is None:
        return Prescriber(None, "no prescriber given",
                          f"the policy requires a prescriber in {wanted}")
    provider = index.providers.get(npi)
    if provider is None or not provider.specialty:
        return Prescriber(None, f"prescriber {npi} has no specialty on file",
                          f"NPI {npi} has no specialty on file; the policy requires {wanted}")
    covered = provider.specialty in policy.prescriber_specialties
    return Prescriber(covered, f"{provider.name} ({npi}) is in {provider.specialty}")
