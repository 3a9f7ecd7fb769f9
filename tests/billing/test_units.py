"""Drug units, least-waste packages and JW/JZ lines: every worked example of rules.md A and B."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_service.billing import (
    BillingLine,
    Package,
    PackageCount,
    administered_units,
    drug_billing,
    least_waste_packages,
)

D = Decimal
VIAL_100 = (Package(D(100)),)
INFLIXIMAB_UNIT = D(10)


def line(code: str, units: int, *modifiers: str) -> BillingLine:
    """Shorthand for an expected claim line."""
    return BillingLine(code, units, tuple(modifiers))


def used(*pairs: tuple[int | str, int]) -> tuple[PackageCount, ...]:
    """Shorthand for opened packages: (amount, count) pairs."""
    return tuple(PackageCount(D(amount), count) for amount, count in pairs)


WORKED_EXAMPLES = [
    # id, hcpcs, dose, unit, available, opened (None = least waste), payer uses JW/JZ, lines
    pytest.param("J1745", 350, 10, VIAL_100, used((100, 4)), True,
                 [line("J1745", 35), line("J1745", 5, "JW")], id="A5-350mg-from-4x100"),
    pytest.param("J1745", 400, 10, VIAL_100, used((100, 4)), True,
                 [line("J1745", 40, "JZ")], id="A6-400mg-from-4x100"),
    pytest.param("J1745", 305, 10, VIAL_100, used((100, 4)), True,
                 [line("J1745", 31), line("J1745", 9, "JW")], id="CGS-305mg-unit-10"),
    pytest.param("J1745", 77, 10, VIAL_100, used((100, 1)), True,
                 [line("J1745", 8), line("J1745", 2, "JW")], id="ACR-77mg-round-down-waste"),
    pytest.param("J9999", 7, 10, (Package(D(10)),), used((10, 1)), True,
                 [line("J9999", 1, "JZ")], id="ACR-7mg-from-10mg-no-JW"),
    pytest.param("J9999", 70, 100, VIAL_100, used((100, 1)), True,
                 [line("J9999", 1, "JZ")], id="A7-70mg-unit-100-under-one-unit"),
    pytest.param("J1745", 300, 10, (Package(D(100)), Package(D(400))), None, True,
                 [line("J1745", 30, "JZ")], id="A8-300mg-3x100-not-400"),
    pytest.param("J3111", 210, 1, (Package(D(105)),), used((105, 2)), True,
                 [line("J3111", 210, "JZ")], id="B-Evenity-2x105-one-line"),
    pytest.param("J3301", 40, 10, (Package(D(200), single_dose=False),), used((200, 1)), True,
                 [line("J3301", 4)], id="B-Kenalog-multi-dose-no-modifiers"),
    pytest.param("J1745", 350, 10, VIAL_100, used((100, 4)), False,
                 [line("J1745", 35)], id="A10-payer-without-JW-JZ"),
]


@pytest.mark.parametrize(
    ("hcpcs", "dose", "unit", "available", "opened", "payer_jw_jz", "expected"), WORKED_EXAMPLES
)
def test_worked_examples_give_the_stated_lines(
    hcpcs: str, dose: int, unit: int, available: tuple[Package, ...],
    opened: tuple[PackageCount, ...] | None, payer_jw_jz: bool, expected: list[BillingLine],
) -> None:
    billing = drug_billing(hcpcs, D(dose), D(unit), available, opened, payer_jw_jz)
    assert list(billing.lines) == expected


@pytest.mark.parametrize(
    ("dose", "opened", "administered", "discarded", "opened_amount"),
    [
        (350, used((100, 4)), 35, 5, D(400)),
        (305, used((100, 4)), 31, 9, D(400)),
        (77, used((100, 1)), 8, 2, D(100)),
        (400, used((100, 4)), 40, 0, D(400)),
    ],
)
def test_units_administered_round_up_and_discarded_round_down(
    dose: int, opened: tuple[PackageCount, ...], administered: int, discarded: int,
    opened_amount: Decimal,
) -> None:
    billing = drug_billing("J1745", D(dose), INFLIXIMAB_UNIT, VIAL_100, opened)
    assert (billing.administered_units, billing.discarded_units) == (administered, discarded)
    assert billing.opened_amount == opened_amount
    assert billing.jw_jz_applies is True


def test_administered_plus_discarded_never_exceeds_the_vial_label() -> None:
    # 105 mg vial, unit 10 mg: 72 mg -> 8 administered; 10.5 units opened allow only 2 discarded.
    billing = drug_billing("J9999", D(72), D(10), (Package(D(105)),))
    assert billing.administered_units + billing.discarded_units == 10
    assert list(billing.lines) == [line("J9999", 8), line("J9999", 2, "JW")]


def test_least_waste_packages_are_used_when_none_given() -> None:
    billing = drug_billing("J1745", D(300), INFLIXIMAB_UNIT, (Package(D(100)), Package(D(400))))
    assert billing.packages_used == used((100, 3))
    assert billing.discarded_units == 0
    assert billing.waste_above_optimal_units == 0


def test_payer_without_jw_jz_still_reports_the_discarded_units() -> None:
    billing = drug_billing("J1745", D(350), INFLIXIMAB_UNIT, VIAL_100, used((100, 4)),
                           payer_uses_jw_jz=False)
    assert billing.jw_jz_applies is False
    assert billing.discarded_units == 5


BENLYSTA = (Package(D(120)), Package(D(400)))


@pytest.mark.parametrize(
    ("opened", "discarded", "above_optimal"),
    [
        pytest.param(used((400, 2)), 10, 8, id="2x400-wastes-8-units-more-than-6x120"),
        pytest.param(used((400, 1), (120, 3)), 6, 4, id="400+3x120-wastes-4-more"),
        pytest.param(used((120, 6)), 2, 0, id="6x120-is-optimal"),
    ],
)
def test_waste_above_the_least_waste_combination_is_flagged(
    opened: tuple[PackageCount, ...], discarded: int, above_optimal: int
) -> None:
    # B: Benlysta 700 mg (J0490, 10 mg units); the least waste is 6x120 mg = 720 mg.
    billing = drug_billing("J0490", D(700), D(10), BENLYSTA, opened)
    assert billing.discarded_units == discarded
    assert billing.waste_above_optimal_units == above_optimal
    assert billing.lines[-1] == line("J0490", discarded, "JW")


KENALOG = (Package(D(40)), Package(D(200), single_dose=False), Package(D(400), single_dose=False))


def test_kenalog_single_dose_vials_are_preferred_when_nothing_is_said() -> None:
    billing = drug_billing("J3301", D(80), D(10), KENALOG)
    assert billing.packages_used == used((40, 2))
    assert list(billing.lines) == [line("J3301", 8, "JZ")]


def test_kenalog_drawn_from_a_multi_dose_vial_bills_administered_only() -> None:
    billing = drug_billing("J3301", D(80), D(10), KENALOG, used((200, 1)))
    assert list(billing.lines) == [line("J3301", 8)]
    assert billing.discarded_units == 0
    assert billing.jw_jz_applies is False
    assert billing.waste_above_optimal_units == 0


def test_multi_dose_only_drug_needs_no_packages_given() -> None:
    billing = drug_billing("J3301", D(40), D(10), (Package(D(200), single_dose=False),))
    assert list(billing.lines) == [line("J3301", 4)]
    assert billing.packages_used == used((200, 1))


@pytest.mark.parametrize(
    ("dose", "unit", "expected"),
    [(350, 10, 35), (305, 10, 31), (77, 10, 8), (7, 10, 1), (70, 100, 1), (210, 1, 210),
     (D("0.5"), D("0.25"), 2), (D("0.51"), D("0.25"), 3)],
)
def test_administered_units_round_up_to_whole_billing_units(
    dose: Decimal | int, unit: Decimal | int, expected: int
) -> None:
    assert administered_units(dose, unit) == expected


def test_float_amounts_are_read_as_the_number_written() -> None:
    # 0.3 / 0.1 in floats is 2.9999999999999996; the units must still be 3.
    assert administered_units(0.3, 0.1) == 3
    assert drug_billing("J1745", 350.0, 10.0, VIAL_100).lines[0] == line("J1745", 35)


@pytest.mark.parametrize(
    ("dose", "sizes", "expected"),
    [
        pytest.param(300, [100, 400], [(100, 3)], id="A8-300mg"),
        pytest.param(700, [120, 400], [(120, 6)], id="Benlysta-700mg"),
        pytest.param(520, [120, 400], [(400, 1), (120, 1)], id="Benlysta-520mg-mixed"),
        pytest.param(400, [100, 200, 400], [(400, 1)], id="same-waste-fewest-packages"),
        pytest.param(350, [100], [(100, 4)], id="single-size"),
        pytest.param(D("12.5"), [D("2.5"), 10], [(10, 1), (D("2.5"), 1)], id="decimal-sizes"),
    ],
)
def test_least_waste_packages(
    dose: int | Decimal, sizes: list[int | Decimal], expected: list[tuple[int, int]]
) -> None:
    combination = least_waste_packages(D(dose), [Package(D(s)) for s in sizes])
    assert combination == used(*expected)


def test_least_waste_handles_a_10000_mg_dose() -> None:
    combination = least_waste_packages(D(9_995), [Package(D(120)), Package(D(400)), D(105)])
    opened = sum(p.amount * p.count for p in combination)
    assert opened == D(9_995)  # e.g. 400s, 120s and 105s can hit 9,995 exactly


@settings(deadline=None)
@given(
    dose=st.integers(min_value=1, max_value=600),
    sizes=st.lists(st.integers(min_value=5, max_value=200), min_size=1, max_size=3, unique=True),
)
def test_least_waste_matches_brute_force(dose: int, sizes: list[int]) -> None:
    combination = least_waste_packages(dose, [D(s) for s in sizes])
    opened = sum(p.amount * p.count for p in combination)
    count = sum(p.count for p in combination)
    best = _brute_force(dose, sizes)
    assert (opened, count) == best


def _brute_force(dose: int, sizes: list[int]) -> tuple[int, int]:
    """Least (opened, count) over all combinations, by exhaustive search."""
    best: tuple[int, int] | None = None

    def walk(index: int, opened: int, count: int) -> None:
        nonlocal best
        if opened >= dose:
            if best is None or (opened, count) < best:
                best = (opened, count)
            return
        if index == len(sizes):
            return
        for extra in range(0, (dose - opened) // sizes[index] + 2):
            walk(index + 1, opened + extra * sizes[index], count + extra)

    walk(0, 0, 0)
    assert best is not None
    return best


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"dose": D(0)}, "dose must be greater than zero", id="zero-dose"),
        pytest.param({"dose": D(-5)}, "dose must be greater than zero", id="negative-dose"),
        pytest.param({"dose": "lots"}, "dose must be a number", id="not-a-number"),
        pytest.param({"billing_unit_amount": D(0)}, "billing unit must be greater than zero",
                     id="zero-unit"),
        pytest.param({"packages_used": used((100, 3))}, "do not cover the dose", id="short"),
        pytest.param({"packages_used": used((50, 8))}, "package size 50 is not available",
                     id="unknown-size"),
        pytest.param({"packages_used": used((100, 0))}, "must be a whole number >= 1",
                     id="zero-count"),
        pytest.param({"packages_used": ()}, "no packages were opened", id="none-opened"),
        pytest.param({"packages_available": ()}, "no package sizes are available",
                     id="no-packages"),
        pytest.param({"packages_available": (Package(D(100)), Package(D(5), unit="mL"))},
                     "mix units", id="mixed-units"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "hcpcs": "J1745", "dose": D(350), "billing_unit_amount": INFLIXIMAB_UNIT,
        "packages_available": VIAL_100, "packages_used": used((100, 4)),
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        drug_billing(**arguments)  # type: ignore[arg-type]


def test_billing_line_as_dict_is_the_contract_shape() -> None:
    assert line("J1745", 5, "JW").as_dict() == {"code": "J1745", "units": 5, "modifiers": ["JW"]}


@pytest.mark.parametrize(("day", "modifiers"), [
    (dt.date(2023, 6, 30), ()),
    (dt.date(2023, 7, 1), ("JZ",)),
    (None, ("JZ",)),
])
def test_jz_is_expected_once_cms_required_it(day, modifiers) -> None:
    billing = drug_billing("J1745", Decimal(400), Decimal(10), [Package(Decimal(100))],
                           date_of_service=day)
    assert billing.lines == (BillingLine("J1745", 40, modifiers),)


@pytest.mark.parametrize(("day", "lines"), [
    (dt.date(2016, 12, 31), (BillingLine("J1745", 35),)),
    (dt.date(2017, 1, 1), (BillingLine("J1745", 35), BillingLine("J1745", 5, ("JW",)))),
])
def test_jw_is_expected_only_from_2017(day, lines) -> None:
    billing = drug_billing("J1745", Decimal(350), Decimal(10), [Package(Decimal(100))],
                           date_of_service=day)
    assert billing.lines == lines
    assert billing.before_jw_required is (day < dt.date(2017, 1, 1))
