"""The vocabulary of findings, defined once: severities, categories, decisions, claim statuses.

Everything else (the services, the API schemas, the CLI, the admin) imports these; nobody spells
a finding's category or a decision as a bare string list of its own. They are ``StrEnum`` so they
serialise to the contract's strings unchanged (``Severity.BLOCK == "block"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How much a finding matters: ``block`` stops the infusion or claim, ``warn`` asks a look."""

    BLOCK = "block"
    WARN = "warn"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Sort key: blocking findings first."""
        return list(Severity).index(self)


class Category(StrEnum):
    """What a finding is about; decisions and claim statuses are computed from it."""

    COVERAGE = "coverage"
    AUTHORIZATION = "authorization"
    INFORMATION = "information"
    DRUG_BILLING = "drug billing"
    ADMINISTRATION_CODING = "administration coding"
    CLAIM_DATA = "claim data"


class Decision(StrEnum):
    """The answer of an eligibility check (docs/contract.md, POST /api/v1/eligibility)."""

    ELIGIBLE = "eligible"
    NEEDS_AUTHORIZATION = "needs_authorization"
    NEEDS_INFORMATION = "needs_information"
    NOT_ELIGIBLE = "not_eligible"


class ClaimStatus(StrEnum):
    """The answer of a claim check (docs/contract.md, POST /api/v1/claims/check)."""

    CLEAN = "clean"
    NEEDS_CORRECTION = "needs_correction"


# A finding as the services pass it around: a mapping with at least "severity" and "category".
FindingLike = Mapping[str, Any]


def decide(findings: Iterable[FindingLike]) -> Decision:
    """The eligibility decision for a set of findings, in the contract's order of precedence.

    Coverage that blocks means ``not_eligible``; any information finding (missing data, no
    policy, a code that cannot be billed) means ``needs_information``; an authorization that
    blocks means ``needs_authorization``; otherwise ``eligible`` (warnings allowed).
    """
    kinds = {(f["category"], f["severity"]) for f in findings}
    categories = {category for category, _ in kinds}
    if (Category.COVERAGE, Severity.BLOCK) in kinds:
        return Decision.NOT_ELIGIBLE
    if Category.INFORMATION in categories:
        return Decision.NEEDS_INFORMATION
    if (Category.AUTHORIZATION, Severity.BLOCK) in kinds:
        return Decision.NEEDS_AUTHORIZATION
    return Decision.ELIGIBLE


def claim_status(findings: Iterable[FindingLike]) -> ClaimStatus:
    """A claim needs correction when any finding, of any category, blocks or warns."""
    if any(f["severity"] in (Severity.BLOCK, Severity.WARN) for f in findings):
        return ClaimStatus.NEEDS_CORRECTION
    return ClaimStatus.CLEAN
