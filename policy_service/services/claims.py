"""Claim check: does a claim match its administration facts, its authorization and the coding
rules (rules.md A-F)?

The flow mirrors eligibility. Every fact is derived in plain Python (units and JW/JZ lines from
``billing.units``, administration codes from ``billing.administration``, the filing deadline from
``billing.timely_filing``); the ``claims`` ruleset then evaluates one flat case per claim line and
one claim-level case. The authorization and coverage findings come from the eligibility case
built for the claim's drug (``services.eligibility.build_case``), so they are computed once, by
the same code, for both checks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from policy_service.billing.administration import (
    ADMIN_TIME_MISSING,
    HYDRATION_NOT_BILLABLE,
    INITIAL_CODES,
    AdministrationLines,
    Infusion,
    administration_lines,
)
from policy_service.billing.mue import procedure_mue
from policy_service.billing.timely_filing import filing_deadline
from policy_service.billing.units import JW, JZ, BillingLine, DrugBilling, PackageCount
from policy_service.engine import evaluate
from policy_service.errors import Invalid
from policy_service.logging import get_logger
from policy_service.services.eligibility import (
    COVERAGE_CODES,
    SEVERITY_ORDER,
    BuiltCase,
    EligibilityRequest,
    build_case,
    finding_message,
    load_context,
)
from policy_service.services.policy_index import DrugView, PayerView, PolicyIndex, index_cache
from rulesets import render_message
from rulesets.claims import RULES_BY_NAME

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

# Eligibility findings about planning the next dose, not about a service already given.
NOT_FOR_CLAIMS = frozenset({"AUTH_EXPIRING_SOON", "AUTH_UNITS_LOW"})

EM_CODES = frozenset({"99202", "99203", "99204", "99205",
                      "99211", "99212", "99213", "99214", "99215"})
NURSE_VISIT = "99211"
JOINT_CODES = frozenset({"20600", "20604", "20605", "20606", "20610", "20611"})
GUIDED_JOINT_CODES = frozenset({"20604", "20606", "20611"})
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


@dataclass(frozen=True)
class ClaimLine:
    """One submitted service line."""

    code: str
    units: int
    modifiers: tuple[str, ...] = ()
    ndc: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the line in the contract's JSON shape."""
        line: dict[str, Any] = {"code": self.code, "units": self.units,
                                "modifiers": list(self.modifiers)}
        if self.ndc:
            line["ndc"] = self.ndc
        return line


@dataclass(frozen=True)
class ClaimAdministration:
    """What was given at the encounter: the drug, the dose, the packages opened, the times."""

    hcpcs: str
    administered_mg: Decimal | None = None
    packages: list[tuple[Decimal, int]] | None = None
    infusions: list[Infusion] | None = None


@dataclass
class Claim:
    """A claim as loaded by the claims schema (or converted from an 837P claim)."""

    payer: str
    patient_id: str
    date_of_service: dt.date
    lines: list[ClaimLine]
    submitted_on: dt.date | None = None
    diagnosis_codes: list[str] = field(default_factory=list)
    authorization_number: str | None = None
    place_of_service: str | None = None
    administration: ClaimAdministration | None = None
    birth_date: dt.date | None = None
    weight_kg: Decimal | None = None


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
    eligibility: BuiltCase | None
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


def _replacement(drug: DrugView, day: dt.date, index: PolicyIndex) -> str:
    """Codes for the same molecule valid on ``day`` (J1030 -> J1010), for the message."""
    same = sorted(other.hcpcs for other in index.drugs.values()
                  if other.hcpcs != drug.hcpcs and other.generic.lower() == drug.generic.lower()
                  and _valid_on(other, day))
    return f"bill {' or '.join(same)} instead" if same else "check the current HCPCS code set"


def _validity_text(drug: DrugView) -> str:
    start = drug.valid_from.isoformat() if drug.valid_from else "the start"
    end = drug.valid_to.isoformat() if drug.valid_to else "today"
    return f"{start} to {end}"


def _check_references(claim: Claim, index: PolicyIndex) -> None:
    errors: dict[str, list[str]] = {}
    if claim.payer not in index.payers:
        errors["payer"] = [f"Unknown payer {claim.payer!r}."]
    admin = claim.administration
    if admin is not None and admin.hcpcs not in index.drugs:
        errors["administration.hcpcs"] = [f"Unknown drug code {admin.hcpcs!r}."]
    if errors:
        raise Invalid(errors)


def _eligibility_case(claim: Claim, index: PolicyIndex) -> BuiltCase | None:
    """The eligibility case for the claim's drug: authorization match and policy coverage."""
    admin = claim.administration
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
    )
    try:
        return build_case(request, index, load_context([request]))
    except Invalid as exc:
        # Name the claim's own fields, not the eligibility request's.
        raise Invalid([{"field": CLAIM_FIELD_NAMES.get(e["field"], e["field"]),
                        "message": e["message"]} for e in exc.errors]) from None


# Eligibility request fields as the claim calls them.
CLAIM_FIELD_NAMES = {
    "packages": "administration.packages",
    "dose": "administration.administered_mg",
    "hcpcs": "administration.hcpcs",
}


def _billing_explain(claim: Claim, billing: DrugBilling, payer: PayerView) -> dict[str, str]:
    """What the drug messages say: the expected lines, the dose and the packages opened."""
    dose = claim.administration.administered_mg if claim.administration else None
    return {"expected": _lines_text(billing.lines),
            "dose": f"{_number(Decimal(dose))} mg" if dose is not None else "the dose",
            "packages": _packages_text(billing), "jw_reason": _jw_reason(billing, payer)}


def _drug_facts(claim: Claim, payer: PayerView, index: PolicyIndex,
                billing: DrugBilling | None, evaluations: list[_Evaluation]) -> int | None:
    """Add one case per drug line; return the index of the administered drug's line."""
    admin = claim.administration
    day = claim.date_of_service
    totals: dict[str, int] = {}
    for line in claim.lines:
        totals[line.code] = totals.get(line.code, 0) + line.units
    first_of_code: dict[str, int] = {}
    for position, line in enumerate(claim.lines):
        first_of_code.setdefault(line.code, position)

    drug_code = admin.hcpcs if admin else None
    given_lines = [i for i, line in enumerate(claim.lines)
                   if line.code == drug_code and JW not in line.modifiers]
    waste_lines = [i for i, line in enumerate(claim.lines)
                   if line.code == drug_code and JW in line.modifiers]
    administered_line = given_lines[0] if given_lines else None


    for position, line in enumerate(claim.lines):
        drug = index.drugs.get(line.code)
        if drug is None:
            continue
        modifiers = set(line.modifiers)
        case: dict[str, Any] = {
            "scope": "line", "kind": "drug", "code": line.code, "units": line.units,
            "code_valid_on_dos": _valid_on(drug, day),
            "ndc_required": payer.requires_ndc, "ndc_given": bool(line.ndc),
            "has_jw": JW in modifiers, "has_jz": JZ in modifiers,
        }
        explain: dict[str, Any] = {
            "drug_name": drug.name, "date_of_service": day.isoformat(),
            "validity": _validity_text(drug), "replacement": _replacement(drug, day, index),
            "payer_name": payer.name,
        }
        if drug.mue_units is not None and first_of_code[line.code] == position:
            case["mue_units"] = drug.mue_units
            case["code_total_units"] = totals[line.code]
        if billing is not None and line.code == drug_code:
            # The first expected line is the administered one (with JZ when nothing wasted).
            expected_given = billing.lines[0]
            expected_waste = next((ln for ln in billing.lines if JW in ln.modifiers), None)
            case["jw_jz_applies"] = billing.jw_jz_applies
            explain.update(_billing_explain(claim, billing, payer))
            case["jw_line_billed"] = bool(waste_lines)
            if position == administered_line:
                billed = sum(claim.lines[i].units for i in given_lines)
                case["expected_units"] = expected_given.units
                case["units_match"] = billed == expected_given.units
                case["billed_units"] = billed
                case["jz_expected"] = JZ in expected_given.modifiers
                case["jw_expected"] = expected_waste is not None
            elif JW in modifiers:
                case["jw_expected"] = expected_waste is not None
                if expected_waste is not None and position == waste_lines[0]:
                    billed = sum(claim.lines[i].units for i in waste_lines)
                    case["expected_units"] = expected_waste.units
                    case["units_match"] = billed == expected_waste.units
                    case["billed_units"] = billed
                    if billing.waste_above_optimal_units:
                        # A8: waste beyond the smallest vial combination is not payable.
                        case["jw_units_above_optimal"] = billing.waste_above_optimal_units
                        explain["optimal_packages"] = _packages_text(
                            billing, billing.optimal_packages)
        evaluations.append(_Evaluation(case, explain, position))
    return administered_line


def _jw_reason(billing: DrugBilling, payer: PayerView) -> str:
    if not payer.requires_jw_jz:
        return f"{payer.name} does not use the JW/JZ modifiers"
    if not billing.jw_jz_applies:
        return "waste from a multi-dose container is neither billed nor reported"
    if billing.discarded_units < 1:
        return "less than one billing unit was discarded"
    return "the discarded amount is billed on the JW line"


def _administration_facts(claim: Claim, complex_for_biologics: bool,
                          evaluations: list[_Evaluation],
                          claim_case: dict[str, Any], claim_explain: dict[str, Any]
                          ) -> AdministrationLines | None:
    """Per-line administration facts, compared with the lines the infusion times support."""
    admin = claim.administration
    admin_lines = [(i, line) for i, line in enumerate(claim.lines) if is_admin_code(line.code)]
    infusions = admin.infusions if admin else None
    expected: AdministrationLines | None = None
    if infusions:
        try:
            expected = administration_lines(infusions, complex_for_biologics)
        except ValueError as exc:
            raise Invalid({"administration.infusions": [str(exc)]}) from None
    issues = expected.issues if expected else ()
    times_missing = [i for i in issues if i.code == ADMIN_TIME_MISSING]
    hydration_issues = [i for i in issues if i.code == HYDRATION_NOT_BILLABLE]
    expected_units = {line.code: line.units for line in expected.lines} if expected else {}
    expected_text = _lines_text(expected.lines) if expected else ""
    # Codes whose comparison is meaningless: their infusion has no times.
    unknown = TIMED_ADMIN_CODES if times_missing else frozenset()

    billed: dict[str, int] = {}
    for _, line in admin_lines:
        billed[line.code] = billed.get(line.code, 0) + line.units
    seen_initial = 0
    mismatched = False
    for position, line in admin_lines:
        modifiers = set(line.modifiers)
        case: dict[str, Any] = {"scope": "line", "kind": "administration", "code": line.code,
                                "units": line.units}
        explain: dict[str, Any] = {"expected": expected_text or "none"}
        if line.code in INITIAL_ADMIN_CODES:
            case["repeats_initial"] = seen_initial > 0 or line.units > 1
            case["distinct_site_documented"] = bool(modifiers & DISTINCT_SITE_MODIFIERS)
            seen_initial += line.units
        if line.code in TIMED_ADMIN_CODES and not infusions:
            case["times_documented"] = False
        elif line.code in unknown:
            # The claim-level ADMIN_TIME_MISSING names this line; nothing else can be compared.
            claim_explain.setdefault("timed_line", position)
        elif expected is not None:
            is_first = next(p for p, ln in admin_lines if ln.code == line.code) == position
            if line.code in HYDRATION_CODES and hydration_issues \
                    and billed[line.code] > expected_units.get(line.code, 0):
                case["hydration_billable"] = False
                explain["hydration_reason"] = hydration_issues[0].message
            elif case.get("repeats_initial") and not case["distinct_site_documented"]:
                # MULTIPLE_INITIAL_ADMIN says it, with the expected lines; no second finding.
                mismatched = True
            elif line.code not in expected_units:
                case["code_expected"] = False
                mismatched = True
            elif is_first:
                case["code_expected"] = True
                case["expected_units"] = expected_units[line.code]
                case["units_match"] = billed[line.code] == expected_units[line.code]
        evaluations.append(_Evaluation(case, explain, position))

    if times_missing:
        claim_case["infusions_without_times"] = len(times_missing)
        claim_explain["times_missing"] = " ".join(i.message for i in times_missing)
    if expected is not None and not times_missing and not mismatched:
        missing = [ln for ln in expected.lines if ln.code not in billed]
        if missing:
            claim_case["admin_lines_missing"] = len(missing)
            claim_explain["missing_admin"] = _lines_text(missing)
            claim_explain["expected_admin"] = expected_text
    return expected


def _other_line_facts(claim: Claim, evaluations: list[_Evaluation]) -> None:
    """E/M, joint injection and ultrasound guidance facts (C6, D1, D4)."""
    codes = {line.code for line in claim.lines}
    with_admin = any(is_admin_code(code) for code in codes) or bool(
        claim.administration and claim.administration.infusions)
    with_procedure = with_admin or bool(codes & JOINT_CODES)
    guided = sorted(codes & GUIDED_JOINT_CODES)
    for position, line in enumerate(claim.lines):
        modifiers = set(line.modifiers)
        case: dict[str, Any] = {"scope": "line", "code": line.code, "units": line.units}
        explain: dict[str, Any] = {}
        if line.code in EM_CODES:
            case.update(kind="em", nurse_visit=line.code == NURSE_VISIT,
                        with_drug_administration=with_admin,
                        with_procedure_or_administration=with_procedure,
                        has_modifier_25=MODIFIER_25 in modifiers)
        elif line.code in JOINT_CODES:
            case.update(kind="joint",
                        has_side=bool(modifiers & (SIDE_MODIFIERS | DIGIT_MODIFIERS)),
                        both_sides=modifiers >= SIDE_MODIFIERS,
                        bilateral=BILATERAL in modifiers)
        elif line.code == ULTRASOUND_GUIDANCE:
            case.update(kind="imaging", with_guided_joint_injection=bool(guided))
            explain["guided"] = "/".join(guided)
        entry = procedure_mue(line.code)
        first = line.code not in {ln.code for ln in claim.lines[:position]}
        if entry is not None and first:
            case.setdefault("kind", "procedure")
            case["mue_units"] = entry.units
            case["code_total_units"] = sum(ln.units for ln in claim.lines if ln.code == line.code)
            explain["mue_source"] = entry.source
        if "kind" not in case:
            continue
        evaluations.append(_Evaluation(case, explain, position))


def _expected_lines(claim: Claim, billing: DrugBilling | None,
                    admin: AdministrationLines | None) -> list[dict[str, Any]]:
    """What the service would bill: drug and administration lines from the facts, other
    submitted lines with the corrections the rules imply."""
    codes = {line.code for line in claim.lines}
    drug_code = claim.administration.hcpcs if claim.administration else None
    out: list[dict[str, Any]] = []
    if billing is not None:
        ndc = next((ln.ndc for ln in claim.lines if ln.code == drug_code and ln.ndc), None)
        for line in billing.lines:
            entry = line.as_dict()
            if ndc:
                entry["ndc"] = ndc
            out.append(entry)
    if admin is not None and not any(i.code == ADMIN_TIME_MISSING for i in admin.issues):
        out.extend(line.as_dict() for line in admin.lines)
    has_admin = bool(admin and admin.lines) or any(is_admin_code(c) for c in codes)
    for line in claim.lines:
        if (billing is not None and line.code == drug_code) or \
                (admin is not None and is_admin_code(line.code)):
            continue
        if line.code == NURSE_VISIT and has_admin:
            continue
        if line.code == ULTRASOUND_GUIDANCE and codes & GUIDED_JOINT_CODES:
            continue
        entry = line.as_dict()
        if line.code in EM_CODES and (has_admin or codes & JOINT_CODES) \
                and MODIFIER_25 not in entry["modifiers"]:
            entry["modifiers"].append(MODIFIER_25)
        out.append(entry)
    return out


def derive(claim: Claim, index: PolicyIndex) -> _Derived:
    """Derive every case the claims ruleset evaluates for one claim."""
    _check_references(claim, index)
    payer = index.payers[claim.payer]
    built = _eligibility_case(claim, index)
    billing: DrugBilling | None = built.billing if built and claim.administration else None
    evaluations: list[_Evaluation] = []
    claim_case: dict[str, Any] = {"scope": "claim"}
    claim_explain: dict[str, Any] = {"payer_name": payer.name,
                                     "date_of_service": claim.date_of_service.isoformat()}

    drug_line = _drug_facts(claim, payer, index, billing, evaluations)
    if billing is not None:
        claim_case["drug_line_billed"] = drug_line is not None
        claim_explain.update(_billing_explain(claim, billing, payer))

    drug = index.drugs.get(claim.administration.hcpcs) if claim.administration else None
    # The payer's complex-or-therapeutic setting is about biologics; other drugs keep their kind.
    complex_allowed = payer.complex_admin_for_biologics or drug is None \
        or drug.admin_class != "biologic"
    admin = _administration_facts(claim, complex_allowed, evaluations, claim_case,
                                  claim_explain)
    _other_line_facts(claim, evaluations)

    submitted = claim.submitted_on or dt.date.today()
    deadline = filing_deadline(claim.date_of_service, payer.timely_filing_days,
                               medicare=payer.kind == "medicare")
    claim_case["days_past_filing_deadline"] = (submitted - deadline).days
    claim_explain.update(submitted_on=submitted.isoformat(), deadline=deadline.isoformat(),
                         filing_rule="12 months from the date of service"
                         if payer.kind == "medicare"
                         else f"{payer.timely_filing_days} days from the date of service")
    evaluations.append(_Evaluation(claim_case, claim_explain, None))
    return _Derived(evaluations, _expected_lines(claim, billing, admin), built, drug_line)


def _claim_line(code: str, evaluation: _Evaluation) -> int | None:
    """The line a claim-level finding speaks for."""
    if code == "ADMIN_TIME_MISSING":
        return evaluation.explain.get("timed_line")
    return evaluation.line


def check_claim(claim: Claim) -> dict[str, Any]:
    """Check one claim: findings per line, the status, and the lines the facts support."""
    index = index_cache.current()
    derived = derive(claim, index)
    findings: list[dict[str, Any]] = []
    for evaluation in derived.evaluations:
        for fired in evaluate("claims", evaluation.case):
            rule = RULES_BY_NAME[fired["rule"]]
            line = evaluation.line
            if evaluation.case["scope"] == "claim":
                line = _claim_line(fired["code"], evaluation)
                if line is None and fired["code"] in ("JW_MISSING", "UNITS_MISMATCH"):
                    line = derived.drug_line
            message = render_message(rule, {**evaluation.case, **evaluation.explain})
            findings.append({"code": fired["code"], "severity": fired["severity"],
                             "line": line, "message": message, "rule": fired["rule"]})
    built = derived.eligibility
    if built is not None:
        # Without a named authorization or a policy requiring one, the eligibility case's best
        # candidate may be another drug's authorization: its mismatches are not this claim's.
        auth_relevant = bool(claim.authorization_number) or bool(
            built.policy and built.policy.prior_auth_required)
        for fired in evaluate("eligibility", built.case):
            code = fired["code"]
            if code.startswith("AUTH_"):
                if not auth_relevant or code in NOT_FOR_CLAIMS:
                    continue
            elif code not in COVERAGE_CODES:
                continue
            findings.append({"code": code, "severity": fired["severity"],
                             "line": derived.drug_line, "rule": fired["rule"],
                             "message": finding_message(code, built.case, built.context)})
    findings.sort(key=lambda f: (SEVERITY_ORDER.get(f["severity"], 9),
                                 f["line"] if f["line"] is not None else -1, f["code"]))
    needs_correction = any(f["severity"] in ("block", "warn") for f in findings)
    status = "needs_correction" if needs_correction else "clean"
    log.info("claim_checked", status=status, codes=sorted({f["code"] for f in findings}))
    return {"status": status, "findings": findings, "expected_lines": derived.expected_lines}
