"""Drug-administration CPT codes from infusion start and stop times (rules.md C1-C4).

Pure: a list of infusions in, the expected administration lines and the problems found out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from policy_service.billing.units import BillingLine

KINDS = ("complex", "therapeutic", "hydration", "push", "injection")
ADMIN_TIME_MISSING = "ADMIN_TIME_MISSING"
HYDRATION_NOT_BILLABLE = "HYDRATION_NOT_BILLABLE"

PUSH_MAX_MINUTES = 15  # an "infusion" of 15 minutes or less is a push (C1)
HYDRATION_MIN_MINUTES = 31  # hydration of 30 minutes or less is not reported (C1)

# C3: complex > therapeutic > hydration, then infusion > push > injection.
CATEGORY_RANK = {"complex": 0, "therapeutic": 1, "hydration": 2}
MODE_RANK = {"infusion": 0, "push": 1, "injection": 2}

INITIAL_CODES = {
    ("complex", "infusion"): "96413",
    ("complex", "push"): "96409",
    ("complex", "injection"): "96401",
    ("therapeutic", "infusion"): "96365",
    ("therapeutic", "push"): "96374",
    ("therapeutic", "injection"): "96372",
    ("hydration", "infusion"): "96360",
}
SEQUENTIAL_CODES = {
    ("complex", "infusion"): "96417",
    ("complex", "push"): "96411",
    ("therapeutic", "infusion"): "96367",
    ("therapeutic", "push"): "96375",
    ("hydration", "infusion"): "96361",
}
ADDITIONAL_HOUR_CODES = {"complex": "96415", "therapeutic": "96366", "hydration": "96361"}
CONCURRENT_CODE = "96368"

# Time-only infusions are placed on one arbitrary day so they can be compared.
_ANY_DAY = dt.date(2000, 1, 1)

Clock = dt.time | dt.datetime
Window = tuple[dt.datetime, dt.datetime]


@dataclass(frozen=True, slots=True)
class Infusion:
    """One administration at an encounter, as documented (times may be missing).

    ``complex_drug`` marks a push or injection of a complex drug (96409 / 96401); an infusion's
    complexity is its kind.
    """

    kind: str
    start: Clock | None = None
    stop: Clock | None = None
    drug: str | None = None
    complex_drug: bool = False


@dataclass(frozen=True, slots=True)
class AdministrationIssue:
    """A problem with one infusion that a biller must see (finding code of the contract)."""

    code: str
    infusion_index: int
    message: str


@dataclass(frozen=True, slots=True)
class AdministrationLines:
    """The administration lines the encounter supports, and the issues found."""

    lines: tuple[BillingLine, ...]
    issues: tuple[AdministrationIssue, ...]


@dataclass(frozen=True, slots=True)
class _Service:
    """An infusion reduced to what coding needs."""

    index: int
    category: str
    mode: str
    minutes: int | None
    window: Window | None
    drug: str | None

    def hierarchy_key(self) -> tuple[int, int, bool, dt.datetime, int]:
        """Sort key for choosing the initial code: best category, best mode, then earliest."""
        start = self.window[0] if self.window else dt.datetime.max
        return (CATEGORY_RANK[self.category], MODE_RANK[self.mode], self.window is None, start,
                self.index)


def additional_hours(minutes: int) -> int:
    """Add-on hours after the first: each counts only once MORE than 30 minutes of it ran."""
    # 90 min -> 0, 91 -> 1, 150 -> 1, 151 -> 2.
    return max(0, (minutes - 31) // 60)


def administration_lines(
    infusions: Sequence[Infusion], complex_for_biologics: bool = True
) -> AdministrationLines:
    """Return the administration CPT lines an encounter's infusions support, with issues."""
    _check_clock_types(infusions)
    issues: list[AdministrationIssue] = []
    services = [
        service
        for index, infusion in enumerate(infusions)
        if (service := _service(index, infusion, complex_for_biologics, issues)) is not None
    ]
    services = _drop_concurrent_hydration(services, issues)
    if not services:
        return AdministrationLines((), tuple(issues))

    initial = min(services, key=_Service.hierarchy_key)
    units: dict[str, int] = {}
    _add(units, INITIAL_CODES[(initial.category, initial.mode)])
    _add_hours(units, initial)
    injected = {(initial.category, initial.drug)} if initial.mode == "injection" else set()
    placed = [initial]
    others = sorted((s for s in services if s is not initial), key=_chronological)
    for service in others:
        _add_subsequent(units, service, placed, injected)
        placed.append(service)
    lines = tuple(BillingLine(code, count) for code, count in units.items())
    return AdministrationLines(lines, tuple(issues))


def _service(
    index: int, infusion: Infusion, complex_for_biologics: bool,
    issues: list[AdministrationIssue],
) -> _Service | None:
    """Classify one infusion, or record why it supports no code and return None."""
    if infusion.kind not in KINDS:
        raise ValueError(f"Infusion {index + 1}: unknown kind {infusion.kind!r} (one of {KINDS})")
    timed = infusion.start is not None and infusion.stop is not None
    is_infusion_kind = infusion.kind in CATEGORY_RANK
    if is_infusion_kind and not timed:
        missing = " and ".join(
            name for name in ("start", "stop") if getattr(infusion, name) is None
        )
        issues.append(AdministrationIssue(
            ADMIN_TIME_MISSING, index,
            f"Infusion {index + 1} ({infusion.kind}) has no {missing} time; infusion codes "
            "need documented start and stop times.",
        ))
        return None
    window = _window(index, infusion) if timed else None
    minutes = _minutes(window) if window else None

    if infusion.kind == "hydration":
        if minutes is not None and minutes < HYDRATION_MIN_MINUTES:
            issues.append(AdministrationIssue(
                HYDRATION_NOT_BILLABLE, index,
                f"Hydration {index + 1} ran {minutes} minutes; hydration of 30 minutes or less "
                "is not billable.",
            ))
            return None
        return _Service(index, "hydration", "infusion", minutes, window, infusion.drug)

    is_complex = infusion.kind == "complex" or infusion.complex_drug
    # Payer setting: some payers want rheum biologics on therapeutic codes (C5).
    category = "complex" if is_complex and complex_for_biologics else "therapeutic"
    if infusion.kind in ("push", "injection"):
        mode = infusion.kind
    else:
        mode = "push" if minutes is not None and minutes <= PUSH_MAX_MINUTES else "infusion"
    return _Service(index, category, mode, minutes, window, infusion.drug)


def _drop_concurrent_hydration(
    services: list[_Service], issues: list[AdministrationIssue]
) -> list[_Service]:
    """Remove hydration running at the same time as a drug infusion (C4), recording why."""
    drug_windows = [
        s.window for s in services
        if s.category != "hydration" and s.mode == "infusion" and s.window
    ]
    kept = []
    for service in services:
        if service.category == "hydration" and service.window and any(
            _overlap(service.window, other) for other in drug_windows
        ):
            issues.append(AdministrationIssue(
                HYDRATION_NOT_BILLABLE, service.index,
                f"Hydration {service.index + 1} ran concurrently with a drug infusion; "
                "concurrent hydration is not separately billable.",
            ))
            continue
        kept.append(service)
    return kept


def _add_subsequent(
    units: dict[str, int], service: _Service, placed: list[_Service],
    injected: set[tuple[str, str | None]],
) -> None:
    """Add the add-on (or per-injection) code for a service after the initial one."""
    if service.mode == "injection":
        # Several syringes of the same drug are one administration (rules.md B, Evenity).
        key = (service.category, service.drug)
        if service.drug is None or key not in injected:
            _add(units, INITIAL_CODES[(service.category, "injection")])
        injected.add(key)
        return
    if service.mode == "infusion" and service.category != "hydration" and any(
        other.mode == "infusion" and other.window and service.window
        and _overlap(service.window, other.window)
        for other in placed
    ):
        # CPT: the concurrent infusion code is reported once per encounter.
        units.setdefault(CONCURRENT_CODE, 1)
        return
    _add(units, SEQUENTIAL_CODES[(service.category, service.mode)])
    _add_hours(units, service)


def _add_hours(units: dict[str, int], service: _Service) -> None:
    """Add the additional-hour code for the hours an infusion ran past its first."""
    if service.mode == "infusion" and service.minutes is not None:
        extra = additional_hours(service.minutes)
        if extra:
            _add(units, ADDITIONAL_HOUR_CODES[service.category], extra)


def _add(units: dict[str, int], code: str, count: int = 1) -> None:
    """Add units to a code (dict order keeps the initial code first)."""
    units[code] = units.get(code, 0) + count


def _chronological(service: _Service) -> tuple[bool, dt.datetime, int]:
    """Order of the add-on services: by start, untimed last, then as listed."""
    start = service.window[0] if service.window else dt.datetime.max
    return (service.window is None, start, service.index)


def _overlap(first: Window, second: Window) -> bool:
    """True when two time windows share more than an instant (end-to-start is sequential)."""
    return first[0] < second[1] and second[0] < first[1]


def _window(index: int, infusion: Infusion) -> Window:
    """The infusion's start and stop as datetimes, refusing a stop before the start."""
    start, stop = infusion.start, infusion.stop
    label = f"Infusion {index + 1} ({infusion.kind})"
    if isinstance(start, dt.datetime) and isinstance(stop, dt.datetime):
        window, hint = (start, stop), ""
    elif isinstance(start, dt.time) and isinstance(stop, dt.time):
        window = (dt.datetime.combine(_ANY_DAY, start), dt.datetime.combine(_ANY_DAY, stop))
        hint = " (give dates with the times for an infusion past midnight)"
    else:
        raise ValueError(f"{label}: start and stop must both be times or both be datetimes")
    if window[1] < window[0]:
        raise ValueError(f"{label}: stop {stop} is before start {start}{hint}")
    return window


def _minutes(window: Window) -> int:
    """Whole minutes a window lasted (documented times are to the minute)."""
    return int((window[1] - window[0]).total_seconds() // 60)


def _check_clock_types(infusions: Sequence[Infusion]) -> None:
    """Refuse an encounter mixing bare times and datetimes: they cannot be compared."""
    kinds = {
        isinstance(clock, dt.datetime)
        for infusion in infusions
        for clock in (infusion.start, infusion.stop)
        if clock is not None
    }
    if len(kinds) > 1:
        raise ValueError("infusion times must all be times of day or all be datetimes")
