"""Claim rules: "does this claim match its administration facts and the coding rules?".

rules.md A-F and I as rules. A claim is evaluated as one case per claim line (``scope: line``,
with ``kind`` drug, administration, em, joint, imaging or procedure) plus one claim-level case
(``scope: claim``): every rule tests the fields of ONE flat fact. The arithmetic behind the
fields (units rounded up, waste rounded down, infusion hours, filing deadlines) is done in plain
Python by policy_service.services.claims; a field that does not apply is absent, so a rule on it
cannot fire (a drug with no MUE has no ``mue_units``). Every message says what to bill instead.

The authorization and coverage findings of a claim come from the eligibility ruleset, evaluated
on the eligibility case built for the claim's drug; they are not repeated here.
"""

from __future__ import annotations

from typing import Any

from rulesets import ALWAYS_FIRING_RULE, Example, Fact, FactType, Rule, Ruleset
from rulesets.vocabulary import Category, Severity

BOOLEAN, INTEGER = FactType.BOOLEAN, FactType.INTEGER
KINDS = ("drug", "administration", "em", "joint", "imaging", "procedure")

FACTS: tuple[Fact, ...] = (
    Fact("scope", FactType.CHOICE, "whether the case is one claim line or the whole claim",
         ("line", "claim")),
    Fact("kind", FactType.CHOICE, "what the line bills", KINDS),
    Fact("code", FactType.TEXT, "the line's HCPCS or CPT code"),
    Fact("units", INTEGER, "the line's units"),
    # drug lines
    Fact("code_valid_on_dos", BOOLEAN, "the drug code is valid on the date of service"),
    Fact("ndc_required", BOOLEAN, "the payer requires the NDC on drug lines"),
    Fact("ndc_given", BOOLEAN, "the line carries an NDC"),
    Fact("has_jw", BOOLEAN, "the line carries modifier JW"),
    Fact("has_jz", BOOLEAN, "the line carries modifier JZ"),
    Fact("jw_jz_applies", BOOLEAN,
         "the payer uses JW/JZ and the drug came from single-dose containers"),
    Fact("jw_line_billed", BOOLEAN, "the claim bills discarded units of this drug with JW"),
    Fact("expected_units", INTEGER, "the units the facts support for this line"),
    Fact("units_match", BOOLEAN, "the units billed equal the expected units"),
    Fact("billed_units", INTEGER, "the units billed on every line of this code and purpose"),
    Fact("jz_expected", BOOLEAN, "the administered line should carry JZ"),
    Fact("jw_expected", BOOLEAN, "whole units were discarded, so a JW line is expected"),
    Fact("mue_units", INTEGER, "the code's medically unlikely edit per date of service"),
    Fact("code_total_units", INTEGER, "units of this code over the whole claim"),
    Fact("jw_units_above_optimal", INTEGER,
         "JW units the smallest package combination would have avoided"),
    # administration lines
    Fact("repeats_initial", BOOLEAN, "an initial administration code is billed again"),
    Fact("distinct_site_documented", BOOLEAN, "the line carries 59, XE, XS, XP or XU"),
    Fact("times_documented", BOOLEAN, "the infusion has start and stop times"),
    Fact("code_expected", BOOLEAN, "the infusion times support this administration code"),
    Fact("hydration_billable", BOOLEAN, "the hydration billed is separately reportable"),
    # E/M, joint and imaging lines
    Fact("nurse_visit", BOOLEAN, "the E/M is 99211"),
    Fact("with_drug_administration", BOOLEAN, "the claim has drug administration"),
    Fact("with_procedure_or_administration", BOOLEAN,
         "the claim has drug administration or a joint injection"),
    Fact("has_modifier_25", BOOLEAN, "the E/M line carries modifier 25"),
    Fact("has_side", BOOLEAN, "the joint line carries RT, LT or a digit modifier"),
    Fact("both_sides", BOOLEAN, "the joint line carries both RT and LT"),
    Fact("bilateral", BOOLEAN, "the joint line carries modifier 50"),
    Fact("with_guided_joint_injection", BOOLEAN, "the claim bills 20604, 20606 or 20611"),
    Fact("with_unguided_joint_injection", BOOLEAN, "the claim bills 20600, 20605 or 20610"),
    # the claim-level case
    Fact("drug_line_billed", BOOLEAN, "a line bills the drug the administration names"),
    Fact("infusions_without_times", INTEGER, "infusions lacking a start or stop time"),
    Fact("admin_lines_missing", INTEGER,
         "administration lines the times support that the claim lacks"),
    Fact("diagnoses_not_billable", INTEGER,
         "diagnoses on the claim that are not billable ICD-10-CM codes"),
    Fact("days_past_filing_deadline", INTEGER,
         "days from the filing deadline to receipt (negative: in time)"),
    # supply and providers
    Fact("drug_line_billable", BOOLEAN,
         "the practice may bill this drug (false: it comes from a specialty pharmacy)"),
    Fact("rendering_enrollment", FactType.CHOICE,
         "the rendering provider's enrollment with the payer on the date of service",
         ("enrolled", "not_enrolled", "unknown_npi")),
)

# Extra values the case builder passes for messages (not case fields, never tested by rules).
MESSAGE_CONTEXT: dict[str, str] = {
    "expected": "the lines the facts support, e.g. J1745 x35 and J1745-JW x5",
    "dose": "the dose given, e.g. 350 mg",
    "optimal_packages": "the smallest vial combination for the dose, e.g. 1 x 400 mg vial",
    "packages": "the packages opened, e.g. 4 x 100 mg vials",
    "jw_reason": "why JW/JZ is or is not reported for this drug and payer",
    "payer_name": "the payer's display name",
    "ndc_hint": "the NDC of the package opened when the drug table knows it, e.g. 57894-0030-01",
    "date_of_service": "ISO date of service",
    "validity": "the dates a HCPCS code is valid, e.g. the start to 2024-03-31",
    "replacement": "what to bill instead of an invalid code, e.g. bill J1010 instead",
    "times_missing": "which infusions lack a start or stop time",
    "missing_admin": "administration lines the times support but the claim lacks",
    "expected_admin": "every administration line the times support",
    "hydration_reason": "why the hydration is not billable (length or concurrency)",
    "mue_source": "where a procedure MUE value comes from and whether it is confirmed",
    "guided": "the ultrasound-guided joint injection codes on the claim",
    "unguided": "the joint injection codes on the claim that exclude ultrasound guidance",
    "guided_instead": "the guided codes to bill instead, e.g. 20611",
    "not_billable": "each diagnosis that is not billable, with billable codes under it",
    "filing_rule": "the payer's filing window in words",
    "deadline": "ISO date of the last filing day",
    "submitted_on": "ISO date the claim is received",
    "supply_reason": "why the drug is not the practice's to bill, e.g. UnitedHealthcare's "
                     "infliximab policy requires it from a specialty pharmacy",
    "enrollment": "the rendering provider's enrollment in words, e.g. Ada Lovelace, MD "
                  "(1234567893) is not enrolled with Medicare Part B on 2026-03-10",
}

Condition = dict[str, Any]


def _line(kind: str, *conditions: Condition) -> Condition:
    """A condition on one claim line of the given kind."""
    return {"$and": [{"scope": "line"}, {"kind": kind}, *conditions]}


def _claim(condition: Condition) -> Condition:
    """A condition on the claim-level case."""
    return {"$and": [{"scope": "claim"}, condition]}


# An absent limit (no MUE known for the code) never matches.
EXCEEDS_MUE: Condition = {"$gt": {"code_total_units": {"$m": "mue_units"}}}

RULES: tuple[Rule, ...] = (
    Rule(
        name="units_mismatch",
        code="UNITS_MISMATCH",
        severity=Severity.BLOCK,
        category=Category.DRUG_BILLING,
        condition=_line("drug", {"units_match": False}),
        when="The units billed for the drug given differ from the dose rounded up to whole billing"
             " units.",
        why="The administered line bills the dose rounded up to the HCPCS unit; more is an "
            "overpayment, less is lost revenue.",
        source="https://cgsmedicare.com/partb/pubs/news/2023/06/cope140894.html",
        message="Line bills {code} x{billed_units}. Bill {expected} for {dose} from "
                "{packages}.",
        fires=(
            Example("40 units billed for 350 mg",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 40,
                     "billed_units": 40, "expected_units": 35, "units_match": False}),
        ),
        passes=(
            Example("units match the dose rounded up",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "billed_units": 35, "expected_units": 35, "units_match": True}),
            Example("an administration line's units are ADMIN_UNITS_MISMATCH, not this",
                    {"scope": "line", "kind": "administration", "code": "96415", "units": 2,
                     "expected_units": 1, "units_match": False},
                    expect=("ADMIN_UNITS_MISMATCH",)),
        ),
    ),
    Rule(
        name="units_mismatch_waste_above_optimal",
        code="UNITS_MISMATCH",
        severity=Severity.WARN,
        category=Category.DRUG_BILLING,
        condition=_line("drug", {"$gt": {"jw_units_above_optimal": 0}}),
        when="The JW units billed include waste that the smallest package combination for the dose"
             " would have avoided.",
        why="Billed units should match the smallest vial combination that provides the dose; "
            "avoidable waste is not payable (rules.md A8).",
        source="https://cgsmedicare.com/partb/pubs/news/2023/06/cope140894.html",
        message="{jw_units_above_optimal} of the JW units come from opening {packages} "
                "where {optimal_packages} would cover {dose}; that waste is not payable.",
        fires=(
            Example("2 x 400 mg tocilizumab vials opened for 480 mg",
                    {"scope": "line", "kind": "drug", "code": "J3262", "units": 320,
                     "has_jw": True, "jw_units_above_optimal": 320, "units_match": True}),
        ),
        passes=(
            Example("the smallest vial combination was opened",
                    {"scope": "line", "kind": "drug", "code": "J3262", "units": 0, "has_jw": True,
                     "units_match": True}),
        ),
    ),
    Rule(
        name="units_mismatch_no_drug_line",
        code="UNITS_MISMATCH",
        severity=Severity.BLOCK,
        category=Category.DRUG_BILLING,
        condition=_claim({"drug_line_billed": False}),
        when="A drug was given (the administration names it) but no line bills it.",
        why="The drug given is billed on its own HCPCS line; without it the drug is not paid.",
        source="https://med.noridianmedicare.com/web/jfb/topics/modifiers/JW",
        message="No line bills the drug given. Bill {expected} for {dose} from {packages}.",
        fires=(
            Example("the drug given is on no line",
                    {"scope": "claim", "drug_line_billed": False,
                     "days_past_filing_deadline": -300}),
        ),
        passes=(
            Example("the drug is billed",
                    {"scope": "claim", "drug_line_billed": True,
                     "days_past_filing_deadline": -300}),
            Example("a line case never reads the claim-level field",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "drug_line_billed": False}),
        ),
    ),
    Rule(
        name="jw_missing",
        code="JW_MISSING",
        severity=Severity.BLOCK,
        category=Category.DRUG_BILLING,
        condition=_line("drug", {"jw_expected": True}, {"jw_line_billed": False}),
        when="Whole billing units were discarded from single-dose containers and no JW line bills "
             "them.",
        why="Medicare requires a JW line for discarded drug from single-dose containers since 2017"
            " (A1, A5).",
        source="https://med.noridianmedicare.com/web/jfb/topics/modifiers/JW",
        message="Whole units were discarded from single-dose vials: Bill {expected} for "
                "{dose} from {packages}.",
        fires=(
            Example("5 units discarded and no JW line",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "jw_expected": True, "jw_line_billed": False, "has_jw": False,
                     "has_jz": False}),
        ),
        passes=(
            Example("the JW line is billed",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "jw_expected": True, "jw_line_billed": True, "has_jw": False,
                     "has_jz": False}),
            Example("nothing discarded",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 40,
                     "jw_expected": False, "jw_line_billed": False, "has_jw": False,
                     "has_jz": True, "jz_expected": True}),
        ),
    ),
    Rule(
        name="jw_not_allowed",
        code="JW_NOT_ALLOWED",
        severity=Severity.BLOCK,
        category=Category.DRUG_BILLING,
        condition=_line("drug", {"$or": [
            {"$and": [{"has_jw": True}, {"jw_expected": False}]},
            {"$and": [{"has_jz": True}, {"jw_jz_applies": False}]},
        ]}),
        when="A line carries JW where no billable waste exists, or JW/JZ where they do not apply "
             "(multi-dose container, a payer that does not use them).",
        why="JW for less than one unit of waste is an overpayment; JW/JZ do not apply to "
            "multi-dose containers (A4, A7).",
        source="https://med.noridianmedicare.com/web/jddme/topics/modifiers/jz",
        message="Remove the JW/JZ modifier from {code}: {jw_reason}. Bill {expected} for "
                "{dose} from {packages}.",
        fires=(
            Example("JW for less than one unit of waste",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 1, "has_jw": True,
                     "has_jz": False, "jw_expected": False, "jw_jz_applies": True,
                     "jw_line_billed": True}),
            Example("JZ on a multi-dose container",
                    {"scope": "line", "kind": "drug", "code": "J3301", "units": 4,
                     "has_jw": False, "has_jz": True, "jw_jz_applies": False,
                     "jw_line_billed": False}),
        ),
        passes=(
            Example("JW for whole units discarded from single-dose vials",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 5, "has_jw": True,
                     "has_jz": False, "jw_expected": True, "jw_jz_applies": True,
                     "jw_line_billed": True}),
            Example("JZ where the payer uses JW/JZ",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 40,
                     "has_jw": False, "has_jz": True, "jw_jz_applies": True,
                     "jw_line_billed": False}),
        ),
    ),
    Rule(
        name="jz_missing",
        code="JZ_MISSING",
        severity=Severity.BLOCK,
        category=Category.DRUG_BILLING,
        condition=_line("drug", {"jz_expected": True}, {"has_jz": False}),
        when="The payer uses JW/JZ, nothing billable was discarded from single-dose containers, "
             "and the drug line lacks JZ.",
        why="Since 2023-07-01 Medicare requires JZ when nothing is discarded; claims without JW or"
            " JZ may be returned (A2, A6).",
        source="http://www.cms.gov/medicare/payment/part-b-drugs/discarded-drugs",
        message="Nothing billable was discarded: Bill {expected} for {dose} from {packages} "
                "(claims without JW or JZ are returned as unprocessable).",
        fires=(
            Example("400 mg from 4 x 100 mg billed without JZ",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 40,
                     "jz_expected": True, "has_jz": False, "has_jw": False}),
        ),
        passes=(
            Example("JZ present",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 40,
                     "jz_expected": True, "has_jz": True, "has_jw": False}),
            Example("waste billed on a JW line, so no JZ",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "jz_expected": False, "has_jz": False, "has_jw": False}),
        ),
    ),
    Rule(
        name="jw_jz_conflict",
        code="JW_JZ_CONFLICT",
        severity=Severity.BLOCK,
        category=Category.DRUG_BILLING,
        condition=_line("drug", {"has_jz": True},
                           {"$or": [{"has_jw": True}, {"jw_line_billed": True}]}),
        when="The drug line carries JZ (nothing discarded) on a claim that also bills discarded "
             "units with JW.",
        why="JZ says nothing was discarded; it cannot stand beside a JW line for the same drug.",
        source="http://www.cms.gov/medicare/payment/part-b-drugs/discarded-drugs",
        message="{code} carries JZ (nothing discarded) on a claim that bills discarded "
                "units with JW. Bill {expected} for {dose} from {packages}.",
        fires=(
            Example("JW and JZ on the same line",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 5, "has_jw": True,
                     "has_jz": True, "jw_line_billed": True, "jw_expected": True,
                     "jw_jz_applies": True}),
            Example("JZ on the administered line of a claim with a JW line",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "has_jw": False, "has_jz": True, "jw_line_billed": True,
                     "jw_jz_applies": True}),
        ),
        passes=(
            Example("JZ alone",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 40,
                     "has_jw": False, "has_jz": True, "jw_line_billed": False,
                     "jw_jz_applies": True}),
            Example("JW line without JZ",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 5, "has_jw": True,
                     "has_jz": False, "jw_line_billed": True, "jw_expected": True,
                     "jw_jz_applies": True}),
        ),
    ),
    Rule(
        name="ndc_missing",
        code="NDC_MISSING",
        severity=Severity.BLOCK,
        category=Category.DRUG_BILLING,
        condition=_line("drug", {"ndc_required": True}, {"ndc_given": False}),
        when="The payer requires the NDC and a drug line has none.",
        why="Payers that price drugs by NDC deny drug lines without the NDC of the package used.",
        source="https://www.cms.gov/medicare/payment/part-b-drugs/asp-reporting",
        message="{payer_name} requires the NDC of the package used on every drug line: "
                "add it to {code} ({ndc_hint}).",
        fires=(
            Example("the payer requires the NDC and it is absent",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "ndc_required": True, "ndc_given": False}),
        ),
        passes=(
            Example("NDC given",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "ndc_required": True, "ndc_given": True}),
            Example("the payer does not require it",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "ndc_required": False, "ndc_given": False}),
        ),
    ),
    Rule(
        name="code_not_valid_on_dos",
        code="CODE_NOT_VALID_ON_DOS",
        severity=Severity.BLOCK,
        category=Category.DRUG_BILLING,
        condition=_line("drug", {"code_valid_on_dos": False}),
        when="The drug's HCPCS code is not valid on the date of service (deleted or not yet "
             "created).",
        why="A code billed outside its valid dates is denied (CARC 181); methylprednisolone moved "
            "from J1020-J1040 to J1010 on 2024-04-01.",
        source="https://www.the-rheumatologist.org/article/methotrexate-codes-billing-updated/",
        message="{code} is valid for dates of service from {validity}, not "
                "{date_of_service}: {replacement}.",
        fires=(
            Example("J1030 on 2024-05-01",
                    {"scope": "line", "kind": "drug", "code": "J1030", "units": 1,
                     "code_valid_on_dos": False}),
        ),
        passes=(
            Example("J1010 on 2024-05-01",
                    {"scope": "line", "kind": "drug", "code": "J1010", "units": 40,
                     "code_valid_on_dos": True}),
        ),
    ),
    Rule(
        name="mue_exceeded",
        code="MUE_EXCEEDED",
        severity=Severity.BLOCK,
        category=Category.DRUG_BILLING,
        condition=_line("drug", EXCEEDS_MUE),
        when="The units of one drug code on the date of service are above its medically unlikely "
             "edit.",
        why="Units above the MUE deny every unit of the line (MUE).",
        source="https://med.noridianmedicare.com/web/jfb/topics/claim-submission/medically-unlikely-edits",
        message="{code} bills {code_total_units} units on one date of service; the "
                "medically unlikely edit allows {mue_units} and denies every unit of the "
                "line above it. Bill at most {mue_units} units or document the exception.",
        fires=(
            Example("drug units over the drug's MUE",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 40,
                     "mue_units": 30, "code_total_units": 40}),
        ),
        passes=(
            Example("exactly at the MUE",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 40,
                     "mue_units": 40, "code_total_units": 40}),
            Example("no MUE known for the drug",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 400,
                     "code_total_units": 400}),
        ),
    ),
    Rule(
        name="admin_time_missing",
        code="ADMIN_TIME_MISSING",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition=_line("administration", {"times_documented": False}),
        when="A timed infusion code is billed and the administration has no infusion times.",
        why="Infusion codes are chosen by minutes; start and stop times are required to support "
            "them.",
        source="https://the-rheumatologist.org/article/coding-corner-answer-september",
        message="{code} is a timed infusion code: document the infusion start and stop "
                "times so the hours can be checked.",
        fires=(
            Example("96413 billed and no infusion times given",
                    {"scope": "line", "kind": "administration", "code": "96413", "units": 1,
                     "times_documented": False}),
        ),
        passes=(
            Example("an injection code needs no times",
                    {"scope": "line", "kind": "administration", "code": "96372", "units": 1}),
        ),
    ),
    Rule(
        name="admin_time_missing_infusion",
        code="ADMIN_TIME_MISSING",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition=_claim({"$gt": {"infusions_without_times": 0}}),
        when="An infusion of the administration lacks its start or stop time.",
        why="Infusion codes are chosen by minutes; start and stop times are required to support "
            "them.",
        source="https://the-rheumatologist.org/article/coding-corner-answer-september",
        message="{times_missing} Add the missing times before billing the infusion codes.",
        fires=(
            Example("one infusion has no stop time",
                    {"scope": "claim", "infusions_without_times": 1,
                     "days_past_filing_deadline": -300}),
        ),
        passes=(
            Example("every infusion has its times",
                    {"scope": "claim", "days_past_filing_deadline": -300}),
        ),
    ),
    Rule(
        name="admin_code_mismatch",
        code="ADMIN_CODE_MISMATCH",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition=_line("administration", {"code_expected": False}),
        when="An administration code is billed that the infusion times do not support.",
        why="The initial code follows the hierarchy (complex > therapeutic > hydration) and the "
            "hours follow the 31-minute rule (C1, C3).",
        source="https://the-rheumatologist.org/article/coding-corner-answer-september",
        message="The infusion times do not support {code}. Bill {expected}.",
        fires=(
            Example("96365 billed where the payer wants 96413",
                    {"scope": "line", "kind": "administration", "code": "96365", "units": 1,
                     "code_expected": False}),
        ),
        passes=(
            Example("the code the times support",
                    {"scope": "line", "kind": "administration", "code": "96413", "units": 1,
                     "code_expected": True, "expected_units": 1, "units_match": True}),
        ),
    ),
    Rule(
        name="admin_code_mismatch_missing_line",
        code="ADMIN_CODE_MISMATCH",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition=_claim({"$gt": {"admin_lines_missing": 0}}),
        when="The infusion times support an administration line that the claim does not bill.",
        why="Every administration the times support is billable; leaving one out loses revenue.",
        source="https://the-rheumatologist.org/article/coding-corner-answer-september",
        message="Add {missing_admin}: the infusion times support {expected_admin}.",
        fires=(
            Example("91 minutes billed without 96366",
                    {"scope": "claim", "admin_lines_missing": 1,
                     "days_past_filing_deadline": -300}),
        ),
        passes=(
            Example("every supported line billed",
                    {"scope": "claim", "days_past_filing_deadline": -300}),
        ),
    ),
    Rule(
        name="admin_units_mismatch",
        code="ADMIN_UNITS_MISMATCH",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition=_line("administration", {"units_match": False}),
        when="An administration code's units differ from what the infusion times support.",
        why="An additional hour counts only when the infusion runs 31 minutes or more into it "
            "(C1).",
        source="https://the-rheumatologist.org/article/coding-corner-answer-september",
        message="{code} x{units} does not match the infusion times: bill {code} "
                "x{expected_units} ({expected}).",
        fires=(
            Example("96366 x1 for 151 minutes",
                    {"scope": "line", "kind": "administration", "code": "96366", "units": 1,
                     "code_expected": True, "expected_units": 2, "units_match": False}),
        ),
        passes=(
            Example("96366 x2 for 151 minutes",
                    {"scope": "line", "kind": "administration", "code": "96366", "units": 2,
                     "code_expected": True, "expected_units": 2, "units_match": True}),
        ),
    ),
    Rule(
        name="multiple_initial_admin",
        code="MULTIPLE_INITIAL_ADMIN",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition=_line("administration", {"repeats_initial": True},
                           {"distinct_site_documented": False}),
        when="A second initial administration code (or 2 units of one) is billed without a "
             "separate-site modifier.",
        why="Only one initial service is reported per encounter unless two IV sites were required "
            "(C2).",
        source="https://www.cms.gov/Research-Statistics-Data-and-Systems/Monitoring-Programs/Medicare-FFS-Compliance-Programs/Recovery-Audit-Program/Approved-RAC-Topics-Items/0071-Initial-Hydration-Infusion-and-Chemotherapy-Administration.html",
        message="Only one initial administration code is billed per encounter; {code} "
                "repeats it. Bill {expected}, or add 59/XU when a second IV site was "
                "required.",
        fires=(
            Example("a second initial code without a distinct-site modifier",
                    {"scope": "line", "kind": "administration", "code": "96365", "units": 1,
                     "repeats_initial": True, "distinct_site_documented": False}),
        ),
        passes=(
            Example("a second initial code with XU",
                    {"scope": "line", "kind": "administration", "code": "96365", "units": 1,
                     "repeats_initial": True, "distinct_site_documented": True}),
            Example("the one initial code",
                    {"scope": "line", "kind": "administration", "code": "96413", "units": 1,
                     "repeats_initial": False, "distinct_site_documented": False}),
        ),
    ),
    Rule(
        name="hydration_not_billable",
        code="HYDRATION_NOT_BILLABLE",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition=_line("administration", {"hydration_billable": False}),
        when="Hydration is billed that ran 30 minutes or less, or concurrently with a drug "
             "infusion.",
        why="Hydration under 31 minutes or given concurrently with a drug is not separately "
            "reportable (C1, C4).",
        source="https://med.noridianmedicare.com/web/jea/topics/drugs-biologicals-injections/hydration",
        message="{hydration_reason} Remove {code}; bill {expected}.",
        fires=(
            Example("96361 for hydration concurrent with the drug infusion",
                    {"scope": "line", "kind": "administration", "code": "96361", "units": 1,
                     "hydration_billable": False}),
        ),
        passes=(
            Example("96361 for 31 minutes of sequential hydration",
                    {"scope": "line", "kind": "administration", "code": "96361", "units": 1,
                     "code_expected": True, "expected_units": 1, "units_match": True}),
        ),
    ),
    Rule(
        name="mue_exceeded_procedure",
        code="MUE_EXCEEDED",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition={"$and": [
            {"scope": "line"},
            {"$or": [{"kind": "administration"}, {"kind": "procedure"}, {"kind": "joint"}]},
            EXCEEDS_MUE,
        ]},
        when="The units of an administration or procedure code on the date of service are above "
             "its medically unlikely edit.",
        why="Units above the MUE deny every unit of the line (MUE).",
        source="https://med.noridianmedicare.com/web/jfb/topics/claim-submission/medically-unlikely-edits",
        message="{code} bills {code_total_units} units on one date of service; the "
                "medically unlikely edit allows {mue_units} ({mue_source}). Bill at most "
                "{mue_units}.",
        fires=(
            Example("96366 x9 over the table value 8",
                    {"scope": "line", "kind": "administration", "code": "96366", "units": 9,
                     "mue_units": 8, "code_total_units": 9}),
            Example("an unlisted procedure code over its table value",
                    {"scope": "line", "kind": "procedure", "code": "Q9980", "units": 60,
                     "mue_units": 50, "code_total_units": 60}),
        ),
        passes=(
            Example("96366 x8",
                    {"scope": "line", "kind": "administration", "code": "96366", "units": 8,
                     "mue_units": 8, "code_total_units": 8}),
        ),
    ),
    Rule(
        name="em_not_payable",
        code="EM_NOT_PAYABLE",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition=_line("em", {"nurse_visit": True}, {"with_drug_administration": True}),
        when="99211 is billed on a claim with drug administration.",
        why="99211 is not payable with drug administration codes, with or without modifier 25 "
            "(C6).",
        source="https://hhs.gov/guidance/document/payment-office-or-other-outpatient-evaluation-and-management-em-visits-codes-99201-99215",
        message="99211 is not payable with drug administration, with or without modifier "
                "25: remove the 99211 line.",
        fires=(
            Example("99211 on an infusion day, even with 25",
                    {"scope": "line", "kind": "em", "code": "99211", "units": 1,
                     "nurse_visit": True, "with_drug_administration": True,
                     "with_procedure_or_administration": True, "has_modifier_25": True}),
        ),
        passes=(
            Example("99211 with a joint injection only",
                    {"scope": "line", "kind": "em", "code": "99211", "units": 1,
                     "nurse_visit": True, "with_drug_administration": False,
                     "with_procedure_or_administration": True, "has_modifier_25": False}),
        ),
    ),
    Rule(
        name="modifier_25_missing",
        code="MODIFIER_25_MISSING",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition=_line("em", {"nurse_visit": False},
                           {"with_procedure_or_administration": True},
                           {"has_modifier_25": False}),
        when="An E/M visit other than 99211 is billed with a procedure or drug administration and "
             "lacks modifier 25.",
        why="An E/M on the day of a procedure is paid only as a significant, separately "
            "identifiable service with modifier 25 (C6, D7).",
        source="https://medicare.fcso.com/coding/modifier-25-fact-sheet",
        message="{code} on the day of a procedure or drug administration is paid only as a "
                "significant, separately identifiable service: bill {code}-25 (and "
                "document it), or remove the line.",
        fires=(
            Example("99214 on an infusion day without 25",
                    {"scope": "line", "kind": "em", "code": "99214", "units": 1,
                     "nurse_visit": False, "with_drug_administration": True,
                     "with_procedure_or_administration": True, "has_modifier_25": False}),
        ),
        passes=(
            Example("99214-25",
                    {"scope": "line", "kind": "em", "code": "99214", "units": 1,
                     "nurse_visit": False, "with_drug_administration": True,
                     "with_procedure_or_administration": True, "has_modifier_25": True}),
            Example("an office visit alone",
                    {"scope": "line", "kind": "em", "code": "99214", "units": 1,
                     "nurse_visit": False, "with_drug_administration": False,
                     "with_procedure_or_administration": False, "has_modifier_25": False}),
        ),
    ),
    Rule(
        name="imaging_bundled",
        code="IMAGING_BUNDLED",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition=_line("imaging", {"with_guided_joint_injection": True}),
        when="76942 is billed with an ultrasound-guided joint injection (20604, 20606, 20611).",
        why="Ultrasound guidance is included in 20604/20606/20611 and is not reported separately "
            "(D1).",
        source="https://www.aapmr.org/news-publications/member-news/member-news-details/2017/05/30/may-coding-q-a",
        message="Ultrasound guidance is included in {guided}: remove the 76942 line.",
        fires=(
            Example("76942 with 20611",
                    {"scope": "line", "kind": "imaging", "code": "76942", "units": 1,
                     "with_guided_joint_injection": True}),
        ),
        passes=(
            Example("76942 with a code that has no bundled guidance",
                    {"scope": "line", "kind": "imaging", "code": "76942", "units": 1,
                     "with_guided_joint_injection": False}),
        ),
    ),
    Rule(
        name="imaging_bundled_unguided_joint",
        code="IMAGING_BUNDLED",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition=_line("imaging", {"with_unguided_joint_injection": True}),
        when="76942 is billed with a joint injection coded without ultrasound guidance (20600, "
             "20605, 20610).",
        why="Since CPT 2015 20600/20605/20610 mean \"without ultrasound guidance\" and are not "
            "reported with 76942; documented guidance is billed as 20604/20606/20611 (I1).",
        source="https://www.supercoder.com/coding-newsletters/my-radiology-coding-alert/coding-strategies-mark-these-changes-to-refine-your-arthrocentesis-reporting-145933-article",
        message="{unguided} means without ultrasound guidance and is not reported with 76942: "
                "when guidance is documented bill {guided_instead} (guidance included) and remove "
                "the 76942 line; otherwise remove the 76942 line.",
        fires=(
            Example("76942 with 20610",
                    {"scope": "line", "kind": "imaging", "code": "76942", "units": 1,
                     "with_guided_joint_injection": False,
                     "with_unguided_joint_injection": True}),
        ),
        passes=(
            Example("76942 with a code that has no guidance in or out of its descriptor",
                    {"scope": "line", "kind": "imaging", "code": "76942", "units": 1,
                     "with_guided_joint_injection": False,
                     "with_unguided_joint_injection": False}),
        ),
    ),
    Rule(
        name="laterality_missing",
        code="LATERALITY_MISSING",
        severity=Severity.BLOCK,
        category=Category.ADMINISTRATION_CODING,
        condition=_line("joint", {"$or": [
            {"$and": [{"has_side": False}, {"bilateral": False}]},
            {"both_sides": True},
            {"$and": [{"bilateral": True}, {"$gt": {"units": 1}}]},
        ]}),
        when="A joint injection has no side (RT/LT or a digit modifier), both RT and LT, or "
             "modifier 50 with more than one unit.",
        why="Payers require RT/LT for one side and modifier 50 with one unit for both sides (D4).",
        source="https://aapc.com/discuss/threads/new-cgs-article-for-20610-20611-revised-05-01-2021.180691",
        message="{code} needs its side: bill {code}-RT or {code}-LT x1 for one joint, or "
                "{code}-50 x1 (one unit) for both sides.",
        fires=(
            Example("20610 with no side",
                    {"scope": "line", "kind": "joint", "code": "20610", "units": 1,
                     "has_side": False, "both_sides": False, "bilateral": False}),
            Example("20610-50 with two units",
                    {"scope": "line", "kind": "joint", "code": "20610", "units": 2,
                     "has_side": False, "both_sides": False, "bilateral": True}),
            Example("RT and LT on one line",
                    {"scope": "line", "kind": "joint", "code": "20605", "units": 1,
                     "has_side": True, "both_sides": True, "bilateral": False}),
        ),
        passes=(
            Example("20610-50 x1 for both knees",
                    {"scope": "line", "kind": "joint", "code": "20610", "units": 1,
                     "has_side": False, "both_sides": False, "bilateral": True}),
            Example("20610-RT",
                    {"scope": "line", "kind": "joint", "code": "20610", "units": 1,
                     "has_side": True, "both_sides": False, "bilateral": False}),
        ),
    ),
    Rule(
        name="diagnosis_not_billable",
        code="DIAGNOSIS_NOT_BILLABLE",
        severity=Severity.BLOCK,
        category=Category.CLAIM_DATA,
        condition=_claim({"$gt": {"diagnoses_not_billable": 0}}),
        when="A diagnosis on the claim is a category or subcategory with codes below it, not a "
             "billable ICD-10-CM code (M1A.071 rather than M1A.0710).",
        why="A claim must carry each diagnosis at its full length, 7th character included "
            "(ICD-10-CM Official Guidelines I.B.2); a truncated code is denied.",
        source="https://www.cms.gov/medicare/coding-billing/icd-10-codes",
        message="Diagnosis codes must be billable ICD-10-CM codes: {not_billable}.",
        fires=(
            Example("M1A.071 on the claim",
                    {"scope": "claim", "diagnoses_not_billable": 1,
                     "days_past_filing_deadline": -300}),
        ),
        passes=(
            Example("every diagnosis billable",
                    {"scope": "claim", "diagnoses_not_billable": 0,
                     "days_past_filing_deadline": -300}),
        ),
    ),
    Rule(
        name="timely_filing_exceeded",
        code="TIMELY_FILING_EXCEEDED",
        severity=Severity.BLOCK,
        category=Category.CLAIM_DATA,
        condition=_claim({"$gt": {"days_past_filing_deadline": 0}}),
        when="The claim reaches the payer after its filing deadline.",
        why="Claims received after the payer's filing window are denied (CO-29) and cannot be "
            "appealed (F).",
        source="https://medicare.fcso.com/node/5026",
        message="{payer_name} must receive the claim within {filing_rule} (by {deadline}); "
                "submitted on {submitted_on} it is {days_past_filing_deadline} days late "
                "and will be denied (CO-29).",
        fires=(
            Example("Medicare DOS 2026-02-28 received 2027-03-01",
                    {"scope": "claim", "days_past_filing_deadline": 1}),
        ),
        passes=(
            Example("received on the last day",
                    {"scope": "claim", "days_past_filing_deadline": 0}),
            Example("a line case never reads the claim-level field",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "days_past_filing_deadline": 5}),
        ),
    ),
    Rule(
        name="drug_line_not_billable",
        code="DRUG_LINE_NOT_BILLABLE",
        severity=Severity.BLOCK,
        category=Category.DRUG_BILLING,
        condition=_line("drug", {"drug_line_billable": False}),
        when="A line bills a drug that the payer's policy on the date of service requires from a "
             "specialty pharmacy, or that the claim says came from one.",
        why="The specialty pharmacy bills the payer for the drug; a practice line for the same "
            "drug is denied (or paid twice and recouped). The practice bills the administration "
            "only.",
        source="https://www.the-rheumatologist.org/?p=62513",
        message="Line bills {code} x{units}, but {supply_reason}: remove the drug line and bill "
                "the administration only.",
        fires=(
            Example("Remicade billed where the payer requires a specialty pharmacy",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "drug_line_billable": False}),
        ),
        passes=(
            Example("a bought-and-billed drug",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "drug_line_billable": True}),
            Example("the claim-level case never reads a line's supply",
                    {"scope": "claim", "drug_line_billable": False}),
        ),
    ),
    Rule(
        name="provider_not_enrolled",
        code="PROVIDER_NOT_ENROLLED",
        severity=Severity.BLOCK,
        category=Category.CLAIM_DATA,
        condition=_claim({"$or": [{"rendering_enrollment": "not_enrolled"},
                                  {"rendering_enrollment": "unknown_npi"}]}),
        when="The rendering provider is not enrolled with the payer on the date of service, or "
             "the rendering NPI is not a provider on file.",
        why="The payer denies every line of a provider not enrolled with it on the date (CARC "
            "B7); enrollment must be fixed, or the claim billed under an enrolled provider.",
        source="https://apexflowrcm.com/denial-codes/carc-b7-provider-not-eligible",
        message="{enrollment}: {payer_name} will deny the claim (CARC B7).",
        fires=(
            Example("enrollment ended before the date of service",
                    {"scope": "claim", "rendering_enrollment": "not_enrolled"}),
            Example("rendering NPI not on file",
                    {"scope": "claim", "rendering_enrollment": "unknown_npi"}),
        ),
        passes=(
            Example("enrolled on the date",
                    {"scope": "claim", "rendering_enrollment": "enrolled"}),
            Example("no rendering NPI on the claim",
                    {"scope": "claim"}),
        ),
    ),
    ALWAYS_FIRING_RULE,
)

RULESET = Ruleset(
    name="claims",
    title="Claims: does this claim match its administration facts and the coding rules?",
    rules=RULES,
    facts=FACTS,
    message_context=MESSAGE_CONTEXT,
    scenarios=(
            Example("350 mg billed as J1745 x35 with its NDC",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 35,
                     "code_valid_on_dos": True, "ndc_required": False, "ndc_given": True,
                     "has_jw": False, "has_jz": False, "jw_jz_applies": True,
                     "jw_line_billed": True, "expected_units": 35, "units_match": True,
                     "billed_units": 35, "jz_expected": False, "jw_expected": True,
                     "mue_units": 100, "code_total_units": 40},),
            Example("the JW line of 5 units",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 5,
                     "code_valid_on_dos": True, "ndc_required": False, "ndc_given": True,
                     "has_jw": True, "has_jz": False, "jw_jz_applies": True,
                     "jw_line_billed": True, "jw_expected": True, "expected_units": 5,
                     "units_match": True, "billed_units": 5},),
            Example("96413 x1 supported by the infusion times",
                    {"scope": "line", "kind": "administration", "code": "96413", "units": 1,
                     "repeats_initial": False, "distinct_site_documented": False,
                     "code_expected": True, "expected_units": 1, "units_match": True},),
            Example("99214-25 on an infusion day",
                    {"scope": "line", "kind": "em", "code": "99214", "units": 1,
                     "nurse_visit": False, "with_drug_administration": True,
                     "with_procedure_or_administration": True, "has_modifier_25": True},),
            Example("claim filed in time with every administration line",
                    {"scope": "claim", "drug_line_billed": True,
                     "days_past_filing_deadline": -363},),
            Example("several problems on one drug line are reported together",
                    {"scope": "line", "kind": "drug", "code": "J1745", "units": 40,
                     "code_valid_on_dos": False, "ndc_required": True, "ndc_given": False,
                     "has_jw": False, "has_jz": False, "jw_jz_applies": True,
                     "jw_line_billed": False, "expected_units": 35, "units_match": False,
                     "billed_units": 40, "jz_expected": False, "jw_expected": True,
                     "mue_units": 30, "code_total_units": 40},
                    expect=("UNITS_MISMATCH", "JW_MISSING", "NDC_MISSING", "CODE_NOT_VALID_ON_DOS",
                            "MUE_EXCEEDED")),
    ),
)
