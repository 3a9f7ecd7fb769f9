"""X12 835 (005010X221A1) health care claim payment/advice -> what each claim payment says.

pyx12's ``X12Reader`` splits the interchange with the delimiters its ISA declares and checks the
envelope (ISA/IEA, GS/GE, ST/SE counts). We walk its segments and read, per transaction (ST..SE,
one payment):

- BPR02 total paid and BPR16 payment date; TRN02 the payer's trace number (names the payment);
  DTM*405 the production date (the day the payer decided; else the payment date);
- the payer: N1*PR N104 and REF*2U (ids a payer record may carry);
- per claim payment (CLP): CLP01 our claim reference, CLP02 status, CLP03 charge, CLP04 paid,
  CLP07 the payer's claim number; NM1*QC (else NM1*IL) NM109 the patient's member id; REF*G1
  the prior authorization; DTM*232 the first service date; CAS adjustments; MOA remark codes;
- per service line (SVC): SVC01 code and modifiers, SVC02 charge, SVC03 paid, SVC05 units paid
  (1 when absent, as the TR3 says); DTM*472 (or 150) its date; REF*G1; CAS; LQ*HE remarks.

The amounts must balance as the TR3 requires (line: charge - adjustments = paid; claim: charge -
claim and line adjustments = paid; payment: claims paid - PLB adjustments = BPR02). Every problem
is collected and raised as one ``Invalid`` naming the segment (its position in the file, ISA = 1)
and element, so a malformed file never ends in a traceback and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal

from pyx12.errors import X12Error
from pyx12.segment import Segment
from pyx12.x12file import X12Reader

from policy_service.errors import Invalid
from policy_service.models.remittance import ADJUSTMENT_GROUPS
from policy_service.services.usage import CLAIM_REFERENCE, CLAIM_REFERENCE_RULE

TRANSACTION = "005010X221A1"
# CLP02: processed as primary/secondary/tertiary, denied, processed as primary/secondary/
# tertiary and forwarded, not our claim, reversal of previous payment, predetermination.
CLAIM_STATUS_CODES = frozenset({"1", "2", "3", "4", "19", "20", "21", "22", "23", "25"})
REVERSAL = "22"
DENIED = "4"
CAS_TRIPLETS = 6
# Money as the 835 writes it (X12 type R), bounded by what the tables hold (10 digits, cents).
AMOUNT = re.compile(r"^-?(\d{1,10}(\.\d{0,2})?|\.\d{1,2})$")
UNITS = re.compile(r"^-?\d{1,6}(\.0*)?$")
REASON = re.compile(r"^[A-Z0-9]{1,5}$")
REMARK = re.compile(r"^[A-Z0-9]{1,10}$")
SERVICE_CODE = re.compile(r"^[A-Z0-9]{1,10}$")
SHOWN = 40


def shown(text: str) -> str:
    """A value as an error message repeats it: quoted, and cut short if long."""
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "...")


@dataclass(frozen=True)
class Adjustment:
    """One reason of a CAS segment: group, CARC, amount."""

    group: str
    carc: str
    amount: Decimal
    segment: int


@dataclass
class ServiceLine:
    """One SVC loop."""

    code: str
    modifiers: tuple[str, ...]
    charged: Decimal
    paid: Decimal
    units_paid: int
    segment: int
    date_of_service: dt.date | None = None
    authorization_number: str | None = None
    adjustments: list[Adjustment] = field(default_factory=list)
    rarcs: list[str] = field(default_factory=list)


@dataclass
class ClaimPayment:
    """One CLP loop."""

    reference: str
    status_code: str
    charged: Decimal
    paid: Decimal
    payer_claim_number: str | None
    segment: int
    patient_id: str | None = None
    insured_id: str | None = None
    authorization_number: str | None = None
    date_of_service: dt.date | None = None
    adjustments: list[Adjustment] = field(default_factory=list)
    rarcs: list[str] = field(default_factory=list)
    lines: list[ServiceLine] = field(default_factory=list)

    @property
    def member_id(self) -> str | None:
        """The patient's member id: NM1*QC, else the insured's."""
        return self.patient_id or self.insured_id

    @property
    def first_date(self) -> dt.date | None:
        """The claim's first date of service: its own, else its earliest line's."""
        dates = [line.date_of_service for line in self.lines if line.date_of_service]
        return self.date_of_service or (min(dates) if dates else None)

    def all_adjustments(self) -> list[Adjustment]:
        """Claim-level and line-level adjustments."""
        return [*self.adjustments, *(a for line in self.lines for a in line.adjustments)]


@dataclass(frozen=True)
class PayerId:
    """An identifier the file gives the payer, and where."""

    value: str
    segment: int
    element: str


@dataclass
class RemittanceAdvice:
    """One 835 transaction: one payment (or zero-pay advice) and the claims it settles."""

    segment: int
    trace_number: str = ""
    total_paid: Decimal = Decimal(0)
    paid_on: dt.date | None = None
    produced_on: dt.date | None = None
    payer_name: str | None = None
    payer_ids: list[PayerId] = field(default_factory=list)
    claims: list[ClaimPayment] = field(default_factory=list)
    provider_adjustments: Decimal = Decimal(0)
    bpr_segment: int = 0
    digest: str = ""

    @property
    def adjudicated_on(self) -> dt.date | None:
        """The day the payer decided: the production date, else the payment date."""
        return self.produced_on or self.paid_on


class SegmentErrors:
    """Collects ``segment N (ID), element XXnn`` -> messages."""

    def __init__(self) -> None:
        self.items: dict[str, list[str]] = {}

    def add(self, position: int, seg_id: str, element: str | None, message: str) -> None:
        """Record one problem at a segment (and element)."""
        where = f"segment {position} ({seg_id})" + (f", element {element}" if element else "")
        self.items.setdefault(where, []).append(message)


def _value(segment: Segment, ref: str) -> str:
    return (segment.get_value(ref) or "").strip()


class _Reader:
    """The reading state while walking one interchange."""

    def __init__(self, errors: SegmentErrors) -> None:
        self.errors = errors
        self.advices: list[RemittanceAdvice] = []
        self.in_payer_loop = False

    @property
    def advice(self) -> RemittanceAdvice | None:
        return self.advices[-1] if self.advices else None

    @property
    def claim(self) -> ClaimPayment | None:
        advice = self.advice
        return advice.claims[-1] if advice and advice.claims else None

    @property
    def line(self) -> ServiceLine | None:
        claim = self.claim
        return claim.lines[-1] if claim and claim.lines else None

    def amount(self, segment: Segment, position: int, ref: str,
               required: bool = True) -> Decimal | None:
        text = _value(segment, ref)
        if not text and not required:
            return None
        if not AMOUNT.fullmatch(text):
            self.errors.add(position, segment.get_seg_id(), ref,
                            f"{shown(text)} is not an amount (at most 10 digits and cents).")
            return None
        return Decimal(text)

    def date(self, segment: Segment, position: int, ref: str) -> dt.date | None:
        text = _value(segment, ref)
        try:
            return dt.datetime.strptime(text, "%Y%m%d").date()
        except ValueError:
            self.errors.add(position, segment.get_seg_id(), ref,
                            f"{shown(text)} is not a date (CCYYMMDD).")
            return None

    def read(self, segment: Segment, position: int) -> None:
        """Update the state with one segment."""
        seg_id = segment.get_seg_id() or "?"
        handler = getattr(self, f"_{seg_id.lower()}", None)
        if seg_id == "ST":
            self._st(segment, position)
        elif self.advice is None:
            return
        elif handler is not None:
            handler(segment, position)

    def _st(self, segment: Segment, position: int) -> None:
        self.advices.append(RemittanceAdvice(segment=position))
        self.in_payer_loop = False
        if _value(segment, "ST01") != "835":
            self.errors.add(position, "ST", "ST01", "Only 835 remittance transactions are read.")
        version = _value(segment, "ST03")
        if version and version != TRANSACTION:
            self.errors.add(position, "ST", "ST03", f"{version} is not {TRANSACTION} (835).")

    def _bpr(self, segment: Segment, position: int) -> None:
        advice = self.advice
        assert advice is not None
        advice.bpr_segment = position
        advice.total_paid = self.amount(segment, position, "BPR02") or Decimal(0)
        if _value(segment, "BPR16"):
            advice.paid_on = self.date(segment, position, "BPR16")
        else:
            self.errors.add(position, "BPR", "BPR16", "The payment date is missing.")

    def _trn(self, segment: Segment, position: int) -> None:
        advice = self.advice
        assert advice is not None
        advice.trace_number = _value(segment, "TRN02")
        if not advice.trace_number:
            self.errors.add(position, "TRN", "TRN02", "The check or EFT trace number is missing.")
        elif len(advice.trace_number) > 50:
            self.errors.add(position, "TRN", "TRN02", "The trace number is longer than 50.")

    def _dtm(self, segment: Segment, position: int) -> None:
        qualifier = _value(segment, "DTM01")
        line, claim, advice = self.line, self.claim, self.advice
        assert advice is not None
        if qualifier == "405" and claim is None:
            advice.produced_on = self.date(segment, position, "DTM02")
        elif qualifier in ("472", "150") and line is not None:
            line.date_of_service = self.date(segment, position, "DTM02")
        elif qualifier == "232" and claim is not None and line is None:
            claim.date_of_service = self.date(segment, position, "DTM02")

    def _n1(self, segment: Segment, position: int) -> None:
        advice = self.advice
        assert advice is not None
        self.in_payer_loop = _value(segment, "N101") == "PR"
        if self.in_payer_loop:
            advice.payer_name = _value(segment, "N102") or None
            if _value(segment, "N104"):
                advice.payer_ids.append(PayerId(_value(segment, "N104"), position, "N104"))

    def _ref(self, segment: Segment, position: int) -> None:
        qualifier, value = _value(segment, "REF01"), _value(segment, "REF02")
        advice, claim, line = self.advice, self.claim, self.line
        assert advice is not None
        if qualifier == "2U" and self.in_payer_loop and claim is None and value:
            advice.payer_ids.append(PayerId(value, position, "REF02"))
        elif qualifier == "G1" and line is not None:
            line.authorization_number = value or None
        elif qualifier == "G1" and claim is not None:
            claim.authorization_number = value or None

    def _lx(self, segment: Segment, position: int) -> None:
        self.in_payer_loop = False

    def _clp(self, segment: Segment, position: int) -> None:
        advice = self.advice
        assert advice is not None
        self.in_payer_loop = False
        reference = _value(segment, "CLP01")
        if not CLAIM_REFERENCE.fullmatch(reference):
            self.errors.add(position, "CLP", "CLP01",
                            f"{shown(reference)} is not a usable claim reference: "
                            f"{CLAIM_REFERENCE_RULE}")
        status = _value(segment, "CLP02")
        if status not in CLAIM_STATUS_CODES:
            self.errors.add(position, "CLP", "CLP02",
                            f"{shown(status)} is not a claim status code.")
        charged = self.amount(segment, position, "CLP03")
        paid = self.amount(segment, position, "CLP04")
        advice.claims.append(ClaimPayment(
            reference=reference or f"claim at segment {position}", status_code=status,
            charged=charged or Decimal(0), paid=paid or Decimal(0),
            payer_claim_number=_value(segment, "CLP07")[:50] or None, segment=position))

    def _nm1(self, segment: Segment, position: int) -> None:
        claim = self.claim
        if claim is None or self.line is not None:
            return
        entity = _value(segment, "NM101")
        if entity == "QC":
            claim.patient_id = _value(segment, "NM109") or None
        elif entity == "IL":
            claim.insured_id = _value(segment, "NM109") or None

    def _moa(self, segment: Segment, position: int) -> None:
        claim = self.claim
        if claim is None:
            return
        for number in range(3, 8):
            remark = _value(segment, f"MOA{number:02d}")
            if remark and REMARK.fullmatch(remark):
                claim.rarcs.append(remark)
            elif remark:
                self.errors.add(position, "MOA", f"MOA{number:02d}",
                                f"{shown(remark)} is not a remark code.")

    def _cas(self, segment: Segment, position: int) -> None:
        claim, line = self.claim, self.line
        if claim is None:
            self.errors.add(position, "CAS", None, "An adjustment outside any claim (CLP).")
            return
        group = _value(segment, "CAS01")
        if group not in ADJUSTMENT_GROUPS:
            self.errors.add(position, "CAS", "CAS01",
                            f"{shown(group)} is not a group code "
                            f"({', '.join(ADJUSTMENT_GROUPS)}).")
            return
        target = line.adjustments if line is not None else claim.adjustments
        for index in range(CAS_TRIPLETS):
            reason_ref = f"CAS{2 + 3 * index:02d}"
            amount_ref = f"CAS{3 + 3 * index:02d}"
            carc = _value(segment, reason_ref)
            if not carc:
                if index == 0:
                    self.errors.add(position, "CAS", reason_ref, "The reason code is missing.")
                continue
            if not REASON.fullmatch(carc):
                self.errors.add(position, "CAS", reason_ref,
                                f"{shown(carc)} is not a claim adjustment reason code.")
                continue
            amount = self.amount(segment, position, amount_ref)
            if amount is not None:
                target.append(Adjustment(group, carc, amount, position))

    def _svc(self, segment: Segment, position: int) -> None:
        claim = self.claim
        if claim is None:
            self.errors.add(position, "SVC", None, "A service line outside any claim (CLP).")
            return
        code = _value(segment, "SVC01-2").upper()
        if not SERVICE_CODE.fullmatch(code):
            self.errors.add(position, "SVC", "SVC01-2",
                            f"{shown(code)} is not a procedure code." if code
                            else "The procedure code is missing.")
        modifiers = tuple(m for m in (_value(segment, f"SVC01-{i}") for i in range(3, 7)) if m)
        charged = self.amount(segment, position, "SVC02")
        paid = self.amount(segment, position, "SVC03")
        units_text = _value(segment, "SVC05")
        units = 1
        if units_text and UNITS.fullmatch(units_text):
            units = int(Decimal(units_text))
        elif units_text:
            self.errors.add(position, "SVC", "SVC05",
                            f"{shown(units_text)} is not a whole number of units.")
        claim.lines.append(ServiceLine(code=code, modifiers=modifiers,
                                       charged=charged or Decimal(0), paid=paid or Decimal(0),
                                       units_paid=units, segment=position))

    def _lq(self, segment: Segment, position: int) -> None:
        line = self.line
        remark = _value(segment, "LQ02")
        if line is None or _value(segment, "LQ01") != "HE" or not remark:
            return
        if REMARK.fullmatch(remark):
            line.rarcs.append(remark)
        else:
            self.errors.add(position, "LQ", "LQ02", f"{shown(remark)} is not a remark code.")

    def _plb(self, segment: Segment, position: int) -> None:
        advice = self.advice
        assert advice is not None
        for index in range(6):
            ref = f"PLB{4 + 2 * index:02d}"
            if _value(segment, ref):
                advice.provider_adjustments += self.amount(segment, position, ref) or Decimal(0)


def _check_balances(advice: RemittanceAdvice, errors: SegmentErrors) -> None:
    """The TR3's balancing rules; a file that does not balance was damaged or misread."""
    for claim in advice.claims:
        for line in claim.lines:
            adjusted = sum((a.amount for a in line.adjustments), Decimal(0))
            if line.charged - adjusted != line.paid:
                errors.add(line.segment, "SVC", "SVC03",
                           f"The line does not balance: charged {line.charged} - adjustments "
                           f"{adjusted} is not the paid {line.paid}.")
        adjusted = sum((a.amount for a in claim.all_adjustments()), Decimal(0))
        if claim.charged - adjusted != claim.paid:
            errors.add(claim.segment, "CLP", "CLP04",
                       f"The claim does not balance: charged {claim.charged} - adjustments "
                       f"{adjusted} is not the paid {claim.paid}.")
    paid = sum((c.paid for c in advice.claims), Decimal(0)) - advice.provider_adjustments
    if paid != advice.total_paid:
        errors.add(advice.bpr_segment, "BPR", "BPR02",
                   f"The payment does not balance: claims paid less provider adjustments come "
                   f"to {paid}, not {advice.total_paid}.")


def read_835(text: str) -> list[RemittanceAdvice]:
    """Read every payment of an 835 interchange; raise Invalid naming each bad segment."""
    errors = SegmentErrors()
    try:
        reader = X12Reader(io.StringIO(text))
    except X12Error as exc:
        raise Invalid({"segment 1 (ISA)": [str(exc)]}) from None
    if reader.icvn != "00501":
        raise Invalid({"segment 1 (ISA), element ISA12": [
            f"Version {reader.icvn} is not 00501 (835 {TRANSACTION})."]})
    state = _Reader(errors)
    position = 0
    try:
        for position, segment in enumerate(reader, start=1):
            for error in reader.pop_errors():
                errors.add(position, segment.get_seg_id() or "?", None, error[2])
            state.read(segment, position)
        reader.cleanup()
    except X12Error as exc:
        errors.add(position + 1, "?", None, str(exc))
    for error in reader.pop_errors():
        errors.add(position, "end of file", None, error[2])
    if not state.advices and not errors.items:
        errors.add(position, "end of file", None, "The file holds no 835 transaction (ST).")
    digest = hashlib.sha256(text.strip().encode()).hexdigest()
    for advice in state.advices:
        advice.digest = digest
        if not advice.bpr_segment:
            errors.add(advice.segment, "ST", None, "The transaction has no payment (BPR).")
        if not advice.trace_number and advice.bpr_segment:
            errors.add(advice.segment, "ST", None, "The transaction has no trace number (TRN).")
        if not advice.payer_ids:
            errors.add(advice.segment, "ST", None,
                       "The transaction names no payer id (N1*PR N104 or REF*2U).")
        if not errors.items:
            _check_balances(advice, errors)
    if errors.items:
        raise Invalid(errors.items, detail="Malformed 835 file")
    return state.advices
