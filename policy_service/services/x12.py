"""X12 837P (005010X222A1) professional claims -> claim-check input.

pyx12's ``X12Reader`` splits the interchange with the delimiters its ISA declares and checks the
envelope (ISA/IEA, GS/GE, ST/SE counts, HL and LX numbering). We walk its segments and read what
the claim check needs:

- payer: NM109 of the payer name (NM1*PR, loop 2010BB); patient: NM109 of the subscriber
  (NM1*IL, loop 2010BA) and DMG02 birth date;
- claim: CLM01 reference, CLM05-1 place of service, HI diagnoses, REF*G1 prior authorization;
- service lines: SV101 code and modifiers, SV104 units, DTP*472 date of service (the first line's
  date is the claim's), LIN*N4 NDC and CTP04/CTP05 drug quantity (ME = milligrams given);
- infusion times from NTE notes (claim or line), our convention because 837P has no element for
  them: ``INFUSION <KIND> HH:MM-HH:MM`` or ``INFUSION <KIND> <N> MIN``, several separated by ";";
- submitted_on: BHT04, the day the file was created (the payer's receipt date is not in it).

Every problem is collected and raised as one ``Invalid`` naming the segment (its position in the
file, ISA = 1) and element, so a malformed file never ends in a traceback.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from pyx12.errors import X12Error
from pyx12.segment import Segment
from pyx12.x12file import X12Reader

from policy_service.billing.administration import KINDS, Infusion
from policy_service.domain.codes import hcpcs_error
from policy_service.domain.icd10 import code_error, normalise_code
from policy_service.domain.requests import Claim, ClaimAdministration, ClaimLine
from policy_service.errors import Invalid
from policy_service.services.claims import check_claim

TIMES = re.compile(r"^INFUSION\s+(?P<kind>[A-Z]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*"
                   r"(?P<stop>\d{1,2}:\d{2})$")
MINUTES = re.compile(r"^INFUSION\s+(?P<kind>[A-Z]+)\s+(?P<minutes>\d{1,4})\s*MIN$")
# Minutes-only infusions are laid end to end from this arbitrary clock time.
_MINUTES_ORIGIN = dt.time(8, 0)
MODIFIER = re.compile(r"^[A-Z0-9]{2}$")
DIAGNOSIS_QUALIFIERS = {"ABK", "ABF", "BK", "BF"}


@dataclass
class _ClaimBuilder:
    """What has been read of one CLM loop so far."""

    reference: str
    segment: int
    payer: str | None
    patient_id: str | None
    birth_date: dt.date | None
    place_of_service: str | None
    diagnoses: list[str] = field(default_factory=list)
    authorization_number: str | None = None
    lines: list[ClaimLine] = field(default_factory=list)
    line_dates: list[dt.date] = field(default_factory=list)
    drug_mg: dict[int, Decimal] = field(default_factory=dict)
    notes: list[tuple[int, str]] = field(default_factory=list)


@dataclass(frozen=True)
class X12Claim:
    """One claim read from the file, ready for the claim check."""

    reference: str
    claim: Claim


class _Errors:
    """Collects ``segment N (ID), element XXnn`` -> messages."""

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}

    def add(self, position: int, seg_id: str, element: str | None, message: str) -> None:
        """Record one problem at a segment (and element)."""
        where = f"segment {position} ({seg_id})" + (f", element {element}" if element else "")
        self.items.setdefault(where, []).append(message)


def _value(segment: Segment, ref: str) -> str:
    return (segment.get_value(ref) or "").strip()


def _date(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%Y%m%d").date()


def read_837(text: str) -> list[X12Claim]:
    """Read every claim of an 837P interchange; raise Invalid naming each bad segment."""
    errors = _Errors()
    try:
        reader = X12Reader(io.StringIO(text))
    except X12Error as exc:
        raise Invalid({"segment 1 (ISA)": [str(exc)]}) from None
    if reader.icvn != "00501":
        raise Invalid({"segment 1 (ISA), element ISA12": [
            f"Version {reader.icvn} is not 00501 (837P 005010X222A1)."]})
    builders: list[_ClaimBuilder] = []
    state: dict[str, Any] = {"payer": None, "patient": None, "birth": None, "submitted": None,
                             "transaction": None, "line": None}
    position = 0
    try:
        for position, segment in enumerate(reader, start=1):
            for error in reader.pop_errors():
                errors.add(position, segment.get_seg_id() or "?", None, error[2])
            _read_segment(segment, position, state, builders, errors)
        reader.cleanup()
    except X12Error as exc:
        errors.add(position + 1, "?", None, str(exc))
    for error in reader.pop_errors():
        errors.add(position, "end of file", None, error[2])
    if state["transaction"] not in ("005010X222A1", None) and not errors.items:
        errors.add(3, "ST", "ST03", f"{state['transaction']} is not an 837P (005010X222A1).")
    if not builders and not errors.items:
        errors.add(position, "end of file", None, "The file holds no claim (CLM segment).")
    claims = [_finish(b, state["submitted"], errors) for b in builders]
    if errors.items:
        raise Invalid(errors.items, detail="Malformed 837P file")
    return [c for c in claims if c is not None]


def _read_segment(segment: Segment, position: int, state: dict[str, Any],
                  builders: list[_ClaimBuilder], errors: _Errors) -> None:
    """Update the reading state with one segment."""
    seg_id = segment.get_seg_id() or "?"
    current = builders[-1] if builders else None
    if seg_id == "ST":
        state["transaction"] = _value(segment, "ST03") or None
        if _value(segment, "ST01") != "837":
            errors.add(position, seg_id, "ST01", "Only 837 claim transactions are read.")
    elif seg_id == "BHT":
        try:
            state["submitted"] = _date(_value(segment, "BHT04"))
        except ValueError:
            errors.add(position, seg_id, "BHT04", "Expected the creation date as CCYYMMDD.")
    elif seg_id == "HL":
        state["line"] = None
    elif seg_id == "NM1" and _value(segment, "NM101") == "PR":
        state["payer"] = _value(segment, "NM109") or None
        if state["payer"] is None:
            errors.add(position, seg_id, "NM109", "The payer identifier is missing.")
    elif seg_id == "NM1" and _value(segment, "NM101") == "IL":
        state["patient"] = _value(segment, "NM109") or None
        if state["patient"] is None:
            errors.add(position, seg_id, "NM109", "The subscriber member id is missing.")
    elif seg_id == "DMG" and _value(segment, "DMG01") == "D8":
        try:
            state["birth"] = _date(_value(segment, "DMG02"))
        except ValueError:
            errors.add(position, seg_id, "DMG02", "Expected a birth date as CCYYMMDD.")
    elif seg_id == "CLM":
        reference = _value(segment, "CLM01")
        if not reference:
            errors.add(position, seg_id, "CLM01", "The claim submitter's identifier is missing.")
        pos = _value(segment, "CLM05-1")
        if not re.fullmatch(r"\d{2}", pos):
            errors.add(position, seg_id, "CLM05-1", f"{pos!r} is not a place of service code.")
        builders.append(_ClaimBuilder(reference or f"claim at segment {position}", position,
                                      state["payer"], state["patient"], state["birth"],
                                      pos or None))
        state["line"] = None
    elif current is None:
        return
    elif seg_id == "HI":
        _read_diagnoses(segment, position, current, errors)
    elif seg_id == "REF" and _value(segment, "REF01") == "G1" and state["line"] is None:
        current.authorization_number = _value(segment, "REF02") or None
    elif seg_id == "NTE":
        current.notes.append((position, _value(segment, "NTE02").upper()))
    elif seg_id == "LX":
        state["line"] = len(current.lines)
    elif seg_id == "SV1":
        _read_service_line(segment, position, current, errors)
    elif seg_id == "DTP" and _value(segment, "DTP01") == "472":
        _read_service_date(segment, position, current, errors)
    elif seg_id == "LIN" and current.lines:
        ndc = _value(segment, "LIN03")
        if _value(segment, "LIN02") != "N4" or not re.fullmatch(r"\d{11}", ndc):
            errors.add(position, seg_id, "LIN03", "Expected N4 and an 11-digit NDC.")
        else:
            last = current.lines[-1]
            current.lines[-1] = ClaimLine(last.code, last.units, last.modifiers,
                                          f"{ndc[:5]}-{ndc[5:9]}-{ndc[9:]}")
    elif seg_id == "CTP" and current.lines and _value(segment, "CTP05-1") == "ME":
        try:
            current.drug_mg[len(current.lines) - 1] = Decimal(_value(segment, "CTP04"))
        except InvalidOperation:
            errors.add(position, seg_id, "CTP04", "The drug quantity is not a number.")


def _read_diagnoses(segment: Segment, position: int, claim: _ClaimBuilder,
                    errors: _Errors) -> None:
    for number in range(1, 13):
        ref = f"HI{number:02d}"
        qualifier = _value(segment, f"{ref}-1")
        if not qualifier:
            continue
        raw = _value(segment, f"{ref}-2")
        if qualifier not in DIAGNOSIS_QUALIFIERS:
            errors.add(position, "HI", f"{ref}-1", f"{qualifier!r} is not an ICD-10 qualifier.")
            continue
        code = f"{raw[:3]}.{raw[3:]}" if len(raw) > 3 and "." not in raw else raw
        problem = code_error(code)
        if problem:
            errors.add(position, "HI", f"{ref}-2", problem)
        else:
            claim.diagnoses.append(normalise_code(code))


def _read_service_line(segment: Segment, position: int, claim: _ClaimBuilder,
                       errors: _Errors) -> None:
    qualifier = _value(segment, "SV101-1")
    code = _value(segment, "SV101-2")
    bad = False
    if qualifier != "HC":
        errors.add(position, "SV1", "SV101-1", "Expected HC (HCPCS/CPT) as the code qualifier.")
        bad = True
    if hcpcs_error(code):
        errors.add(position, "SV1", "SV101-2", f"{code!r} is not a HCPCS or CPT code.")
        bad = True
    modifiers = tuple(m for m in (_value(segment, f"SV101-{i}") for i in range(3, 7)) if m)
    for offset, modifier in enumerate(modifiers, start=3):
        if not MODIFIER.match(modifier):
            errors.add(position, "SV1", f"SV101-{offset}", f"{modifier!r} is not a modifier.")
            bad = True
    if _value(segment, "SV103") != "UN":
        errors.add(position, "SV1", "SV103", "Expected UN (units) as the unit of measure.")
        bad = True
    units_text = _value(segment, "SV104")
    try:
        units = Decimal(units_text)
        if units <= 0 or units != units.to_integral_value():
            raise InvalidOperation
    except InvalidOperation:
        errors.add(position, "SV1", "SV104", f"{units_text!r} is not a whole number of units.")
        bad = True
    if not bad:
        claim.lines.append(ClaimLine(code, int(units), modifiers))
    else:
        # Keep positions aligned with LX so later LIN/CTP/DTP do not attach to the wrong line.
        claim.lines.append(ClaimLine(code or "?", 1, ()))


def _read_service_date(segment: Segment, position: int, claim: _ClaimBuilder,
                       errors: _Errors) -> None:
    text = _value(segment, "DTP03")
    qualifier = _value(segment, "DTP02")
    try:
        claim.line_dates.append(_date(text if qualifier == "D8" else text.split("-")[0]))
    except ValueError:
        errors.add(position, "DTP", "DTP03", f"{text!r} is not a date (CCYYMMDD).")


def _infusions(claim: _ClaimBuilder, errors: _Errors) -> list[Infusion]:
    infusions: list[Infusion] = []
    clock = dt.datetime.combine(dt.date(2000, 1, 1), _MINUTES_ORIGIN)
    for position, note in claim.notes:
        for part in (p.strip() for p in note.split(";")):
            if not part.startswith("INFUSION"):
                continue
            times, minutes = TIMES.match(part), MINUTES.match(part)
            match = times or minutes
            kind = match.group("kind").lower() if match else ""
            if match is None or kind not in KINDS:
                errors.add(position, "NTE", "NTE02",
                           f"{part!r}: write INFUSION <{'|'.join(KINDS).upper()}> HH:MM-HH:MM "
                           "or INFUSION <KIND> <N> MIN.")
                continue
            if times is not None:
                try:
                    start = dt.time.fromisoformat(times.group("start").zfill(5))
                    stop = dt.time.fromisoformat(times.group("stop").zfill(5))
                except ValueError:
                    errors.add(position, "NTE", "NTE02", f"{part!r}: not a time of day.")
                    continue
                infusions.append(Infusion(kind, start, stop))
            else:
                end = clock + dt.timedelta(minutes=int(match.group("minutes")))
                infusions.append(Infusion(kind, clock, end))
                clock = end
    kinds = {type(i.start) for i in infusions}
    if len(kinds) > 1:
        errors.add(claim.notes[0][0], "NTE", "NTE02",
                   "Give every infusion as times or every infusion as minutes, not both.")
        return []
    return infusions


def _finish(claim: _ClaimBuilder, submitted: dt.date | None, errors: _Errors) -> X12Claim | None:
    """Turn one read CLM loop into the claim check's input."""
    where = (claim.segment, "CLM")
    if claim.payer is None:
        errors.add(*where, None, "No payer (NM1*PR) precedes this claim.")
    if claim.patient_id is None:
        errors.add(*where, None, "No subscriber (NM1*IL) precedes this claim.")
    if not claim.lines:
        errors.add(*where, None, "The claim has no service line (SV1).")
    if not claim.line_dates:
        errors.add(*where, None, "No service date (DTP*472) was given.")
    infusions = _infusions(claim, errors)
    if claim.payer is None or claim.patient_id is None or not claim.lines \
            or not claim.line_dates:
        return None
    administration = None
    drug_line = next((i for i in sorted(claim.drug_mg) if "JW" not in claim.lines[i].modifiers),
                     None)
    if drug_line is not None:
        administration = ClaimAdministration(hcpcs=claim.lines[drug_line].code,
                                             administered_mg=claim.drug_mg[drug_line],
                                             infusions=infusions or None)
    elif infusions:
        # Hydration only, or a patient-supplied drug: the times still decide the codes.
        administration = ClaimAdministration(infusions=infusions)
    return X12Claim(claim.reference, Claim(
        payer=claim.payer, patient_id=claim.patient_id, birth_date=claim.birth_date,
        date_of_service=claim.line_dates[0], submitted_on=submitted,
        diagnosis_codes=claim.diagnoses, authorization_number=claim.authorization_number,
        place_of_service=claim.place_of_service, administration=administration,
        lines=claim.lines))


def check_837(text: str) -> list[dict[str, Any]]:
    """Check every claim of an 837P file; a claim naming unknown data gets its own error."""
    results: list[dict[str, Any]] = []
    for item in read_837(text):
        try:
            results.append({"claim": item.reference, "result": check_claim(item.claim),
                            "error": None})
        except Invalid as exc:
            results.append({"claim": item.reference, "result": None, "error": exc})
    return results
