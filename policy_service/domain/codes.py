"""Code checks shared by every write path: HCPCS/CPT, NPI and payer external ids (ICD-10-CM is
in ``icd10``)."""

from __future__ import annotations

import re
from typing import Any

# A Level II HCPCS code (J1745) or a five-character CPT code (96413, 0001F); ASCII digits, the
# whole string (as NPI_PATTERN).
HCPCS_PATTERN = re.compile(r"[A-Z][0-9]{4}|[0-9]{4}[0-9A-Z]")
HCPCS_MESSAGE = ("Not a HCPCS code: expected a letter and 4 digits (J1745) "
                 "or a 5-character CPT code.")
# ASCII digits, the whole string: ``\d`` takes any script's digits and ``$`` a trailing newline.
NPI_PATTERN = re.compile(r"[0-9]{10}")
NPI_MESSAGE = "Not an NPI: expected 10 digits."
NPI_CHECK_DIGIT_MESSAGE = "Not a valid NPI: its check digit does not match."
# The NPI check digit is the Luhn digit of the number prefixed with the card issuer 80840
# (CMS, "Requirements for NPI check digit"); the prefix always contributes 24.
NPI_PREFIX_SUM = 24


def hcpcs_error(code: Any) -> str | None:
    """Return why ``code`` is not a well-formed HCPCS/CPT code, or None when it is."""
    if not isinstance(code, str) or not HCPCS_PATTERN.fullmatch(code):
        return HCPCS_MESSAGE
    return None


def npi_error(npi: Any) -> str | None:
    """Return why ``npi`` is not a valid National Provider Identifier, or None when it is."""
    if not isinstance(npi, str) or not NPI_PATTERN.fullmatch(npi):
        return NPI_MESSAGE
    total = NPI_PREFIX_SUM
    # Luhn over the first nine digits, doubling from the rightmost of them.
    for position, digit in enumerate(reversed(npi[:9])):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    if (10 - total % 10) % 10 != int(npi[9]):
        return NPI_CHECK_DIGIT_MESSAGE
    return None


def external_id_key(value: str) -> str:
    """Return the form payer external ids are compared in (case and surrounding spaces
    ignored)."""
    return value.strip().upper()
