"""The rules catalogue: every rule of every ruleset in words, for the CLI and the admin page.

Built from the rule units themselves (``rulesets``), so it can never drift from what the engine
evaluates: code, severity, category, when it fires in plain words and as the exact condition,
why it exists and where that is written down, the facts it reads, and its example cases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from policy_service.oracle import describe_condition
from rulesets import Example, Rule, Ruleset, get_ruleset, ruleset_names


@dataclass(frozen=True)
class CaseEntry:
    """One example case of a rule, in words."""

    name: str
    facts: str
    expect: list[str]


@dataclass(frozen=True)
class RuleEntry:
    """One rule as a coordinator reads it."""

    ruleset: str
    name: str
    code: str
    severity: str
    category: str
    when: str
    condition: str
    why: str
    source: str
    reads: list[dict[str, str]]
    fires: list[CaseEntry]
    passes: list[CaseEntry]
    cites_policy: bool
    planning: bool

    def as_dict(self) -> dict[str, Any]:
        """The entry as plain JSON data."""
        return asdict(self)


def case_text(case: Mapping[str, Any]) -> str:
    """A case's facts as ``field = value`` pairs."""
    return ", ".join(f"{name} = {str(value).lower() if isinstance(value, bool) else value}"
                     for name, value in case.items())


def _cases(rule: Rule, examples: tuple[Example, ...], fires: bool) -> list[CaseEntry]:
    return [CaseEntry(example.name, case_text(example.case),
                      sorted(rule.expected_codes(example, fires))) for example in examples]


def _entry(ruleset: Ruleset, rule: Rule) -> RuleEntry:
    facts = ruleset.fact_table
    return RuleEntry(
        ruleset=ruleset.name, name=rule.name, code=rule.code or "",
        severity=str(rule.severity), category=str(rule.category), when=rule.when,
        condition=describe_condition(rule.condition), why=rule.why, source=rule.source,
        reads=[{"name": name, "meaning": facts[name].meaning} for name in rule.reads],
        fires=_cases(rule, rule.fires, True), passes=_cases(rule, rule.passes, False),
        cites_policy=rule.cites_policy, planning=rule.planning,
    )


def catalogue(names: list[str] | None = None) -> list[tuple[Ruleset, list[RuleEntry]]]:
    """Every ruleset (or those named) with an entry for each rule that produces a finding."""
    rulesets = [get_ruleset(name) for name in (names or ruleset_names())]
    return [(ruleset, [_entry(ruleset, rule) for rule in ruleset.rules if rule.code])
            for ruleset in rulesets]


def catalogue_text(names: list[str] | None = None) -> str:
    """The catalogue as plain text, one block per rule."""
    out: list[str] = []
    for ruleset, entries in catalogue(names):
        out += [ruleset.title, "=" * len(ruleset.title), ""]
        for entry in entries:
            out.append(f"{entry.code}  [{entry.severity}, {entry.category}]  "
                       f"rule {entry.name}")
            out.append(f"  When:      {entry.when}")
            out.append(f"  Condition: {entry.condition}")
            out.append(f"  Why:       {entry.why}")
            out.append(f"  Source:    {entry.source}")
            for kind, cases in (("Fires", entry.fires), ("Passes", entry.passes)):
                for case in cases:
                    codes = ", ".join(case.expect) or "no finding"
                    out.append(f"  {kind}: {case.name} ({case.facts}) -> {codes}")
            out.append("")
    return "\n".join(out)
