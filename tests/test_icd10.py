"""ICD-10-CM validation against the real code set, and diagnosis-family matching."""

from __future__ import annotations

import pytest

from policy_service.domain import icd10


@pytest.mark.parametrize("code", ["M05", "M05.79", "M0579", "L40.5", "M45", "m06.9", " M06.9 "])
def test_real_categories_subcategories_and_codes_are_valid(code: str) -> None:
    assert icd10.is_valid_code(code)
    assert icd10.code_error(code) is None


@pytest.mark.parametrize("code", ["M99.999", "X", "", "M05-M14", "13", "M05..79", "ZZZ"])
def test_codes_not_in_the_code_set_are_rejected(code: str) -> None:
    assert not icd10.is_valid_code(code)
    assert icd10.code_error(code) is not None


def test_error_message_names_the_code() -> None:
    assert "M99.999" in (icd10.code_error("M99.999") or "")


@pytest.mark.parametrize(("raw", "normalised"), [
    ("m0579", "M05.79"), ("M05.79", "M05.79"), ("l405", "L40.5"), ("M05", "M05"),
])
def test_codes_are_normalised_to_the_dotted_form(raw: str, normalised: str) -> None:
    assert icd10.normalise_code(raw) == normalised


def test_description_comes_from_the_code_set() -> None:
    assert "rheumatoid" in (icd10.description("M05") or "").lower()
    assert icd10.description("M99.999") is None


@pytest.mark.parametrize(("code", "families", "expected"), [
    ("M05.79", ["M05"], True),
    ("M0579", ["M05"], True),
    ("M05.79", ["M05.7"], True),
    ("M05.79", ["m05.79"], True),
    ("L40.50", ["M05", "L40.5"], True),
    ("M06.9", ["M05"], False),
    ("M05", ["M05.79"], False),
    ("M45.0", [], False),
    ("M45.0", [""], False),
])
def test_diagnosis_matches_families(code: str, families: list[str], expected: bool) -> None:
    assert icd10.diagnosis_matches(code, families) is expected


def test_lookups_are_cached() -> None:
    icd10.is_valid_code("M06.9")
    before = icd10.is_valid_code.cache_info().hits
    icd10.is_valid_code("M06.9")
    assert icd10.is_valid_code.cache_info().hits == before + 1
