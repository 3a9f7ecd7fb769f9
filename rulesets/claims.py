"""Claim rules: "does this claim match its administration facts and the coding rules?".

rules.md A-F as data. A claim is evaluated as one case per claim line (``scope: line``, with
``kind`` drug, administration, em, joint, imaging or procedure) plus one claim-level case
(``scope: claim``): every rule tests the fields of ONE flat fact. The arithmetic behind the
fields (units rounded up, waste rounded down, infusion hours, filing deadlines) is done in plain
Python by policy_service.services.claims; a field that does not apply is absent, so a rule on it
cannot fire (a drug with no MUE has no ``mue_units``). Every message says what to bill instead.

The authorization and coverage codes of a claim come from the eligibility ruleset, evaluated on
the eligibility case built for the claim's drug; they are not repeated here.

Scenario cases for every rule live in rulesets/cases/claims.yaml.
"""

from __future__ import annotations

from typing import Any

from rulesets import ALWAYS_FIRING_RULE, Rule, rule_codes

# Extra values the case builder passes for messages (not case fields, never tested by rules).
MESSAGE_CONTEXT: dict[str, str] = {
    "expected": "the lines the facts support, e.g. J1745 x35 and J1745-JW x5",
    "dose": "the dose given, e.g. 350 mg",
    "optimal_packages": "the smallest vial combination for the dose, e.g. 1 x 400 mg vial",
    "packages": "the packages opened, e.g. 4 x 100 mg vials",
    "jw_reason": "why JW/JZ is or is not reported for this drug and payer",
    "payer_name": "the payer's display name",
    "date_of_service": "ISO date of service",
    "validity": "the dates a HCPCS code is valid, e.g. the start to 2024-03-31",
    "replacement": "what to bill instead of an invalid code, e.g. bill J1010 instead",
    "times_missing": "which infusions lack a start or stop time",
    "missing_admin": "administration lines the times support but the claim lacks",
    "expected_admin": "every administration line the times support",
    "hydration_reason": "why the hydration is not billable (length or concurrency)",
    "mue_source": "where a procedure MUE value comes from and whether it is confirmed",
    "guided": "the ultrasound-guided joint injection codes on the claim",
    "filing_rule": "the payer's filing window in words",
    "deadline": "ISO date of the last filing day",
    "submitted_on": "ISO date the claim is received",
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

RULES: list[Rule] = [
    # --- Drug lines (A, B, E, H) ---------------------------------------------------------------
    {
        "name": "units_mismatch",
        "code": "UNITS_MISMATCH",
        "severity": "block",
        "condition": _line("drug", {"units_match": False}),
        "message": "Line bills {code} x{billed_units}. Bill {expected} for {dose} from "
                   "{packages}.",
    },
    {
        # rules.md A8: billed units should match the smallest vial combination available.
        "name": "units_mismatch_waste_above_optimal",
        "code": "UNITS_MISMATCH",
        "severity": "warn",
        "condition": _line("drug", {"$gt": {"jw_units_above_optimal": 0}}),
        "message": "{jw_units_above_optimal} of the JW units come from opening {packages} "
                   "where {optimal_packages} would cover {dose}; that waste is not payable.",
    },
    {
        "name": "units_mismatch_no_drug_line",
        "code": "UNITS_MISMATCH",
        "severity": "block",
        "condition": _claim({"drug_line_billed": False}),
        "message": "No line bills the drug given. Bill {expected} for {dose} from {packages}.",
    },
    {
        "name": "jw_missing",
        "code": "JW_MISSING",
        "severity": "block",
        "condition": _line("drug", {"jw_expected": True}, {"jw_line_billed": False}),
        "message": "Whole units were discarded from single-dose vials: Bill {expected} for "
                   "{dose} from {packages}.",
    },
    {
        "name": "jw_not_allowed",
        "code": "JW_NOT_ALLOWED",
        "severity": "block",
        "condition": _line("drug", {"$or": [
            {"$and": [{"has_jw": True}, {"jw_expected": False}]},
            {"$and": [{"has_jz": True}, {"jw_jz_applies": False}]},
        ]}),
        "message": "Remove the JW/JZ modifier from {code}: {jw_reason}. Bill {expected} for "
                   "{dose} from {packages}.",
    },
    {
        "name": "jz_missing",
        "code": "JZ_MISSING",
        "severity": "block",
        "condition": _line("drug", {"jz_expected": True}, {"has_jz": False}),
        "message": "Nothing billable was discarded: Bill {expected} for {dose} from {packages} "
                   "(claims without JW or JZ are returned as unprocessable).",
    },
    {
        "name": "jw_jz_conflict",
        "code": "JW_JZ_CONFLICT",
        "severity": "block",
        "condition": _line("drug", {"has_jz": True},
                           {"$or": [{"has_jw": True}, {"jw_line_billed": True}]}),
        "message": "{code} carries JZ (nothing discarded) on a claim that bills discarded "
                   "units with JW. Bill {expected} for {dose} from {packages}.",
    },
    {
        "name": "ndc_missing",
        "code": "NDC_MISSING",
        "severity": "block",
        "condition": _line("drug", {"ndc_required": True}, {"ndc_given": False}),
        "message": "{payer_name} requires the NDC of the package used on every drug line: "
                   "add it to {code} (e.g. 57894-0030-01).",
    },
    {
        "name": "code_not_valid_on_dos",
        "code": "CODE_NOT_VALID_ON_DOS",
        "severity": "block",
        "condition": _line("drug", {"code_valid_on_dos": False}),
        "message": "{code} is valid for dates of service from {validity}, not "
                   "{date_of_service}: {replacement}.",
    },
    {
        "name": "mue_exceeded",
        "code": "MUE_EXCEEDED",
        "severity": "block",
        "condition": _line("drug", EXCEEDS_MUE),
        "message": "{code} bills {code_total_units} units on one date of service; the "
                   "medically unlikely edit allows {mue_units} and denies every unit of the "
                   "line above it. Bill at most {mue_units} units or document the exception.",
    },
    # --- Administration lines (C1-C5) ----------------------------------------------------------
    {
        "name": "admin_time_missing",
        "code": "ADMIN_TIME_MISSING",
        "severity": "block",
        "condition": _line("administration", {"times_documented": False}),
        "message": "{code} is a timed infusion code: document the infusion start and stop "
                   "times so the hours can be checked.",
    },
    {
        "name": "admin_time_missing_infusion",
        "code": "ADMIN_TIME_MISSING",
        "severity": "block",
        "condition": _claim({"$gt": {"infusions_without_times": 0}}),
        "message": "{times_missing} Add the missing times before billing the infusion codes.",
    },
    {
        "name": "admin_code_mismatch",
        "code": "ADMIN_CODE_MISMATCH",
        "severity": "block",
        "condition": _line("administration", {"code_expected": False}),
        "message": "The infusion times do not support {code}. Bill {expected}.",
    },
    {
        "name": "admin_code_mismatch_missing_line",
        "code": "ADMIN_CODE_MISMATCH",
        "severity": "block",
        "condition": _claim({"$gt": {"admin_lines_missing": 0}}),
        "message": "Add {missing_admin}: the infusion times support {expected_admin}.",
    },
    {
        "name": "admin_units_mismatch",
        "code": "ADMIN_UNITS_MISMATCH",
        "severity": "block",
        "condition": _line("administration", {"units_match": False}),
        "message": "{code} x{units} does not match the infusion times: bill {code} "
                   "x{expected_units} ({expected}).",
    },
    {
        "name": "multiple_initial_admin",
        "code": "MULTIPLE_INITIAL_ADMIN",
        "severity": "block",
        "condition": _line("administration", {"repeats_initial": True},
                           {"distinct_site_documented": False}),
        "message": "Only one initial administration code is billed per encounter; {code} "
                   "repeats it. Bill {expected}, or add 59/XU when a second IV site was "
                   "required.",
    },
    {
        "name": "hydration_not_billable",
        "code": "HYDRATION_NOT_BILLABLE",
        "severity": "block",
        "condition": _line("administration", {"hydration_billable": False}),
        "message": "{hydration_reason} Remove {code}; bill {expected}.",
    },
    {
        "name": "mue_exceeded_procedure",
        "code": "MUE_EXCEEDED",
        "severity": "block",
        "condition": {"$and": [
            {"scope": "line"},
            {"$or": [{"kind": "administration"}, {"kind": "procedure"}, {"kind": "joint"}]},
            EXCEEDS_MUE,
        ]},
        "message": "{code} bills {code_total_units} units on one date of service; the "
                   "medically unlikely edit allows {mue_units} ({mue_source}). Bill at most "
                   "{mue_units}.",
    },
    # --- E/M with drug administration or a procedure (C6, D7) ----------------------------------
    {
        "name": "em_not_payable",
        "code": "EM_NOT_PAYABLE",
        "severity": "block",
        "condition": _line("em", {"nurse_visit": True}, {"with_drug_administration": True}),
        "message": "99211 is not payable with drug administration, with or without modifier "
                   "25: remove the 99211 line.",
    },
    {
        "name": "modifier_25_missing",
        "code": "MODIFIER_25_MISSING",
        "severity": "block",
        "condition": _line("em", {"nurse_visit": False},
                           {"with_procedure_or_administration": True},
                           {"has_modifier_25": False}),
        "message": "{code} on the day of a procedure or drug administration is paid only as a "
                   "significant, separately identifiable service: bill {code}-25 (and "
                   "document it), or remove the line.",
    },
    # --- Joint injections (D1, D4) --------------------------------------------------------------
    {
        "name": "imaging_bundled",
        "code": "IMAGING_BUNDLED",
        "severity": "block",
        "condition": _line("imaging", {"with_guided_joint_injection": True}),
        "message": "Ultrasound guidance is included in {guided}: remove the 76942 line.",
    },
    {
        "name": "laterality_missing",
        "code": "LATERALITY_MISSING",
        "severity": "block",
        "condition": _line("joint", {"$or": [
            {"$and": [{"has_side": False}, {"bilateral": False}]},
            {"both_sides": True},
            {"$and": [{"bilateral": True}, {"$gt": {"units": 1}}]},
        ]}),
        "message": "{code} needs its side: bill {code}-RT or {code}-LT x1 for one joint, or "
                   "{code}-50 x1 (one unit) for both sides.",
    },
    # --- Timely filing (F) ---------------------------------------------------------------------
    {
        "name": "timely_filing_exceeded",
        "code": "TIMELY_FILING_EXCEEDED",
        "severity": "block",
        "condition": _claim({"$gt": {"days_past_filing_deadline": 0}}),
        "message": "{payer_name} must receive the claim within {filing_rule} (by {deadline}); "
                   "submitted on {submitted_on} it is {days_past_filing_deadline} days late "
                   "and will be denied (CO-29).",
    },
    ALWAYS_FIRING_RULE,
]

RULES_BY_NAME: dict[str, Rule] = {rule["name"]: rule for rule in RULES}


def claims_codes() -> list[str]:
    """Return the finding codes of the claims ruleset, in rule order."""
    return rule_codes(RULES)
