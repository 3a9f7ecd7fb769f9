"""The durable-rules adapter: failures surface, threads are safe, sids are freed."""

from __future__ import annotations

import itertools
import math
import threading
import uuid
from typing import Any

import pytest

from policy_service import engine, oracle
from rulesets import ALWAYS_FIRING_RULE, Category, Fact, FactType, Rule, Ruleset, Severity
from rulesets.eligibility import RULESET

ALWAYS = ALWAYS_FIRING_RULE.name


def unique_name(prefix: str) -> str:
    """A ruleset name never used before in this process (names can be registered once)."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def rule(name: str, condition: dict[str, Any]) -> Rule:
    """A test rule whose code is its name in upper case."""
    return Rule(name=name, code=name.upper(), severity=Severity.BLOCK,
                category=Category.CLAIM_DATA, condition=condition, message=name,
                when=name, why=name, source="https://example.org/test-rule")


def adhoc(name: str, rules: list[Rule], **fields: FactType) -> Ruleset:
    """A test ruleset with the given rules, declaring every field they read."""
    facts = tuple(Fact(field, kind, field,
                       ("within", "after") if kind is FactType.CHOICE else ())
                  for field, kind in fields.items())
    return Ruleset(name=name, title=name, rules=tuple(rules), facts=facts)


def test_clean_case_fires_only_the_always_firing_rule() -> None:
    """A case with nothing wrong gives no findings; only the always-firing rule ran."""
    clean = {"policy_found": True, "diagnosis_covered": True, "dose_mg": 400,
             "max_dose_mg": 800, "auth_found": True, "auth_status_ok": True,
             "auth_window": "within", "auth_days_to_expiry": 90, "auth_expiring_soon_days": 30}
    assert engine.fired_rules("eligibility", clean) == [ALWAYS]
    assert engine.evaluate("eligibility", clean) == []


def test_findings_carry_code_severity_and_rule() -> None:
    """A finding names its code, severity and the rule that produced it."""
    findings = engine.evaluate("eligibility", {"policy_found": False,
                                               "auth_remaining_visits": 0})
    assert findings == [
        {"code": "NO_POLICY", "severity": "warn", "category": "information",
         "rule": "no_policy"},
        {"code": "AUTH_VISITS_EXHAUSTED", "severity": "block", "category": "authorization",
         "rule": "auth_visits_exhausted"},
    ]


def test_action_error_is_raised_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rule action that raises makes the evaluation fail instead of looking clean."""
    name = unique_name("test_failing_action")
    engine.register(name, adhoc(name, [rule("boom", {"trigger": True}), ALWAYS_FIRING_RULE],
                                trigger=FactType.BOOLEAN))
    original = engine._record_firing

    def broken(sid: str, rule_name: str) -> None:
        if rule_name == "boom":
            raise ValueError("rule action exploded")
        original(sid, rule_name)

    monkeypatch.setattr(engine, "_record_firing", broken)
    with pytest.raises(engine.EngineError, match="rule action exploded"):
        engine.evaluate(name, {"trigger": True})
    # The same ruleset still evaluates cases whose failing rule does not fire...
    assert engine.evaluate(name, {"trigger": False}) == []
    monkeypatch.undo()
    # ...and once the action is fixed, the rule reports normally again.
    assert engine.evaluate(name, {"trigger": True}) == [
        {"code": "BOOM", "severity": "block", "category": "claim data", "rule": "boom"}
    ]


def test_failed_evaluations_free_their_sids(monkeypatch: pytest.MonkeyPatch) -> None:
    """More failed evaluations than a ruleset's 1024 live sids leave it usable."""
    name = unique_name("test_failures_free_sids")
    engine.register(name, adhoc(name, [rule("boom", {"trigger": True}), ALWAYS_FIRING_RULE],
                                trigger=FactType.BOOLEAN))

    def broken(sid: str, rule_name: str) -> None:
        raise ValueError("always broken")

    monkeypatch.setattr(engine, "_record_firing", broken)
    for _ in range(1100):
        with pytest.raises(engine.EngineError):
            engine.evaluate(name, {"trigger": True})
    monkeypatch.undo()
    assert engine.fired_rules(name, {"trigger": True}) == ["boom", ALWAYS]


def test_evaluations_past_1024_still_work() -> None:
    """A ruleset holds at most 1024 live sids; each evaluation frees its own."""
    name = unique_name("test_many_sids")
    engine.register(name, adhoc(name, [rule("high", {"$gt": {"value": 5}}), ALWAYS_FIRING_RULE],
                                value=FactType.INTEGER))
    results = [engine.evaluate(name, {"value": value % 10}) for value in range(2000)]
    assert results[1500] == []  # 1500 % 10 == 0
    assert results[1509] == [{"code": "HIGH", "severity": "block", "category": "claim data",
                              "rule": "high"}]
    assert sum(1 for findings in results if findings) == 800


def test_four_threads_get_correct_results() -> None:
    """4 threads x 500 evaluations: no crash, and every result matches the oracle."""
    cases = [
        {"policy_found": True, "dose_mg": dose, "max_dose_mg": 800, "age": age, "min_age": 18,
         "auth_found": True, "auth_remaining_units": 40, "administered_units": units,
         "auth_window": window}
        for dose, age, units, window in itertools.product(
            [700, 800, 900], [17, 18, 40], [39, 40, 41], ["before", "within", "after"])
    ]
    expected = [oracle.evaluate("eligibility", case) for case in cases]
    errors: list[str] = []
    completed = [0] * 4

    def worker(index: int) -> None:
        for step in range(500):
            position = (index * 131 + step * 7) % len(cases)
            try:
                findings = engine.evaluate("eligibility", cases[position])
            except Exception as error:  # collected and asserted below, not swallowed
                errors.append(repr(error))
                return
            if findings != expected[position]:
                errors.append(f"case {position}: {findings} != {expected[position]}")
            completed[index] += 1

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert completed == [500, 500, 500, 500]
    assert any(expected), "the cases must produce findings for the comparison to mean much"


def test_nested_or_inside_and_matches_the_oracle() -> None:
    """An $or nested in an $and (and $gte, string equality) compiles to the same meaning."""
    name = unique_name("test_nested_or")
    condition = {"$and": [
        {"window": "within"},
        {"$or": [{"$gte": {"used": {"$m": "allowed"}}}, {"$lt": {"left": 1}}]},
        {"$or": [{"flag": True}, {"$gt": {"size": 2.5}}]},
    ]}
    rules = adhoc(name, [rule("nested", condition), ALWAYS_FIRING_RULE],
                  window=FactType.CHOICE, used=FactType.INTEGER, allowed=FactType.INTEGER,
                  left=FactType.INTEGER, flag=FactType.BOOLEAN, size=FactType.NUMBER)
    engine.register(name, rules)
    values: dict[str, list[Any]] = {
        "window": ["within", "after"], "used": [1, 2], "allowed": [2], "left": [0, 1],
        "flag": [True, False], "size": [2.5, 3],
    }
    fields = list(values)
    fired_count = 0
    # Every combination of each field being absent or taking each of its values.
    for combination in itertools.product(*[[None, *values[field]] for field in fields]):
        case = {field: value for field, value in zip(fields, combination, strict=True)
                if value is not None}
        findings = engine.evaluate(name, case)
        assert findings == oracle.evaluate(rules, case), case
        fired_count += bool(findings)
    assert fired_count > 0


def test_ruleset_without_always_firing_rule_is_refused() -> None:
    """Registering a ruleset that could leave a case unhandled fails up front."""
    with pytest.raises(engine.EngineError, match="ALWAYS_FIRING_RULE"):
        engine.register("test_no_always", adhoc("test_no_always", [rule("x", {"x": True})],
                                                x=FactType.BOOLEAN))


def test_malformed_condition_is_refused() -> None:
    """An unsupported operator never reaches durable."""
    with pytest.raises(engine.EngineError, match="not supported"):
        engine.register("test_bad_operator",
                        adhoc("test_bad_operator", [rule("x", {"$in": {"x": [1]}}),
                                                    ALWAYS_FIRING_RULE], x=FactType.INTEGER))


def test_unknown_ruleset_is_an_engine_error() -> None:
    """Evaluating with a ruleset nobody defined fails clearly."""
    with pytest.raises(engine.EngineError, match="unknown ruleset"):
        engine.evaluate("no_such_ruleset", {"policy_found": True})


def test_a_ruleset_name_cannot_be_redefined() -> None:
    """The same name with other rules is refused; the same rules again is harmless."""
    name = unique_name("test_redefine")
    rules = adhoc(name, [rule("x", {"x": True}), ALWAYS_FIRING_RULE], x=FactType.BOOLEAN)
    engine.register(name, rules)
    engine.register(name, rules)
    with pytest.raises(engine.EngineError, match="already registered"):
        engine.register(name, adhoc(name, [rule("y", {"y": True}), ALWAYS_FIRING_RULE],
                                    y=FactType.BOOLEAN))
    engine.register("eligibility")
    assert engine.evaluate("eligibility", {"policy_found": False})[0]["code"] == "NO_POLICY"


@pytest.mark.parametrize(("case", "problem"), [
    ({"policy_found": True, "age": None}, "null"),
    ({"policy_found": True, "sid": "7"}, "reserved"),
    ({"policy_found": True, "engine_case": False}, "reserved"),
    ({"policy_found": True, "dose_mg": math.nan}, "finite"),
    ({"policy_found": True, "diagnoses": ["M05"]}, "not declared"),
    ({"policy_found": True, "age": "12"}, "integer"),
])
def test_malformed_case_is_refused(case: dict[str, Any], problem: str) -> None:
    """A case the builder got wrong fails loudly instead of silently matching nothing."""
    with pytest.raises(engine.EngineError, match=problem):
        engine.evaluate("eligibility", case)
    # The refusal left nothing behind: the next evaluation works.
    assert engine.evaluate("eligibility", {"policy_found": True}) == []


def test_rules_data_is_not_mutated_by_registration() -> None:
    """Compiling rules for durable leaves the ruleset data as written."""
    dose = RULESET.rule("dose_exceeds_limit")
    assert dose.condition == {"$or": [
        {"$gt": {"dose_mg": {"$m": "max_dose_mg"}}},
        {"$gt": {"dose_units": {"$m": "max_dose_units"}}},
    ]}
