"""Decisions and claim statuses follow from the findings' categories and severities."""

from __future__ import annotations

import pytest

from rulesets.vocabulary import Category, ClaimStatus, Decision, Severity, claim_status, decide

C, S = Category, Severity


def finding(category: Category, severity: Severity = S.BLOCK) -> dict[str, object]:
    """A finding with only what decisions read."""
    return {"category": category, "severity": severity}


@pytest.mark.parametrize(("findings", "decision"), [
    ([], Decision.ELIGIBLE),
    ([finding(C.AUTHORIZATION, S.WARN)], Decision.ELIGIBLE),
    ([finding(C.AUTHORIZATION)], Decision.NEEDS_AUTHORIZATION),
    ([finding(C.INFORMATION, S.WARN), finding(C.AUTHORIZATION)], Decision.NEEDS_INFORMATION),
    ([finding(C.INFORMATION), finding(C.COVERAGE)], Decision.NOT_ELIGIBLE),
    ([finding(C.COVERAGE, S.WARN), finding(C.AUTHORIZATION)], Decision.NEEDS_AUTHORIZATION),
])
def test_decision_in_the_contracts_order(findings: list[dict[str, object]],
                                          decision: Decision) -> None:
    """Blocking coverage beats missing information, which beats a blocking authorization."""
    assert decide(findings) is decision


@pytest.mark.parametrize(("severities", "status"), [
    ([], ClaimStatus.CLEAN),
    ([S.INFO], ClaimStatus.CLEAN),
    ([S.WARN], ClaimStatus.NEEDS_CORRECTION),
    ([S.INFO, S.BLOCK], ClaimStatus.NEEDS_CORRECTION),
])
def test_claim_status_from_severities(severities: list[Severity], status: ClaimStatus) -> None:
    """Any blocking or warning finding, whatever its category, needs a correction."""
    assert claim_status([finding(C.DRUG_BILLING, s) for s in severities]) is status


def test_vocabulary_serialises_to_the_contracts_strings() -> None:
    """The enums are the contract's strings, so JSON and templates need no mapping."""
    assert Decision.NOT_ELIGIBLE == "not_eligible"
    assert f"{ClaimStatus.NEEDS_CORRECTION}" == "needs_correction"
    assert [s.rank for s in Severity] == [0, 1, 2]
