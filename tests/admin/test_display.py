"""Stored values as people read them on the admin's pages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from admin.display import change_lines, local_minute, plain_number, word


@pytest.mark.parametrize(("stored", "shown"), [
    (Decimal("10.000"), "10"), (Decimal("2.500"), "2.5"), (Decimal("0.125"), "0.125"),
    (Decimal("1E+1"), "10"), (7, "7"), (True, "Yes"),
])
def test_numbers_lose_their_trailing_zeros(stored: object, shown: str) -> None:
    assert plain_number(stored) == shown  # type: ignore[arg-type]


@pytest.mark.parametrize(("stored", "shown"), [
    ("hospital_outpatient", "hospital outpatient"), (["office", "home_infusion"],
                                                      "office, home infusion"),
    (None, ""),
])
def test_vocabulary_reads_as_words(stored: object, shown: str) -> None:
    assert word(stored) == shown


def test_a_stored_utc_time_shows_in_local_time_to_the_minute() -> None:
    stored = dt.datetime(2026, 11, 30, 14, 5, 59, 123456)  # naive: UTC
    assert local_minute(stored, ZoneInfo("America/New_York")) == "2026-11-30 09:05"
    assert local_minute(stored, ZoneInfo("UTC")) == "2026-11-30 14:05"


def test_an_update_lists_each_changed_field_with_before_and_after() -> None:
    before = {"approved_units": "160.000", "hcpcs": ["J1745"], "status": "approved",
              "notes": None}
    after = {"approved_units": "200.000", "hcpcs": ["J1745", "Q5103"], "status": "approved",
             "notes": "renewed"}
    assert change_lines(before, after) == [
        "approved units: 160 -> 200",
        "hcpcs: J1745 -> J1745, Q5103",
        "notes: (none) -> renewed",
    ]


def test_a_created_record_lists_the_fields_it_was_given() -> None:
    assert change_lines(None, {"code": "ACME", "name": "Acme Health", "notes": ""}) == [
        "code: ACME", "name: Acme Health"]


def test_nested_rows_read_as_their_filled_fields() -> None:
    step = {"any_of": ["methotrexate"], "min_days": 90, "count": None, "position": 0}
    assert change_lines(None, {"step_therapy": [step]}) == [
        "step therapy: (any of methotrexate; min days 90; position 0)"]
