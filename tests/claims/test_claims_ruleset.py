"""Every claims rule against its scenario cases, through durable-rules and the oracle."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import rulesets
from policy_service import engine, oracle
from rulesets.claims import MESSAGE_CONTEXT, RULES, claims_codes

CASES_FILE = Path(rulesets.__file__).parent / "cases" / "claims.yaml"
CONTRACT_CLAIM_CODES = [
    "UNITS_MISMATCH", "JW_MISSING", "JW_NOT_ALLOWED", "JZ_MISSING", "JW_JZ_CONFLICT",
    "NDC_MISSING", "ADMIN_TIME_MISSING", "ADMIN_UNITS_MISMATCH", "ADMIN_CODE_MISMATCH",
    "MULTIPLE_INITIAL_ADMIN", "HYDRATION_NOT_BILLABLE", "MODIFIER_25_MISSING",
    "EM_NOT_PAYABLE", "IMAGING_BUNDLED", "LATERALITY_MISSING", "MUE_EXCEEDED",
    "TIMELY_FILING_EXCEEDED", "CODE_NOT_VALID_ON_DOS",
]
# The fields policy_service.services.claims puts on a line or claim case.
CASE_FIELDS = {
    "scope", "kind", "code", "units",
    # drug lines
    "code_valid_on_dos", "ndc_required", "ndc_given", "has_jw", "has_jz", "jw_jz_applies",
    "jw_line_billed", "expected_units", "units_match", "billed_units", "jz_expected",
    "jw_expected", "mue_units", "code_total_units",
    # administration lines
    "repeats_initial", "distinct_site_documented", "times_documented", "code_expected",
    "hydration_billable",
    # E/M, joint and imaging lines
    "nurse_visit", "with_drug_administration", "with_procedure_or_administration",
    "has_modifier_25", "has_side", "both_sides", "bilateral", "with_guided_joint_injection",
    # the claim-level case
    "drug_line_billed", "infusions_without_times", "admin_lines_missing",
    "days_past_filing_deadline",
}
RULE_NAMES = {rule["name"] for rule in RULES}


def load_cases() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Read the scenario file."""
    return yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))


CASES = [
    (group, kind, case)
    for group, kinds in load_cases().items()
    for kind, cases in kinds.items()
    for case in cases
]


def condition_fields(condition: dict[str, Any]) -> set[str]:
    """Every field a condition reads, including the right side of a field comparison."""
    ((key, operand),) = condition.items()
    if key in ("$and", "$or"):
        return set().union(*(condition_fields(child) for child in operand))
    if key.startswith("$"):
        ((field, right),) = operand.items()
        return {field} | ({right["$m"]} if isinstance(right, dict) else set())
    return {key}


def test_every_contract_claim_code_has_a_rule() -> None:
    """The ruleset produces exactly the contract's claim codes."""
    assert sorted(claims_codes()) == sorted(CONTRACT_CLAIM_CODES)


def test_rule_names_say_what_they_find() -> None:
    """Each rule is named for its code, with a suffix where a code has a second rule."""
    for rule in RULES:
        if rule["code"] is not None:
            assert rule["name"].startswith(rule["code"].lower()), rule["name"]


def test_ruleset_is_well_formed_and_reads_only_case_fields() -> None:
    """Conditions use the supported operators and only fields the case builder produces."""
    rulesets.validate_ruleset(RULES)
    for rule in RULES:
        assert condition_fields(rule["condition"]) <= CASE_FIELDS | {
            rulesets.CASE_MARKER_FIELD}, rule["name"]


def test_every_rule_has_cases_that_fire_and_pass() -> None:
    """Each coded rule ships at least one firing and one non-firing scenario."""
    groups = load_cases()
    for rule in RULES:
        if rule["code"] is None:
            continue
        kinds = groups.get(rule["name"], {})
        assert kinds.get("fires"), f"{rule['name']} has no case that fires it"
        assert kinds.get("passes"), f"{rule['name']} has no case that passes it"


def test_case_groups_are_rules_or_scenarios() -> None:
    """A misspelt group name would silently test nothing."""
    for group, kinds in load_cases().items():
        if group in RULE_NAMES:
            assert set(kinds) <= {"fires", "passes"}, group
        else:
            assert set(kinds) == {"cases"}, group


@pytest.mark.parametrize(("group", "kind", "scenario"), CASES,
                         ids=[f"{g}-{k}-{c['name']}" for g, k, c in CASES])
def test_scenario(group: str, kind: str, scenario: dict[str, Any]) -> None:
    """durable and the oracle both give exactly the expected codes for the scenario."""
    case = scenario["case"]
    assert set(case) <= CASE_FIELDS, f"unknown fields {set(case) - CASE_FIELDS}"
    expected = set(scenario["expect"])
    if kind in ("fires", "passes"):
        fired = engine.fired_rules("claims", case)
        assert (group in fired) == (kind == "fires"), "the case contradicts its heading"
    durable_findings = engine.evaluate("claims", case)
    assert {finding["code"] for finding in durable_findings} == expected
    assert oracle.evaluate("claims", case) == durable_findings
    assert engine.fired_rules("claims", case)[-1] == rulesets.ALWAYS_FIRING_RULE["name"]


def test_messages_render_from_case_and_context() -> None:
    """Every message names only case fields or documented context, and renders fully."""
    values = {field: f"<{field}>" for field in CASE_FIELDS} | {
        key: f"<{key}>" for key in MESSAGE_CONTEXT}
    for rule in RULES:
        assert rulesets.template_fields(rule) <= CASE_FIELDS | set(MESSAGE_CONTEXT), rule["name"]
        text = rulesets.render_message(rule, values)
        assert "n/a" not in text and not re.search(r"[{}]", text), (rule["name"], text)


LINE_FACTS = st.fixed_dictionaries(
    {"scope": st.sampled_from(["line", "claim"]),
     "kind": st.sampled_from(["drug", "administration", "em", "joint", "imaging",
                              "procedure"])},
    optional={
        **{name: st.booleans() for name in (
            "code_valid_on_dos", "ndc_required", "ndc_given", "has_jw", "has_jz",
            "jw_jz_applies", "jw_line_billed", "units_match", "jz_expected", "jw_expected",
            "repeats_initial", "distinct_site_documented", "times_documented",
            "code_expected", "hydration_billable", "nurse_visit", "with_drug_administration",
            "with_procedure_or_administration", "has_modifier_25", "has_side", "both_sides",
            "bilateral", "with_guided_joint_injection", "drug_line_billed")},
        **{name: st.integers(min_value=-400, max_value=400) for name in (
            "units", "mue_units", "code_total_units", "infusions_without_times",
            "admin_lines_missing", "days_past_filing_deadline")},
    },
)


@settings(max_examples=300, deadline=None)
@given(LINE_FACTS)
def test_oracle_agrees_with_durable_on_generated_cases(case: dict[str, Any]) -> None:
    """The readable oracle and durable fire the same rules on any case."""
    assert oracle.evaluate("claims", case) == engine.evaluate("claims", case)
