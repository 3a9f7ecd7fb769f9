"""X12 837P: the synthetic sample read, converted and checked end to end from the CLI."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from policy_service.errors import Invalid
from policy_service.services.x12 import read_837
from tests.claims.world import build_world

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE = DATA / "claims_sample.837"
MALFORMED = DATA / "claims_malformed.837"


def test_sample_is_read_into_claim_check_input() -> None:
    first, second = read_837(SAMPLE.read_text(encoding="ascii"))
    assert first.reference == "CLM-0001"
    claim = first.claim
    assert (claim.payer, claim.patient_id) == ("MEDICARE-B", "P001")
    assert claim.birth_date == dt.date(1961, 3, 2)
    assert claim.date_of_service == dt.date(2026, 3, 10)
    assert claim.submitted_on == dt.date(2026, 3, 12)
    assert claim.diagnosis_codes == ["M05.79"]
    assert claim.authorization_number == "A-1001"
    assert claim.place_of_service == "11"
    assert [(ln.code, ln.units, ln.modifiers) for ln in claim.lines] == [
        ("J1745", 35, ()), ("J1745", 5, ("JW",)), ("96413", 1, ()), ("96415", 1, ()),
        ("99214", 1, ("25",))]
    assert claim.lines[0].ndc == "57894-0030-01"
    assert claim.administration is not None
    assert claim.administration.hcpcs == "J1745"
    assert claim.administration.administered_mg == Decimal(350)
    [infusion] = claim.administration.infusions or []
    assert (infusion.kind, infusion.start, infusion.stop) == (
        "complex", dt.time(10, 0), dt.time(12, 10))
    assert second.reference == "CLM-0002"
    [minutes] = second.claim.administration.infusions or []
    assert (minutes.stop - minutes.start) == dt.timedelta(minutes=60)


def test_cli_checks_every_claim_of_the_sample(runner, session) -> None:
    build_world()
    result = runner.invoke(args=["check-claims", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    first, second = result.output.split("Claim CLM-0002")
    assert "Claim CLM-0001: clean" in first
    assert "expected lines: J1745 x35, J1745-JW x5, 96413 x1, 96415 x1, 99214-25 x1" in first
    assert ": needs_correction" in second
    # 400 mg from 4 x 100 mg vials, 60 minutes of infusion and a nurse visit on the same day.
    assert "JZ_MISSING (line 1)" in second
    assert "ADMIN_CODE_MISMATCH (line 3)" in second
    assert "EM_NOT_PAYABLE (line 4)" in second


def test_cli_names_segment_and_element_of_a_malformed_file(runner, session) -> None:
    build_world()
    result = runner.invoke(args=["check-claims", str(MALFORMED)])
    assert result.exit_code == 1
    assert "segment 33 (SV1), element SV104" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("text", "field"), [
    ("NOT AN X12 FILE", "segment 1 (ISA)"),
    (SAMPLE.read_text(encoding="ascii").replace("\nSE*57*", "\nSE*58*"), "segment 59 (SE)"),
    (SAMPLE.read_text(encoding="ascii").replace("HI*ABK:M0579", "HI*ABK:Q999X", 1),
     "(HI), element HI01-2"),
    (SAMPLE.read_text(encoding="ascii").replace("SV1*HC:J1745*1800", "SV1*ZZ:J1745*1800", 1),
     "(SV1), element SV101-1"),
    (SAMPLE.read_text(encoding="ascii").replace("NTE*ADD*INFUSION COMPLEX 10:00-12:10",
                                                "NTE*ADD*INFUSION SLOW 10:00-12:10", 1),
     "(NTE), element NTE02"),
], ids=["no-isa", "segment-count", "bad-diagnosis", "bad-qualifier", "bad-note"])
def test_malformed_files_are_invalid_naming_where(text, field) -> None:
    with pytest.raises(Invalid) as raised:
        read_837(text)
    assert any(field in error["field"] for error in raised.value.errors), raised.value.errors


def test_unknown_payer_in_a_claim_is_reported_per_claim(runner, session, tmp_path) -> None:
    build_world()
    variant = tmp_path / "other_payer.837"
    variant.write_text(SAMPLE.read_text(encoding="ascii").replace("PI*MEDICARE-B", "PI*NOPAYER"),
                       encoding="ascii")
    result = runner.invoke(args=["check-claims", str(variant)])
    assert result.exit_code == 0, result.output
    assert "Claim CLM-0001: not checked" in result.output
    assert "payer: Unknown payer 'NOPAYER'" in result.output


def test_hydration_only_claim_keeps_its_infusion_times() -> None:
    """A claim with infusion times and no drug line still gives the times to the check."""
    segments = [part.strip() for part in SAMPLE.read_text(encoding="ascii").split("~")]
    first_line = segments.index("LX*1")
    # The first claim without its two drug lines (LX 1 and 2): administration codes only.
    kept = segments[:first_line] + segments[segments.index("LX*3"):]
    kept = [segment.replace("INFUSION COMPLEX 10:00-12:10", "INFUSION HYDRATION 10:00-11:45")
            for segment in kept]
    start = next(i for i, segment in enumerate(kept) if segment.startswith("ST*"))
    end = next(i for i, segment in enumerate(kept) if segment.startswith("SE*"))
    kept[end] = f"SE*{end - start + 1}*0001"
    claim = read_837("~\n".join(kept))[0].claim
    assert claim.administration is not None
    assert claim.administration.hcpcs is None
    [infusion] = claim.administration.infusions or []
    assert (infusion.kind, infusion.start, infusion.stop) == (
        "hydration", dt.time(10, 0), dt.time(11, 45))
