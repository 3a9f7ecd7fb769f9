"""Public 837P samples (tests/data/x12_public): every claim read, one result per claim."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from policy_service.services.x12 import check_837, read_837
from tests.factories import make_payer

PUBLIC = Path(__file__).resolve().parent.parent / "data" / "x12_public"
SAMPLES = sorted(PUBLIC.glob("*.837"))
# LinuxForHealth copies whose HI and SV1 use ">" while ISA16 declares ":".
SEPARATOR_MISMATCH = {"demo.cob.2ndary.example4.837", "demo.example11.837",
                      "demo.example12.837", "demo.example6.837", "demo.example9.837"}


def test_the_sample_set_is_all_there() -> None:
    assert len(SAMPLES) == 34
    assert (PUBLIC / "README.md").is_file()


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_claim_gets_one_result_with_its_reasons(session, path: Path) -> None:
    text = path.read_text(encoding="ascii")
    outcomes = check_837(text)
    assert len(outcomes) == len(re.findall(r"(?:^|~)\s*CLM\*", text))
    for outcome in outcomes:
        # The guide's examples name payers we do not know and code in ICD-9: never "clean".
        assert outcome.status == "not_checked"
        assert any(reason.startswith("payer: no payer has the id") for reason in outcome.reasons)
        if path.name in SEPARATOR_MISMATCH:
            assert any("is the component separator ':'" in r for r in outcome.reasons)
        else:
            assert any(r.startswith("ICD-9 codes are not supported") for r in outcome.reasons)


def test_cli_reads_a_public_sample_and_counts_it(runner, session) -> None:
    result = runner.invoke(args=["check-claims", str(PUBLIC / "demo.example2.837")])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == (
        "1 claim: 0 checked (0 clean, 0 needing correction), 1 not checked.")


def test_guide_drug_example_is_checked_once_coded_in_icd10(session) -> None:
    make_payer("RR-HEALTH", name="R&R Health Plan", kind="commercial",
               external_ids=["PLANID12345"])
    path = PUBLIC / "stupidedi-drug-administered-in-the-physician-office.837"
    text = path.read_text(encoding="ascii").replace("HI*BK:03591", "HI*ABK:M0579")
    [claim] = read_837(text)
    assert (claim.payer, claim.patient) == ("PLANID12345", "MBRID12345")
    assert claim.lines[1].ndc == "00026-0635-12"
    assert (claim.lines[1].quantity_unit, claim.lines[1].code) == ("ML", "J1550")
    # J1550 is not in our drug table: its line is billed as given, the claim is checked.
    [outcome] = check_837(text)
    assert outcome.result is not None, outcome.reasons
    assert [ln["code"] for ln in outcome.result["expected_lines"]] == ["90782", "J1550"]
