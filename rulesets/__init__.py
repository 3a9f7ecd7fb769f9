"""Rules as units: each rule keeps its condition, finding, category, reason and cases together.

A *ruleset* (``rulesets.eligibility``, ``rulesets.claims``) is a ``Ruleset``: its rules, the
table of case fields (``Fact``: name, type, meaning) the rules may read, and the extra values its
messages may name. A ``Rule`` is one unit, in the manner of gatekeeper-library's templates with
their allowed and disallowed samples beside them:

- ``name`` (snake_case, what it finds) and ``code``, the stable finding code of the contract;
- ``severity`` and ``category`` (``rulesets.vocabulary``): decisions and claim statuses are
  computed from them, never from hand lists of codes;
- ``condition``: a test of the ONE case fact in durable-rules' own JSON form, which the engine
  adapter compiles and the oracle evaluates in plain Python;
- ``when``: the condition in plain words; ``why`` and ``source``: the reason it exists and where
  that reason is written down;
- ``message``: a ``str.format`` template over the case fields and the message context;
- ``fires`` / ``passes``: example cases on which it fires and does not (tests run them all).

The condition language is deliberately small (see ``validate_condition``):

- ``{"field": constant}``                     field equals the constant;
- ``{"$lt" | "$lte" | "$gt" | "$gte": {"field": operand}}`` where ``operand`` is a
  number or ``{"$m": "other_field"}`` (another field of the same case);
- ``{"$and": [c, ...]}`` and ``{"$or": [c, ...]}``.

A condition that mentions an absent field never matches (durable's behaviour); a case builder
leaves a field out, never sets it to null, when it does not apply.

This package imports nothing from Flask, the database or the services: rules are pure data.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from importlib import import_module
from typing import Any, TypedDict

from rulesets.vocabulary import Category, Severity

__all__ = [
    "ALWAYS_FIRING_RULE", "CASE_MARKER_FIELD", "Category", "Example", "Fact", "FactType",
    "Finding", "Rule", "Ruleset", "RulesetError", "Severity", "get_ruleset", "ruleset_names",
]

Condition = dict[str, Any]
COMPARISONS: tuple[str, ...] = ("$lt", "$lte", "$gt", "$gte")
CONNECTIVES: tuple[str, ...] = ("$and", "$or")

# The engine adapter stamps this field on every case fact; the always-firing rule tests it.
# durable hangs on a clean case without a rule that always fires, and `$ex` on `sid` spins
# forever in its C core, so the marker is an ordinary equality on a field we own.
CASE_MARKER_FIELD = "engine_case"
# Fields the engine owns on the fact; a case must not carry them.
RESERVED_FIELDS: frozenset[str] = frozenset({"sid", "id", CASE_MARKER_FIELD})

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]*$")


class RulesetError(ValueError):
    """A ruleset definition, or a case given to it, is malformed."""


class FactType(StrEnum):
    """The type of a case field, as rules compare it."""

    BOOLEAN = "boolean"
    INTEGER = "integer"
    NUMBER = "number"
    FRACTION = "fraction"
    CHOICE = "choice"
    TEXT = "text"

    def accepts(self, value: Any, choices: tuple[str, ...] = ()) -> bool:
        """Return whether ``value`` is a valid value of this type."""
        if self is FactType.BOOLEAN:
            return isinstance(value, bool)
        if self is FactType.CHOICE:
            return isinstance(value, str) and value in choices
        if self is FactType.TEXT:
            return isinstance(value, str)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self is FactType.INTEGER:
            return isinstance(value, int)
        return math.isfinite(value)


@dataclass(frozen=True)
class Fact:
    """One field of a ruleset's case: its name, type and what it means."""

    name: str
    type: FactType
    meaning: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Example:
    """A case beside its rule: the fact the builder would produce and the codes it must give.

    ``expect`` is every finding code the WHOLE ruleset gives for the case; left out, it is the
    rule's own code for a firing example and nothing for a passing one.
    """

    name: str
    case: Mapping[str, Any]
    expect: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Rule:
    """One rule: when it fires, what it finds, why it exists, and its example cases."""

    name: str
    code: str | None
    severity: Severity
    category: Category | None
    condition: Condition
    message: str
    when: str
    why: str
    source: str
    fires: tuple[Example, ...] = ()
    passes: tuple[Example, ...] = ()
    # The finding comes from the payer's policy, so it cites the policy version it read.
    cites_policy: bool = False
    # About planning the next dose (a renewal, a low balance), not about a service given.
    planning: bool = False

    @property
    def reads(self) -> list[str]:
        """The case fields the condition reads, in the order it names them."""
        return list(dict.fromkeys(condition_fields(self.condition)))

    def expected_codes(self, example: Example, fires: bool) -> set[str]:
        """The codes the ruleset must give for one of this rule's examples."""
        if example.expect is not None:
            return set(example.expect)
        return {self.code} if fires and self.code else set()


class Finding(TypedDict):
    """What a fired rule reports: its finding code, severity, category and rule name."""

    code: str
    severity: Severity
    category: Category
    rule: str


ALWAYS_FIRING_RULE = Rule(
    name="case_evaluated",
    code=None,
    severity=Severity.INFO,
    category=None,
    condition={CASE_MARKER_FIELD: True},
    message="The case was evaluated.",
    when="Always: the engine needs one rule that fires on every case.",
    why="durable-rules fails on a case where no rule fires (docs/architecture.md).",
    source="https://github.com/jruizgit/rules",
)


@dataclass(frozen=True)
class Ruleset:
    """A named set of rules with the table of case fields they read."""

    name: str
    title: str
    rules: tuple[Rule, ...]
    facts: tuple[Fact, ...]
    message_context: Mapping[str, str] = field(default_factory=dict)
    # Whole-case examples that belong to no single rule (e.g. a clean case).
    scenarios: tuple[Example, ...] = ()

    # Computed once per ruleset (it is frozen): every evaluation checks its case against the
    # table and every finding looks its rule up by name.
    @cached_property
    def fact_table(self) -> dict[str, Fact]:
        """The declared case fields by name."""
        return {fact.name: fact for fact in self.facts}

    @cached_property
    def _rules_by_name(self) -> dict[str, Rule]:
        rules: dict[str, Rule] = {}
        for rule in self.rules:
            rules.setdefault(rule.name, rule)
        return rules

    def rule(self, name: str) -> Rule:
        """Return the rule called ``name`` (raises KeyError if absent)."""
        return self._rules_by_name[name]

    def codes(self) -> list[str]:
        """The finding codes the rules produce, in rule order, without repeats."""
        return list(dict.fromkeys(rule.code for rule in self.rules if rule.code is not None))

    def findings_for(self, fired: Iterable[str]) -> list[Finding]:
        """Turn the names of fired rules into findings, in ruleset order, one per rule."""
        names = set(fired)
        return [{"code": rule.code, "severity": rule.severity, "category": rule.category,
                 "rule": rule.name}
                for rule in self.rules
                if rule.name in names and rule.code is not None and rule.category is not None]

    def check_case(self, case: Mapping[str, Any]) -> None:
        """Raise RulesetError unless every field of ``case`` is declared and of its type."""
        table = self.fact_table
        for name, value in case.items():
            if not isinstance(name, str) or name in RESERVED_FIELDS:
                raise RulesetError(f"case field {name!r} is reserved or not a name")
            if value is None:
                raise RulesetError(f"case field {name!r} is null; leave an unknown field out")
            fact = table.get(name)
            if fact is None:
                raise RulesetError(f"case field {name!r} is not declared by {self.name!r}")
            if not fact.type.accepts(value, fact.choices):
                raise RulesetError(f"case field {name!r} must be a finite {fact.type.value}"
                                   + (f" in {fact.choices}" if fact.choices else ""))

    def validate(self) -> None:
        """Raise RulesetError unless every rule is well formed and reads declared fields."""
        table = self.fact_table
        if len(table) != len(self.facts):
            raise RulesetError(f"{self.name}: a case field is declared twice")
        seen: set[str] = set()
        for rule in self.rules:
            where = f"rule {rule.name}"
            _check_rule_shape(rule, where)
            if rule.name in seen:
                raise RulesetError(f"{where}: duplicate rule name")
            seen.add(rule.name)
            validate_condition(rule.condition, f"{where}.condition")
            undeclared = set(rule.reads) - set(table) - {CASE_MARKER_FIELD}
            if undeclared:
                raise RulesetError(f"{where}: reads undeclared fields {sorted(undeclared)}")
        if ALWAYS_FIRING_RULE not in self.rules:
            raise RulesetError("a ruleset must include rulesets.ALWAYS_FIRING_RULE")


def _check_rule_shape(rule: Rule, where: str) -> None:
    """Raise RulesetError unless the rule's name, code, severity and category fit together."""
    if not _NAME.match(rule.name):
        raise RulesetError(f"{where}: name must be snake_case")
    if not isinstance(rule.severity, Severity):
        raise RulesetError(f"{where}: severity must be one of {[s.value for s in Severity]}")
    if rule.code is None:
        return
    if not _CODE.match(rule.code):
        raise RulesetError(f"{where}: code must be UPPER_SNAKE_CASE or None")
    if not isinstance(rule.category, Category):
        raise RulesetError(f"{where}: a rule with a finding code needs a category")
    if not (rule.when and rule.why and rule.source.startswith(("https://", "http://"))):
        raise RulesetError(f"{where}: say when it fires, why, and link its source")


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
        _validate_comparison(key, operand, where)
        return
    if key.startswith("$"):
        raise RulesetError(f"{where}: operator {key} is not supported")
    _check_field(key, where)
    if not isinstance(operand, bool | int | float | str):
        raise RulesetError(f"{where}: equality needs a constant (bool, number or string)")


def _validate_comparison(key: str, operand: Any, where: str) -> None:
    """Raise RulesetError unless ``operand`` is one {field: number or field reference}."""
    if not isinstance(operand, dict) or len(operand) != 1:
        raise RulesetError(f"{where}: {key} needs exactly one {{field: operand}}")
    ((name, value),) = operand.items()
    _check_field(name, where)
    if isinstance(value, dict):
        if set(value) != {"$m"}:
            raise RulesetError(f"{where}: a field reference is {{'$m': 'field'}}")
        _check_field(value["$m"], where)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise RulesetError(f"{where}: {key} compares with a number or a field reference")
    elif not math.isfinite(value):
        raise RulesetError(f"{where}: {key} needs a finite number")


def _check_field(name: Any, where: str) -> None:
    """Raise RulesetError unless ``name`` is a plain snake_case field name."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise RulesetError(f"{where}: {name!r} is not a snake_case field name")


def condition_fields(condition: Condition) -> list[str]:
    """Every field a condition reads, including the right side of a field comparison."""
    ((key, operand),) = condition.items()
    if key in CONNECTIVES:
        return [name for child in operand for name in condition_fields(child)]
    if key in COMPARISONS:
        ((name, right),) = operand.items()
        return [name, right["$m"]] if isinstance(right, dict) else [name]
    return [key]


# Ruleset name -> the module whose RULESET defines it. A new ruleset adds one line here.
RULESET_MODULES: dict[str, str] = {
    "eligibility": "rulesets.eligibility",
    "claims": "rulesets.claims",
}


def ruleset_names() -> list[str]:
    """The names of every ruleset the product ships."""
    return list(RULESET_MODULES)


def get_ruleset(name: str) -> Ruleset:
    """Return the ruleset called ``name`` (raises KeyError if unknown)."""
    module_name = RULESET_MODULES.get(name)
    if module_name is None:
        raise KeyError(name)
    ruleset: Ruleset = import_module(module_name).RULESET
    return ruleset


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
    return _FORMATTER.vformat(rule.message, (), values)


def template_fields(rule: Rule) -> set[str]:
    """Return the names the rule's message template refers to."""
    return {
        field_name.split(".")[0].split("[")[0]
        for _, field_name, _, _ in string.Formatter().parse(rule.message)
        if field_name
    }
