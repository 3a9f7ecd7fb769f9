"""Administration CPT codes from infusion times: every example of rules.md C, hierarchy, issues."""

from __future__ import annotations

import datetime as dt

import pytest

from policy_service.billing import BillingLine, Infusion, additional_hours, administration_lines


def at(clock: str) -> dt.time:
    """A time of day from 'HH:MM'."""
    return dt.time.fromisoformat(clock)


def inf(kind: str, start: str | None = None, stop: str | None = None, drug: str | None = None,
        *, complex_drug: bool = False) -> Infusion:
    """An infusion with 'HH:MM' times."""
    return Infusion(kind, start and at(start), stop and at(stop), drug, complex_drug)


def codes(*pairs: tuple[str, int]) -> list[BillingLine]:
    """Expected administration lines as (code, units) pairs, in order."""
    return [BillingLine(code, units) for code, units in pairs]


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(15, 0), (60, 0), (75, 0), (85, 0), (90, 0), (91, 1), (105, 1), (130, 1), (150, 1),
     (151, 2), (211, 3)],
)
def test_additional_hours_need_more_than_30_minutes_past_the_hour(
    minutes: int, expected: int
) -> None:
    assert additional_hours(minutes) == expected


RULES_C_EXAMPLES = [
    pytest.param([inf("therapeutic", "10:00", "11:25")], True,
                 codes(("96365", 1)), id="85min-96365-only"),
    pytest.param([inf("therapeutic", "10:00", "11:30")], True,
                 codes(("96365", 1)), id="90min-96365-only"),
    pytest.param([inf("therapeutic", "10:00", "11:31")], True,
                 codes(("96365", 1), ("96366", 1)), id="91min-plus-96366"),
    pytest.param([inf("therapeutic", "10:00", "12:31")], True,
                 codes(("96365", 1), ("96366", 2)), id="151min-plus-96366x2"),
    pytest.param([inf("therapeutic", "10:00", "11:15")], True,
                 codes(("96365", 1)), id="AAPC-75min"),
    pytest.param([inf("therapeutic", "10:00", "11:45")], True,
                 codes(("96365", 1), ("96366", 1)), id="AAPC-1h45"),
    pytest.param([inf("complex", "10:00", "12:10", "J1745")], True,
                 codes(("96413", 1), ("96415", 1)), id="ACR-infliximab-2h10-complex"),
    pytest.param([inf("complex", "10:00", "12:10", "J1745")], False,
                 codes(("96365", 1), ("96366", 1)), id="payer-bills-biologics-therapeutic"),
    pytest.param([inf("therapeutic", "10:00", "10:15")], True,
                 codes(("96374", 1)), id="15min-is-a-push"),
    pytest.param([inf("therapeutic", "10:00", "10:16")], True,
                 codes(("96365", 1)), id="16min-is-an-infusion"),
    pytest.param([inf("complex", "10:00", "10:10")], True,
                 codes(("96409", 1)), id="short-complex-is-a-complex-push"),
    pytest.param([inf("hydration", "10:00", "10:31")], True,
                 codes(("96360", 1)), id="hydration-31min"),
    pytest.param([inf("hydration", "10:00", "11:31")], True,
                 codes(("96360", 1), ("96361", 1)), id="hydration-91min"),
    pytest.param([inf("hydration", "10:00", "11:30")], True,
                 codes(("96360", 1)), id="hydration-90min"),
    pytest.param([inf("injection", drug="J3111"), inf("injection", drug="J3111")], True,
                 codes(("96372", 1)), id="B-Evenity-two-syringes-one-96372"),
    pytest.param([inf("injection", drug="J3111"), inf("injection", drug="J0897")], True,
                 codes(("96372", 2)), id="two-different-drugs-injected"),
    pytest.param([inf("injection", drug="J9250", complex_drug=True)], True,
                 codes(("96401", 1)), id="complex-injection-96401"),
    pytest.param([inf("injection", drug="J0717", complex_drug=True)], False,
                 codes(("96372", 1)), id="C5-payer-says-96372-not-96401"),
    pytest.param([inf("push", drug="J1100")], True,
                 codes(("96374", 1)), id="push-alone-needs-no-times"),
]


@pytest.mark.parametrize(("infusions", "complex_for_biologics", "expected"), RULES_C_EXAMPLES)
def test_rules_c_examples(
    infusions: list[Infusion], complex_for_biologics: bool, expected: list[BillingLine]
) -> None:
    result = administration_lines(infusions, complex_for_biologics)
    assert list(result.lines) == expected
    assert result.issues == ()


ENCOUNTERS = [
    pytest.param([inf("push", "09:00", "09:05", "J1100"),
                  inf("complex", "10:00", "12:10", "J1745")],
                 codes(("96413", 1), ("96415", 1), ("96375", 1)),
                 id="complex-infusion-beats-an-earlier-push"),
    pytest.param([inf("hydration", "09:00", "09:45"), inf("therapeutic", "10:00", "10:40", "J1")],
                 codes(("96365", 1), ("96361", 1)),
                 id="drug-beats-hydration-which-becomes-96361"),
    pytest.param([inf("hydration", "09:00", "10:00"), inf("push", "10:05", "10:07", "J1100")],
                 codes(("96374", 1), ("96361", 1)),
                 id="therapeutic-push-beats-hydration-infusion"),
    pytest.param([inf("complex", "10:00", "10:10", "J9"), inf("therapeutic", "10:20", "11:20")],
                 codes(("96409", 1), ("96367", 1)),
                 id="complex-push-beats-therapeutic-infusion"),
    pytest.param([inf("push", "09:00", "09:05", "A"), inf("injection", drug="B")],
                 codes(("96374", 1), ("96372", 1)), id="push-beats-injection"),
    pytest.param([inf("therapeutic", "10:00", "11:00", "A"),
                  inf("therapeutic", "11:00", "11:40", "B")],
                 codes(("96365", 1), ("96367", 1)), id="sequential-new-drug-96367"),
    pytest.param([inf("therapeutic", "10:00", "11:00", "A"),
                  inf("therapeutic", "11:00", "12:31", "B")],
                 codes(("96365", 1), ("96367", 1), ("96366", 1)),
                 id="long-sequential-infusion-adds-hours"),
    pytest.param([inf("therapeutic", "10:00", "11:00", "A"),
                  inf("therapeutic", "10:30", "11:10", "B")],
                 codes(("96365", 1), ("96368", 1)), id="overlapping-is-concurrent-96368"),
    pytest.param([inf("therapeutic", "10:00", "12:00", "A"),
                  inf("therapeutic", "10:30", "11:00", "B"),
                  inf("therapeutic", "11:10", "11:50", "C")],
                 codes(("96365", 1), ("96366", 1), ("96368", 1)),
                 id="concurrent-code-once-per-encounter"),
    pytest.param([inf("complex", "10:00", "12:10", "J9312"),
                  inf("complex", "12:10", "13:00", "J1745")],
                 codes(("96413", 1), ("96415", 1), ("96417", 1)), id="sequential-complex-96417"),
    pytest.param([inf("complex", "10:00", "12:10", "J1745"),
                  inf("therapeutic", "12:15", "12:45", "B")],
                 codes(("96413", 1), ("96415", 1), ("96367", 1)),
                 id="therapeutic-after-complex-96367"),
    pytest.param([inf("therapeutic", "10:00", "11:00", "A"), inf("push", "11:05", "11:07", "B"),
                  inf("push", "11:10", "11:12", "C")],
                 codes(("96365", 1), ("96375", 2)), id="two-sequential-pushes"),
    pytest.param([inf("therapeutic", "10:00", "11:00", "A"), inf("hydration", "11:00", "12:31")],
                 codes(("96365", 1), ("96361", 2)), id="sequential-hydration-with-hours"),
]


@pytest.mark.parametrize(("infusions", "expected"), ENCOUNTERS)
def test_one_initial_code_and_add_ons(
    infusions: list[Infusion], expected: list[BillingLine]
) -> None:
    result = administration_lines(infusions)
    assert list(result.lines) == expected
    assert result.issues == ()


def test_hydration_concurrent_with_a_drug_infusion_is_not_billable() -> None:
    result = administration_lines([
        inf("complex", "10:00", "12:10", "J1745"), inf("hydration", "10:00", "11:00"),
    ])
    assert list(result.lines) == codes(("96413", 1), ("96415", 1))
    assert [(i.code, i.infusion_index) for i in result.issues] == [("HYDRATION_NOT_BILLABLE", 1)]
    assert "concurrently" in result.issues[0].message


def test_hydration_of_30_minutes_or_less_is_not_billable() -> None:
    result = administration_lines([inf("hydration", "10:00", "10:30")])
    assert result.lines == ()
    assert [(i.code, i.infusion_index) for i in result.issues] == [("HYDRATION_NOT_BILLABLE", 0)]
    assert "30 minutes" in result.issues[0].message


@pytest.mark.parametrize(
    ("infusion", "missing"),
    [(inf("therapeutic", None, "11:00"), "start"), (inf("complex", "10:00", None), "stop"),
     (inf("hydration"), "start and stop")],
)
def test_missing_times_are_flagged_with_the_infusion_index(
    infusion: Infusion, missing: str
) -> None:
    result = administration_lines([inf("push", drug="J1100"), infusion])
    assert [(i.code, i.infusion_index) for i in result.issues] == [("ADMIN_TIME_MISSING", 1)]
    assert f"no {missing} time" in result.issues[0].message
    # The untimed infusion supports no code, so the push stays the initial service.
    assert list(result.lines) == codes(("96374", 1))


def test_stop_before_start_with_bare_times_is_an_error_naming_the_infusion() -> None:
    with pytest.raises(ValueError, match=r"Infusion 2 \(therapeutic\): stop 00:45:00 is before"):
        administration_lines([inf("push", drug="A"), inf("therapeutic", "23:30", "00:45")])


def test_datetimes_allow_an_infusion_past_midnight() -> None:
    infusion = Infusion("therapeutic", dt.datetime(2026, 3, 10, 23, 30),
                        dt.datetime(2026, 3, 11, 1, 1))
    assert list(administration_lines([infusion]).lines) == codes(("96365", 1), ("96366", 1))


def test_stop_before_start_with_datetimes_is_an_error() -> None:
    infusion = Infusion("complex", dt.datetime(2026, 3, 10, 12), dt.datetime(2026, 3, 10, 11))
    with pytest.raises(ValueError, match="Infusion 1 \\(complex\\): stop"):
        administration_lines([infusion])


def test_mixing_times_and_datetimes_is_refused() -> None:
    with pytest.raises(ValueError, match="all be times of day or all be datetimes"):
        administration_lines([
            inf("therapeutic", "10:00", "11:00"),
            Infusion("hydration", dt.datetime(2026, 3, 10, 9), dt.datetime(2026, 3, 10, 10)),
        ])


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind 'drip'"):
        administration_lines([Infusion("drip", at("10:00"), at("11:00"))])


def test_no_infusions_give_no_lines() -> None:
    result = administration_lines([])
    assert (result.lines, result.issues) == ((), ())
