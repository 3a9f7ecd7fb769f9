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


def _library() -> object:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import simple_icd_10_cm

    return simple_icd_10_cm


def test_every_code_of_the_list_answers_as_the_library_does() -> None:
    # The fast code list must say exactly what simple_icd_10_cm's parsed tabular list says:
    # the same codes, the same billable leaves and the same billable codes under each family.
    library = _library()
    listed = set(icd10.code_list().positions)
    # Chapters are numbers and blocks are ranges (a one-category block shares its name).
    in_library = {code.replace(".", "") for code in library.get_all_codes(True)
                  if not code.isdigit() and "-" not in code}
    assert listed == in_library
    for compact in icd10.code_list().codes:
        code = icd10.normalise_code(compact)
        if not compact[1].isdigit():  # "QA0": not the shape of a diagnosis code, never valid
            assert not icd10.is_valid_code(code)
            continue
        assert icd10.is_valid_code(code)
        assert icd10.is_billable(code) is bool(library.is_leaf(code)), code
        if not library.is_leaf(code):
            expected = tuple(c for c in library.get_descendants(code) if library.is_leaf(c))
            assert icd10.billable_codes_under(code) == expected, code


@pytest.mark.parametrize("code", ["M1A.071", "M05.7", "M05", "S52.521", "O09.A"])
def test_billable_codes_under_a_family_come_in_code_set_order(code: str) -> None:
    library = _library()
    assert icd10.billable_codes_under(code) == tuple(
        c for c in library.get_descendants(code) if library.is_leaf(c))
