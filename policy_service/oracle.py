"""A pure-Python evaluator of the rule conditions durable-rules evaluates.

It reads the same data as the engine adapter (``rulesets.get_ruleset``), checks a case against
the same table of declared fields, and must agree with durable on every case
(tests/rulesets/test_oracle_property.py checks it on generated cases). It is also the readable
account of the rules: ``describe(rule)`` turns a condition into an expression.

Semantics, matching durable's: a test that mentions an absent field (on either side of a
comparison) does not match; ``$and`` needs every part to match, ``$or`` any part.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from rulesets import CASE_MARKER_FIELD, Finding, Rule, Ruleset, get_ruleset

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$lt": operator.lt,
    "$lte": operator.le,
    "$gt": operator.gt,
    "$gte": operator.ge,
}
_SYMBOL = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}


def matches(condition: Mapping[str, Any], case: Mapping[str, Any]) -> bool:
    """Return whether ``condition`` (durable JSON form) holds for the one case fact."""
    ((key, operand),) = condition.items()
    if key == "$and":
        return all(matches(child, case) for child in operand)
    if key == "$or":
        return any(matches(child, case) for child in operand)
    if key in _COMPARE:
        ((field, right),) = operand.items()
        if field not in case:
            return False
        if isinstance(right, Mapping):
            if right["$m"] not in case:
                return False
            right = case[right["$m"]]
        return _COMPARE[key](case[field], right)
    if key.startswith("$"):
        raise ValueError(f"operator {key} is not supported by the oracle")
    return key in case and case[key] == operand


def fired_rules(ruleset: str | Ruleset, case: Mapping[str, Any]) -> list[str]:
    """Return the names of the rules whose condition holds, as the engine would fire them."""
    ruleset = get_ruleset(ruleset) if isinstance(ruleset, str) else ruleset
    ruleset.check_case(case)
    # The engine stamps its marker on every fact; do the same so the always-firing rule fires.
    fact = {**case, CASE_MARKER_FIELD: True}
    return [rule.name for rule in ruleset.rules if matches(rule.condition, fact)]


def evaluate(ruleset: str | Ruleset, case: Mapping[str, Any]) -> list[Finding]:
    """Return the findings the engine should produce for ``case``, in ruleset order."""
    ruleset = get_ruleset(ruleset) if isinstance(ruleset, str) else ruleset
    return ruleset.findings_for(fired_rules(ruleset, case))


def documentation_lacking(items: Iterable[Mapping[str, Any]],
                          on_file: Iterable[tuple[str, dt.date]], day: dt.date) -> list[str]:
    """The codes of a policy's checklist items not satisfied on ``day``, stated directly: an
    item is satisfied by ANY document of its code dated on or before ``day`` and at most
    ``max_age_days`` old. (The service keeps only the newest document per code; the two agree,
    and the count of this list is the case's ``documentation_missing`` field.)"""
    documents = list(on_file)
    return [item["code"] for item in items
            if not any(code == item["code"] and on <= day
                       and (item.get("max_age_days") is None
                            or (day - on).days <= item["max_age_days"])
                       for code, on in documents)]


def describe_condition(condition: Mapping[str, Any]) -> str:
    """Render a condition as a readable expression, e.g. ``dose_mg > max_dose_mg``."""
    ((key, operand),) = condition.items()
    if key in ("$and", "$or"):
        joiner = " and " if key == "$and" else " or "
        parts = []
        for child in operand:
            text = describe_condition(child)
            # Parenthesise a nested connective so "a and (b or c)" keeps its meaning.
            parts.append(f"({text})" if set(child) & {"$and", "$or"} else text)
        return joiner.join(parts)
    if key in _COMPARE:
        ((field, right),) = operand.items()
        right_text = right["$m"] if isinstance(right, Mapping) else repr(right)
        return f"{field} {_SYMBOL[key]} {right_text}"
    if isinstance(operand, bool):
        return f"{key} is {'true' if operand else 'false'}"
    return f"{key} == {operand!r}"


def describe(rule: Rule) -> str:
    """Describe a rule for people: its code, severity and when it fires."""
    if rule.code is None:
        return f"{rule.name} (no finding): fires on every case"
    return (
        f"{rule.code} ({rule.severity}, rule {rule.name}): "
        f"when {describe_condition(rule.condition)}"
    )
