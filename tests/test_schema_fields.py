"""The bounded field types: every decimal, integer and date the API reads is bounded."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

import pytest
from marshmallow import Schema, ValidationError

from policy_service.schemas.fields import (
    BoundedDate,
    BoundedDecimal,
    QueryInteger,
    StrictInteger,
)


class Quantities(Schema):
    dose = BoundedDecimal(maximum=1000, places=3)
    count = StrictInteger(minimum=1, maximum=50)
    page = QueryInteger(minimum=1, maximum=10_000)
    day = BoundedDate()


def load(**values: Any) -> dict[str, Any]:
    return Quantities().load(values)


@pytest.mark.parametrize(("value", "expected"), [
    ("12.5", Decimal("12.5")), (80.25, Decimal("80.25")), (7, Decimal(7)),
    ("1.5000", Decimal("1.500")), ("1E+2", Decimal(100)), ("100e-5", Decimal("0.001")),
])
def test_decimal_accepts_plain_values(value: Any, expected: Decimal) -> None:
    assert load(dose=value)["dose"] == expected


@pytest.mark.parametrize(("value", "message"), [
    ("1e999999999", "Must be at most 1000."),
    ("1e-999999999", "Use at most 3 decimal places."),
    ("1e-30", "Use at most 3 decimal places."),
    (1e-30, "Use at most 3 decimal places."),
    ("1E+100000", "Must be at most 1000."),
    ("0E-999999999", "Must be greater than 0."),
    ("9" * 41, "Write the number in at most 40 characters."),
    (float("inf"), "Must be a finite number."),
    ("NaN", "Must be a finite number."),
    (True, "Not a valid number."),
    ("-1", "Must be greater than 0."),
])
def test_decimal_refuses_unbounded_values_at_once(value: Any, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(ValidationError) as refused:
        load(dose=value)
    assert refused.value.messages == {"dose": [message]}
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(("value", "message"), [
    (1.5, "Not a valid integer."), ("5", "Not a valid integer."), (True, "Not a valid integer."),
    (0, "Must be at least 1."), (10**30, "Must be at most 50."),
])
def test_integers_are_strict(value: Any, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        load(count=value)
    assert refused.value.messages == {"count": [message]}


@pytest.mark.parametrize(("value", "message"), [
    ("1.5", "Not a valid integer."), ("-1", "Not a valid integer."),
    ("1e3", "Not a valid integer."),
    ("99999999999999999999", "Must be at most 10000."), ("0", "Must be at least 1."),
])
def test_query_integers_are_plain_digits_in_range(value: str, message: str) -> None:
    assert load(page="42")["page"] == 42
    with pytest.raises(ValidationError) as refused:
        load(page=value)
    assert refused.value.messages == {"page": [message]}


@pytest.mark.parametrize("value", ["9999-12-31", "0001-01-01", "1899-12-31", "2200-01-01"])
def test_dates_stay_where_date_arithmetic_cannot_overflow(value: str) -> None:
    assert load(day="2199-12-31")["day"] == dt.date(2199, 12, 31)
    with pytest.raises(ValidationError) as refused:
        load(day=value)
    assert refused.value.messages == {"day": ["Must be between 1900-01-01 and 2199-12-31."]}
