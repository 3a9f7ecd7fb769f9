"""Medically unlikely edits for CPT/HCPCS codes that are not drugs (rules.md E).

Drug MUEs live on the drug record (``Drug.mue_units``) so they are edited with the drugs. This
table holds the few procedure-code values rules.md names. None of them was confirmed against the
CMS Practitioner Services MUE file, so every entry says so; load the quarterly CMS file
(MCR_MUE_PractitionerServices) before relying on them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MueEntry:
    """The most units of a code one provider bills for one patient on one date of service."""

    units: int
    confirmed: bool
    source: str


PROCEDURE_MUES: dict[str, MueEntry] = {
    # Each additional hour of a therapeutic infusion.
    "96366": MueEntry(8, confirmed=False,
                      source="rules.md E: third-party statement (codingahead), UNCONFIRMED"),
    # The old GenVisc hyaluronan code, kept for claims with dates of service before its deletion.
    "Q9980": MueEntry(50, confirmed=False,
                      source="rules.md E: zebucompliance 2018 (MAI 3), UNCONFIRMED"),
}


def procedure_mue(code: str) -> MueEntry | None:
    """Return the MUE entry of a procedure code, or None when no value is known."""
    return PROCEDURE_MUES.get(code)
