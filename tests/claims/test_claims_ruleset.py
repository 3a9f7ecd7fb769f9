"""Every claims rule against its scenario cases, through durable-rules and the oracle."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rulesets
from policy_service import engine, oracle
from rulesets.claims import MESSAGE_CONTEXT, RULES, claims_codes
from tests.ruleset_support import (
    assert_every_rule_has_cases,
    assert_groups_are_rules_or_scenarios,
    assert_scenario,
    case_id,
    condition_fields,
    flat_cases,
    load_cases,
)

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
    "jw_expected", "mue_units", "code_total_units", "jw_units_above_optimal",
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


GROUPS = load_cases("claims")
CASES = flat_cases(GROUPS)


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
    assert_every_rule_has_cases(RULES, GROUPS)


def test_case_groups_are_rules_or_scenarios() -> None:
    """A misspelt group name would silently test nothing."""
    assert_groups_are_rules_or_scenarios(RULES, GROUPS)


@pytest.mark.parametrize(("group", "kind", "scenario"), CASES,
                         ids=[case_id(*case) for case in CASES])
def test_scenario(group: str, kind: str, scenario: dict[str, Any]) -> None:
    """durable and the oracle both give exactly the expected codes for the scenario."""
    assert_scenario("claims", CASE_FIELDS, group, kind, scenario,
                    one_finding_per_code=False)


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
            "jw_units_above_optimal",
            "admin_lines_missing", "days_past_filing_deadline")},
    },
)


@settings(max_examples=300, deadline=None)
@given(LINE_FACTS)
def test_oracle_agrees_with_durable_on_generated_cases(case: dict[str, Any]) -> None:
    """The readable oracle and durable fire the same rules on any case."""
    assert oracle.evaluate("claims", case) == engine.evaluate("claims", case)
