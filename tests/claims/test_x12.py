"""X12 837P: our synthetic sample, and copies of it changed in one place per reading defect."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import DrugPackage, Payer
from policy_service.services.x12 import check_837, read_837
from tests.claims.world import build_world
from tests.factories import make_patient

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE = (DATA / "claims_sample.837").read_text(encoding="ascii")
FIRST_LX = "HI*ABK:M0579~\nLX*1~\nSV1*HC:J1745*1800"


def changed(old: str, new: str, text: str = SAMPLE, count: int = 1) -> str:
    """The sample with ``old`` replaced by ``new`` (once), SE01 recounted."""
    assert old in text, old
    body = text.replace(old, new, count)
    segments = [s for s in re.split(r"~\s*", body) if s]
    st = next(i for i, s in enumerate(segments) if s.startswith("ST*"))
    se = next(i for i, s in enumerate(segments) if s.startswith("SE*"))
    control = segments[se].split("*")[2]
    return body.replace(segments[se], f"SE*{se - st + 1}*{control}")


def outcomes_by_claim(text: str) -> dict[str, Any]:
    """check_837's outcomes keyed by claim reference."""
    return {outcome.read.reference: outcome for outcome in check_837(text)}


@pytest.fixture
def world(session) -> None:
    build_world()


def _ndc(value: str) -> None:
    package = db.session.scalars(select(DrugPackage)).first()
    package.ndc = value
    db.session.flush()


# --- the sample as it is -----------------------------------------------------------------------

def test_sample_is_read_with_the_ids_it_carries() -> None:
    first, second = read_837(SAMPLE)
    assert (first.reference, first.payer, first.patient) == ("CLM-0001", "MEDICARE-B", "P001")
    assert first.birth_date == dt.date(1961, 3, 2)
    assert first.date_of_service == dt.date(2026, 3, 10)
    assert first.submitted_on == dt.date(2026, 3, 12)
    assert first.diagnoses == ["M05.79"]
    assert first.line_authorization() == "A-1001"
    assert [(ln.code, ln.units, ln.modifiers) for ln in first.lines] == [
        ("J1745", 35, ()), ("J1745", 5, ("JW",)), ("96413", 1, ()), ("96415", 1, ()),
        ("99214", 1, ("25",))]
    assert (first.lines[0].ndc, first.lines[0].quantity, first.lines[0].quantity_unit) == (
        "57894-0030-01", Decimal(350), "ME")
    assert first.problems == [] and second.problems == []
    assert second.reference == "CLM-0002"


def test_sample_is_checked_claim_by_claim(world) -> None:
    outcomes = outcomes_by_claim(SAMPLE)
    first = outcomes["CLM-0001"]
    assert first.status == "clean", first.result
    expected = [(ln["code"], ln["units"], ln["modifiers"])
                for ln in first.result["expected_lines"]]
    assert expected[:2] == [("J1745", 35, []), ("J1745", 5, ["JW"])]
    second = outcomes["CLM-0002"]
    assert second.status == "needs_correction"
    assert {"JZ_MISSING", "ADMIN_CODE_MISMATCH", "EM_NOT_PAYABLE"} <= {
        f["code"] for f in second.result["findings"]}


def test_cli_exits_0_with_a_last_line_counting_claims(runner, world) -> None:
    path = DATA / "claims_sample.837"
    result = runner.invoke(args=["check-claims", str(path)])
    assert result.exit_code == 0, result.output
    first, second = result.output.split("Claim CLM-0002")
    assert "Claim CLM-0001: clean" in first
    assert "expected lines: J1745 x35, J1745-JW x5, 96413 x1, 96415 x1, 99214-25 x1" in first
    assert "JZ_MISSING (line 1)" in second
    assert result.output.strip().splitlines()[-1] == (
        "2 claims: 2 checked (1 clean, 1 needing correction), 0 not checked.")


def test_cli_json_is_one_contract_record_per_claim(runner, world, tmp_path) -> None:
    path = tmp_path / "one_bad.837"
    path.write_text(changed("HI*ABK:M0579", "HI*BK:7140"), encoding="ascii")
    result = runner.invoke(args=["check-claims", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.output)
    assert [set(r) for r in records] == [{"claim", "payer", "patient", "authorization_number",
                                          "status", "findings", "expected_lines",
                                          "error"}] * 2
    first, second = records
    assert first == {"claim": "CLM-0001", "payer": "MEDICARE-B", "patient": "P001",
                     "authorization_number": "A-1001", "status": "not_checked",
                     "findings": [], "expected_lines": [],
                     "error": "ICD-9 codes are not supported (HI qualifier BK/BF); code in "
                              "ICD-10-CM"}
    assert second["status"] == "needs_correction" and second["error"] is None
    assert {"code", "severity", "line", "message"} <= set(second["findings"][0])


# --- structural errors still reject the file -------------------------------------------------

@pytest.mark.parametrize(("text", "where"), [
    ("NOT AN X12 FILE", "segment 1"),
    (SAMPLE.replace("\nSE*57*", "\nSE*58*"), "segment 59"),
    (SAMPLE.replace("HL*2*1*22*0", "HL*3*1*22*0"), "segment 13"),
    (SAMPLE.replace("IEA*1*000000001", "IEA*1*000000002"), "segment 61"),
    (SAMPLE.replace("X222A1", "X223A2"), "(GS), element GS08"),
    (SAMPLE.replace("GS*HC*", "XX*HC*"), "segment"),
], ids=["no-isa", "segment-count", "hl-numbering", "control-number", "institutional",
        "ge-without-gs"])
def test_structural_errors_reject_the_file(text: str, where: str) -> None:
    with pytest.raises(Invalid) as raised:
        read_837(text)
    assert any(where in error["field"] for error in raised.value.errors), raised.value.errors


def test_cli_names_the_broken_segment_without_promising_nothing_was_written(
        runner, world, tmp_path) -> None:
    path = tmp_path / "bad_count.837"
    path.write_text(SAMPLE.replace("\nSE*57*", "\nSE*58*"), encoding="ascii")
    result = runner.invoke(args=["check-claims", str(path)])
    assert result.exit_code == 1
    assert "segment 59" in result.output
    assert "Nothing was written" not in result.output
    assert "Traceback" not in result.output


# --- one claim's problem stays on that claim ---------------------------------------------------

@pytest.mark.parametrize(("old", "new", "reason"), [
    ("HI*ABK:M0579", "HI*BK:7140", "ICD-9 codes are not supported"),
    ("SV1*HC:99214:25*150*UN*1***1", "SV1*HC:99214:25*150*MJ*30***1",
     "line 5 (segment 39): anesthesia minutes (SV103 MJ) are not supported"),
    ("SV1*HC:J1745*1800*UN*35", "SV1*HC:J1745*1800*UN*ONE",
     "line 1 (segment 23): SV104 'ONE' is not a whole number of units"),
    ("HI*ABK:M0579", "HI*ABK:Q999X", "HI01-2:"),
    ("NTE*ADD*INFUSION COMPLEX 10:00-12:10", "NTE*ADD*INFUSION SLOW 10:00-12:10",
     "infusion times: 'INFUSION SLOW 10:00-12:10' is not INFUSION <COMPLEX|"),
    ("PI*MEDICARE-B", "PI*99999",
     "payer: no payer has the id '99999' (NM1*PR NM109); add it to that payer's external ids"),
    ("LX*2~\nSV1*HC:J1745:JW", "LX*7~\nSV1*HC:J1745:JW",
     "segment 27 (LX): Your 2400/LX01 Service Line Number 7 does not match my count of 2"),
], ids=["icd9", "anesthesia-minutes", "fractional-units", "bad-icd10", "bad-infusion-note",
        "unknown-payer-id", "line-numbering"])
def test_a_claim_problem_is_reported_on_that_claim_only(world, old, new, reason) -> None:
    outcomes = outcomes_by_claim(changed(old, new))
    first = outcomes["CLM-0001"]
    assert first.status == "not_checked"
    assert any(reason in text for text in first.reasons), first.reasons
    # The unknown payer id names the subscriber's payer, so both claims carry it.
    if "payer" not in reason:
        assert outcomes["CLM-0002"].result is not None


def test_free_text_note_is_ignored(world) -> None:
    outcomes = outcomes_by_claim(changed("NTE*ADD*INFUSION COMPLEX 10:00-12:10",
                                         "NTE*ADD*INFUSION TOLERATED WELL"))
    first = outcomes["CLM-0001"]
    assert first.result is not None, first.reasons
    assert "ADMIN_TIME_MISSING" in {f["code"] for f in first.result["findings"]}


# --- payer ids ---------------------------------------------------------------------------------

def test_payer_is_matched_on_its_external_id(world) -> None:
    medicare = db.session.scalar(select(Payer).where(Payer.code == "MEDICARE-B"))
    medicare.external_ids = ["03302"]
    db.session.flush()
    outcomes = outcomes_by_claim(changed("PI*MEDICARE-B", "PI*03302"))
    assert outcomes["CLM-0001"].status == "clean"
    assert outcomes["CLM-0001"].record()["payer"] == "03302"


# --- loops: COB, dependents, line-level authorizations ----------------------------------------

COB_LOOPS = ("SBR*S*18*******CI~\nOI***Y***Y~\nNM1*IL*1*OTHERPERSON*BETA****MI*OTHER-9~\n"
             "NM1*PR*2*OTHER PLAN*****PI*87726~\nREF*G1*OTHER-AUTH-9~\n")


def test_other_payer_loops_never_leak_into_claims(world) -> None:
    text = changed(FIRST_LX, FIRST_LX.replace("LX*1~", COB_LOOPS + "LX*1~"))
    first, second = read_837(text)
    for claim in (first, second):
        assert (claim.payer, claim.patient) == ("MEDICARE-B", "P001")
        assert claim.line_authorization() == "A-1001"
        assert claim.problems == []
    assert outcomes_by_claim(text)["CLM-0001"].status == "clean"


DEPENDENT = ("HL*2*1*22*1~\nSBR*P*******MB~\nNM1*IL*1*TESTPATIENT*ALPHA****MI*P001~\n"
             "DMG*D8*19610302*F~\nNM1*PR*2*MEDICARE PART B*****PI*MEDICARE-B~\n"
             "HL*3*2*23*0~\nPAT*19~\nNM1*QC*1*TESTCHILD*GAMMA~\nDMG*D8*19990505*F~\n")
SUBSCRIBER = ("HL*2*1*22*0~\nSBR*P*18*******MB~\nNM1*IL*1*TESTPATIENT*ALPHA****MI*P001~\n"
              "DMG*D8*19610302*F~\nNM1*PR*2*MEDICARE PART B*****PI*MEDICARE-B~\n")


def test_dependent_patient_is_read_from_2010CA(world) -> None:
    make_patient("P002")
    text = changed(SUBSCRIBER, DEPENDENT)
    text = changed("REF*G1*A-1001~\n", "REF*EA*P002~\nREF*G1*A-1001~\n", text, count=2)
    first, second = read_837(text)
    assert (first.patient, first.birth_date) == ("P002", dt.date(1999, 5, 5))
    assert first.payer == "MEDICARE-B"
    # Checked as the child: the subscriber's authorization is not theirs.
    outcome = outcomes_by_claim(text)["CLM-0001"]
    assert outcome.reasons == [
        "authorization_number: Authorization 'A-1001' belongs to another patient or payer."]


def test_dependent_without_an_id_is_not_checked_as_the_subscriber(world) -> None:
    outcome = outcomes_by_claim(changed(SUBSCRIBER, DEPENDENT))["CLM-0001"]
    assert outcome.status == "not_checked"
    assert outcome.record()["patient"] is None
    assert "patient: a dependent (loop 2010CA)" in outcome.reasons[0]


def test_line_level_authorization_is_read(world) -> None:
    text = changed("CLM*CLM-0001*2500***11:B:1*Y*A*Y*Y~\nREF*G1*A-1001~",
                   "CLM*CLM-0001*2500***11:B:1*Y*A*Y*Y~")
    text = changed("DTP*472*D8*20260310~\nLIN", "DTP*472*D8*20260310~\nREF*G1*A-1001~\nLIN",
                   text)
    first, _second = read_837(text)
    assert first.authorization_number is None
    assert first.lines[0].authorization_number == "A-1001"
    assert first.line_authorization() == "A-1001"
    assert outcomes_by_claim(text)["CLM-0001"].status == "clean"


# --- NDC quantities ---------------------------------------------------------------------------

@pytest.mark.parametrize(("quantity", "ndc", "status"), [
    ("3.5*UN", "57894-0030-01", "clean"),
    ("0.35*GR", None, "clean"),
    ("3.5*UN", None, "needs_correction"),
    ("35*ML", "57894-0030-01", "needs_correction"),
    ("350*F2", "57894-0030-01", "needs_correction"),
], ids=["units-through-package", "grams", "units-unknown-ndc", "millilitres", "intl-units"])
def test_ndc_quantity_is_converted_or_named_unreadable(world, quantity, ndc, status) -> None:
    if ndc:
        _ndc(ndc)
    outcome = outcomes_by_claim(changed("CTP****350*ME", f"CTP****{quantity}"))["CLM-0001"]
    assert outcome.status == status, outcome.result
    codes = {f["code"] for f in outcome.result["findings"]}
    assert ("DOSE_NOT_READ" in codes) is (status != "clean")


def test_unreadable_dose_says_why(world) -> None:
    outcome = outcomes_by_claim(changed("CTP****350*ME", "CTP****35*ML"))["CLM-0001"]
    [finding] = [f for f in outcome.result["findings"] if f["code"] == "DOSE_NOT_READ"]
    assert finding["line"] == 0 and finding["severity"] == "warn"
    assert "35 millilitres" in finding["message"]
    assert "no concentration" in finding["message"]


def test_hydration_only_claim_keeps_its_infusion_times(world) -> None:
    """A claim with infusion times and no drug line still gives the times to the check."""
    segments = [part.strip() for part in SAMPLE.split("~")]
    # The first claim without its two drug lines (LX 1 and 2): administration codes only.
    kept = segments[:segments.index("LX*1")] + segments[segments.index("LX*3"):]
    kept = [segment.replace("INFUSION COMPLEX 10:00-12:10", "INFUSION HYDRATION 10:00-11:45")
            for segment in kept]
    first_claim_end = kept.index("CLM*CLM-0002*2200***11:B:1*Y*A*Y*Y")
    for number, old in enumerate(("LX*3", "LX*4", "LX*5"), start=1):
        kept[kept.index(old, 0, first_claim_end)] = f"LX*{number}"
    start = next(i for i, segment in enumerate(kept) if segment.startswith("ST*"))
    end = next(i for i, segment in enumerate(kept) if segment.startswith("SE*"))
    kept[end] = f"SE*{end - start + 1}*0001"
    text = "~\n".join(kept)
    [first, _second] = read_837(text)
    assert [ln.number for ln in first.lines] == [1, 2, 3]
    outcome = outcomes_by_claim(text)["CLM-0001"]
    assert outcome.result is not None, outcome.reasons
    assert "ADMIN_TIME_MISSING" not in {f["code"] for f in outcome.result["findings"]}


# --- smaller ----------------------------------------------------------------------------------

def test_errata_version_a2_is_read_as_a1(world) -> None:
    outcomes = outcomes_by_claim(SAMPLE.replace("005010X222A1", "005010X222A2"))
    assert [o.status for o in outcomes.values()] == ["clean", "needs_correction"]


def test_file_created_before_the_service_is_warned(world) -> None:
    outcome = outcomes_by_claim(changed("*20260312*1200*CH", "*20260301*1200*CH"))["CLM-0001"]
    assert outcome.status == "needs_correction"
    [finding] = [f for f in outcome.result["findings"]
                 if f["code"] == "SUBMITTED_BEFORE_SERVICE"]
    assert "2026-03-01 (BHT04), before the date of service 2026-03-10" in finding["message"]
