"""Fixtures for remittance tests: a payer, a drug, a patient, an authorization, the code table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from policy_service.models import Authorization, Payer
from policy_service.services.reason_codes import load_reason_codes, read_reason_code_file
from tests.factories import make_authorization, make_drug, make_patient, make_payer

SEED_FILE = Path(__file__).resolve().parents[2] / "seed_data" / "codes" / "reason_codes.yaml"
APPEAL_DAYS = 90


@dataclass
class World:
    """The records a remittance for ACME refers to."""

    payer: Payer
    authorization: Authorization


@pytest.fixture
def world(session: Session) -> World:
    """ACME (appeals within 90 days), J1745, patient P001 and A-1001: 160 units, 4 visits."""
    load_reason_codes(read_reason_code_file(SEED_FILE))
    payer = make_payer("ACME", name="Acme Health", kind="commercial")
    payer.appeal_days = APPEAL_DAYS
    make_drug("J1745")
    make_drug("J9312", name="Rituxan", generic="rituximab")
    patient = make_patient("P001")
    auth = make_authorization("A-1001", patient=patient, payer=payer)
    session.flush()
    return World(payer, auth)
