"""Eligibility rules: "can this planned infusion go ahead on this date?".

One rule per finding code of the contract. Every rule tests fields of the ONE case fact the
case builder produces (policy_service.services); payer policies are data that became those
fields, so an admin edit never touches these rules. A field that does not apply is absent,
and a condition on an absent field never matches: e.g. a policy with no age limit has no
``min_age``/``max_age`` and AGE_NOT_COVERED cannot fire.

Scenario cases for every rule live in rulesets/cases/eligibility.yaml.
"""

from __future__ import annotations

from rulesets import ALWAYS_FIRING_RULE, Rule, rule_codes

# Extra values the case builder passes for messages (not case fields, never tested by rules).
MESSAGE_CONTEXT: dict[str, str] = {
    "payer_name": "the payer's display name, e.g. UnitedHealthcare",
    "drug_label": "the drug as a scheduler knows it, e.g. infliximab (J1745)",
    "date_of_service": "ISO date of the planned infusion",
    "policy_label": "e.g. UnitedHealthcare's infliximab policy (v3, effective 2026-01-01)",
    "diagnosis_codes": "the request's ICD-10-CM codes, comma-joined",
    "covered_diagnoses": "the policy's covered codes and families, comma-joined",
    "step_therapy_summary": "what the policy's step therapy asks for, in words",
    "product": "the HCPCS code of the requested product",
    "preferred_products": "the policy's preferred HCPCS codes, comma-joined",
    "site_of_care": "the requested site of care",
    "allowed_sites": "the policy's allowed sites of care, comma-joined",
    "auth_number": "the authorization number",
    "auth_status": "the authorization's status",
    "auth_valid_from": "first valid ISO date of the authorization",
    "auth_valid_to": "last valid ISO date of the authorization",
    "auth_hcpcs": "the authorization's HCPCS codes, comma-joined",
    "auth_diagnoses": "the authorization's diagnoses, comma-joined",
    "auth_site_of_care": "the authorization's site of care",
    "dose_summary": "the planned dose in words, e.g. 900 mg (90 units)",
    "dose_limit": "the policy's dose limit in words, e.g. 800 mg (10 mg/kg at 80 kg)",
    "age_range": "the ages the policy covers, e.g. 18 and over",
}

RULES: list[Rule] = [
    {
        "name": "no_policy",
        "code": "NO_POLICY",
        "severity": "warn",
        "condition": {"policy_found": False},
        "message": "No {payer_name} policy for {drug_label} is in effect on {date_of_service}; "
                   "coverage rules could not be checked.",
    },
    {
        "name": "diagnosis_not_covered",
        "code": "DIAGNOSIS_NOT_COVERED",
        "severity": "block",
        "condition": {"diagnosis_covered": False},
        "message": "Diagnosis {diagnosis_codes} is not covered by {policy_label}; "
                   "covered: {covered_diagnoses}.",
    },
    {
        # A patient already on the drug within the policy's lookback is exempt (new starts
        # only), so the builder always sets new_start_exempt when step therapy is required.
        "name": "step_therapy_not_met",
        "code": "STEP_THERAPY_NOT_MET",
        "severity": "block",
        "condition": {"$and": [
            {"step_therapy_required": True},
            {"step_therapy_met": False},
            {"new_start_exempt": False},
        ]},
        "message": "Step therapy required by {policy_label} is not documented: "
                   "{step_therapy_summary}.",
    },
    {
        "name": "non_preferred_product",
        "code": "NON_PREFERRED_PRODUCT",
        "severity": "block",
        # Preferred-product rules are step therapy too: new starts only where the policy
        # has a lookback (Medicare Advantage), so a patient already on the drug is exempt.
        "condition": {"$and": [{"product_preferred": False}, {"new_start_exempt": False}]},
        "message": "{product} is not a preferred product under {policy_label}; "
                   "preferred: {preferred_products}.",
    },
    {
        "name": "site_of_care_not_allowed",
        "code": "SITE_OF_CARE_NOT_ALLOWED",
        "severity": "block",
        "condition": {"site_allowed": False},
        "message": "Site of care {site_of_care} is not allowed by {policy_label}; "
                   "allowed: {allowed_sites}.",
    },
    {
        "name": "dose_exceeds_limit",
        "code": "DOSE_EXCEEDS_LIMIT",
        "severity": "block",
        "condition": {"$or": [
            {"$gt": {"dose_mg": {"$m": "max_dose_mg"}}},
            {"$gt": {"dose_units": {"$m": "max_dose_units"}}},
        ]},
        "message": "The dose of {dose_summary} is over the limit of {policy_label}: "
                   "{dose_limit}.",
    },
    {
        "name": "dose_too_soon",
        "code": "DOSE_TOO_SOON",
        "severity": "block",
        "condition": {"$lt": {"days_since_last_dose": {"$m": "min_days_between_doses"}}},
        "message": "Only {days_since_last_dose} days since the last dose; {policy_label} "
                   "requires at least {min_days_between_doses}.",
    },
    {
        "name": "age_not_covered",
        "code": "AGE_NOT_COVERED",
        "severity": "block",
        "condition": {"$or": [
            {"$lt": {"age": {"$m": "min_age"}}},
            {"$gt": {"age": {"$m": "max_age"}}},
        ]},
        "message": "The patient is {age} on {date_of_service}; {policy_label} covers "
                   "ages {age_range}.",
    },
    {
        "name": "missing_information",
        "code": "MISSING_INFORMATION",
        "severity": "block",
        "condition": {"missing_information": True},
        "message": "Cannot decide without: {missing}.",
    },
    {
        "name": "auth_required",
        "code": "AUTH_REQUIRED",
        "severity": "block",
        "condition": {"$and": [{"prior_auth_required": True}, {"auth_found": False}]},
        "message": "{policy_label} requires prior authorization and no matching "
                   "authorization was found for {drug_label} on {date_of_service}.",
    },
    {
        "name": "auth_not_approved",
        "code": "AUTH_NOT_APPROVED",
        "severity": "block",
        "condition": {"$and": [{"auth_found": True}, {"auth_status_ok": False}]},
        "message": "Authorization {auth_number} is {auth_status}, not approved.",
    },
    {
        "name": "auth_expired",
        "code": "AUTH_EXPIRED",
        "severity": "block",
        "condition": {"auth_window": "after"},
        "message": "Authorization {auth_number} expired on {auth_valid_to}, before the "
                   "date of service {date_of_service}.",
    },
    {
        "name": "auth_not_yet_valid",
        "code": "AUTH_NOT_YET_VALID",
        "severity": "block",
        "condition": {"auth_window": "before"},
        "message": "Authorization {auth_number} starts on {auth_valid_from}, after the "
                   "date of service {date_of_service}.",
    },
    {
        "name": "auth_drug_mismatch",
        "code": "AUTH_DRUG_MISMATCH",
        "severity": "block",
        "condition": {"auth_drug_matches": False},
        "message": "Authorization {auth_number} covers {auth_hcpcs}, not {product}.",
    },
    {
        "name": "auth_diagnosis_mismatch",
        "code": "AUTH_DIAGNOSIS_MISMATCH",
        "severity": "block",
        "condition": {"auth_diagnosis_matches": False},
        "message": "Authorization {auth_number} was approved for {auth_diagnoses}, "
                   "not {diagnosis_codes}.",
    },
    {
        "name": "auth_site_mismatch",
        "code": "AUTH_SITE_MISMATCH",
        "severity": "block",
        "condition": {"auth_site_matches": False},
        "message": "Authorization {auth_number} is for site of care {auth_site_of_care}, "
                   "not {site_of_care}.",
    },
    {
        "name": "auth_units_exceeded",
        "code": "AUTH_UNITS_EXCEEDED",
        "severity": "block",
        "condition": {"$gt": {"administered_units": {"$m": "auth_remaining_units"}}},
        "message": "This infusion needs {administered_units} units but authorization "
                   "{auth_number} has only {auth_remaining_units} left.",
    },
    {
        "name": "auth_visits_exhausted",
        "code": "AUTH_VISITS_EXHAUSTED",
        "severity": "block",
        "condition": {"$lte": {"auth_remaining_visits": 0}},
        "message": "Authorization {auth_number} has no visits left.",
    },
    {
        # Only inside the window: an expired authorization already blocks as AUTH_EXPIRED.
        "name": "auth_expiring_soon",
        "code": "AUTH_EXPIRING_SOON",
        "severity": "warn",
        "condition": {"$and": [
            {"$lte": {"auth_days_to_expiry": {"$m": "auth_expiring_soon_days"}}},
            {"auth_window": "within"},
        ]},
        "message": "Authorization {auth_number} expires on {auth_valid_to}, "
                   "{auth_days_to_expiry} days after this infusion; request a renewal.",
    },
    {
        "name": "auth_units_low",
        "code": "AUTH_UNITS_LOW",
        "severity": "warn",
        "condition": {"$lt": {"auth_remaining_fraction": {"$m": "auth_units_low_fraction"}}},
        "message": "Authorization {auth_number} has {auth_remaining_fraction:.0%} of its "
                   "units left ({auth_remaining_units} units).",
    },
    ALWAYS_FIRING_RULE,
]


def eligibility_codes() -> list[str]:
    """Return the finding codes of the eligibility ruleset, in rule order."""
    return rule_codes(RULES)
