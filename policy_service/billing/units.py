"""Drug units, package choice and JW/JZ discarded-drug lines (rules.md sections A and B).

Pure arithmetic: no Flask, no database. Amounts are exact (Decimal in, Fraction inside), because
a float 0.1 mg drift is enough to bill one unit too many.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Protocol

Amount = Decimal | int | Fraction | str

JW = "JW"
JZ = "JZ"
# CY2023 PFS final rule: JZ available from 2023-01-01, required from 2023-07-01 (rules.md A2).
JZ_REQUIRED_FROM = dt.date(2023, 7, 1)
# CMS required JW on discarded single-dose amounts from 2017-01-01 (rules.md A1); before that
# the modifier was neither expected nor reported by this service.
JW_REQUIRED_FROM = dt.date(2017, 1, 1)

# Guard for the package search: beyond this many amount steps the caller sent something absurd
# (e.g. sizes whose common step is 0.001 mg); refusing beats a multi-second stall.
MAX_SEARCH_STEPS = 500_000


class PackageLike(Protocol):
    """Anything describing a package size (Package here, PackageView in the policy index)."""

    @property
    def amount(self) -> Decimal:
        """Package content in the dose unit."""

    @property
    def single_dose(self) -> bool:
        """True for single-dose (single-use) containers."""

    @property
    def unit(self) -> str:
        """Unit of ``amount`` (mg)."""


@dataclass(frozen=True, slots=True)
class Package:
    """A package size the manufacturer sells (vial, syringe), in the unit of the dose."""

    amount: Decimal
    single_dose: bool = True
    unit: str = "mg"


@dataclass(frozen=True, slots=True)
class PackageCount:
    """How many packages of one size were opened."""

    amount: Decimal
    count: int


@dataclass(frozen=True, slots=True)
class BillingLine:
    """One claim line: a code, its units and its modifiers."""

    code: str
    units: int
    modifiers: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """Return the line in the contract's JSON shape."""
        return {"code": self.code, "units": self.units, "modifiers": list(self.modifiers)}


@dataclass(frozen=True, slots=True)
class DrugBilling:
    """The drug lines a claim needs, and the arithmetic behind them."""

    administered_units: int
    discarded_units: int
    opened_amount: Decimal
    lines: tuple[BillingLine, ...]
    jw_jz_applies: bool
    packages_used: tuple[PackageCount, ...]
    waste_above_optimal_units: int = 0
    # The smallest combination of vials for the dose, when the ones opened wasted more (A8).
    optimal_packages: tuple[PackageCount, ...] = ()
    # What is payable: the lines with only the waste of the smallest combination (A8), so no
    # JW line (JZ instead, where JW/JZ apply) when that combination wastes nothing.
    payable_lines: tuple[BillingLine, ...] = ()
    # JW/JZ would apply, but the date of service is before JW was required (A1).
    before_jw_required: bool = False


def administered_units(dose_amount: Amount, billing_unit_amount: Amount) -> int:
    """Return the billed units for a dose: the dose rounded UP to whole billing units."""
    dose = _positive(dose_amount, "dose")
    unit = _positive(billing_unit_amount, "billing unit")
    return math.ceil(dose / unit)


def least_waste_packages(
    dose: Amount, packages: Iterable[PackageLike | Amount]
) -> tuple[PackageCount, ...]:
    """Return the package sizes covering ``dose`` with the least waste, then fewest packages."""
    needed = _positive(dose, "dose")
    sizes = sorted({_positive(_amount_of(p), "package amount") for p in packages}, reverse=True)
    if not sizes:
        raise ValueError("no package sizes are available to cover the dose")
    step = _common_step(sizes)
    size_steps = [int(size / step) for size in sizes]
    target = math.ceil(needed / step)
    # Opening only the largest size already covers the dose with less than one package of waste,
    # so the least-waste total lies in [target, target + largest).
    limit = target + size_steps[0]
    if limit > MAX_SEARCH_STEPS:
        raise ValueError(
            f"dose {needed} with package sizes {[str(s) for s in sizes]} needs too fine a search"
        )
    fewest, last_size = _fewest_packages_table(size_steps, limit)
    total = next(t for t in range(target, limit) if fewest[t] is not None)
    counts: dict[int, int] = {}
    while total:
        counts[last_size[total]] = counts.get(last_size[total], 0) + 1
        total -= last_size[total]
    return tuple(
        PackageCount(_to_decimal(s * step), counts[s]) for s in size_steps if s in counts
    )


def drug_billing(
    hcpcs: str,
    dose: Amount,
    billing_unit_amount: Amount,
    packages_available: Sequence[PackageLike],
    packages_used: Sequence[PackageCount] | None = None,
    payer_uses_jw_jz: bool = True,
    date_of_service: dt.date | None = None,
) -> DrugBilling:
    """Return the drug claim lines (administered, JW waste or JZ) for one administration."""
    available = tuple(p if isinstance(p, Package) else Package(p.amount, p.single_dose, p.unit)
                      for p in packages_available)
    return _drug_billing(hcpcs, dose, billing_unit_amount, available,
                         tuple(packages_used) if packages_used is not None else None,
                         payer_uses_jw_jz, date_of_service)


# A pure function of immutable inputs: the same dose of the same drug (a standing series, a
# schedule replayed under a draft policy) is priced once. Bounded; no revision key is needed
# because nothing outside the arguments is read.
@functools.lru_cache(maxsize=4096)
def _drug_billing(
    hcpcs: str,
    dose: Amount,
    billing_unit_amount: Amount,
    packages_available: tuple[Package, ...],
    packages_used: tuple[PackageCount, ...] | None,
    payer_uses_jw_jz: bool,
    date_of_service: dt.date | None,
) -> DrugBilling:
    dose_q = _positive(dose, f"{hcpcs} dose")
    unit_q = _positive(billing_unit_amount, f"{hcpcs} billing unit")
    by_amount = _available_by_amount(hcpcs, packages_available)
    administered = math.ceil(dose_q / unit_q)
    single_dose_sizes = [a for a, p in by_amount.items() if p.single_dose]

    if packages_used is None:
        # Prefer single-dose sizes when both exist: that is how the dose is normally drawn.
        used = least_waste_packages(dose_q, single_dose_sizes or list(by_amount))
    else:
        used = _checked_used(hcpcs, packages_used, by_amount)
    opened = sum((Fraction(p.amount) * p.count for p in used), Fraction(0))
    if opened < dose_q:
        raise ValueError(
            f"{hcpcs}: the packages opened ({_to_decimal(opened)}) do not cover "
            f"the dose ({_to_decimal(dose_q)})"
        )

    # Waste from a multi-dose container is neither billable nor reported (A4).
    single_dose_only = all(by_amount[Fraction(p.amount)].single_dose for p in used)
    # Round administered up and discarded down: together they never exceed the vial label (A9).
    discarded = max(0, math.floor(opened / unit_q) - administered) if single_dose_only else 0
    before_jw_required = date_of_service is not None and date_of_service < JW_REQUIRED_FROM
    jw_jz_applies = payer_uses_jw_jz and single_dose_only and not before_jw_required

    above_optimal = 0
    best: tuple[PackageCount, ...] = ()
    if packages_used is not None and single_dose_only:
        best = least_waste_packages(dose_q, single_dose_sizes)
        best_opened = sum((Fraction(p.amount) * p.count for p in best), Fraction(0))
        best_discarded = max(0, math.floor(best_opened / unit_q) - administered)
        above_optimal = max(0, discarded - best_discarded)

    jz_required = date_of_service is None or date_of_service >= JZ_REQUIRED_FROM
    lines = drug_lines(hcpcs, administered, discarded, jw_jz_applies, jz_required=jz_required)
    return DrugBilling(
        administered_units=administered,
        discarded_units=discarded,
        opened_amount=_to_decimal(opened),
        lines=lines,
        jw_jz_applies=jw_jz_applies,
        packages_used=used,
        waste_above_optimal_units=above_optimal,
        optimal_packages=best if above_optimal else (),
        payable_lines=drug_lines(hcpcs, administered, discarded - above_optimal, jw_jz_applies,
                                 jz_required=jz_required) if above_optimal else lines,
        before_jw_required=before_jw_required and payer_uses_jw_jz and single_dose_only,
    )


def drug_lines(
    hcpcs: str, administered: int, discarded: int, jw_jz_applies: bool, jz_required: bool = True
) -> tuple[BillingLine, ...]:
    """Return the claim lines for administered and discarded units (A5-A7)."""
    if not jw_jz_applies:
        return (BillingLine(hcpcs, administered),)
    if discarded >= 1:
        return (BillingLine(hcpcs, administered), BillingLine(hcpcs, discarded, (JW,)))
    # Nothing, or less than one billing unit, discarded: JZ on the single line (A7), once
    # JZ is required (A2).
    return (BillingLine(hcpcs, administered, (JZ,) if jz_required else ()),)


def _fewest_packages_table(
    size_steps: Sequence[int], limit: int
) -> tuple[list[int | None], list[int]]:
    """For every total below ``limit`` (in steps), the fewest packages summing to it exactly."""
    fewest: list[int | None] = [0] + [None] * (limit - 1)
    last_size = [0] * limit
    for total in range(1, limit):
        for size in size_steps:
            if size > total:
                continue
            before = fewest[total - size]
            if before is not None and (fewest[total] is None or before + 1 < fewest[total]):
                fewest[total] = before + 1
                last_size[total] = size
    return fewest, last_size


def _available_by_amount(
    hcpcs: str, packages: Sequence[PackageLike]
) -> dict[Fraction, PackageLike]:
    """Index the available packages by exact amount, checking they are usable."""
    if not packages:
        raise ValueError(f"{hcpcs}: no package sizes are available")
    units = {p.unit for p in packages}
    if len(units) > 1:
        raise ValueError(f"{hcpcs}: package sizes mix units {sorted(units)}")
    return {_positive(p.amount, f"{hcpcs} package amount"): p for p in packages}


def _checked_used(
    hcpcs: str, used: Sequence[PackageCount], by_amount: dict[Fraction, PackageLike]
) -> tuple[PackageCount, ...]:
    """Check the packages said to be opened exist for the drug and have positive counts."""
    if not used:
        raise ValueError(f"{hcpcs}: no packages were opened")
    checked = []
    for package in used:
        amount = _positive(package.amount, f"{hcpcs} package amount")
        if amount not in by_amount:
            sizes = ", ".join(str(_to_decimal(a)) for a in by_amount)
            raise ValueError(
                f"{hcpcs}: package size {package.amount} is not available (sizes: {sizes})"
            )
        if isinstance(package.count, bool) or not isinstance(package.count, int) \
                or package.count < 1:
            raise ValueError(
                f"{hcpcs}: package count for {package.amount} must be a whole number >= 1"
            )
        checked.append(PackageCount(_to_decimal(amount), package.count))
    return tuple(checked)


def _amount_of(package: PackageLike | Amount) -> Amount:
    """The amount of a package object, or the value itself when given a bare amount."""
    return package if isinstance(package, Decimal | int | Fraction | str) else package.amount


def _positive(value: Amount, what: str) -> Fraction:
    """Return ``value`` as an exact Fraction, refusing zero, negatives and non-numbers."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a number, not {value!r}")
    if isinstance(value, float):
        # JSON numbers may arrive as floats; their shortest repr is what the user typed.
        value = Decimal(repr(value))
    try:
        exact = Fraction(value)
    except (TypeError, ValueError, ArithmeticError):
        raise ValueError(f"{what} must be a number, not {value!r}") from None
    if exact <= 0:
        raise ValueError(f"{what} must be greater than zero, got {value}")
    return exact


def _common_step(sizes: Sequence[Fraction]) -> Fraction:
    """The largest amount every size is a whole multiple of (gcd of fractions)."""
    scale = math.lcm(*(s.denominator for s in sizes))
    return Fraction(math.gcd(*(int(s * scale) for s in sizes)), scale)


def _to_decimal(value: Fraction) -> Decimal:
    """Exact Decimal for amounts that came in as decimals (normalised, no exponent noise)."""
    result = Decimal(value.numerator) / Decimal(value.denominator)
    return result.quantize(Decimal(1)) if result == result.to_integral_value() else result
