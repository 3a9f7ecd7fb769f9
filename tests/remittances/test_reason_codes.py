"""The reason code table: real codes, real findings, and a why for every mapping."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from policy_service.errors import Invalid
from policy_service.models import ReasonCode
from policy_service.services.reason_codes import (
    finding_codes,
    load_reason_codes,
    read_reason_code_file,
    reason_table,
)

SEED_FILE = Path(__file__).resolve().parents[2] / "seed_data" / "codes" / "reason_codes.yaml"
# The CARCs the issue names as the ones that matter to infusion practices.
REQUIRED_CARCS = ("4", "5", "11", "15", "16", "18", "22", "29", "45", "50", "96", "97", "109",
                  "119", "151", "167", "181", "182", "197", "198", "204", "242", "252", "253")
EXPECTED_MAPPINGS = {
    "197": {"AUTH_REQUIRED", "AUTH_EXPIRED", "AUTH_NOT_APPROVED"},
    "4": {"JW_MISSING", "JZ_MISSING", "MODIFIER_25_MISSING"},
    "182": {"JW_MISSING", "JZ_MISSING", "MODIFIER_25_MISSING"},
    "29": {"TIMELY_FILING_EXCEEDED"},
    "11": {"DIAGNOSIS_NOT_COVERED"},
    "167": {"DIAGNOSIS_NOT_COVERED"},
    "151": {"DOSE_TOO_SOON", "MUE_EXCEEDED"},
}


def records() -> list[dict]:
    """The seed file's records, validated."""
    return read_reason_code_file(SEED_FILE)


def test_every_mapped_code_is_a_real_finding_code() -> None:
    known = finding_codes()
    raw = yaml.safe_load(SEED_FILE.read_text(encoding="utf-8"))["reason_codes"]
    mapped = {code for record in raw for code in record["preventable_by"]}
    assert mapped, "the table maps no code at all"
    assert mapped <= known, f"not finding codes: {sorted(mapped - known)}"


def test_the_codes_that_matter_are_all_there_with_a_description_source_and_why() -> None:
    carcs = {r["code"]: r for r in records() if r["kind"] == "CARC"}
    assert set(REQUIRED_CARCS) <= set(carcs)
    rarcs = [r for r in records() if r["kind"] == "RARC"]
    assert {r["code"][0] for r in rarcs} >= {"N", "M"}
    for record in records():
        assert record["description"] and record["why"], record["code"]
        assert record["source"].startswith("https://x12.org/codes/"), record["code"]


@pytest.mark.parametrize(("carc", "findings"), EXPECTED_MAPPINGS.items())
def test_denial_codes_map_to_the_findings_that_prevent_them(carc: str, findings: set) -> None:
    carcs = {r["code"]: r for r in records() if r["kind"] == "CARC"}
    assert findings <= set(carcs[carc]["preventable_by"])
    assert carcs[carc]["denial"] is True


@pytest.mark.parametrize("carc", ["1", "2", "3", "45", "253"])
def test_cost_sharing_and_pricing_are_not_denials(carc: str) -> None:
    carcs = {r["code"]: r for r in records() if r["kind"] == "CARC"}
    assert carcs[carc]["denial"] is False


def test_a_mapping_to_an_unknown_finding_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "codes.yaml"
    path.write_text(yaml.safe_dump({"reason_codes": [
        {"kind": "CARC", "code": "197", "description": "x", "source": "https://x12.org/codes/",
         "denial": True, "preventable_by": ["AUTH_MISSING"], "why": "x"}]}))
    with pytest.raises(Invalid) as caught:
        read_reason_code_file(path)
    assert caught.value.errors == [{"field": "codes.yaml: reason_codes[0].preventable_by",
                                    "message": "AUTH_MISSING: not a finding code of this service."}]


def test_remarks_are_more_specific_than_their_carc(session: Session) -> None:
    load_reason_codes(records())
    table = reason_table()
    assert table.preventable_by("16", ["M119"]) == ["NDC_MISSING"]
    assert "MISSING_INFORMATION" in table.preventable_by("16", [])
    assert table.preventable_by("197", ["N130"]) == table.preventable_by("197", [])
    assert table.preventable_by("999", []) == []
    assert table.is_denial("999") and not table.is_denial("45")


def test_seed_loads_the_table_and_a_second_run_changes_nothing(runner: FlaskCliRunner,
                                                               session: Session) -> None:
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    assert "reason_codes.yaml" in first.output
    row = session.scalars(select(ReasonCode).where(ReasonCode.kind == "CARC",
                                                   ReasonCode.code == "197")).one()
    assert "AUTH_REQUIRED" in row.preventable_by
    second = runner.invoke(args=["seed"])
    assert "No changes." in second.output
