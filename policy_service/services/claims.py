"""Claim check: does a claim match its administration facts, its authorization and the coding
rules (rules.md A-F)?

The flow mirrors eligibility. Every fact is derived in plain Python by a small builder per rule
family (drug units, administration, modifiers, diagnosis, filing) from ``billing.units``,
``billing.administration`` and ``billing.timely_filing``; the ``claims`` ruleset then evaluates
one flat case per claim line and one claim-level case. The authorization and coverage findings
come from the public eligibility check of the claim's drug (``services.eligibility.assess``), so
they are computed once, by the same code, for both checks; which of them concern a claim follows
from their rules' categories.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from policy_service.billing.administration import (
    ADMIN_TIME_MISSING,
    HYDRATION_NOT_BILLABLE,
    INITIAL_CODES,
    AdministrationLines,
    administration_lines,
)
from policy_service.billing.mue import procedure_mue
from policy_service.billing.timely_filing import filing_deadline
from policy_service.billing.units import (
    JW,
    JZ,
    BillingLine,
    DrugBilling,
    Package,
    PackageCount,
    drug_billing,
)
from policy_service.domain.icd10 import is_billable, not_billable_text
from policy_service.domain.requests import Claim, ClaimLine, EligibilityRequest
from policy_service.engine import evaluate
from policy_service.errors import Invalid
from policy_service.logging import get_logger
from policy_service.services.eligibility import (
    Assessment,
    assess,
    authorization_summary,
    sort_findings,
)
from policy_service.services.policy_index import (
    DrugView,
    PayerView,
    PolicyIndex,
    PolicyView,
    index_cache,
)
from policy_service.services.provider_facts import (
    SPECIALTY_PHARMACY,
    pharmacy_supplied,
    rendering_enrollment,
)
from rulesets import render_message
from rulesets.claims import RULESET
from rulesets.eligibility import RULESET as ELIGIBILITY
from rulesets.vocabulary import Category, claim_status

# Place of service (CMS POS code set) -> the site of care authorizations and policies name.
# 19/22 are off- and on-campus outpatient hospital; 49 "independent clinic" is how free-standing
# ambulatory infusion centers bill. Any other POS leaves the site unchecked.
PLACE_OF_SERVICE_SITES: dict[str, str] = {
    "11": "office",
    "12": "home",
    "19": "hospital_outpatient",
    "22": "hospital_outpatient",
    "49": "ambulatory_infusion_center",
}

# The eligibility findings that concern a claim: coverage and the authorization (not missing
# planning data, and not the planning warnings, which are about the next dose).
CLAIM_CATEGORIES = frozenset({Category.COVERAGE, Category.AUTHORIZATION})
# Eligibility rules a claim rule says better, on the line concerned: a drug bought and billed
# where a specialty pharmacy is required is the drug line's DRUG_LINE_NOT_BILLABLE.
REPLACED_ON_CLAIMS = frozenset({"specialty_pharmacy_required"})

EM_CODES = frozenset({"99202", "99203", "99204", "99205",
                      "99211", "99212", "99213", "99214", "99215"})
NURSE_VISIT = "99211"
# Each joint injection code without ultrasound guidance and its guided counterpart (CPT 2015).
GUIDED_INSTEAD = {"20600": "20604", "20605": "20606", "20610": "20611"}
UNGUIDED_JOINT_CODES = frozenset(GUIDED_INSTEAD)
GUIDED_JOINT_CODES = frozenset(GUIDED_INSTEAD.values())
JOINT_CODES = UNGUIDED_JOINT_CODES | GUIDED_JOINT_CODES
ULTRASOUND_GUIDANCE = "76942"
# Codes that need start and stop times: every infusion code and its hourly add-ons.
TIMED_ADMIN_CODES = frozenset({"96360", "96361", "96365", "96366", "96367", "96368",
                               "96413", "96415", "96416", "96417"})
HYDRATION_CODES = frozenset({"96360", "96361"})
# Only one of these per encounter (C2); several 96372/96401 injections of different drugs are fine.
INITIAL_ADMIN_CODES = frozenset(
    code for (_, mode), code in INITIAL_CODES.items() if mode != "injection")
# A second initial service needs a separate vascular access documented with one of these (C2).
DISTINCT_SITE_MODIFIERS = frozenset({"59", "XE", "XS", "XP", "XU"})
SIDE_MODIFIERS = frozenset({"RT", "LT"})
# A finger or toe modifier (FA, F1-F9, TA, T1-T9) names the digit, and with it the side.
DIGIT_MODIFIERS = frozenset({"FA", "TA"} | {f"{hand}{n}" for hand in "FT" for n in range(1, 10)})
BILATERAL = "50"
MODIFIER_25 = "25"

log = get_logger("claims")


def is_admin_code(code: str) -> bool:
    """Return whether ``code`` is a drug-administration CPT code (96360-96379, 96401-96549)."""
    return code.isdigit() and (96360 <= int(code) <= 96379 or 96401 <= int(code) <= 96549)


@dataclass
class _Evaluation:
    """One flat case for the claims ruleset, the line it speaks for and the message context."""

    case: dict[str, Any]
    explain: dict[str, Any]
    line: int | None


@dataclass
class _Derived:
    """Everything derived from a claim before the rules run."""

    evaluations: list[_Evaluation]
    expected_lines: list[dict[str, Any]]
    eligibility: Assessment | None
    drug_line: int | None


def _line_text(code: str, units: int, modifiers: Sequence[str]) -> str:
    suffix = "".join(f"-{m}" for m in modifiers)
    return f"{code}{suffix} x{units}"


def _lines_text(lines: Sequence[BillingLine]) -> str:
    return " and ".join(_line_text(line.code, line.units, line.modifiers) for line in lines) \
        or "no line"


def _number(value: Decimal) -> str:
    return f"{value.normalize():f}"


def _packages_text(billing: DrugBilling, packages: Sequence[PackageCount] | None = None) -> str:
    return " + ".join(
        f"{p.count} x {_number(Decimal(p.amount))} mg vial{'s' if p.count > 1 else ''}"
        for p in (billing.packages_used if packages is None else packages))


def _valid_on(drug: DrugView, day: dt.date) -> bool:
    return (drug.valid_from is None or drug.valid_from <= day) and \
        (drug.valid_to is None or day <= drug.valid_to)


def _replacements(drug: DrugView, day: dt.date, index: PolicyIndex) -> list[DrugView]:
    """Codes for the same molecule valid on ``day`` (J1030 -> J1010)."""
    return sorted((other for other in index.drugs.values()
                   if other.hcpcs != drug.hcpcs and other.generic.lower() == drug.generic.lower()
                   and _valid_on(other, day)), key=lambda other: other.hcpcs)


def _replacement(drug: DrugView, day: dt.date, index: PolicyIndex) -> str:
    """What to bill instead of a code not valid on ``day``, for the message."""
    same = [other.hcpcs for other in _replacements(drug, day, index)]
    return f"bill {' or '.join(same)} instead" if same else "check the current HCPCS code set"


def _current_code(code: str, day: dt.date, index: PolicyIndex) -> DrugView | None:
    """The one valid code for the same molecule when ``code`` is a drug not valid on ``day``."""
    drug = index.drugs.get(code)
    if drug is None or _valid_on(drug, day):
        return None
    options = [other for other in _replacements(drug, day, index)
               if other.billing_unit == drug.billing_unit]
    return options[0] if len(options) == 1 else None


def _rebilled_line(line: ClaimLine, day: dt.date, index: PolicyIndex) -> dict[str, Any]:
    """A drug line under a code not valid on the date, as the same amount under the valid code
    (J1030 x1 = 40 mg -> J1010 x40); other lines as they are."""
    entry = line.as_dict()
    current = _current_code(line.code, day, index)
    if current is None:
        return entry
    amount = Decimal(line.units) * index.drugs[line.code].billing_unit_amount
    units = amount / current.billing_unit_amount
    # Administered units round up, discarded units down (rules.md B).
    whole = math.floor(units) if JW in line.modifiers else math.ceil(units)
    return {**entry, "code": current.hcpcs, "units": whole}


def _validity_text(drug: DrugView) -> str:
    start = drug.valid_from.isoformat() if drug.valid_from else "the start"
    end = drug.valid_to.isoformat() if drug.valid_to else "today"
    return f"{start} to {end}"


def _check_references(claim: Claim, index: PolicyIndex) -> None:
    errors: dict[str, list[str]] = {}
    if claim.payer not in index.payers:
        errors["payer"] = [f"Unknown payer {claim.payer!r}."]
    admin = claim.administration
    if admin is not None and admin.hcpcs is not None and admin.hcpcs not in index.drugs:
        errors["administration.hcpcs"] = [f"Unknown drug code {admin.hcpcs!r}."]
    if errors:
        raise Invalid(errors)


# Eligibility request fields as the claim calls them.
CLAIM_FIELD_NAMES = {
    "packages": "administration.packages",
    "dose": "administration.administered_mg",
    "hcpcs": "administration.hcpcs",
}


def _eligibility(claim: Claim, index: PolicyIndex) -> Assessment | None:
    """The eligibility check of the claim's drug: authorization match and policy coverage.

    The drug is the one administered, else the first drug line's; a claim with neither
    (hydration, a patient-supplied drug) has no drug to check coverage for.
    """
    admin = claim.administration if claim.administration and claim.administration.hcpcs \
        else None
    hcpcs = admin.hcpcs if admin else next(
        (line.code for line in claim.lines if line.code in index.drugs), None)
    if hcpcs is None:
        return None
    request = EligibilityRequest(
        patient_id=claim.patient_id, payer=claim.payer, date_of_service=claim.date_of_service,
        hcpcs=hcpcs, diagnosis_codes=list(claim.diagnosis_codes),
        site_of_care=PLACE_OF_SERVICE_SITES.get(claim.place_of_service or ""),
        birth_date=claim.birth_date, weight_kg=claim.weight_kg,
        dose_mg=admin.administered_mg if admin else None,
        packages=admin.packages if admin else None,
        authorization_number=claim.authorization_number,
        drug_supply=claim.drug_supply or "buy_and_bill",
        rendering_npi=claim.rendering_npi, ordering_npi=claim.ordering_npi,
    )
    try:
        return assess(request, index)
    except Invalid as exc:
        # Name the claim's own fields, not the eligibility request's.
        raise Invalid([{"field": CLAIM_FIELD_NAMES.get(e["field"], e["field"]),
                        "message": e["message"]} for e in exc.errors]) from None


def _billing_explain(claim: Claim, billing: DrugBilling, payer: PayerView) -> dict[str, str]:
    """What the drug messages say: the expected lines, the dose and the packages opened."""
    dose = claim.administration.administered_mg if claim.administration else None
    return {"expected": _lines_text(billing.lines),
            "dose": f"{_number(Decimal(dose))} mg" if dose is not None else "the dose",
            "packages": _packages_text(billing), "jw_reason": _jw_reason(billing, payer)}


def _jw_reason(billing: DrugBilling, payer: PayerView) -> str:
    if not payer.requires_jw_jz:
        return f"{payer.name} does not use the JW/JZ modifiers"
    if billing.before_jw_required:
        return "JW is reported only for services from 2017-01-01"
    if not billing.jw_jz_applies:
        return "waste from a multi-dose container is neither billed nor reported"
    if billing.discarded_units < 1:
        return "less than one billing unit was discarded"
    return "the discarded amount is billed on the JW line"


def _first_of_code(claim: Claim, position: int) -> bool:
    """Whether the line at ``position`` is the claim's first line of its code."""
    code = claim.lines[position].code
    return all(line.code != code for line in claim.lines[:position])


def _code_units(claim: Claim, code: str) -> int:
    """The units of ``code`` over every line of the claim."""
    return sum(line.units for line in claim.lines if line.code == code)


# --- drug units (rules.md A, B, E, H) -----------------------------------------------------------

@dataclass
class _DrugLines:
    """Where the administered drug is billed: its administered lines and its JW lines."""

    code: str | None
    given: list[int]
    waste: list[int]

    @property
    def administered(self) -> int | None:
        """The first line billing the administered amount."""
        return self.given[0] if self.given else None


def _drug_lines(claim: Claim) -> _DrugLines:
    code = claim.administration.hcpcs if claim.administration else None
    lines = [(i, line) for i, line in enumerate(claim.lines) if code and line.code == code]
    return _DrugLines(code, [i for i, line in lines if JW not in line.modifiers],
                      [i for i, line in lines if JW in line.modifiers])


def _package_ndc(drug: DrugView, billing: DrugBilling | None) -> str | None:
    """The NDC of the packages opened, when they are all of one size whose NDC is known."""
    if billing is None:
        return None
    ndcs = {p.ndc for p in drug.packages
            for used in billing.packages_used if Decimal(used.amount) == p.amount}
    return ndcs.pop() if len(ndcs) == 1 and None not in ndcs else None


def _drug_line_case(claim: Claim, position: int, drug: DrugView, payer: PayerView,
                    index: PolicyIndex) -> _Evaluation:
    """The facts of one drug line every drug line has: code validity, NDC, modifiers, MUE."""
    line, day = claim.lines[position], claim.date_of_service
    case: dict[str, Any] = {
        "scope": "line", "kind": "drug", "code": line.code, "units": line.units,
        "code_valid_on_dos": _valid_on(drug, day),
        "ndc_required": payer.requires_ndc, "ndc_given": bool(line.ndc),
        "has_jw": JW in line.modifiers, "has_jz": JZ in line.modifiers,
    }
    explain: dict[str, Any] = {
        "drug_name": drug.name, "date_of_service": day.isoformat(),
        "validity": _validity_text(drug), "replacement": _replacement(drug, day, index),
        "payer_name": payer.name, "ndc_hint": "the 11-digit NDC on the package opened",
    }
    if drug.mue_units is not None and _first_of_code(claim, position):
        case["mue_units"] = drug.mue_units
        case["code_total_units"] = _code_units(claim, line.code)
    return _Evaluation(case, explain, position)


def _units_facts(case: dict[str, Any], claim: Claim, positions: list[int],
                 expected: int) -> None:
    """The units billed on ``positions`` against the units expected for them."""
    billed = sum(claim.lines[i].units for i in positions)
    case.update(expected_units=expected, units_match=billed == expected, billed_units=billed)


def _jw_jz_facts(evaluation: _Evaluation, claim: Claim, billing: DrugBilling,
                 lines: _DrugLines) -> None:
    """Units and JW/JZ facts of a line billing the administered drug."""
    case, position = evaluation.case, evaluation.line
    expected_given = billing.lines[0]
    expected_waste = next((ln for ln in billing.lines if JW in ln.modifiers), None)
    case["jw_jz_applies"] = billing.jw_jz_applies
    case["jw_line_billed"] = bool(lines.waste)
    if position == lines.administered:
        _units_facts(case, claim, lines.given, expected_given.units)
        case["jz_expected"] = JZ in expected_given.modifiers
        case["jw_expected"] = expected_waste is not None
    elif JW in claim.lines[position or 0].modifiers:
        case["jw_expected"] = expected_waste is not None
        if expected_waste is not None and position == lines.waste[0]:
            _units_facts(case, claim, lines.waste, expected_waste.units)
            if billing.waste_above_optimal_units:
                # A8: waste beyond the smallest vial combination is not payable.
                case["jw_units_above_optimal"] = billing.waste_above_optimal_units
                evaluation.explain["optimal_packages"] = _packages_text(
                    billing, billing.optimal_packages)


def _supply_reason(claim: Claim, policy: PolicyView | None) -> str | None:
    """Why the drug is not the practice's to bill (None when it bought it and may bill it)."""
    if not pharmacy_supplied(claim.drug_supply, policy):
        return None
    if claim.drug_supply == SPECIALTY_PHARMACY or policy is None:
        return "the claim says the drug came from a specialty pharmacy"
    return f"{policy.label} requires it from a specialty pharmacy"


def _not_billable_case(claim: Claim, position: int, reason: str) -> _Evaluation:
    """A drug line the practice may not bill: only its supply is judged, not its units."""
    line = claim.lines[position]
    return _Evaluation({"scope": "line", "kind": "drug", "code": line.code, "units": line.units,
                        "drug_line_billable": False}, {"supply_reason": reason}, position)


def _drug_facts(claim: Claim, payer: PayerView, index: PolicyIndex,
                billing: DrugBilling | None, evaluations: list[_Evaluation],
                pharmacy: tuple[frozenset[str], str] | None = None) -> int | None:
    """Add one case per drug line; return the index of the administered drug's line.

    ``pharmacy`` names the codes a specialty pharmacy supplies and why: their lines get only
    the DRUG_LINE_NOT_BILLABLE case.
    """
    lines = _drug_lines(claim)
    for position, line in enumerate(claim.lines):
        drug = index.drugs.get(line.code)
        if drug is None:
            continue
        if pharmacy is not None and line.code in pharmacy[0]:
            evaluations.append(_not_billable_case(claim, position, pharmacy[1]))
            continue
        evaluation = _drug_line_case(claim, position, drug, payer, index)
        if billing is not None and line.code == lines.code:
            evaluation.explain.update(_billing_explain(claim, billing, payer))
            _jw_jz_facts(evaluation, claim, billing, lines)
            ndc = _package_ndc(drug, billing)
            if ndc:
                evaluation.explain["ndc_hint"] = f"the package opened is NDC {ndc}"
        evaluations.append(evaluation)
    return lines.administered


# --- administration (rules.md C1-C5, I3) --------------------------------------------------------

def _expected_administration(claim: Claim, complex_allowed: bool) -> AdministrationLines | None:
    """The administration lines the infusion times support (None without infusions)."""
    infusions = claim.administration.infusions if claim.administration else None
    if not infusions:
        return None
    try:
        return administration_lines(infusions, complex_allowed)
    except ValueError as exc:
        raise Invalid({"administration.infusions": [str(exc)]}) from None


@dataclass
class _AdministrationCheck:
    """Compares the billed administration lines with the lines the times support."""

    claim: Claim
    expected: AdministrationLines | None
    billed: dict[str, int] = field(default_factory=dict)
    seen_initial: int = 0
    mismatched: bool = False

    @property
    def issues(self) -> tuple[Any, ...]:
        """The problems found with the infusions themselves."""
        return self.expected.issues if self.expected else ()

    def issues_of(self, code: str) -> list[Any]:
        """The infusion problems with finding code ``code``."""
        return [issue for issue in self.issues if issue.code == code]

    @property
    def expected_units(self) -> dict[str, int]:
        """Units per administration code the times support."""
        return {line.code: line.units for line in self.expected.lines} if self.expected else {}

    @property
    def expected_text(self) -> str:
        """The supported lines in words."""
        return _lines_text(self.expected.lines) if self.expected else ""

    def line_case(self, position: int, line: ClaimLine, claim_explain: dict[str, Any]
                  ) -> _Evaluation:
        """The facts of one administration line."""
        case: dict[str, Any] = {"scope": "line", "kind": "administration", "code": line.code,
                                "units": line.units}
        explain: dict[str, Any] = {"expected": self.expected_text or "none"}
        if line.code in INITIAL_ADMIN_CODES:
            case["repeats_initial"] = self.seen_initial > 0 or line.units > 1
            case["distinct_site_documented"] = bool(set(line.modifiers)
                                                    & DISTINCT_SITE_MODIFIERS)
            self.seen_initial += line.units
        if line.code in TIMED_ADMIN_CODES and self.expected is None:
            case["times_documented"] = False
        elif line.code in TIMED_ADMIN_CODES and self.issues_of(ADMIN_TIME_MISSING):
            # The claim-level ADMIN_TIME_MISSING names this line; nothing else can be compared.
            claim_explain.setdefault("timed_line", position)
        elif self.expected is not None:
            self._compare(position, line, case, explain)
        return _Evaluation(case, explain, position)

    def _compare(self, position: int, line: ClaimLine, case: dict[str, Any],
                 explain: dict[str, Any]) -> None:
        """Compare one billed line with the supported lines."""
        expected = self.expected_units
        hydration = self.issues_of(HYDRATION_NOT_BILLABLE)
        if line.code in HYDRATION_CODES and hydration \
                and self.billed[line.code] > expected.get(line.code, 0):
            case["hydration_billable"] = False
            explain["hydration_reason"] = hydration[0].message
        elif case.get("repeats_initial") and not case["distinct_site_documented"]:
            # MULTIPLE_INITIAL_ADMIN says it, with the expected lines; no second finding.
            self.mismatched = True
        elif line.code not in expected:
            case["code_expected"] = False
            self.mismatched = True
        elif _first_of_code(self.claim, position):
            case["code_expected"] = True
            case["expected_units"] = expected[line.code]
            case["units_match"] = self.billed[line.code] == expected[line.code]

    def claim_facts(self, claim_case: dict[str, Any], claim_explain: dict[str, Any]) -> None:
        """Claim-level facts: infusions without times, supported lines never billed."""
        times_missing = self.issues_of(ADMIN_TIME_MISSING)
        if times_missing:
            claim_case["infusions_without_times"] = len(times_missing)
            claim_explain["times_missing"] = " ".join(i.message for i in times_missing)
        elif self.expected is not None and not self.mismatched:
            missing = [ln for ln in self.expected.lines if ln.code not in self.billed]
            if missing:
                claim_case["admin_lines_missing"] = len(missing)
                claim_explain["missing_admin"] = _lines_text(missing)
                claim_explain["expected_admin"] = self.expected_text


def _administration_facts(claim: Claim, complex_allowed: bool,
                          evaluations: list[_Evaluation], claim_case: dict[str, Any],
                          claim_explain: dict[str, Any]) -> AdministrationLines | None:
    """Per-line administration facts, compared with the lines the infusion times support."""
    check = _AdministrationCheck(claim, _expected_administration(claim, complex_allowed))
    admin_lines = [(i, line) for i, line in enumerate(claim.lines) if is_admin_code(line.code)]
    for _, line in admin_lines:
        check.billed[line.code] = check.billed.get(line.code, 0) + line.units
    for position, line in admin_lines:
        evaluations.append(check.line_case(position, line, claim_explain))
    check.claim_facts(claim_case, claim_explain)
    return check.expected


# --- modifiers: E/M, joint injections, ultrasound guidance (rules.md C6, D1, D4, I1) ------------

def _em_facts(claim: Claim, line: ClaimLine) -> dict[str, Any]:
    codes = {ln.code for ln in claim.lines}
    with_admin = any(is_admin_code(code) for code in codes) or bool(
        claim.administration and claim.administration.infusions)
    return {"kind": "em", "nurse_visit": line.code == NURSE_VISIT,
            "with_drug_administration": with_admin,
            "with_procedure_or_administration": with_admin or bool(codes & JOINT_CODES),
            "has_modifier_25": MODIFIER_25 in line.modifiers}


def _joint_facts(line: ClaimLine) -> dict[str, Any]:
    modifiers = set(line.modifiers)
    return {"kind": "joint", "has_side": bool(modifiers & (SIDE_MODIFIERS | DIGIT_MODIFIERS)),
            "both_sides": modifiers >= SIDE_MODIFIERS, "bilateral": BILATERAL in modifiers}


def _imaging_facts(claim: Claim, explain: dict[str, Any]) -> dict[str, Any]:
    codes = {line.code for line in claim.lines}
    guided, unguided = sorted(codes & GUIDED_JOINT_CODES), sorted(codes & UNGUIDED_JOINT_CODES)
    explain.update(guided="/".join(guided), unguided="/".join(unguided),
                   guided_instead="/".join(GUIDED_INSTEAD[code] for code in unguided))
    return {"kind": "imaging", "with_guided_joint_injection": bool(guided),
            "with_unguided_joint_injection": bool(unguided)}


def _modifier_facts(claim: Claim, evaluations: list[_Evaluation]) -> None:
    """E/M, joint injection, ultrasound guidance and procedure MUE facts, one case per line."""
    for position, line in enumerate(claim.lines):
        case: dict[str, Any] = {"scope": "line", "code": line.code, "units": line.units}
        explain: dict[str, Any] = {}
        if line.code in EM_CODES:
            case.update(_em_facts(claim, line))
        elif line.code in JOINT_CODES:
            case.update(_joint_facts(line))
        elif line.code == ULTRASOUND_GUIDANCE:
            case.update(_imaging_facts(claim, explain))
        entry = procedure_mue(line.code)
        if entry is not None and _first_of_code(claim, position):
            case.setdefault("kind", "procedure")
            case["mue_units"] = entry.units
            case["code_total_units"] = _code_units(claim, line.code)
            explain["mue_source"] = entry.source
        if "kind" in case:
            evaluations.append(_Evaluation(case, explain, position))


# --- diagnosis and filing (rules.md F, I2) ------------------------------------------------------

def _diagnosis_facts(claim: Claim, claim_case: dict[str, Any],
                     claim_explain: dict[str, Any]) -> None:
    """How many of the claim's diagnoses are not billable ICD-10-CM codes."""
    codes = list(dict.fromkeys(claim.diagnosis_codes))
    claim_case["diagnoses_not_billable"] = sum(not is_billable(code) for code in codes)
    if claim_case["diagnoses_not_billable"]:
        claim_explain["not_billable"] = not_billable_text(codes)


def _filing_facts(claim: Claim, payer: PayerView, claim_case: dict[str, Any],
                  claim_explain: dict[str, Any]) -> None:
    """Days past the payer's filing deadline on the day the payer receives the claim."""
    submitted = claim.submitted_on or dt.date.today()
    medicare = payer.kind == "medicare"
    deadline = filing_deadline(claim.date_of_service, payer.timely_filing_days,
                               medicare=medicare)
    claim_case["days_past_filing_deadline"] = (submitted - deadline).days
    claim_explain.update(submitted_on=submitted.isoformat(), deadline=deadline.isoformat(),
                         filing_rule="12 months from the date of service" if medicare
                         else f"{payer.timely_filing_days} days from the date of service")


# --- what should be billed ----------------------------------------------------------------------

def _expected_drug_lines(claim: Claim, billing: DrugBilling, index: PolicyIndex
                         ) -> list[dict[str, Any]]:
    """The drug lines the dose supports; waste the smallest packages avoid is not billed; the
    NDC as billed, else (where the payer requires it) the one of the packages opened."""
    drug_code = claim.administration.hcpcs if claim.administration else None
    ndc = next((ln.ndc for ln in claim.lines if ln.code == drug_code and ln.ndc), None)
    drug = index.drugs.get(billing.lines[0].code) if billing.lines else None
    if ndc is None and drug is not None and index.payers[claim.payer].requires_ndc:
        ndc = _package_ndc(drug, billing)
    return [{**line.as_dict(), **({"ndc": ndc} if ndc else {})}
            for line in billing.payable_lines]


def _expected_line(line: ClaimLine, claim: Claim, index: PolicyIndex,
                   has_admin: bool) -> dict[str, Any] | None:
    """A submitted line with the corrections the rules imply (None: drop it)."""
    codes = {ln.code for ln in claim.lines}
    if line.code == NURSE_VISIT and has_admin:
        return None
    if line.code == ULTRASOUND_GUIDANCE and codes & JOINT_CODES:
        return None
    entry = _rebilled_line(line, claim.date_of_service, index)
    modifiers: list[str] = entry["modifiers"]
    if line.code in EM_CODES and (has_admin or codes & JOINT_CODES) \
            and MODIFIER_25 not in modifiers:
        modifiers.append(MODIFIER_25)
    if line.code in UNGUIDED_JOINT_CODES and ULTRASOUND_GUIDANCE in codes:
        entry["code"] = GUIDED_INSTEAD[line.code]
    if line.code in JOINT_CODES and not set(modifiers) & (SIDE_MODIFIERS | DIGIT_MODIFIERS) \
            and BILATERAL not in modifiers:
        # No side: the claim does not say which joint, so no line here could be right
        # (LATERALITY_MISSING says how to bill it).
        return None
    if line.code in JOINT_CODES and (BILATERAL in modifiers or set(modifiers) >= SIDE_MODIFIERS):
        # Both sides: one line, modifier 50, one unit (rules.md D4, I4).
        entry["modifiers"] = [m for m in modifiers if m not in SIDE_MODIFIERS and m != BILATERAL]
        entry["modifiers"].append(BILATERAL)
        entry["units"] = 1
    return entry


def _payable_billing(claim: Claim, payer: PayerView, index: PolicyIndex,
                     billing: DrugBilling | None) -> DrugBilling | None:
    """The drug billing to expect: under the valid code when the one given is not valid on the
    date of service (the dose billed again in the valid code's units and least-waste vials)."""
    admin = claim.administration
    current = _current_code(admin.hcpcs, claim.date_of_service, index) \
        if billing is not None and admin is not None and admin.hcpcs else None
    if current is None or admin is None or admin.administered_mg is None:
        return billing
    try:
        return drug_billing(current.hcpcs, admin.administered_mg, current.billing_unit_amount,
                            [Package(p.amount, p.single_dose, p.unit) for p in current.packages],
                            payer_uses_jw_jz=payer.requires_jw_jz,
                            date_of_service=claim.date_of_service)
    except ValueError:
        return billing


def _expected_lines(claim: Claim, index: PolicyIndex, billing: DrugBilling | None,
                    admin: AdministrationLines | None,
                    not_billable: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """What the service would bill: drug and administration lines from the facts, other
    submitted lines with the corrections the rules imply; never a drug in ``not_billable``
    (supplied by a specialty pharmacy)."""
    codes = {line.code for line in claim.lines}
    drug_code = claim.administration.hcpcs if claim.administration else None
    out = _expected_drug_lines(claim, billing, index) if billing is not None else []
    if admin is not None and not any(i.code == ADMIN_TIME_MISSING for i in admin.issues):
        out.extend(line.as_dict() for line in admin.lines)
    has_admin = bool(admin and admin.lines) or any(is_admin_code(c) for c in codes)
    for line in claim.lines:
        if (billing is not None and line.code == drug_code) or \
                (admin is not None and is_admin_code(line.code)) or line.code in not_billable:
            continue
        entry = _expected_line(line, claim, index, has_admin)
        if entry is not None:
            out.append(entry)
    return _one_initial_service(out)


def _one_initial_service(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep one unit of one initial administration code, unless a line documents a second
    vascular access (C2); the times, when given, already chose the one to keep."""
    out: list[dict[str, Any]] = []
    seen = False
    for entry in lines:
        if entry["code"] in INITIAL_ADMIN_CODES \
                and not set(entry["modifiers"]) & DISTINCT_SITE_MODIFIERS:
            if seen:
                continue
            seen = True
            entry = {**entry, "units": 1}
        out.append(entry)
    return out


def _pharmacy_codes(claim: Claim, eligibility: Assessment | None
                    ) -> tuple[frozenset[str], str] | None:
    """The drug codes a specialty pharmacy supplies on this claim, and why (None: none)."""
    if eligibility is None:
        return None
    policy = eligibility.built.policy
    reason = _supply_reason(claim, policy)
    if reason is None:
        return None
    return frozenset({eligibility.built.drug.hcpcs, *(policy.hcpcs if policy else ())}), reason


def _provider_facts(claim: Claim, index: PolicyIndex, claim_case: dict[str, Any],
                    claim_explain: dict[str, Any]) -> None:
    """The rendering provider's enrollment with the payer on the date of service."""
    if claim.rendering_npi is None:
        return
    enrollment = rendering_enrollment(index, claim.rendering_npi, claim.payer,
                                      claim.date_of_service)
    claim_case["rendering_enrollment"] = enrollment.state
    claim_explain["enrollment"] = enrollment.words[:1].upper() + enrollment.words[1:]


def derive(claim: Claim, index: PolicyIndex) -> _Derived:
    """Derive every case the claims ruleset evaluates for one claim."""
    _check_references(claim, index)
    payer = index.payers[claim.payer]
    eligibility = _eligibility(claim, index)
    admin = claim.administration
    billing = eligibility.built.billing if eligibility and admin and admin.hcpcs else None
    evaluations: list[_Evaluation] = []
    claim_case: dict[str, Any] = {"scope": "claim"}
    claim_explain: dict[str, Any] = {"payer_name": payer.name,
                                     "date_of_service": claim.date_of_service.isoformat()}
    pharmacy = _pharmacy_codes(claim, eligibility)
    if pharmacy is not None:
        # A specialty pharmacy bills the drug: no drug units or lines are the practice's.
        billing = None
    _provider_facts(claim, index, claim_case, claim_explain)

    drug_line = _drug_facts(claim, payer, index, billing, evaluations, pharmacy)
    if billing is not None:
        claim_case["drug_line_billed"] = drug_line is not None
        claim_explain.update(_billing_explain(claim, billing, payer))

    drug = index.drugs.get(admin.hcpcs) if admin and admin.hcpcs else None
    # The payer's complex-or-therapeutic setting is about biologics; other drugs keep their kind.
    complex_allowed = payer.complex_admin_for_biologics or drug is None \
        or drug.admin_class != "biologic"
    expected_admin = _administration_facts(claim, complex_allowed, evaluations, claim_case,
                                           claim_explain)
    _modifier_facts(claim, evaluations)
    _diagnosis_facts(claim, claim_case, claim_explain)
    _filing_facts(claim, payer, claim_case, claim_explain)
    evaluations.append(_Evaluation(claim_case, claim_explain, None))
    return _Derived(evaluations,
                    _expected_lines(claim, index, _payable_billing(claim, payer, index, billing),
                                    expected_admin, pharmacy[0] if pharmacy else frozenset()),
                    eligibility, drug_line)


def _claim_line(code: str, evaluation: _Evaluation, drug_line: int | None) -> int | None:
    """The line a finding speaks for (claim-level findings name the line they concern)."""
    if evaluation.case["scope"] != "claim":
        return evaluation.line
    if code == "ADMIN_TIME_MISSING":
        return evaluation.explain.get("timed_line")
    if code in ("JW_MISSING", "UNITS_MISMATCH"):
        return drug_line
    return None


def _claim_rule_findings(derived: _Derived) -> list[dict[str, Any]]:
    """The claims ruleset's findings on every line case and the claim case."""
    findings = []
    for evaluation in derived.evaluations:
        for fired in evaluate("claims", evaluation.case):
            rule = RULESET.rule(fired["rule"])
            findings.append({
                **fired, "line": _claim_line(fired["code"], evaluation, derived.drug_line),
                "message": render_message(rule, {**evaluation.case, **evaluation.explain})})
    return findings


def _authorization_relevant(claim: Claim, eligibility: Assessment) -> bool:
    """Whether the authorization findings concern this claim.

    Without a named authorization or a policy requiring one, the eligibility case's best
    candidate may be another drug's authorization: its mismatches are not this claim's.
    """
    policy = eligibility.built.policy
    return bool(claim.authorization_number) or bool(policy and policy.prior_auth_required)


def _eligibility_findings(claim: Claim, derived: _Derived) -> list[dict[str, Any]]:
    """The coverage and authorization findings of the claim's eligibility check."""
    eligibility = derived.eligibility
    if eligibility is None:
        return []
    with_auth = _authorization_relevant(claim, eligibility)
    findings = []
    for finding in eligibility.findings:
        rule = ELIGIBILITY.rule(finding["rule"])
        if rule.category not in CLAIM_CATEGORIES or rule.planning \
                or rule.name in REPLACED_ON_CLAIMS:
            continue
        if rule.category is Category.AUTHORIZATION and not with_auth:
            continue
        findings.append({key: finding[key] for key in ("code", "severity", "category", "rule",
                                                       "message")} | {"line": derived.drug_line})
    return findings


def _chosen_authorization(claim: Claim, derived: _Derived) -> dict[str, Any] | None:
    """The authorization the claim draws on, as the check chose it (None when none applies)."""
    eligibility = derived.eligibility
    auth = eligibility.built.authorization if eligibility else None
    if auth is None or eligibility is None:
        return None
    relevant = _authorization_relevant(claim, eligibility) or not any(
        f["category"] is Category.AUTHORIZATION for f in eligibility.findings)
    return authorization_summary(auth) if relevant else None


def check_claim(claim: Claim, index: PolicyIndex | None = None) -> dict[str, Any]:
    """Check one claim: findings per line, the status, the lines the facts support and the
    authorization it draws on."""
    index = index if index is not None else index_cache.current()
    derived = derive(claim, index)
    findings = _claim_rule_findings(derived) + _eligibility_findings(claim, derived)
    sort_findings(findings)
    status = claim_status(findings)
    log.info("claim_checked", status=str(status), codes=sorted({f["code"] for f in findings}))
    return {"status": status, "findings": findings, "expected_lines": derived.expected_lines,
            "authorization": _chosen_authorization(claim, derived)}
