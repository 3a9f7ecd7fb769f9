"""Build X12 835 files for tests: balanced payments from a few claim and line descriptions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class Cas:
    """One adjustment: group, CARC, amount."""

    group: str
    carc: str
    amount: Decimal | int | str


@dataclass
class Line:
    """One service line; ``paid`` defaults to the charge less its adjustments."""

    code: str
    charged: Decimal | int | str
    units: int | None = None
    modifiers: tuple[str, ...] = ()
    day: dt.date | None = None
    adjustments: list[Cas] = field(default_factory=list)
    rarcs: list[str] = field(default_factory=list)
    authorization: str | None = None

    @property
    def paid(self) -> Decimal:
        """Charge less adjustments: the line balances."""
        return Decimal(self.charged) - sum((Decimal(a.amount) for a in self.adjustments),
                                           Decimal(0))


@dataclass
class Claim:
    """One claim payment (CLP)."""

    reference: str
    lines: list[Line] = field(default_factory=list)
    status: str = "1"
    patient: str | None = "P001"
    authorization: str | None = None
    adjustments: list[Cas] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    day: dt.date | None = None

    @property
    def charged(self) -> Decimal:
        """Sum of the line charges."""
        return sum((Decimal(line.charged) for line in self.lines), Decimal(0))

    @property
    def paid(self) -> Decimal:
        """Charge less every adjustment: the claim balances."""
        return self.charged - sum((Decimal(a.amount) for a in self.adjustments),
                                  Decimal(0)) - sum((Decimal(line.charged) - line.paid
                                                     for line in self.lines), Decimal(0))


def _cas(adjustments: list[Cas]) -> list[str]:
    by_group: dict[str, list[Cas]] = {}
    for adjustment in adjustments:
        by_group.setdefault(adjustment.group, []).append(adjustment)
    return ["CAS*" + group + "".join(f"*{a.carc}*{Decimal(a.amount)}*" for a in items).rstrip("*")
            for group, items in by_group.items()]


def build_835(claims: list[Claim], payer: str = "ACME", trace: str = "TRACE-1",
              paid_on: dt.date = dt.date(2026, 3, 20),
              produced_on: dt.date | None = dt.date(2026, 3, 18),
              default_day: dt.date = dt.date(2026, 3, 10)) -> str:
    """Return a balanced 835 interchange paying ``claims``."""
    total = sum((c.paid for c in claims), Decimal(0))
    body = [
        "ST*835*0001*005010X221A1",
        f"BPR*I*{total}*C*ACH*CCP*01*999999999*DA*123456*1512345678**01*999988880*DA*98765*"
        f"{paid_on:%Y%m%d}",
        f"TRN*1*{trace}*1512345678",
    ]
    if produced_on:
        body.append(f"DTM*405*{produced_on:%Y%m%d}")
    body += [f"N1*PR*{payer} HEALTH*XV*{payer}", "N3*1 PAYER WAY", "N4*CITY*ST*12345",
             "PER*BL*CLAIMS*TE*5555555555", "N1*PE*INFUSION CLINIC*XX*1234567893", "LX*1"]
    for claim in claims:
        body.append(f"CLP*{claim.reference}*{claim.status}*{claim.charged}*{claim.paid}**MC*"
                    f"PCN{claim.reference}*11*1")
        body += _cas(claim.adjustments)
        if claim.patient:
            body.append(f"NM1*QC*1*DOE*JANE****MI*{claim.patient}")
        if claim.remarks:
            body.append("MOA***" + "*".join(claim.remarks))
        if claim.authorization:
            body.append(f"REF*G1*{claim.authorization}")
        body.append(f"DTM*232*{(claim.day or default_day):%Y%m%d}")
        for line in claim.lines:
            composite = ":".join(("HC", line.code, *line.modifiers))
            units = "" if line.units is None else str(line.units)
            body.append(f"SVC*{composite}*{Decimal(line.charged)}*{line.paid}**{units}".rstrip("*"))
            body.append(f"DTM*472*{(line.day or claim.day or default_day):%Y%m%d}")
            body += _cas(line.adjustments)
            if line.authorization:
                body.append(f"REF*G1*{line.authorization}")
            body += [f"LQ*HE*{code}" for code in line.rarcs]
    body.append(f"SE*{len(body) + 1}*0001")
    segments = [
        "ISA*00*          *00*          *ZZ*PAYERSENDER    *ZZ*CLINICRECEIVE  *260320*1200*^*00501"
        "*000000001*0*T*:",
        "GS*HP*PAYERSENDER*CLINICRECEIVE*20260320*1200*1*X*005010X221A1",
        *body,
        "GE*1*1",
        "IEA*1*000000001",
    ]
    return "~\n".join(segments) + "~\n"
