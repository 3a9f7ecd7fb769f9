"""Hypothesis strategies for case facts, read from each ruleset's table of declared fields."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from rulesets import Fact, FactType, Ruleset

# Small ranges so that compared pairs (age vs min_age, ...) land below, on and above each other.
INTEGERS = st.integers(min_value=-2, max_value=3)
# Whole numbers as int and as float, and values between them: 2 == 2.0 must compare equal.
NUMBERS = st.one_of(INTEGERS, st.sampled_from([-0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]))
FRACTIONS = st.sampled_from([0, 0.0, 0.1, 0.19999, 0.2, 0.20001, 0.5, 1, 1.0])
TEXTS = st.sampled_from(["J1745", "96413", "76942"])


def values(fact: Fact) -> st.SearchStrategy[Any]:
    """The values a case builder could give ``fact``, by its declared type."""
    if fact.type is FactType.CHOICE:
        return st.sampled_from(fact.choices)
    return {
        FactType.BOOLEAN: st.booleans(),
        FactType.INTEGER: INTEGERS,
        FactType.NUMBER: NUMBERS,
        FactType.FRACTION: FRACTIONS,
        FactType.TEXT: TEXTS,
    }[fact.type]


@st.composite
def cases(draw: st.DrawFn, ruleset: Ruleset) -> dict[str, Any]:
    """A case of ``ruleset`` with every declared field randomly absent, in a random order."""
    fields = draw(st.fixed_dictionaries(
        {}, optional={fact.name: values(fact) for fact in ruleset.facts}))
    # durable's defects depended on where a field sits in the fact, so vary the order too.
    order = draw(st.permutations(list(fields)))
    return {name: fields[name] for name in order}
