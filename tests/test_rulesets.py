"""Every eligibility rule against its scenario cases, through durable-rules and the oracle."""

from __future__ import annotations

import re
from typing import Any

import pytest

import rulesets
from policy_service import oracle
from rulesets.eligibility import MESSAGE_CONTEXT, RULES, eligibility_codes
from tests.ruleset_support import (
    assert_every_rule_has_cases,
    assert_groups_are_rules_or_scenarios,
    assert_scenario,
    case_id,
    condition_fields,
    flat_cases,
    load_cases,
)

CONTRACT_ELIGIBILITY_CODES = [
    "NO_POLICY", "DIAGNOSIS_NOT_COVERED", "STEP_THERAPY_NOT_MET", "NON_PREFERRED_PRODUCT",
    "SITE_OF_CARE_NOT_ALLOWED", "DOSE_EXCEEDS_LIMIT", "DOSE_TOO_SOON", "AGE_NOT_COVERED",
    "MISSING_INFORMATION", "AUTH_REQUIRED", "AUTH_EXPIRED", "AUTH_NOT_YET_VALID",
    "AUTH_NOT_APPROVED", "AUTH_DRUG_MISMATCH", "AUTH_DIAGNOSIS_MISMATCH", "AUTH_SITE_MISMATCH",
    "AUTH_UNITS_EXCEEDED", "AUTH_VISITS_EXHAUSTED", "AUTH_EXPIRING_SOON", "AUTH_UNITS_LOW",
]
# The case fact's fields as the case builder produces them (rulesets read nothing else).
CASE_FIELDS = {
    "policy_found", "prior_auth_required", "diagnosis_covered", "step_therapy_required",
    "step_therapy_met", "new_start_exempt", "product_preferred", "site_allowed", "dose_mg",
    "max_dose_mg", "dose_units", "max_dose_units", "days_since_last_dose",
    "min_days_between_doses", "age", "min_age", "max_age", "missing_information", "missing",
    "auth_found", "auth_status_ok", "auth_window", "auth_drug_matches",
    "auth_diagnosis_matches", "auth_site_matches", "administered_units",
    "auth_remaining_units", "auth_remaining_visits", "auth_days_to_expiry",
    "auth_expiring_soon_days", "auth_remaining_fraction", "auth_units_low_fraction",
}
RULE_NAMES = {rule["name"] for rule in RULES}


GROUPS = load_cases("eligibility")
CASES = flat_cases(GROUPS)


def test_every_contract_code_has_exactly_one_rule() -> None:
    """The ruleset produces exactly the contract's eligibility codes, one rule each."""
    coded = [rule["code"] for rule in RULES if rule["code"] is not None]
    assert sorted(coded) == sorted(CONTRACT_ELIGIBILITY_CODES)
    assert eligibility_codes() == coded


def test_rule_names_say_what_they_find() -> None:
    """Each rule is named for its code (snake_case) so people can find it."""
    for rule in RULES:
        if rule["code"] is not None:
            assert rule["name"] == rule["code"].lower()


def test_ruleset_is_well_formed_and_reads_only_case_fields() -> None:
    """Conditions use the supported operators and only fields the case builder produces."""
    rulesets.validate_ruleset(RULES)
    for rule in RULES:
        if rule["code"] is not None:
            assert condition_fields(rule["condition"]) <= CASE_FIELDS, rule["name"]


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
    assert_scenario("eligibility", CASE_FIELDS, group, kind, scenario,
                    one_finding_per_code=True)


def test_messages_render_from_case_and_context() -> None:
    """Every message names only case fields or documented context, and renders fully."""
    scenario = GROUPS["clean"]["cases"][0]["case"]
    context = {key: f"<{key}>" for key in MESSAGE_CONTEXT}
    values = {**scenario, "dose_units": 40, "max_dose_units": 80, "max_age": 65,
              "missing": "weight", **context}
    for rule in RULES:
        assert rulesets.template_fields(rule) <= CASE_FIELDS | set(MESSAGE_CONTEXT), rule["name"]
        text = rulesets.render_message(rule, values)
        assert "n/a" not in text and not re.search(r"[{}]", text), (rule["name"], text)


def test_message_for_the_scheduler() -> None:
    """The diagnosis message names the code, the policy and what is covered."""
    rule = rulesets.rule_by_name(RULES, "diagnosis_not_covered")
    text = rulesets.render_message(rule, {
        "diagnosis_codes": "M06.9",
        "policy_label": "UnitedHealthcare's infliximab policy (v3, effective 2026-01-01)",
        "covered_diagnoses": "M05, M06.0",
    })
    assert text == ("Diagnosis M06.9 is not covered by UnitedHealthcare's infliximab policy "
                    "(v3, effective 2026-01-01); covered: M05, M06.0.")


def test_message_with_unknown_value_still_renders() -> None:
    """A value the builder did not supply shows as n/a instead of failing the check."""
    rule = rulesets.rule_by_name(RULES, "auth_units_low")
    text = rulesets.render_message(rule, {"auth_number": "A-1", "auth_remaining_units": 12})
    assert text == "Authorization A-1 has n/a of its units left (12 units)."


def test_describe_reads_like_the_rule() -> None:
    """The oracle's description of a rule is a sentence a coordinator can check."""
    dose = rulesets.rule_by_name(RULES, "dose_exceeds_limit")
    assert oracle.describe(dose) == (
        "DOSE_EXCEEDS_LIMIT (block, rule dose_exceeds_limit): "
        "when dose_mg > max_dose_mg or dose_units > max_dose_units"
    )
    step = rulesets.rule_by_name(RULES, "step_therapy_not_met")
    assert oracle.describe(step).endswith(
        "when step_therapy_required is true and step_therapy_met is false "
        "and new_start_exempt is false"
    )
    assert "fires on every case" in oracle.describe(rulesets.ALWAYS_FIRING_RULE)
    nested = {"$and": [{"auth_window": "within"},
                       {"$or": [{"$lt": {"age": 3}}, {"$gte": {"age": {"$m": "max_age"}}}]}]}
    assert oracle.describe_condition(nested) == (
        "auth_window == 'within' and (age < 3 or age >= max_age)"
    )


@pytest.mark.parametrize("bad", [
    {"$in": {"age": [1, 2]}},
    {"$lt": {"age": "18"}},
    {"$or": [{"age": 1}]},
    {"Age": 1},
    {"age": None},
    {"$gt": {"age": {"$s": "x"}}},
])
def test_unsupported_condition_is_rejected(bad: dict[str, Any]) -> None:
    """A condition outside the supported language is refused before it reaches durable."""
    with pytest.raises(rulesets.RulesetError):
        rulesets.validate_condition(bad)


def test_get_ruleset_by_name() -> None:
    """The registry finds the eligibility rules and refuses unknown names."""
    assert rulesets.get_ruleset("eligibility") is RULES
    with pytest.raises(KeyError):
        rulesets.get_ruleset("no-such-ruleset")
