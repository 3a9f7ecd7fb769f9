"""Business rules the admin forms share with the import: codes, date ranges, units.

Each check returns ``{field name: message}`` so the form can show the message on its field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from wtforms import Form

from policy_service.services.icd10 import code_error


def value(form: Form, name: str) -> Any:
    """Return the submitted value of ``name``, or None when the form has no such field."""
    field = getattr(form, name, None)
    return None if field is None else field.data


def icd10_codes(form: Form, name: str) -> dict[str, str]:
    """Every entry of the list field ``name`` must be an ICD-10-CM code or code family."""
    problems = [code_error(code) for code in value(form, name) or []]
    problems = [p for p in problems if p]
    return {name: " ".join(problems)} if problems else {}


def date_range(form: Form, start: str, end: str) -> dict[str, str]:
    """``end`` (when given) must not be before ``start``."""
    first, last = value(form, start), value(form, end)
    if isinstance(first, dt.date) and isinstance(last, dt.date) and last < first:
        return {end: f"Must be on or after {first.isoformat()}."}
    return {}


def not_negative(form: Form, names: Iterable[str]) -> dict[str, str]:
    """Each numeric field in ``names`` must be zero or more."""
    return {name: "Must be zero or more." for name in names
            if (number := value(form, name)) is not None and number < 0}


def not_above(form: Form, used: str, approved: str) -> dict[str, str]:
    """``used`` must not exceed ``approved`` (when a limit was approved)."""
    spent, limit = value(form, used), value(form, approved)
    if spent is not None and limit is not None and spent > limit:
        return {used: f"Cannot be more than the {limit} approved."}
    return {}


def number_positions(items: list[Any]) -> None:
    """Give rows added inline the next free position, keeping the order of existing ones."""
    taken: set[int] = set()
    for item in items:
        if item.position is not None and item.position not in taken:
            taken.add(item.position)
        else:
            item.position = None
    next_free = max(taken, default=-1) + 1
    for item in items:
        if item.position is None:
            item.position = next_free
            next_free += 1
