"""What every ruleset's tests share: its scenario file, and durable against the oracle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

import rulesets
from policy_service import engine, oracle
from rulesets import Rule

Groups = dict[str, dict[str, list[dict[str, Any]]]]


def load_cases(ruleset: str) -> Groups:
    """Read ``rulesets/cases/<ruleset>.yaml``: groups of cases under fires/passes/cases."""
    path = Path(rulesets.__file__).parent / "cases" / f"{ruleset}.yaml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def flat_cases(groups: Groups) -> list[tuple[str, str, dict[str, Any]]]:
    """Every scenario as (group, kind, case) with kind fires, passes or cases."""
    return [(group, kind, case) for group, kinds in groups.items()
            for kind, cases in kinds.items() for case in cases]


def case_id(group: str, kind: str, case: dict[str, Any]) -> str:
    """A readable pytest id for one scenario."""
    return f"{group}-{kind}-{case['name']}"


def condition_fields(condition: dict[str, Any]) -> set[str]:
    """Every field a condition reads, including the right side of a field comparison."""
    ((key, operand),) = condition.items()
    if key in ("$and", "$or"):
        return set().union(*(condition_fields(child) for child in operand))
    if key.startswith("$"):
        ((field, right),) = operand.items()
        return {field} | ({right["$m"]} if isinstance(right, dict) else set())
    return {key}


def assert_every_rule_has_cases(rules: list[Rule], groups: Groups) -> None:
    """Each coded rule ships at least one firing and one non-firing scenario."""
    for rule in rules:
        if rule["code"] is None:
            continue
        kinds = groups.get(rule["name"], {})
        assert kinds.get("fires"), f"{rule['name']} has no case that fires it"
        assert kinds.get("passes"), f"{rule['name']} has no case that passes it"


def assert_groups_are_rules_or_scenarios(rules: list[Rule], groups: Groups) -> None:
    """A misspelt group name would silently test nothing: every group is a rule or a scenario."""
    names = {rule["name"] for rule in rules}
    for group, kinds in groups.items():
        if group in names:
            assert set(kinds) <= {"fires", "passes"}, group
        else:
            assert set(kinds) == {"cases"}, group


def assert_scenario(ruleset: str, case_fields: set[str], group: str, kind: str,
                    scenario: dict[str, Any], *, one_finding_per_code: bool) -> None:
    """durable and the oracle both give exactly the expected codes for the scenario."""
    case = scenario["case"]
    assert set(case) <= case_fields, f"unknown fields {set(case) - case_fields}"
    expected = set(scenario["expect"])
    fired = engine.fired_rules(ruleset, case)
    if kind in ("fires", "passes"):
        assert (group in fired) == (kind == "fires"), "the case contradicts its heading"
    durable_findings = engine.evaluate(ruleset, case)
    assert {finding["code"] for finding in durable_findings} == expected
    if one_finding_per_code:
        assert len(durable_findings) == len(expected), "a rule reported twice"
    assert oracle.evaluate(ruleset, case) == durable_findings
    assert fired[-1] == rulesets.ALWAYS_FIRING_RULE["name"]
