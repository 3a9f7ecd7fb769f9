"""Timely-filing deadlines (rules.md F): the last day a payer must receive a claim."""

from __future__ import annotations

import datetime as dt


def filing_deadline(
    date_of_service: dt.date, timely_filing_days: int | None, medicare: bool
) -> dt.date:
    """Return the last day the claim may be received for this date of service."""
    if medicare:
        # 42 CFR 424.44: one calendar year after the DOS; Feb 29 has no twin, so Feb 28.
        if date_of_service.year >= dt.MAXYEAR:
            return dt.date.max
        try:
            return date_of_service.replace(year=date_of_service.year + 1)
        except ValueError:
            return dt.date(date_of_service.year + 1, 2, 28)
    if timely_filing_days is None or isinstance(timely_filing_days, bool) \
            or timely_filing_days < 1:
        raise ValueError(
            f"timely filing days must be a whole number of days >= 1, got {timely_filing_days!r}"
        )
    try:
        return date_of_service + dt.timedelta(days=timely_filing_days)
    except OverflowError:
        # A window past the end of the calendar: no receipt date can miss it.
        return dt.date.max
