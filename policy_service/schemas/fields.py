"""Bounded field types every API and bundle schema uses for numbers, dates and clock times.

Unbounded input is a denial of service: ``"1e999999999"`` is a valid Decimal whose exact
arithmetic never finishes, an integer of 10**30 overflows a database column, 9999-12-31 plus a
filing window overflows ``date``. These fields refuse such values at the schema, with a message
naming the bound, so every service behind them can do exact arithmetic on anything that passes.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

from marshmallow import fields

# Longest text a number may arrive as; anything longer is refused before it is parsed.
MAX_NUMBER_TEXT = 40
# Dates the service reasons about: far enough back for birth dates, far enough ahead for any
# authorization, and far enough from date.max that adding a filing window cannot overflow.
EARLIEST_DATE = dt.date(1900, 1, 1)
LATEST_DATE = dt.date(2199, 12, 31)
# Largest value of a 32-bit signed column (PostgreSQL ``integer``).
INT32_MAX = 2**31 - 1


class BoundedDecimal(fields.Decimal):
    """An exact decimal within ``[minimum, maximum]`` with at most ``places`` decimal places.

    Exponent and digits are bounded before any arithmetic: the value must be finite, written in
    at most 40 characters, and lie in the range, so ``1e999999999`` and ``1e-30`` are refused.
    ``minimum_exclusive`` makes the lower bound strict (a dose must be greater than 0).
    """

    default_error_messages = {
        "invalid": "Not a valid number.",
        "special": "Must be a finite number.",
        "too_long": "Write the number in at most {length} characters.",
        "places": "Use at most {places} decimal places.",
        "too_small": "Must be {lower}.",
        "too_large": "Must be at most {maximum}.",
    }

    def __init__(self, *, maximum: decimal.Decimal | int | str, places: int = 3,
                 minimum: decimal.Decimal | int | str = 0, minimum_exclusive: bool = True,
                 **kwargs: Any) -> None:
        self.minimum = decimal.Decimal(minimum)
        self.maximum = decimal.Decimal(maximum)
        self.minimum_exclusive = minimum_exclusive
        self.max_places = places
        metadata = dict(kwargs.pop("metadata", None) or {})
        # What the OpenAPI document says: a JSON number (or its decimal text) in the range.
        metadata.setdefault("type", "number")
        metadata.setdefault("minimum", float(self.minimum))
        metadata.setdefault("maximum", float(self.maximum))
        if minimum_exclusive:
            metadata.setdefault("exclusiveMinimum", True)
        metadata.setdefault("description", f"At most {places} decimal places.")
        super().__init__(allow_nan=False, metadata=metadata, **kwargs)

    def _validated(self, value: Any) -> decimal.Decimal:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        text = value if isinstance(value, str) else repr(value) if isinstance(value, float) \
            else str(value) if isinstance(value, (int, decimal.Decimal)) else None
        if text is None:
            raise self.make_error("invalid")
        if len(text) > MAX_NUMBER_TEXT:
            raise self.make_error("too_long", length=MAX_NUMBER_TEXT)
        try:
            number = decimal.Decimal(text.strip())
        except decimal.InvalidOperation:
            raise self.make_error("invalid") from None
        if not number.is_finite():
            raise self.make_error("special")
        # Comparisons are cheap whatever the exponent; arithmetic (quantize, Fraction) is not,
        # so the range and the places are checked before any.
        if number > self.maximum:
            raise self.make_error("too_large", maximum=self.maximum)
        if number < self.minimum or (self.minimum_exclusive and number == self.minimum):
            lower = (f"greater than {self.minimum}" if self.minimum_exclusive
                     else f"at least {self.minimum}")
            raise self.make_error("too_small", lower=lower)
        if number.is_zero():
            return decimal.Decimal(0)
        _sign, digits, raw_exponent = number.as_tuple()
        exponent = int(raw_exponent)
        if exponent < -self.max_places:
            # Trailing zeros do not count as places; no context arithmetic (it would round).
            trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
            if exponent + trailing_zeros < -self.max_places:
                raise self.make_error("places", places=self.max_places)
            # 1.5000: exact, with trailing zeros beyond the places.
            return number.quantize(decimal.Decimal(1).scaleb(-self.max_places))
        if exponent > 0:
            # 1E+2: a plain integer.
            return number.quantize(decimal.Decimal(1))
        return number


class StrictInteger(fields.Integer):
    """A JSON integer (never a string, float or boolean) within ``[minimum, maximum]``.

    ``1.5`` and ``"5"`` are refused, not truncated or coerced. In a query string, where every
    value is text, use ``QueryInteger``.
    """

    default_error_messages = {
        "invalid": "Not a valid integer.",
        "too_small": "Must be at least {minimum}.",
        "too_large": "Must be at most {maximum}.",
    }

    def __init__(self, *, minimum: int = 0, maximum: int = INT32_MAX, **kwargs: Any) -> None:
        self.minimum = minimum
        self.maximum = maximum
        metadata = dict(kwargs.pop("metadata", None) or {})
        metadata.setdefault("minimum", minimum)
        metadata.setdefault("maximum", maximum)
        super().__init__(strict=True, metadata=metadata, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        if value < self.minimum:
            raise self.make_error("too_small", minimum=self.minimum)
        if value > self.maximum:
            raise self.make_error("too_large", maximum=self.maximum)
        return value


class QueryInteger(StrictInteger):
    """An integer in a query string: plain decimal digits only (no sign, space or exponent)."""

    def _validated(self, value: Any) -> int:
        if isinstance(value, str):
            digits = len(str(self.maximum))
            if not value.isascii() or not value.isdigit():
                raise self.make_error("invalid")
            if len(value) > digits:
                raise self.make_error("too_large", maximum=self.maximum)
            value = int(value)
        return super()._validated(value)


class BoundedDate(fields.Date):
    """An ISO date between 1900-01-01 and 2199-12-31 (date arithmetic cannot overflow)."""

    default_error_messages = {
        "bounds": f"Must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.date:
        if isinstance(value, str) and len(value) > MAX_NUMBER_TEXT:
            raise self.make_error("invalid")
        day = super()._deserialize(value, attr, data, **kwargs)
        if not EARLIEST_DATE <= day <= LATEST_DATE:
            raise self.make_error("bounds")
        return day
