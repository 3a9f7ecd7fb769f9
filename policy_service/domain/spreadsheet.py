"""Cells safe to open in a spreadsheet (CSV injection).

A spreadsheet runs a cell whose text starts like a formula; every export, from a page or from
the command line, writes its final cell text through ``neutralise_cell``.
"""

from __future__ import annotations

from typing import Any

# A spreadsheet treats a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: Any) -> Any:
    """Return ``value`` safe for a spreadsheet: text starting like a formula gets a quote."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
