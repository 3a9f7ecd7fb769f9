"""Rule definitions evaluated by the durable-rules engine, kept as plain data.

A ruleset is a list of rules. Each rule is a dict:

- ``name``: snake_case name of what the rule finds (``diagnosis_not_covered``);
- ``code``: the stable finding code of the public contract, or ``None`` for the
  always-firing rule (it produces no finding);
- ``severity``: ``block``, ``warn`` or ``info``;
- ``condition``: a test of the ONE case fact in durable-rules' own JSON form (what
  ``durable.lang`` produces for ``m.<expression>``). The engine adapter wraps it as
  ``{"all": [{"m": condition}]}``; the oracle evaluates the same data in plain Python;
- ``message``: a ``str.format`` template over the case fields and the extra context the
  case builder passes (see each ruleset's ``MESSAGE_CONTEXT``).

The condition language is deliberately small (see ``validate_condition``):

- ``{"field": constant}``                     field equals the constant;
- ``{"$lt" | "$lte" | "$gt" | "$gte": {"field": operand}}`` where ``operand`` is a
  number or ``{"$m": "other_field"}`` (another field of the same case);
- ``{"$and": [c, ...]}`` and ``{"$or": [c, ...]}``.

A condition that mentions an absent field never matches (durable's behaviour); the case
builder leaves a field out, never sets it to null, when it does not apply.

This package imports nothing from Flask, the database or the services: rules are pure data.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from importlib import import_module
from typing import Any, Literal, TypedDict

Severity = Literal["block", "warn", "info"]
SEVERITIES: tuple[str, ...] = ("block", "warn", "info")
COMPARISONS: tuple[str, ...] = ("$lt", "$lte", "$gt", "$gte")
CONNECTIVES: tuple[str, ...] = ("$and", "$or")

# The engine adapter stamps this field on every case fact; the always-firing rule tests it.
# durable hangs on a clean case without a rule that always fires, and `$ex` on `sid` spins
# forever in its C core, so the marker is an ordinary equality on a field we own.
CASE_MARKER_FIELD = "engine_case"
# Fields the engine owns on the fact; a case must not carry them.
RESERVED_FIELDS: frozenset[str] = frozenset({"sid", "id", CASE_MARKER_FIELD})

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Rule(TypedDict):
    """One rule of a ruleset: a condition on the case and the finding it produces."""

    name: str
    code: str | None
    severity: Severity
    condition: dict[str, Any]
    message: str


class Finding(TypedDict):
    """What a fired rule reports: its finding code, severity and rule name."""

    code: str
    severity: Severity
    rule: str


ALWAYS_FIRING_RULE: Rule = {
    "name": "case_evaluated",
    "code": None,
    "severity": "info",
    "condition": {CASE_MARKER_FIELD: True},
    "message": "The case was evaluated.",
}


class RulesetError(ValueError):
    """A ruleset definition is malformed (raised at registration, never per case)."""


def validate_condition(condition: Any, where: str = "condition") -> None:
    """Raise RulesetError unless ``condition`` uses only the supported operators."""
    if not isinstance(condition, dict) or len(condition) != 1:
        raise RulesetError(f"{where}: expected a dict with exactly one key, got {condition!r}")
    ((key, operand),) = condition.items()
    if key in CONNECTIVES:
        if not isinstance(operand, list) or len(operand) < 2:
            raise RulesetError(f"{where}: {key} needs a list of at least two conditions")
        for index, child in enumerate(operand):
            validate_condition(child, f"{where}.{key}[{index}]")
        return
    if key in COMPARISONS:
        if not isinstance(operand, dict) or len(operand) != 1:
            raise RulesetError(f"{where}: {key} needs exactly one {{field: operand}}")
        ((field, value),) = operand.items()
        _check_field(field, where)
        if isinstance(value, dict):
            if set(value) != {"$m"}:
                raise RulesetError(f"{where}: a field reference is {{'$m': 'field'}}")
            _check_field(value["$m"], where)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise RulesetError(f"{where}: {key} compares with a number or a field reference")
        elif not math.isfinite(value):
            raise RulesetError(f"{where}: {key} needs a finite number")
        return
    if key.startswith("$"):
        raise RulesetError(f"{where}: operator {key} is not supported")
    _check_field(key, where)
    if not isinstance(operand, bool | int | float | str):
        raise RulesetError(f"{where}: equality needs a constant (bool, number or string)")


def _check_field(field: Any, where: str) -> None:
    """Raise RulesetError unless ``field`` is a plain snake_case field name."""
    if not isinstance(field, str) or not _NAME.match(field):
        raise RulesetError(f"{where}: {field!r} is not a snake_case field name")


def validate_ruleset(rules: list[Rule]) -> None:
    """Raise RulesetError unless every rule is well formed and names are unique."""
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        where = f"rule {index} ({rule.get('name', '?')})"
        missing = {"name", "code", "severity", "condition", "message"} - set(rule)
        if missing:
            raise RulesetError(f"{where}: missing {sorted(missing)}")
        if not isinstance(rule["name"], str) or not _NAME.match(rule["name"]):
            raise RulesetError(f"{where}: name must be snake_case")
        if rule["name"] in seen:
            raise RulesetError(f"{where}: duplicate rule name")
        seen.add(rule["name"])
        if rule["severity"] not in SEVERITIES:
            raise RulesetError(f"{where}: severity must be one of {SEVERITIES}")
        if rule["code"] is not None and not re.match(r"^[A-Z][A-Z0-9_]*$", rule["code"]):
            raise RulesetError(f"{where}: code must be UPPER_SNAKE_CASE or None")
        validate_condition(rule["condition"], f"{where}.condition")
    if ALWAYS_FIRING_RULE not in rules:
        raise RulesetError("a ruleset must include rulesets.ALWAYS_FIRING_RULE")


# Ruleset name -> the module whose RULES list defines it. A new ruleset adds one line here.
RULESET_MODULES: dict[str, str] = {
    "eligibility": "rulesets.eligibility",
    "claims": "rulesets.claims",
}


def get_ruleset(name: str) -> list[Rule]:
    """Return the rules of the ruleset called ``name`` (raises KeyError if unknown)."""
    module_name = RULESET_MODULES.get(name)
    if module_name is None:
        raise KeyError(name)
    try:
        module = import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise KeyError(name) from error
    rules: list[Rule] = module.RULES
    return rules


def rule_codes(rules: list[Rule]) -> list[str]:
    """Return the finding codes the rules produce, in rule order, without repeats."""
    return list(dict.fromkeys(rule["code"] for rule in rules if rule["code"] is not None))


def rule_by_name(rules: list[Rule], name: str) -> Rule:
    """Return the rule called ``name`` (raises KeyError if absent)."""
    for rule in rules:
        if rule["name"] == name:
            return rule
    raise KeyError(name)


def findings_for(rules: list[Rule], fired: set[str] | list[str]) -> list[Finding]:
    """Turn the names of fired rules into findings, in ruleset order, one per rule."""
    fired_names = set(fired)
    return [
        {"code": rule["code"], "severity": rule["severity"], "rule": rule["name"]}
        for rule in rules
        if rule["name"] in fired_names and rule["code"] is not None
    ]


class _Unknown:
    """Stands in for a value the message template names but the caller did not supply."""

    def __format__(self, spec: str) -> str:
        return "n/a"


class _MessageFormatter(string.Formatter):
    """A formatter that renders absent values as "n/a" rather than failing a check."""

    def get_value(self, key: int | str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        if isinstance(key, str):
            return kwargs.get(key, _Unknown())
        return super().get_value(key, args, kwargs)


_FORMATTER = _MessageFormatter()


def render_message(rule: Rule, values: Mapping[str, Any]) -> str:
    """Fill the rule's message template from the case fields and the builder's context."""
    return _FORMATTER.vformat(rule["message"], (), values)


def template_fields(rule: Rule) -> set[str]:
    """Return the names the rule's message template refers to."""
    return {
        field_name.split(".")[0].split("[")[0]
        for _, field_name, _, _ in string.Formatter().parse(rule["message"])
        if field_name
    }
