"""The documentation checklist against the oracle's direct statement of it, through the engine."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from policy_service import engine, oracle
from policy_service.domain.documentation import (
    DocumentationItem,
    DocumentOnFile,
    DocumentStatus,
    checklist,
)

DAY = dt.date(2026, 3, 10)
CODES = ("TB_SCREENING", "HBV_SCREENING", "CHART_NOTES")
items = st.lists(st.builds(dict, code=st.sampled_from(CODES), label=st.just("label"),
                           max_age_days=st.none() | st.integers(0, 6)),
                 max_size=3, unique_by=lambda item: item["code"])
documents = st.lists(st.tuples(st.sampled_from(CODES),
                               st.integers(-8, 3).map(lambda d: DAY + dt.timedelta(days=d))),
                     max_size=5)


@settings(deadline=None)
@given(items=items, on_file=documents)
def test_the_checklist_and_the_rule_agree_with_the_oracle(
        items: list[dict[str, object]], on_file: list[tuple[str, dt.date]]) -> None:
    entries = checklist([DocumentationItem(**item) for item in items],  # type: ignore[arg-type]
                        [DocumentOnFile(code, on) for code, on in on_file], DAY)
    lacking = oracle.documentation_lacking(items, on_file, DAY)
    assert [e.item.code for e in entries if e.status != DocumentStatus.ON_FILE] == lacking
    case = {"policy_found": True, "documentation_missing": len(lacking)}
    fired = "documentation_missing" in engine.fired_rules("eligibility", case)
    assert fired == bool(lacking) == ("documentation_missing" in oracle.fired_rules(
        "eligibility", case))
