"""X12 837P professional claims (005010X222A1 and its errata A2) -> one claim check per CLM.

pyx12's ``X12ContextReader`` splits the interchange with the delimiters its ISA declares, checks
the envelope (ISA/IEA, GS/GE, ST/SE counts, HL and LX numbering) and walks the guide's map, so
every segment arrives with the loop it belongs to. What is read, and from which loop only:

- payer: NM109 of NM1*PR in 2010BB, matched on a payer's id or ``external_ids`` (the other
  payers of loops 2320-2330G are never read);
- patient: the subscriber (NM1*IL NM109 and DMG of 2010BA), or, when loop 2000C is present, the
  dependent of 2010CA (its NM109 or REF*1W, else the claim's medical record number REF*EA) and
  that loop's DMG birth date;
- claim (2300): CLM01 reference, CLM05-1 place of service, HI diagnoses (ICD-10), REF*G1 prior
  authorization, NTE notes; service lines (2400): SV101 code and modifiers, SV103/SV104 units,
  DTP*472 date (the first line's date is the claim's), REF*G1 (a line's own authorization wins
  for the drug line), NTE; drug (2410): LIN*N4 NDC and CTP04/CTP05 quantity;
- infusion times from NTE notes, our convention because 837P has no element for them:
  ``INFUSION <KIND> HH:MM-HH:MM`` or ``INFUSION <KIND> <N> MIN``, several separated by ";";
  any other free text is ignored;
- submitted_on: BHT04, the day the file was created (the payer's receipt date is not in it).

A broken envelope, count or numbering rejects the file (``Invalid`` naming the segment, ISA =
1). Anything about one claim (an ICD-9 code, anesthesia minutes, an unknown payer, a segment
that does not fit its loop) is reported on that claim as "not checked" and the others are
checked.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import pyx12.error_handler
import pyx12.map_if
import pyx12.params
from pyx12.errors import EngineError, X12Error
from pyx12.segment import Segment
from pyx12.x12context import X12ContextReader
from sqlalchemy import select

from policy_service.billing.administration import KINDS, Infusion
from policy_service.domain.codes import hcpcs_error
from policy_service.domain.icd10 import code_error, normalise_code
from policy_service.domain.requests import Claim, ClaimAdministration, ClaimLine
from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import DrugPackage
from policy_service.services.claims import check_claim
from policy_service.services.eligibility import sort_findings
from policy_service.services.payers import find_payer_by_external_id
from policy_service.services.policy_index import index_cache
from rulesets.vocabulary import Category, Severity, claim_status

# The errata (A2) changed code lists and notes, not the loops: pyx12 ships only the A1 map,
# and an A2 file is read with it.
VERSIONS = ("005010X222A1", "005010X222A2")
_MAP_VERSION = "005010X222A1"

TIMES = re.compile(r"^INFUSION\s+(?P<kind>[A-Z]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*"
                   r"(?P<stop>\d{1,2}:\d{2})$")
MINUTES = re.compile(r"^INFUSION\s+(?P<kind>[A-Z]+)\s+(?P<minutes>\d{1,4})\s*MIN$")
# A note is about infusion times when it starts INFUSION and gives a clock time or minutes.
_TIME_NOTE = re.compile(r"^INFUSION\b.*(\d{1,2}:\d{2}|\d+\s*MIN\b)")
# Minutes-only infusions are laid end to end from this arbitrary clock time.
_MINUTES_ORIGIN = dt.time(8, 0)
MODIFIER = re.compile(r"^[A-Z0-9]{2}$")
ICD10_QUALIFIERS = {"ABK", "ABF"}
ICD9_QUALIFIERS = {"BK", "BF"}
# pyx12 walker codes for a segment it could not place in the guide's loops.
_UNPLACED = {"1", "2", "6", "7"}
# HL numbering errors of pyx12's reader: the hierarchy, and so the file, is broken. LX
# numbering is inside one claim and is that claim's problem.
_STRUCTURAL_SEGMENT_CODES = {"HL1", "HL2"}

# How much of a drug one CTP unit is, in mg; UN and ML depend on the NDC (see _dose_mg).
_MG_PER = {"ME": Decimal(1), "GR": Decimal(1000)}
UNIT_NAMES = {"ME": "milligrams", "GR": "grams", "UN": "units (packages)", "ML": "millilitres",
              "F2": "international units"}

# Findings of the reader itself (how the file was read), in the claim check's shape. They
# belong to the file reader, not to a ruleset: no rule can see a CTP unit or BHT04.
DOSE_NOT_READ = "DOSE_NOT_READ"
SUBMITTED_BEFORE_SERVICE = "SUBMITTED_BEFORE_SERVICE"
# A claim status beside ClaimStatus's: the file's claim could not be handed to the check.
NOT_CHECKED = "not_checked"


@dataclass
class X12Line:
    """One service line (loop 2400) as the file gives it."""

    number: int
    code: str
    modifiers: tuple[str, ...]
    units: int
    service_date: dt.date | None = None
    authorization_number: str | None = None
    ndc: str | None = None
    quantity: Decimal | None = None
    quantity_unit: str | None = None


@dataclass
class X12Claim:
    """One CLM loop as read: the ids it carries, its lines, and why it cannot be checked."""

    reference: str
    segment: int
    payer: str | None
    patient: str | None
    birth_date: dt.date | None
    submitted_on: dt.date | None
    place_of_service: str | None = None
    authorization_number: str | None = None
    diagnoses: list[str] = field(default_factory=list)
    lines: list[X12Line] = field(default_factory=list)
    notes: list[tuple[int, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def date_of_service(self) -> dt.date | None:
        """The first service line's date."""
        return next((ln.service_date for ln in self.lines if ln.service_date), None)

    def line_authorization(self) -> str | None:
        """The REF*G1 of the drug line (one with an NDC), else of the claim, else any line."""
        drug = next((ln.authorization_number for ln in self.lines
                     if ln.ndc and ln.authorization_number and "JW" not in ln.modifiers), None)
        first = next((ln.authorization_number for ln in self.lines if ln.authorization_number),
                     None)
        return drug or self.authorization_number or first


@dataclass
class ClaimOutcome:
    """One claim's answer: the check's result, or the reasons it was not checked."""

    read: X12Claim
    result: dict[str, Any] | None
    reasons: list[str]
    lines: list[ClaimLine] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``clean``, ``needs_correction`` or ``not_checked``."""
        return str(self.result["status"]) if self.result else NOT_CHECKED

    def record(self) -> dict[str, Any]:
        """The claim in the contract's ``check-claims --format json`` shape."""
        result = self.result or {}
        return {"claim": self.read.reference, "payer": self.read.payer,
                "patient": self.read.patient,
                "authorization_number": self.read.line_authorization(),
                "status": self.status, "findings": result.get("findings", []),
                "expected_lines": result.get("expected_lines", []),
                "error": "; ".join(self.reasons) if self.reasons else None}


_PARAMS = pyx12.params.params()
_parse_map = pyx12.map_if.load_map_file
_maps: dict[tuple[str, str | None], Any] = {}


def _load_map_once(map_file: str, param: Any, map_path: str | None = None) -> Any:
    """pyx12 parses its XML maps for every reader (about 2 s a file). The maps are package data
    that walking never changes (the walker keeps its own counts), so ours are parsed once per
    process; any other caller's parameters get a fresh parse as before."""
    if param is not _PARAMS:
        return _parse_map(map_file, param, map_path)
    key = (map_file, map_path)
    if key not in _maps:
        _maps[key] = _parse_map(map_file, param, map_path)
    return _maps[key]


class _Problems(pyx12.error_handler.errh_null):
    """Collects what pyx12 finds: envelope and count errors, and segments it could not place."""

    def __init__(self) -> None:
        super().__init__()
        self.position = 1
        self.structural: dict[str, list[str]] = {}
        self.unplaced: dict[int, str] = {}
        self.line_numbering: dict[int, str] = {}

    def structural_error(self, message: str) -> None:
        """Record a problem that breaks the file at the current segment."""
        self._structural(message)

    def _structural(self, message: str) -> None:
        self.structural.setdefault(f"segment {self.position}", []).append(message)

    def handle_errors(self, err_list: list[Any]) -> None:
        """Dispatch the reader's own errors (envelope, counts, numbering) by kind."""
        for err_type, err_cde, err_str, err_val, src_line in err_list:
            if err_type in ("isa", "gs", "st"):
                self._structural(err_str)
            elif err_type == "seg":
                self.seg_error(err_cde, err_str, err_val, src_line)

    def isa_error(self, err_cde: str, err_str: str) -> None:
        """An interchange envelope error."""
        self._structural(err_str)

    def gs_error(self, err_cde: str, err_str: str) -> None:
        """A functional group envelope error."""
        self._structural(err_str)

    def st_error(self, err_cde: str, err_str: str) -> None:
        """A transaction set envelope error (SE count, control number)."""
        self._structural(err_str)

    def seg_error(self, err_cde: str, err_str: str, err_value: str | None = None,
                  src_line: int | None = None) -> None:
        """HL numbering breaks the file; LX numbering or an unplaceable segment is its claim's."""
        if err_cde in _STRUCTURAL_SEGMENT_CODES:
            self._structural(err_str)
        elif err_cde == "LX":
            self.line_numbering[self.position] = err_str
        elif err_cde in _UNPLACED:
            self.unplaced.setdefault(self.position, err_str)


def _value(segment: Segment, ref: str) -> str:
    return (segment.get_value(ref) or "").strip()


def _date(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%Y%m%d").date()


def _loops(node: Any) -> list[str]:
    """The loop ids (``2300``, ``2330B``) from the map path of a segment's node."""
    path = node.x12_map_node.get_path() if node.x12_map_node is not None else ""
    return [part for part in path.split("/") if re.fullmatch(r"\d{4}[A-Z]{0,2}", part)]


@dataclass
class _State:
    """What the segments read so far say about the claims that follow."""

    submitted: dt.date | None = None
    transaction: str | None = None
    payer: str | None = None
    subscriber: str | None = None
    subscriber_birth: dt.date | None = None
    dependent: bool = False
    dependent_id: str | None = None
    dependent_birth: dt.date | None = None
    claim: X12Claim | None = None
    line: X12Line | None = None
    claims: list[X12Claim] = field(default_factory=list)
    separator: str = ":"
    hierarchy_started: bool = False
    hierarchy_problems: list[str] = field(default_factory=list)
    structural: dict[str, list[str]] = field(default_factory=dict)


def read_837(text: str) -> list[X12Claim]:
    """Read every claim of an 837P interchange; raise Invalid when the file itself is broken."""
    problems = _Problems()
    state = _State()
    declared = re.search(r"GS\*(?:[^*~]*\*){7}([^*~\s]*)", text)
    version = declared.group(1) if declared else None
    if version is not None and version not in VERSIONS:
        raise Invalid({"segment 2 (GS), element GS08": [
            f"{version!r} is not an 837P ({' or '.join(VERSIONS)})."]},
            detail="Not an 837P file")
    mapped = text.replace("005010X222A2", _MAP_VERSION)  # same length: positions unchanged
    pyx12.map_if.load_map_file = _load_map_once
    try:
        reader = X12ContextReader(_PARAMS, problems, io.StringIO(mapped))
    except (X12Error, EngineError) as exc:
        raise Invalid({"segment 1 (ISA)": [str(exc)]}, detail="Malformed 837P file") from None
    if reader.src.icvn != "00501":
        raise Invalid({"segment 1 (ISA), element ISA12": [
            f"Version {reader.src.icvn} is not 00501 (837P 005010X222A1/A2)."]},
            detail="Not an 837P file")
    state.separator = reader.src.subele_term or ":"
    for position, node in enumerate(_segments(reader, problems), start=1):
        if node.seg_data is not None:
            _read_segment(node.seg_data, _loops(node), position, state,
                          problems.unplaced.get(position))
        if position in problems.line_numbering and state.claim is not None:
            state.claim.problems.append(
                f"segment {position} (LX): {problems.line_numbering[position]}")
        problems.position = position + 1
    if problems.structural or state.structural:
        raise Invalid({**problems.structural, **state.structural},
                      detail="Malformed 837P file")
    if state.transaction not in VERSIONS:
        raise Invalid({"segment 3 (ST), element ST03": [
            f"{state.transaction!r} is not an 837P ({' or '.join(VERSIONS)})."]},
            detail="Not an 837P file")
    if not state.claims:
        raise Invalid({"end of file": ["The file holds no claim (CLM segment)."]},
                      detail="Malformed 837P file")
    for claim in state.claims:
        _finish(claim)
    return state.claims


def _segments(reader: X12ContextReader, problems: _Problems) -> Iterator[Any]:
    """pyx12's segment nodes; where it cannot read on, the file is broken at that segment."""
    nodes = reader.iter_segments()
    while True:
        try:
            yield next(nodes)
        except StopIteration:
            return
        except (X12Error, EngineError) as exc:
            problems.structural_error(str(exc))
            return
        except IndexError:
            # pyx12 indexes its envelope stack: a GE, IEA or SE with no opening GS, ISA or ST.
            problems.structural_error("A closing envelope segment (SE, GE or IEA) has no opening "
                                 "ST, GS or ISA.")
            return


def _read_segment(segment: Segment, loops: list[str], position: int, state: _State,
                  unplaced: str | None) -> None:
    """Update the reading state with one segment of the loops ``loops``: the envelope, the
    hierarchy (HL and the people and payer it names), or the current claim."""
    seg_id = segment.get_seg_id() or "?"
    loop = loops[-1] if loops else ""
    if unplaced is not None:
        _unplaced(segment, seg_id, position, state, unplaced)
    elif seg_id in _ENVELOPE_READERS:
        _ENVELOPE_READERS[seg_id](segment, state)
    elif seg_id == "HL":
        _start_hierarchy(segment, loop, state)
    elif (loop, seg_id) in _PARTY_READERS:
        _PARTY_READERS[loop, seg_id](segment, state)
    elif seg_id == "CLM" and loop == "2300":
        _start_claim(segment, position, state)
    elif state.claim is not None:
        _read_claim_segment(segment, seg_id, loop, position, state.claim, state)


def _read_transaction(segment: Segment, state: _State) -> None:
    state.transaction = _value(segment, "ST03") or None


def _read_submitted(segment: Segment, state: _State) -> None:
    try:
        state.submitted = _date(_value(segment, "BHT04"))
    except ValueError:
        state.submitted = None


def _read_subscriber(segment: Segment, state: _State) -> None:
    state.subscriber = _value(segment, "NM109") or None


def _read_subscriber_birth(segment: Segment, state: _State) -> None:
    state.subscriber_birth = _birth(segment)


def _read_payer(segment: Segment, state: _State) -> None:
    state.payer = _value(segment, "NM109") or None


def _read_dependent(segment: Segment, state: _State) -> None:
    state.dependent_id = _value(segment, "NM109") or state.dependent_id


def _read_dependent_reference(segment: Segment, state: _State) -> None:
    # A dependent's own member id (1W) stands in when its NM1 carries none.
    if _value(segment, "REF01") == "1W":
        state.dependent_id = state.dependent_id or _value(segment, "REF02") or None


def _read_dependent_birth(segment: Segment, state: _State) -> None:
    state.dependent_birth = _birth(segment)


SegmentReader = Callable[[Segment, _State], None]

# Segments of the interchange's header, whatever loop they sit in.
_ENVELOPE_READERS: dict[str, SegmentReader] = {"ST": _read_transaction, "BHT": _read_submitted}

# The subscriber (2010BA), the payer (2010BB) and a dependent patient (2010CA).
_PARTY_READERS: dict[tuple[str, str], SegmentReader] = {
    ("2010BA", "NM1"): _read_subscriber,
    ("2010BA", "DMG"): _read_subscriber_birth,
    ("2010BB", "NM1"): _read_payer,
    ("2010CA", "NM1"): _read_dependent,
    ("2010CA", "REF"): _read_dependent_reference,
    ("2010CA", "DMG"): _read_dependent_birth,
}


def _unplaced(segment: Segment, seg_id: str, position: int, state: _State,
              message: str) -> None:
    """A segment outside the guide's loops: its claim's (or hierarchy's) problem, else the
    file's, since the claims that follow can no longer be told apart."""
    if seg_id in ("HL", "CLM") or not state.hierarchy_started:
        state.structural.setdefault(f"segment {position} ({seg_id})", []).append(message)
        return
    text = segment.format()
    hint = ""
    if ">" in text and state.separator != ">":
        hint = f" (is the component separator {state.separator!r}, as ISA16 says?)"
    problem = f"segment {position} ({seg_id}) does not fit the guide's loops{hint}"
    if state.claim is not None:
        state.claim.problems.append(problem)
    else:
        state.hierarchy_problems.append(problem)


def _birth(segment: Segment) -> dt.date | None:
    if _value(segment, "DMG01") != "D8":
        return None
    try:
        return _date(_value(segment, "DMG02"))
    except ValueError:
        return None


def _start_hierarchy(segment: Segment, loop: str, state: _State) -> None:
    """A new HL: a subscriber (2000B) resets payer and person; a patient (2000C) a dependent."""
    state.claim = None
    state.line = None
    state.hierarchy_started = True
    if loop == "2000B":
        state.payer = state.subscriber = state.subscriber_birth = None
        state.dependent = False
        state.dependent_id = state.dependent_birth = None
        state.hierarchy_problems = []
    elif loop == "2000C":
        state.dependent = True
        state.dependent_id = state.dependent_birth = None


def _start_claim(segment: Segment, position: int, state: _State) -> None:
    reference = _value(segment, "CLM01")
    claim = X12Claim(
        reference=reference or f"claim at segment {position}", segment=position,
        payer=state.payer,
        patient=state.dependent_id if state.dependent else state.subscriber,
        birth_date=state.dependent_birth if state.dependent else state.subscriber_birth,
        submitted_on=state.submitted, problems=list(state.hierarchy_problems))
    if not reference:
        claim.problems.append("CLM01: the claim submitter's identifier is missing")
    pos = _value(segment, "CLM05-1")
    if re.fullmatch(r"\d{2}", pos):
        claim.place_of_service = pos
    else:
        claim.problems.append(f"CLM05-1: {pos!r} is not a place of service code")
    if state.dependent and claim.patient is None:
        claim.problems.append("patient: a dependent (loop 2010CA) with no id of their own "
                              "and no medical record number (REF*EA)")
    state.claims.append(claim)
    state.claim = claim
    state.line = None


def _read_claim_segment(segment: Segment, seg_id: str, loop: str, position: int,
                        claim: X12Claim, state: _State) -> None:
    """Segments of the claim's own loops (2300, 2400, 2410); other payers' loops are skipped."""
    if loop == "2300":
        _read_claim_information(segment, seg_id, position, claim, state)
    elif loop == "2400":
        _read_service_line_segment(segment, seg_id, position, claim, state)
    elif loop == "2410" and state.line is not None:
        _read_drug(segment, seg_id, claim, state.line)


def _read_claim_information(segment: Segment, seg_id: str, position: int, claim: X12Claim,
                            state: _State) -> None:
    """Loop 2300: diagnoses, the prior authorization, a dependent's member id, the notes."""
    qualifier = _value(segment, "REF01") if seg_id == "REF" else None
    if seg_id == "HI":
        _read_diagnoses(segment, claim)
    elif qualifier == "G1":
        claim.authorization_number = _value(segment, "REF02") or None
    elif qualifier == "EA" and claim.patient is None and state.dependent:
        claim.patient = _value(segment, "REF02") or None
        if claim.patient:
            claim.problems = [p for p in claim.problems if not p.startswith("patient:")]
    elif seg_id == "NTE":
        claim.notes.append((position, _value(segment, "NTE02").upper()))


def _read_service_line_segment(segment: Segment, seg_id: str, position: int, claim: X12Claim,
                               state: _State) -> None:
    """Loop 2400: LX starts a line, SV1 is its service; its date, authorization and notes."""
    if seg_id == "LX":
        state.line = None
    elif seg_id == "SV1":
        state.line = _read_service_line(segment, position, claim)
    elif state.line is None:
        return
    elif seg_id == "DTP" and _value(segment, "DTP01") == "472":
        _read_service_date(segment, claim, state.line)
    elif seg_id == "REF" and _value(segment, "REF01") == "G1":
        state.line.authorization_number = _value(segment, "REF02") or None
    elif seg_id == "NTE":
        claim.notes.append((position, _value(segment, "NTE02").upper()))


def _read_diagnoses(segment: Segment, claim: X12Claim) -> None:
    """ICD-10 diagnoses of an HI segment; other HI kinds (condition codes...) are not ours."""
    for number in range(1, 13):
        ref = f"HI{number:02d}"
        qualifier = _value(segment, f"{ref}-1")
        raw = _value(segment, f"{ref}-2")
        if qualifier in ICD9_QUALIFIERS:
            message = "ICD-9 codes are not supported (HI qualifier BK/BF); code in ICD-10-CM"
            if message not in claim.problems:
                claim.problems.append(message)
        elif qualifier in ICD10_QUALIFIERS:
            code = f"{raw[:3]}.{raw[3:]}" if len(raw) > 3 and "." not in raw else raw
            problem = code_error(code)
            if problem:
                claim.problems.append(f"{ref}-2: {problem}")
            else:
                claim.diagnoses.append(normalise_code(code))


def _read_service_line(segment: Segment, position: int, claim: X12Claim) -> X12Line | None:
    number = len(claim.lines) + 1
    where = f"line {number} (segment {position})"
    qualifier = _value(segment, "SV101-1")
    code = _value(segment, "SV101-2")
    problems: list[str] = []
    if qualifier != "HC":
        problems.append(f"{where}: SV101-1 {qualifier!r} is not HC (HCPCS/CPT)")
    elif hcpcs_error(code):
        problems.append(f"{where}: {code!r} is not a HCPCS or CPT code")
    modifiers = tuple(m for m in (_value(segment, f"SV101-{i}") for i in range(3, 7)) if m)
    problems += [f"{where}: {m!r} is not a modifier" for m in modifiers if not MODIFIER.match(m)]
    unit = _value(segment, "SV103")
    if unit == "MJ":
        problems.append(f"{where}: anesthesia minutes (SV103 MJ) are not supported")
    elif unit != "UN":
        problems.append(f"{where}: SV103 {unit!r} is not UN (units)")
    units_text = _value(segment, "SV104")
    units = 0
    try:
        amount = Decimal(units_text)
        if amount <= 0 or amount != amount.to_integral_value():
            raise InvalidOperation
        units = int(amount)
    except InvalidOperation:
        if unit == "UN":
            problems.append(f"{where}: SV104 {units_text!r} is not a whole number of units")
    claim.problems += problems
    line = X12Line(number, code, modifiers, units)
    claim.lines.append(line)
    return line


def _read_service_date(segment: Segment, claim: X12Claim, line: X12Line) -> None:
    text = _value(segment, "DTP03")
    try:
        line.service_date = _date(text if _value(segment, "DTP02") == "D8"
                                  else text.split("-")[0])
    except ValueError:
        claim.problems.append(f"line {len(claim.lines)}: DTP03 {text!r} is not a date")


def _read_drug(segment: Segment, seg_id: str, claim: X12Claim, line: X12Line) -> None:
    number = len(claim.lines)
    if seg_id == "LIN":
        ndc = _value(segment, "LIN03")
        if _value(segment, "LIN02") != "N4" or not re.fullmatch(r"\d{11}", ndc):
            claim.problems.append(f"line {number}: LIN03 {ndc!r} is not an 11-digit NDC (N4)")
        else:
            line.ndc = f"{ndc[:5]}-{ndc[5:9]}-{ndc[9:]}"
    elif seg_id == "CTP":
        text = _value(segment, "CTP04")
        try:
            line.quantity = Decimal(text)
        except InvalidOperation:
            claim.problems.append(f"line {number}: CTP04 {text!r} is not a quantity")
        line.quantity_unit = _value(segment, "CTP05-1") or None


def _finish(claim: X12Claim) -> None:
    """Name what a checkable claim still lacks."""
    if claim.payer is None:
        claim.problems.append("payer: no NM1*PR in loop 2010BB precedes this claim")
    if claim.patient is None and not any(p.startswith("patient:") for p in claim.problems):
        claim.problems.append("patient: no subscriber id (NM1*IL NM109 in loop 2010BA)")
    if not claim.lines:
        claim.problems.append("the claim has no service line (SV1)")
    elif claim.date_of_service is None:
        claim.problems.append("no service date (DTP*472) was given")


def _infusions(claim: X12Claim) -> tuple[list[Infusion], list[str]]:
    """Infusions from the claim's infusion-time notes; other free text is ignored."""
    infusions: list[Infusion] = []
    problems: list[str] = []
    clock = dt.datetime.combine(dt.date(2000, 1, 1), _MINUTES_ORIGIN)
    for _position, note in claim.notes:
        for part in (p.strip() for p in note.split(";")):
            if not _TIME_NOTE.match(part):
                continue
            times, minutes = TIMES.match(part), MINUTES.match(part)
            match = times or minutes
            kind = match.group("kind").lower() if match else ""
            if match is None or kind not in KINDS:
                problems.append(f"infusion times: {part!r} is not INFUSION "
                                f"<{'|'.join(KINDS).upper()}> HH:MM-HH:MM or INFUSION <KIND> "
                                "<N> MIN")
                continue
            if times is not None:
                try:
                    start = dt.time.fromisoformat(times.group("start").zfill(5))
                    stop = dt.time.fromisoformat(times.group("stop").zfill(5))
                except ValueError:
                    problems.append(f"infusion times: {part!r} is not a time of day")
                    continue
                infusions.append(Infusion(kind, start, stop))
            else:
                end = clock + dt.timedelta(minutes=int(match.group("minutes")))
                infusions.append(Infusion(kind, clock, end))
                clock = end
    if len({type(i.start) for i in infusions}) > 1:
        problems.append("infusion times: give every infusion as times or every one as "
                        "minutes, not both")
    return infusions, problems


def _ndc_key(ndc: str) -> str:
    """An NDC as 11 digits (5-4-2), whatever dashes or 10-digit layout it was stored in."""
    parts = ndc.strip().split("-")
    if len(parts) == 3:
        return parts[0].zfill(5) + parts[1].zfill(4) + parts[2].zfill(2)
    return re.sub(r"\D", "", ndc)


def _packages_by_ndc(ndcs: Iterable[str]) -> dict[str, DrugPackage]:
    """The drug table's packages for these NDCs, keyed by 11-digit NDC."""
    wanted = {_ndc_key(n) for n in ndcs}
    if not wanted:
        return {}
    rows = db.session.scalars(select(DrugPackage).where(DrugPackage.ndc.is_not(None)))
    return {key: row for row in rows if (key := _ndc_key(row.ndc or "")) in wanted}


def _dose_mg(line: X12Line, packages: Mapping[str, DrugPackage]) -> tuple[Decimal | None, str]:
    """The drug amount of a line's NDC quantity in mg, or None and why it could not be read."""
    where = f"line {line.number}"
    if line.quantity is None:
        return None, f"{where} gives no NDC quantity (CTP04/CTP05)"
    unit = line.quantity_unit or ""
    if unit in _MG_PER:
        return line.quantity * _MG_PER[unit], ""
    package = packages.get(_ndc_key(line.ndc or "")) if line.ndc else None
    name = UNIT_NAMES.get(unit, repr(unit))
    if unit == "UN" and package is not None and package.unit.lower() == "mg":
        return line.quantity * package.amount, ""
    if unit == "UN":
        return None, (f"{where} gives {line.quantity:f} {name} of NDC {line.ndc or '(none)'}, "
                      "which the drug table does not list with a package size in mg")
    if unit == "ML":
        return None, (f"{where} gives {line.quantity:f} {name}: the drug table holds no "
                      f"concentration for NDC {line.ndc or '(none)'}")
    return None, f"{where} gives the quantity in {name}, which cannot be turned into mg"


def _drug_line(read: X12Claim, drug_codes: set[str]) -> X12Line | None:
    """The administered drug's line: the first line (without JW) billing a drug of our table,
    one with an NDC quantity first. Drugs we do not know are plain lines."""
    candidates = [ln for ln in read.lines if "JW" not in ln.modifiers and ln.code in drug_codes]
    return next((ln for ln in candidates if ln.quantity is not None), None) or \
        next(iter(candidates), None)


def _reader_finding(code: str, message: str, line: int | None) -> dict[str, Any]:
    return {"code": code, "severity": Severity.WARN, "category": Category.CLAIM_DATA,
            "line": line, "message": message, "rule": code.lower()}


@dataclass
class _Lookups:
    """Database answers shared by every claim of one file."""

    payers: dict[str, str | None] = field(default_factory=dict)
    packages: dict[str, DrugPackage] = field(default_factory=dict)
    drug_codes: set[str] = field(default_factory=set)

    def payer_code(self, value: str) -> str | None:
        """Our id of the payer a file names ``value``, or None."""
        if value not in self.payers:
            payer = find_payer_by_external_id(value)
            self.payers[value] = payer.code if payer else None
        return self.payers[value]


def _to_claim(read: X12Claim, lookups: _Lookups) -> tuple[Claim | None, list[str],
                                                          list[dict[str, Any]]]:
    """The claim check's input, or the reasons it cannot be checked; plus reader findings."""
    reasons = list(read.problems)
    infusions, infusion_problems = _infusions(read)
    reasons += infusion_problems
    payer = lookups.payer_code(read.payer) if read.payer else None
    if read.payer and payer is None:
        reasons.append(f"payer: no payer has the id {read.payer!r} (NM1*PR NM109); add it to "
                       "that payer's external ids")
    if reasons or payer is None or read.patient is None or read.date_of_service is None:
        return None, reasons, []
    findings: list[dict[str, Any]] = []
    lines = [ClaimLine(ln.code, ln.units, ln.modifiers, ln.ndc) for ln in read.lines]
    drug_line = _drug_line(read, lookups.drug_codes)
    administration = None
    if drug_line is not None:
        dose, why = _dose_mg(drug_line, lookups.packages)
        index = read.lines.index(drug_line)
        if dose is None:
            findings.append(_reader_finding(
                DOSE_NOT_READ, f"The dose given could not be read: {why}. Units, JW/JZ and the "
                "dose limit were not checked.", index))
        administration = ClaimAdministration(hcpcs=drug_line.code, administered_mg=dose,
                                             infusions=infusions or None)
    elif infusions:
        # Hydration only, or a patient-supplied drug: the times still decide the codes.
        administration = ClaimAdministration(infusions=infusions)
    service_date = read.date_of_service
    if read.submitted_on is not None and read.submitted_on < service_date:
        findings.append(_reader_finding(
            SUBMITTED_BEFORE_SERVICE, f"The file was created on {read.submitted_on.isoformat()} "
            f"(BHT04), before the date of service {service_date.isoformat()}: a claim is billed "
            "after the service.", None))
    claim = Claim(payer=payer, patient_id=read.patient, birth_date=read.birth_date,
                  date_of_service=service_date, submitted_on=read.submitted_on,
                  diagnosis_codes=read.diagnoses,
                  authorization_number=read.line_authorization(),
                  place_of_service=read.place_of_service, administration=administration,
                  lines=lines)
    return claim, [], findings


def check_837(text: str,
              check: Callable[[Claim], dict[str, Any]] = check_claim) -> list[ClaimOutcome]:
    """Check every claim of an 837P file: one outcome per CLM, checked or with its reasons."""
    claims = read_837(text)
    lookups = _Lookups(packages=_packages_by_ndc(ln.ndc for c in claims for ln in c.lines
                                                 if ln.ndc),
                       drug_codes=set(index_cache.current().drugs))
    outcomes: list[ClaimOutcome] = []
    for read in claims:
        claim, reasons, findings = _to_claim(read, lookups)
        if claim is None:
            outcomes.append(ClaimOutcome(read, None, reasons))
            continue
        try:
            result = dict(check(claim))
        except Invalid as exc:
            outcomes.append(ClaimOutcome(read, None, exc.lines(), claim.lines))
            continue
        if findings:
            result["findings"] = [*result["findings"], *findings]
            sort_findings(result["findings"])
            result["status"] = claim_status(result["findings"])
        outcomes.append(ClaimOutcome(read, result, [], claim.lines))
    return outcomes


def summary_line(outcomes: list[ClaimOutcome]) -> str:
    """``N claims: C checked (x clean, y need correction), U not checked.``"""
    checked = [o for o in outcomes if o.result is not None]
    clean = sum(1 for o in checked if o.status == "clean")
    noun = "claim" if len(outcomes) == 1 else "claims"
    return (f"{len(outcomes)} {noun}: {len(checked)} checked ({clean} clean, "
            f"{len(checked) - clean} needing correction), "
            f"{len(outcomes) - len(checked)} not checked.")
