"""ICD-10-CM codes and code families, checked against the real code set shipped offline.

A *family* is any category, subcategory or code (``M05``, ``L40.5``, ``M05.79``); it covers
itself and every code below it. Lookups are cached because eligibility checks call them per
diagnosis on every request.

Validity, billability and the billable codes under a family come from the code list that
simple_icd_10_cm ships (every chapter, block and code in code-set order, so a code's
descendants are the codes after it that start with it). Reading that list takes a few
milliseconds; importing simple_icd_10_cm parses its 10 MB XML tabular list (two seconds of
CPU in every process, every command), so only ``description`` does that, on first use.
tests/test_icd10.py checks every code of the list against the library's own answers.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType

# Categories are three characters; anything after them is the (dotted) subcategory part.
# Chapters ("13") and blocks ("M05-M14") exist in the code set but are not diagnoses.
# Input may omit the dot (M0579) but may not put it anywhere else.
_SHAPE = re.compile(r"^[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?$")


@lru_cache(maxsize=1)
def _code_set() -> ModuleType:
    # simple_icd_10_cm loads its data with importlib.resources.read_text, deprecated since
    # Python 3.11; the warning is the library's, not ours, and would fail a warnings-as-errors run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm

    return simple_icd_10_cm


@dataclass(frozen=True)
class CodeList:
    """Every ICD-10-CM category, subcategory and code without its dot, in code-set order,
    with whether each is a leaf (a billable code)."""

    codes: tuple[str, ...]
    positions: dict[str, int]
    leaves: tuple[bool, ...]

    def descendants(self, compact: str) -> list[str]:
        """The codes below ``compact`` (dotless), in code-set order."""
        start = self.positions[compact] + 1
        end = start
        while end < len(self.codes) and self.codes[end].startswith(compact):
            end += 1
        return list(self.codes[start:end])


def code_list_path() -> Path:
    """The code list file simple_icd_10_cm ships, found without importing the library."""
    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("simple_icd_10_cm is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    lists = sorted(folder.glob("code-list-*.txt"))
    if len(lists) != 1:
        raise RuntimeError(f"expected one ICD-10-CM code list in {folder}, found {len(lists)}")
    return lists[0]


@lru_cache(maxsize=1)
def code_list() -> CodeList:
    """The code list, read once per process."""
    entries = code_list_path().read_text(encoding="utf-8").split("\n")
    codes: list[str] = []
    positions: dict[str, int] = {}
    for line in entries:
        entry = line.split(" ")[0].strip()
        # Chapters ("13") and blocks ("M05-M14") are not diagnoses.
        if len(entry) < 3 or not entry[0].isalpha() or "-" in entry or entry in positions:
            continue
        positions[entry] = len(codes)
        codes.append(entry)
    leaves = tuple(i + 1 == len(codes) or not codes[i + 1].startswith(code)
                   for i, code in enumerate(codes))
    return CodeList(tuple(codes), positions, leaves)


@lru_cache(maxsize=65536)
def normalise_code(code: str) -> str:
    """Return ``code`` upper-cased with its dot after the category (``m0579`` -> ``M05.79``)."""
    compact = code.strip().upper().replace(".", "")
    if len(compact) > 3:
        return f"{compact[:3]}.{compact[3:]}"
    return compact


@lru_cache(maxsize=65536)
def is_valid_code(code: str) -> bool:
    """Return whether ``code`` is an ICD-10-CM category, subcategory or code (dot optional)."""
    if not isinstance(code, str):
        return False
    if not _SHAPE.match(code.strip().upper()):
        return False
    return _compact(code) in code_list().positions


def code_error(code: str) -> str | None:
    """Return why ``code`` is not a usable ICD-10-CM code or family, or None when it is."""
    if not isinstance(code, str) or not code.strip():
        return "Not an ICD-10-CM code."
    if not is_valid_code(code):
        return f"{code!r} is not an ICD-10-CM code or code family."
    return None


@lru_cache(maxsize=65536)
def description(code: str) -> str | None:
    """Return the official description of ``code``, or None when it does not exist."""
    if not is_valid_code(code):
        return None
    return str(_code_set().get_description(normalise_code(code)))


@lru_cache(maxsize=65536)
def _compact(code: str) -> str:
    return code.strip().upper().replace(".", "")


@lru_cache(maxsize=65536)
def _matches(code: str, families: tuple[str, ...]) -> bool:
    compact = _compact(code)
    return any(compact.startswith(_compact(family)) for family in families if family.strip())


def diagnosis_matches(code: str, families: Iterable[str]) -> bool:
    """Return whether ``code`` falls under any of ``families`` (``M05`` covers ``M05.79``)."""
    return _matches(code, tuple(families))


@lru_cache(maxsize=65536)
def is_billable(code: str) -> bool:
    """Return whether ``code`` is a billable ICD-10-CM code: a leaf, 7th character included."""
    if not is_valid_code(code):
        return False
    codes = code_list()
    return codes.leaves[codes.positions[_compact(code)]]


@lru_cache(maxsize=4096)
def billable_codes_under(code: str) -> tuple[str, ...]:
    """Return the billable codes below a category or subcategory, in code-set order."""
    if not is_valid_code(code):
        return ()
    codes = code_list()
    return tuple(normalise_code(below) for below in codes.descendants(_compact(code))
                 if codes.leaves[codes.positions[below]])


# How many billable codes a message names before it says how many more there are.
BILLABLE_CODES_SHOWN = 6


def not_billable_text(codes: Iterable[str]) -> str:
    """Name each code that is not billable with the billable codes under it ("" if none).

    ``M1A.071`` -> ``M1A.071 (bill M1A.0710 or M1A.0711)``; a family with many codes below
    names the first few and how many more there are.
    """
    parts = []
    for code in dict.fromkeys(codes):
        if is_billable(code):
            continue
        under = billable_codes_under(code)
        if len(under) <= 2:
            choice = "bill " + " or ".join(under)
        else:
            more = len(under) - BILLABLE_CODES_SHOWN
            choice = "bill one of " + ", ".join(under[:BILLABLE_CODES_SHOWN]) + (
                f" or {more} more under it" if more > 0 else "")
        parts.append(f"{code} ({choice})" if under else code)
    return "; ".join(parts)
