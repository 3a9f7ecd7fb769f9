"""Every ruleset's rules against their own example cases, through durable-rules and the oracle.

One suite for all rulesets (gatekeeper-library style): each rule carries the cases on which it
fires and passes, and each case must give exactly its expected codes in both evaluators.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

import rulesets
from policy_service import engine, oracle
from rulesets import ALWAYS_FIRING_RULE, Example, FactType, Rule, get_ruleset, ruleset_names

CONTRACT_CODES = {
    "eligibility": {
        "NO_POLICY", "DIAGNOSIS_NOT_COVERED", "STEP_THERAPY_NOT_MET", "NON_PREFERRED_PRODUCT",
        "SITE_OF_CARE_NOT_ALLOWED", "DOSE_EXCEEDS_LIMIT", "DOSE_TOO_SOON", "AGE_NOT_COVERED",
        "MISSING_INFORMATION", "AUTH_REQUIRED", "AUTH_EXPIRED", "AUTH_NOT_YET_VALID",
        "AUTH_NOT_APPROVED", "AUTH_DRUG_MISMATCH", "AUTH_DIAGNOSIS_MISMATCH",
        "AUTH_SITE_MISMATCH", "AUTH_UNITS_EXCEEDED", "AUTH_VISITS_EXHAUSTED",
        "AUTH_EXPIRING_SOON", "AUTH_UNITS_LOW", "SPECIALTY_PHARMACY_REQUIRED",
        "PROVIDER_NOT_ENROLLED", "PRESCRIBER_SPECIALTY_NOT_COVERED",
    },
    "claims": {
        "UNITS_MISMATCH", "JW_MISSING", "JW_NOT_ALLOWED", "JZ_MISSING", "JW_JZ_CONFLICT",
        "NDC_MISSING", "ADMIN_TIME_MISSING", "ADMIN_UNITS_MISMATCH", "ADMIN_CODE_MISMATCH",
        "MULTIPLE_INITIAL_ADMIN", "HYDRATION_NOT_BILLABLE", "MODIFIER_25_MISSING",
        "EM_NOT_PAYABLE", "IMAGING_BUNDLED", "LATERALITY_MISSING", "MUE_EXCEEDED",
        "TIMELY_FILING_EXCEEDED", "CODE_NOT_VALID_ON_DOS", "DRUG_LINE_NOT_BILLABLE",
        "PROVIDER_NOT_ENROLLED",
    },
}


def _examples() -> list[tuple[str, Rule | None, bool | None, Example]]:
    """Every example of every ruleset: (ruleset, its rule or None, fires?, example)."""
    found: list[tuple[str, Rule | None, bool | None, Example]] = []
    for name in ruleset_names():
        ruleset = get_ruleset(name)
        for rule in ruleset.rules:
            found += [(name, rule, True, example) for example in rule.fires]
            found += [(name, rule, False, example) for example in rule.passes]
        found += [(name, None, None, example) for example in ruleset.scenarios]
    return found


EXAMPLES = _examples()


def _example_id(item: tuple[str, Rule | None, bool | None, Example]) -> str:
    name, rule, fires, example = item
    kind = "scenario" if rule is None else f"{rule.name}-{'fires' if fires else 'passes'}"
    return f"{name}-{kind}-{example.name}"


@pytest.mark.parametrize(("name", "rule", "fires", "example"), EXAMPLES,
                         ids=[_example_id(item) for item in EXAMPLES])
def test_example(name: str, rule: Rule | None, fires: bool | None, example: Example) -> None:
    """durable and the oracle both give exactly the example's expected codes."""
    ruleset = get_ruleset(name)
    ruleset.check_case(example.case)
    fired = engine.fired_rules(name, example.case)
    if rule is not None:
        assert (rule.name in fired) == fires, "the case contradicts its heading"
        expected = rule.expected_codes(example, bool(fires))
    else:
        expected = set(example.expect or ())
    findings = engine.evaluate(name, example.case)
    assert {finding["code"] for finding in findings} == expected
    if len(ruleset.codes()) == sum(1 for r in ruleset.rules if r.code):
        assert len(findings) == len(expected), "a rule reported twice"
    assert oracle.evaluate(ruleset, example.case) == findings
    assert fired[-1] == ALWAYS_FIRING_RULE.name


@pytest.mark.parametrize("name", ruleset_names())
def test_ruleset_is_well_formed(name: str) -> None:
    """Conditions use the supported operators, read only declared fields, and every coded
    rule has a category, a reason and a source."""
    get_ruleset(name).validate()


@pytest.mark.parametrize("name", ruleset_names())
def test_every_rule_has_cases_that_fire_and_pass(name: str) -> None:
    """Each coded rule ships at least one firing and one non-firing example."""
    for rule in get_ruleset(name).rules:
        if rule.code is not None:
            assert rule.fires, f"{rule.name} has no case that fires it"
            assert rule.passes, f"{rule.name} has no case that passes it"


@pytest.mark.parametrize("name", ruleset_names())
def test_rule_names_say_what_they_find(name: str) -> None:
    """Each rule is named for its code, with a suffix where a code has a second rule."""
    for rule in get_ruleset(name).rules:
        if rule.code is not None:
            assert rule.name.startswith(rule.code.lower()), rule.name


@pytest.mark.parametrize("name", ruleset_names())
def test_every_contract_code_has_a_rule(name: str) -> None:
    """The ruleset produces every finding code the public contract names for it."""
    assert set(get_ruleset(name).codes()) >= CONTRACT_CODES.get(name, set())


@pytest.mark.parametrize("name", ruleset_names())
def test_messages_render_from_case_and_context(name: str) -> None:
    """Every message names only declared fields or documented context, and renders fully."""
    ruleset = get_ruleset(name)
    names = set(ruleset.fact_table) | set(ruleset.message_context)
    values: dict[str, Any] = {field: f"<{field}>" for field in ruleset.message_context}
    for fact in ruleset.facts:
        values[fact.name] = fact.choices[0] if fact.choices else {
            FactType.BOOLEAN: True, FactType.TEXT: f"<{fact.name}>"}.get(fact.type, 1)
    for rule in ruleset.rules:
        assert rulesets.template_fields(rule) <= names, rule.name
        text = rulesets.render_message(rule, values)
        assert "n/a" not in text and not re.search(r"[{}]", text), (rule.name, text)


def test_coverage_findings_cite_the_policy() -> None:
    """Coverage comes from the payer's policy, so every coverage rule cites it."""
    for rule in get_ruleset("eligibility").rules:
        if rule.category is rulesets.Category.COVERAGE:
            assert rule.cites_policy, rule.name


def test_message_for_the_scheduler() -> None:
    """The diagnosis message names the code, the policy and what is covered."""
    rule = get_ruleset("eligibility").rule("diagnosis_not_covered")
    text = rulesets.render_message(rule, {
        "diagnosis_codes": "M06.9",
        "policy_label": "UnitedHealthcare's infliximab policy (v3, effective 2026-01-01)",
        "covered_diagnoses": "M05, M06.0",
    })
    assert text == ("Diagnosis M06.9 is not covered by UnitedHealthcare's infliximab policy "
                    "(v3, effective 2026-01-01); covered: M05, M06.0.")


def test_message_with_unknown_value_still_renders() -> None:
    """A value the builder did not supply shows as n/a instead of failing the check."""
    rule = get_ruleset("eligibility").rule("auth_units_low")
    text = rulesets.render_message(rule, {"auth_number": "A-1", "auth_remaining_units": 12})
    assert text == "Authorization A-1 has n/a of its units left (12 units)."


def test_describe_reads_like_the_rule() -> None:
    """The oracle's description of a rule is an expression a coordinator can check."""
    eligibility = get_ruleset("eligibility")
    assert oracle.describe(eligibility.rule("dose_exceeds_limit")) == (
        "DOSE_EXCEEDS_LIMIT (block, rule dose_exceeds_limit): "
        "when dose_mg > max_dose_mg or dose_units > max_dose_units"
    )
    assert oracle.describe(eligibility.rule("step_therapy_not_met")).endswith(
        "when step_therapy_required is true and step_therapy_met is false "
        "and new_start_exempt is false"
    )
    assert "fires on every case" in oracle.describe(ALWAYS_FIRING_RULE)
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


@pytest.mark.parametrize(("case", "problem"), [
    ({"policy_found": True, "age": None}, "null"),
    ({"policy_found": True, "no_such_field": True}, "not declared"),
    ({"policy_found": "yes"}, "boolean"),
    ({"age": 12.5}, "integer"),
    ({"auth_window": "sometime"}, "choice"),
])
def test_case_outside_the_declared_fields_is_refused(case: dict[str, Any], problem: str) -> None:
    """The oracle refuses a case its ruleset's field table does not allow (as the engine does)."""
    with pytest.raises(rulesets.RulesetError, match=problem):
        oracle.evaluate("eligibility", case)


def test_get_ruleset_by_name() -> None:
    """The registry finds every ruleset and refuses unknown names."""
    assert [get_ruleset(name).name for name in ruleset_names()] == ruleset_names()
    with pytest.raises(KeyError):
        get_ruleset("no-such-ruleset")
