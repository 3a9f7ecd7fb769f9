"""Timely-filing deadlines (rules.md F)."""

from __future__ import annotations

import datetime as dt

import pytest

from policy_service.billing import filing_deadline

day = dt.date.fromisoformat


@pytest.mark.parametrize(
    ("date_of_service", "days", "medicare", "deadline"),
    [
        pytest.param("2026-03-10", 365, True, "2027-03-10", id="medicare-one-calendar-year"),
        pytest.param("2026-03-10", 90, True, "2027-03-10", id="medicare-ignores-contract-days"),
        pytest.param("2024-02-29", 365, True, "2025-02-28", id="medicare-feb-29-to-feb-28"),
        pytest.param("2027-02-28", None, True, "2028-02-28", id="medicare-before-leap-day"),
        pytest.param("2026-03-10", 90, False, "2026-06-08", id="commercial-90-days"),
        pytest.param("2026-03-10", 180, False, "2026-09-06", id="commercial-180-days"),
        pytest.param("2024-02-29", 365, False, "2025-02-28", id="commercial-365-days-leap"),
        # Past the end of the calendar the deadline is the last day there is, never a crash.
        pytest.param("9999-12-31", 365, True, "9999-12-31", id="medicare-at-date-max"),
        pytest.param("9999-06-30", 365, False, "9999-12-31", id="commercial-past-date-max"),
    ],
)
def test_filing_deadline(date_of_service: str, days: int | None, medicare: bool,
                         deadline: str) -> None:
    assert filing_deadline(day(date_of_service), days, medicare) == day(deadline)


@pytest.mark.parametrize("days", [None, 0, -30, True])
def test_non_medicare_needs_a_positive_filing_window(days: int | None) -> None:
    with pytest.raises(ValueError, match="timely filing days"):
        filing_deadline(day("2026-03-10"), days, medicare=False)
