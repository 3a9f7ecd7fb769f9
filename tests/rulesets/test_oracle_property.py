"""durable-rules and the pure-Python oracle agree on every finding, on generated cases.

The number of cases comes from the Hypothesis profile (tests/conftest.py): 1,000 per ruleset by
default, 10,000 in the deep profile that .ci/run selects.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from policy_service import engine, oracle
from rulesets import get_ruleset, ruleset_names
from tests.rulesets.strategies import cases


@pytest.mark.parametrize("name", ruleset_names())
def test_durable_and_oracle_agree(name: str) -> None:
    """On every generated case both evaluators fire the same rules and report the same findings."""
    ruleset = get_ruleset(name)

    @settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(case=cases(ruleset))
    def agree(case: dict[str, Any]) -> None:
        assert engine.fired_rules(name, case) == oracle.fired_rules(ruleset, case)
        assert engine.evaluate(name, case) == oracle.evaluate(ruleset, case)

    agree()
