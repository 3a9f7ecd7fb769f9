"""durable-rules and the pure-Python oracle agree on every finding, on generated cases."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_service import engine, oracle
from rulesets.eligibility import RULES

BOOLEAN_FIELDS = [
    "prior_auth_required", "diagnosis_covered", "step_therapy_required", "step_therapy_met",
    "new_start_exempt", "product_preferred", "site_allowed", "missing_information",
    "auth_found", "auth_status_ok", "auth_drug_matches", "auth_diagnosis_matches",
    "auth_site_matches",
]
# Small ranges so that compared pairs (age vs min_age, ...) land below, on and above each other.
INTEGER_FIELDS = [
    "dose_units", "max_dose_units", "days_since_last_dose", "min_days_between_doses", "age",
    "min_age", "max_age", "administered_units", "auth_remaining_units",
    "auth_remaining_visits", "auth_days_to_expiry", "auth_expiring_soon_days",
]
NUMBER_FIELDS = ["dose_mg", "max_dose_mg"]
FRACTION_FIELDS = ["auth_remaining_fraction", "auth_units_low_fraction"]

integers = st.integers(min_value=-2, max_value=3)
# Whole numbers as int and as float, and values between them: 2 == 2.0 must compare equal.
numbers = st.one_of(integers, st.sampled_from([-0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]))
fractions = st.sampled_from([0, 0.0, 0.1, 0.19999, 0.2, 0.20001, 0.5, 1, 1.0])

OPTIONAL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    **{name: st.booleans() for name in BOOLEAN_FIELDS},
    **{name: integers for name in INTEGER_FIELDS},
    **{name: numbers for name in NUMBER_FIELDS},
    **{name: fractions for name in FRACTION_FIELDS},
    "auth_window": st.sampled_from(["before", "within", "after"]),
    "missing": st.sampled_from(["weight", "birth date", "weight, birth date"]),
}


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """A case fact with every optional field randomly absent, in a random field order."""
    fields = draw(st.fixed_dictionaries({"policy_found": st.booleans()},
                                        optional=OPTIONAL_FIELDS))
    # durable's defects depended on where a field sits in the fact, so vary the order too.
    order = draw(st.permutations(list(fields)))
    return {name: fields[name] for name in order}


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_durable_and_oracle_agree(case: dict[str, Any]) -> None:
    """On every generated case both evaluators fire the same rules and report the same findings."""
    assert engine.fired_rules("eligibility", case) == oracle.fired_rules(RULES, case)
    assert engine.evaluate("eligibility", case) == oracle.evaluate("eligibility", case)
