"""Every seeded policy version ships with cases, and every case passes as the version stands."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from policy_service.models import Policy, PolicyVersion
from policy_service.services.bundle import bundle_files, import_files, seed_directory
from policy_service.services.policy_review import run_cases


@pytest.fixture
def seeded(session: Session) -> list[PolicyVersion]:
    """The shipped seed data, imported."""
    import_files(bundle_files(seed_directory()))
    return list(session.scalars(
        select(PolicyVersion).join(Policy).order_by(Policy.code, PolicyVersion.number)
        .options(selectinload(PolicyVersion.cases), selectinload(PolicyVersion.steps))))


def test_every_seeded_version_has_a_passing_and_a_blocking_case(
        seeded: list[PolicyVersion]) -> None:
    for version in seeded:
        decisions = {case.expect_decision for case in version.cases}
        assert "not_eligible" in decisions, str(version)
        assert decisions - {"not_eligible"}, str(version)


def test_every_seeded_case_passes(seeded: list[PolicyVersion]) -> None:
    failures = {str(version): result["failed"] for version in seeded
                if (result := run_cases(version, version.cases))["failed"]}
    assert failures == {}
    assert sum(len(version.cases) for version in seeded) >= 2 * len(seeded)
