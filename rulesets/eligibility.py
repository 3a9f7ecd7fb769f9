"""Eligibility rules: "can this planned infusion go ahead on this date?".

Every rule tests fields of the ONE case fact that policy_service.services.eligibility builds;
payer policies are data that became those fields, so an admin edit never touches these rules. A
field that does not apply is absent, and a condition on an absent field never matches: a policy
with no age limit gives no ``min_age``/``max_age``, so AGE_NOT_COVERED cannot fire.

``FACTS`` declares every field once; the engine adapter, the oracle and the tests read it.
"""

from __future__ import annotations

from rulesets import ALWAYS_FIRING_RULE, Example, Fact, FactType, Rule, Ruleset
from rulesets.vocabulary import Category, Severity

BOOLEAN, INTEGER, NUMBER, FRACTION = (FactType.BOOLEAN, FactType.INTEGER, FactType.NUMBER,
                                      FactType.FRACTION)

FACTS: tuple[Fact, ...] = (
    Fact("policy_found", BOOLEAN, "a version of the payer's policy is in effect on the date"),
    Fact("prior_auth_required", BOOLEAN, "the policy requires prior authorization"),
    Fact("diagnosis_covered", BOOLEAN,
         "a diagnosis of the request falls under a code or family the policy covers"),
    Fact("diagnosis_billable", BOOLEAN,
         "every diagnosis of the request is a billable (leaf) ICD-10-CM code"),
    Fact("step_therapy_required", BOOLEAN, "the policy has step-therapy steps"),
    Fact("step_therapy_met", BOOLEAN, "the therapy history documents every step"),
    Fact("new_start_exempt", BOOLEAN,
         "the patient received the drug within the policy's new-starts lookback"),
    Fact("product_preferred", BOOLEAN, "the requested product is one the policy prefers"),
    Fact("site_allowed", BOOLEAN, "the requested site of care is one the policy allows"),
    Fact("dose_mg", NUMBER, "the planned dose in mg"),
    Fact("max_dose_mg", NUMBER, "the policy's mg limit (mg/kg limits at the patient's weight)"),
    Fact("dose_units", INTEGER, "the planned dose in HCPCS billing units"),
    Fact("max_dose_units", INTEGER, "the policy's limit in billing units per dose"),
    Fact("days_since_last_dose", INTEGER, "days from the last dose to the date of service"),
    Fact("min_days_between_doses", INTEGER, "the policy's minimum days between doses"),
    Fact("age", INTEGER, "the patient's age in whole years on the date of service"),
    Fact("min_age", INTEGER, "the youngest age the policy covers"),
    Fact("max_age", INTEGER, "the oldest age the policy covers"),
    Fact("documentation_missing", INTEGER,
         "how many of the policy's documentation items are not on file, or too old, on the "
         "date of service"),
    Fact("missing_information", BOOLEAN, "a fact the policy needs is not known"),
    Fact("auth_found", BOOLEAN, "an authorization this infusion would draw on was found"),
    Fact("auth_status_ok", BOOLEAN, "that authorization is approved or partially approved"),
    Fact("auth_window", FactType.CHOICE,
         "where the date of service lies against the authorization's dates",
         ("before", "within", "after")),
    Fact("auth_drug_matches", BOOLEAN, "the authorization lists the requested HCPCS code"),
    Fact("auth_diagnosis_matches", BOOLEAN,
         "a diagnosis of the request falls under the authorization's diagnoses"),
    Fact("auth_site_matches", BOOLEAN, "the authorization allows the requested site of care"),
    Fact("administered_units", INTEGER, "the billing units this infusion draws"),
    Fact("auth_remaining_units", INTEGER, "approved units not yet used"),
    Fact("auth_remaining_visits", INTEGER, "approved visits not yet used"),
    Fact("auth_days_to_expiry", INTEGER, "days from the date of service to the last valid day"),
    Fact("auth_expiring_soon_days", INTEGER, "how many days ahead to warn of an expiry"),
    Fact("auth_remaining_fraction", FRACTION, "share of the approved units still left"),
    Fact("auth_units_low_fraction", FRACTION, "the share below which to warn of low units"),
    Fact("policy_drug_supply", FactType.CHOICE,
         "how the policy lets the drug reach the practice",
         ("buy_and_bill", "specialty_pharmacy", "either")),
    Fact("drug_supply", FactType.CHOICE, "how the practice plans to get the drug",
         ("buy_and_bill", "specialty_pharmacy")),
    Fact("rendering_enrollment", FactType.CHOICE,
         "the rendering provider's enrollment with the payer on the date of service",
         ("enrolled", "not_enrolled", "unknown_npi")),
    Fact("prescriber_specialty_covered", BOOLEAN,
         "the prescriber's specialty is one the policy requires"),
)

# Extra values the case builder passes for messages (not case fields, never tested by rules).
MESSAGE_CONTEXT: dict[str, str] = {
    "payer_name": "the payer's display name, e.g. UnitedHealthcare",
    "drug_label": "the drug as a scheduler knows it, e.g. infliximab (J1745)",
    "date_of_service": "ISO date of the planned infusion",
    "policy_label": "e.g. UnitedHealthcare's infliximab policy (v3, effective 2026-01-01)",
    "diagnosis_codes": "the request's ICD-10-CM codes, comma-joined",
    "covered_diagnoses": "the policy's covered codes and families, comma-joined",
    "not_billable": "each diagnosis that is not billable, with billable codes under it",
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
    "missing": "the facts that are missing, each with why it is needed",
    "missing_documentation": "the checklist items not on file or out of date, in words",
    "enrollment": "the rendering provider's enrollment in words, e.g. Ada Lovelace, MD "
                  "(1234567893) is not enrolled with Medicare Part B on 2026-03-10",
    "prescriber": "the prescriber and their specialty, e.g. Grace Hopper, MD (1245319599) is "
                  "in dermatology",
    "prescriber_specialties": "the specialties the policy requires, comma-joined",
}

RULES: tuple[Rule, ...] = (
    Rule(
        name="no_policy",
        code="NO_POLICY",
        severity=Severity.WARN,
        category=Category.INFORMATION,
        condition={"policy_found": False},
        when="No version of the payer's policy for this drug is in effect on the date of service.",
        why="Without the payer's policy the coverage rules cannot be checked; someone must find or"
            " enter it before the infusion.",
        source="https://www.cms.gov/medicare-coverage-database/search.aspx",
        message="No {payer_name} policy for {drug_label} is in effect on {date_of_service}; "
                "coverage rules could not be checked.",
        fires=(
            Example("no policy in effect on the date of service",
                    {"policy_found": False}),
        ),
        passes=(
            Example("a policy is in effect",
                    {"policy_found": True}),
        ),
    ),
    Rule(
        name="diagnosis_not_covered",
        code="DIAGNOSIS_NOT_COVERED",
        severity=Severity.BLOCK,
        category=Category.COVERAGE,
        condition={"diagnosis_covered": False},
        when="None of the request's diagnoses falls under a code or family the policy covers.",
        why="Payers pay for a biologic only for the indications their medical policy lists.",
        source="https://www.bcbsnd.com/providers/policies-precertification/medical-policy/i/infliximab",
        message="Diagnosis {diagnosis_codes} is not covered by {policy_label}; "
                "covered: {covered_diagnoses}.",
        cites_policy=True,
        fires=(
            Example("diagnosis outside every covered family",
                    {"policy_found": True, "diagnosis_covered": False}),
        ),
        passes=(
            Example("diagnosis inside a covered family",
                    {"policy_found": True, "diagnosis_covered": True}),
            Example("no policy, so coverage is unknown and only NO_POLICY is reported",
                    {"policy_found": False},
                    expect=("NO_POLICY",)),
        ),
    ),
    Rule(
        name="diagnosis_not_billable",
        code="DIAGNOSIS_NOT_BILLABLE",
        severity=Severity.BLOCK,
        category=Category.INFORMATION,
        condition={"diagnosis_billable": False},
        when="A diagnosis given is a category or subcategory with codes below it, not a "
             "billable ICD-10-CM code (M1A.071 rather than M1A.0710).",
        why="A claim must carry each diagnosis at its full length, 7th character included "
            "(ICD-10-CM Official Guidelines I.B.2); policies list families, claims cannot.",
        source="https://www.cms.gov/medicare/coding-billing/icd-10-codes",
        message="Diagnosis codes must be billable ICD-10-CM codes: {not_billable}.",
        fires=(
            Example("M1A.071 has the codes M1A.0710 and M1A.0711 below it",
                    {"policy_found": True, "diagnosis_covered": True,
                     "diagnosis_billable": False}),
            Example("a family outside the policy is reported both ways",
                    {"policy_found": True, "diagnosis_covered": False,
                     "diagnosis_billable": False},
                    expect=("DIAGNOSIS_NOT_COVERED", "DIAGNOSIS_NOT_BILLABLE")),
        ),
        passes=(
            Example("M05.79 is a billable code",
                    {"policy_found": True, "diagnosis_covered": True,
                     "diagnosis_billable": True}),
            Example("no diagnosis given (reported as missing information instead)",
                    {"policy_found": True, "missing_information": True},
                    expect=("MISSING_INFORMATION",)),
        ),
    ),
    Rule(
        name="step_therapy_not_met",
        code="STEP_THERAPY_NOT_MET",
        severity=Severity.BLOCK,
        category=Category.COVERAGE,
        condition={"$and": [
            {"step_therapy_required": True},
            {"step_therapy_met": False},
            {"new_start_exempt": False},
        ]},
        when="The policy requires step therapy, the history does not document every step, and the "
             "patient is not exempt as already on the drug.",
        why="Payers require trials of cheaper drugs first; Medicare Advantage plans may do so for "
            "Part B drugs for new starts only.",
        source="https://www.biosimilarsresourcecenter.org/medicare-advantage-changes-may-boost-biosimilars/",
        message="Step therapy required by {policy_label} is not documented: "
                "{step_therapy_summary}.",
        cites_policy=True,
        fires=(
            Example("required step never tried",
                    {"policy_found": True, "step_therapy_required": True,
                     "step_therapy_met": False, "new_start_exempt": False}),
        ),
        passes=(
            Example("required step documented",
                    {"policy_found": True, "step_therapy_required": True,
                     "step_therapy_met": True, "new_start_exempt": False}),
            Example("step not met but the patient is already on the drug (new starts only)",
                    {"policy_found": True, "step_therapy_required": True,
                     "step_therapy_met": False, "new_start_exempt": True}),
            Example("policy has no step therapy",
                    {"policy_found": True, "step_therapy_required": False,
                     "step_therapy_met": False, "new_start_exempt": False}),
        ),
    ),
    Rule(
        name="non_preferred_product",
        code="NON_PREFERRED_PRODUCT",
        severity=Severity.BLOCK,
        category=Category.COVERAGE,
        condition={"$and": [{"product_preferred": False}, {"new_start_exempt": False}]},
        when="The policy lists preferred products, the requested one is not among them, and the "
             "patient is not exempt as already on the drug.",
        why="Payers cover their preferred biosimilars; an originator or non-preferred product "
            "needs an exception.",
        source="https://the-rheumatologist.org/article/unitedhealthcare-designates-avsola-and-inflectra-preferred-infliximab-products",
        message="{product} is not a preferred product under {policy_label}; "
                "preferred: {preferred_products}.",
        cites_policy=True,
        fires=(
            Example("originator requested where a biosimilar is preferred",
                    {"policy_found": True, "product_preferred": False, "new_start_exempt": False}),
        ),
        passes=(
            Example("preferred biosimilar requested",
                    {"policy_found": True, "product_preferred": True, "new_start_exempt": False}),
            Example("a patient already on the originator is exempt (new starts only)",
                    {"policy_found": True, "product_preferred": False, "new_start_exempt": True}),
        ),
    ),
    Rule(
        name="site_of_care_not_allowed",
        code="SITE_OF_CARE_NOT_ALLOWED",
        severity=Severity.BLOCK,
        category=Category.COVERAGE,
        condition={"site_allowed": False},
        when="The policy lists sites of care and the requested site is not one of them.",
        why="Site-of-care policies move infusions from hospital outpatient departments to the "
            "office, an infusion center or home.",
        source="https://www.aetna.com/health-care-professionals/utilization-management/drug-infusion-site-of-care-policy.html",
        message="Site of care {site_of_care} is not allowed by {policy_label}; "
                "allowed: {allowed_sites}.",
        cites_policy=True,
        fires=(
            Example("hospital outpatient where only office and home are allowed",
                    {"policy_found": True, "site_allowed": False}),
        ),
        passes=(
            Example("office infusion allowed",
                    {"policy_found": True, "site_allowed": True}),
        ),
    ),
    Rule(
        name="dose_exceeds_limit",
        code="DOSE_EXCEEDS_LIMIT",
        severity=Severity.BLOCK,
        category=Category.COVERAGE,
        condition={"$or": [
            {"$gt": {"dose_mg": {"$m": "max_dose_mg"}}},
            {"$gt": {"dose_units": {"$m": "max_dose_units"}}},
        ]},
        when="The dose is above the policy's limit in mg (or mg/kg at the patient's weight) or in "
             "billing units.",
        why="Payer policies cap the dose per infusion; units above the cap are denied.",
        source="https://policies.credenceblue.com/portal/web/medical-policies/-/ph-0104",
        message="The dose of {dose_summary} is over the limit of {policy_label}: "
                "{dose_limit}.",
        cites_policy=True,
        fires=(
            Example("mg over the mg limit",
                    {"policy_found": True, "dose_mg": 900, "max_dose_mg": 800}),
            Example("units over the units limit, no mg limit",
                    {"policy_found": True, "dose_mg": 900, "dose_units": 90, "max_dose_units": 80}),
            Example("both limits exceeded still gives one finding",
                    {"policy_found": True, "dose_mg": 900, "max_dose_mg": 800, "dose_units": 90,
                     "max_dose_units": 80}),
            Example("fractional mg just over a mg/kg limit converted to mg",
                    {"policy_found": True, "dose_mg": 800.5, "max_dose_mg": 800}),
        ),
        passes=(
            Example("dose exactly at the limit",
                    {"policy_found": True, "dose_mg": 800, "max_dose_mg": 800, "dose_units": 80,
                     "max_dose_units": 80}),
            Example("policy sets no dose limit",
                    {"policy_found": True, "dose_mg": 5000, "dose_units": 500}),
            Example("no mg limit, units within their limit",
                    {"policy_found": True, "dose_mg": 900, "dose_units": 70, "max_dose_units": 80}),
        ),
    ),
    Rule(
        name="dose_too_soon",
        code="DOSE_TOO_SOON",
        severity=Severity.BLOCK,
        category=Category.COVERAGE,
        condition={"$lt": {"days_since_last_dose": {"$m": "min_days_between_doses"}}},
        when="Fewer days have passed since the last dose than the policy's minimum interval.",
        why="Payer policies set the dosing interval (e.g. every 8 weeks); an earlier dose is not "
            "covered.",
        source="https://policies.credenceblue.com/portal/web/medical-policies/-/ph-0104",
        message="Only {days_since_last_dose} days since the last dose; {policy_label} "
                "requires at least {min_days_between_doses}.",
        cites_policy=True,
        fires=(
            Example("21 days after the last dose, 28 required",
                    {"policy_found": True, "days_since_last_dose": 21,
                     "min_days_between_doses": 28}),
        ),
        passes=(
            Example("exactly the minimum interval",
                    {"policy_found": True, "days_since_last_dose": 28,
                     "min_days_between_doses": 28}),
            Example("first dose (no previous dose on record)",
                    {"policy_found": True, "min_days_between_doses": 28}),
        ),
    ),
    Rule(
        name="age_not_covered",
        code="AGE_NOT_COVERED",
        severity=Severity.BLOCK,
        category=Category.COVERAGE,
        condition={"$or": [
            {"$lt": {"age": {"$m": "min_age"}}},
            {"$gt": {"age": {"$m": "max_age"}}},
        ]},
        when="The patient's age on the date of service is below the policy's minimum or above its "
             "maximum.",
        why="Indications and payer policies are limited to the ages the drug is approved for.",
        source="https://www.bcbsnd.com/providers/policies-precertification/medical-policy/i/infliximab",
        message="The patient is {age} on {date_of_service}; {policy_label} covers "
                "ages {age_range}.",
        cites_policy=True,
        fires=(
            Example("under the minimum age",
                    {"policy_found": True, "age": 17, "min_age": 18}),
            Example("over the maximum age",
                    {"policy_found": True, "age": 66, "min_age": 18, "max_age": 65}),
        ),
        passes=(
            Example("exactly the minimum age",
                    {"policy_found": True, "age": 18, "min_age": 18, "max_age": 65}),
            Example("birth date unknown (reported as missing information instead)",
                    {"policy_found": True, "min_age": 18, "missing_information": True},
                    expect=("MISSING_INFORMATION",)),
        ),
    ),
    Rule(
        name="documentation_missing",
        code="DOCUMENTATION_MISSING",
        severity=Severity.WARN,
        category=Category.COVERAGE,
        condition={"$gt": {"documentation_missing": 0}},
        when="An item the policy asks to have on file (TB screening within 12 months, hepatitis "
             "B screening, ...) is not on file, or is older than the policy allows, on the date "
             "of service.",
        why="Payers deny or claw back infusions whose required documentation was not on file "
            "when the drug was given; a checklist before the visit lets the practice get it.",
        source="https://www.accessdata.fda.gov/drugsatfda_docs/label/2021/103772s5401lbl.pdf",
        message="{policy_label} asks for documentation not on file on {date_of_service}: "
                "{missing_documentation}.",
        cites_policy=True,
        # A checklist to work before the visit: a claim cannot correct a missing TB screening,
        # so the claim check leaves it out (its status stays the contract's clean).
        planning=True,
        fires=(
            Example("TB screening missing",
                    {"policy_found": True, "documentation_missing": 1}),
            Example("two items missing or out of date",
                    {"policy_found": True, "documentation_missing": 2}),
        ),
        passes=(
            Example("every item on file and recent enough",
                    {"policy_found": True, "documentation_missing": 0}),
            Example("the policy lists no documentation (no field)",
                    {"policy_found": True}),
        ),
    ),
    Rule(
        name="missing_information",
        code="MISSING_INFORMATION",
        severity=Severity.BLOCK,
        category=Category.INFORMATION,
        condition={"missing_information": True},
        when="A fact the policy needs is not known (weight for a mg/kg dose, birth date for an age"
             " limit, a diagnosis, the site of care).",
        why="A decision made without the facts the policy tests would be a guess.",
        source="https://www.cms.gov/medicare-coverage-database/search.aspx",
        message="Cannot decide without: {missing}.",
        fires=(
            Example("weight needed for a mg/kg dose",
                    {"policy_found": True, "missing_information": True}),
        ),
        passes=(
            Example("nothing missing",
                    {"policy_found": True, "missing_information": False}),
        ),
    ),
    Rule(
        name="auth_required",
        code="AUTH_REQUIRED",
        severity=Severity.BLOCK,
        category=Category.AUTHORIZATION,
        condition={"$and": [{"prior_auth_required": True}, {"auth_found": False}]},
        when="The policy requires prior authorization and no authorization of this patient and "
             "payer matches.",
        why="Claims for a drug that needs prior authorization are denied without one (CARC 197).",
        source="https://www.cms.gov/medicare/coverage/prior-authorization",
        message="{policy_label} requires prior authorization and no matching "
                "authorization was found for {drug_label} on {date_of_service}.",
        cites_policy=True,
        fires=(
            Example("prior auth required and none on file",
                    {"policy_found": True, "prior_auth_required": True, "auth_found": False}),
        ),
        passes=(
            Example("prior auth required and a matching one found",
                    {"policy_found": True, "prior_auth_required": True, "auth_found": True,
                     "auth_status_ok": True, "auth_window": "within"}),
            Example("payer does not require prior auth",
                    {"policy_found": True, "prior_auth_required": False, "auth_found": False}),
        ),
    ),
    Rule(
        name="auth_not_approved",
        code="AUTH_NOT_APPROVED",
        severity=Severity.BLOCK,
        category=Category.AUTHORIZATION,
        condition={"$and": [{"auth_found": True}, {"auth_status_ok": False}]},
        when="The authorization found is not approved or partially approved (requested, submitted,"
             " denied, cancelled...).",
        why="Only an approved authorization lets the payer pay.",
        source="https://www.cms.gov/medicare/coverage/prior-authorization",
        message="Authorization {auth_number} is {auth_status}, not approved.",
        fires=(
            Example("authorization still pending",
                    {"policy_found": True, "prior_auth_required": True, "auth_found": True,
                     "auth_status_ok": False}),
        ),
        passes=(
            Example("authorization approved",
                    {"policy_found": True, "auth_found": True, "auth_status_ok": True}),
            Example("no authorization found, so there is no status to judge",
                    {"policy_found": True, "prior_auth_required": True, "auth_found": False},
                    expect=("AUTH_REQUIRED",)),
        ),
    ),
    Rule(
        name="auth_expired",
        code="AUTH_EXPIRED",
        severity=Severity.BLOCK,
        category=Category.AUTHORIZATION,
        condition={"auth_window": "after"},
        when="The date of service is after the authorization's last valid day.",
        why="A service outside the authorization's dates is treated as unauthorized (CARC 197).",
        source="https://www.cms.gov/medicare/coverage/prior-authorization",
        message="Authorization {auth_number} expired on {auth_valid_to}, before the "
                "date of service {date_of_service}.",
        fires=(
            Example("date of service after the authorization window",
                    {"policy_found": True, "auth_found": True, "auth_status_ok": True,
                     "auth_window": "after", "auth_days_to_expiry": -3,
                     "auth_expiring_soon_days": 30}),
        ),
        passes=(
            Example("date of service inside the window",
                    {"policy_found": True, "auth_found": True, "auth_status_ok": True,
                     "auth_window": "within"}),
        ),
    ),
    Rule(
        name="auth_not_yet_valid",
        code="AUTH_NOT_YET_VALID",
        severity=Severity.BLOCK,
        category=Category.AUTHORIZATION,
        condition={"auth_window": "before"},
        when="The date of service is before the authorization's first valid day.",
        why="A service outside the authorization's dates is treated as unauthorized (CARC 197).",
        source="https://www.cms.gov/medicare/coverage/prior-authorization",
        message="Authorization {auth_number} starts on {auth_valid_from}, after the "
                "date of service {date_of_service}.",
        fires=(
            Example("date of service before the authorization starts",
                    {"policy_found": True, "auth_found": True, "auth_status_ok": True,
                     "auth_window": "before"}),
        ),
        passes=(
            Example("date of service inside the window",
                    {"policy_found": True, "auth_found": True, "auth_status_ok": True,
                     "auth_window": "within"}),
        ),
    ),
    Rule(
        name="auth_drug_mismatch",
        code="AUTH_DRUG_MISMATCH",
        severity=Severity.BLOCK,
        category=Category.AUTHORIZATION,
        condition={"auth_drug_matches": False},
        when="The authorization does not list the HCPCS code of the product to be given.",
        why="An authorization is for named products; a biosimilar is a different HCPCS code.",
        source="https://www.cms.gov/medicare/coverage/prior-authorization",
        message="Authorization {auth_number} covers {auth_hcpcs}, not {product}.",
        fires=(
            Example("authorization for the originator, infusion of a biosimilar",
                    {"policy_found": True, "auth_found": True, "auth_drug_matches": False}),
        ),
        passes=(
            Example("authorization for the same product",
                    {"policy_found": True, "auth_found": True, "auth_drug_matches": True}),
        ),
    ),
    Rule(
        name="auth_diagnosis_mismatch",
        code="AUTH_DIAGNOSIS_MISMATCH",
        severity=Severity.BLOCK,
        category=Category.AUTHORIZATION,
        condition={"auth_diagnosis_matches": False},
        when="None of the request's diagnoses falls under the authorization's diagnoses.",
        why="An authorization approves a drug for a diagnosis; another indication needs its own "
            "approval.",
        source="https://www.cms.gov/medicare/coverage/prior-authorization",
        message="Authorization {auth_number} was approved for {auth_diagnoses}, "
                "not {diagnosis_codes}.",
        fires=(
            Example("authorized for rheumatoid arthritis, billed for psoriatic arthritis",
                    {"policy_found": True, "auth_found": True, "auth_diagnosis_matches": False}),
        ),
        passes=(
            Example("diagnosis on the authorization",
                    {"policy_found": True, "auth_found": True, "auth_diagnosis_matches": True}),
        ),
    ),
    Rule(
        name="auth_site_mismatch",
        code="AUTH_SITE_MISMATCH",
        severity=Severity.BLOCK,
        category=Category.AUTHORIZATION,
        condition={"auth_site_matches": False},
        when="The authorization names a site of care and the infusion is planned elsewhere.",
        why="Site-of-care programs approve a site; another site needs a new review.",
        source="https://docslib.org/doc/7738429/provider-administered-drugs-site-of-care",
        message="Authorization {auth_number} is for site of care {auth_site_of_care}, "
                "not {site_of_care}.",
        fires=(
            Example("authorized for the office, scheduled at a hospital outpatient department",
                    {"policy_found": True, "auth_found": True, "auth_site_matches": False}),
        ),
        passes=(
            Example("same site as authorized",
                    {"policy_found": True, "auth_found": True, "auth_site_matches": True}),
        ),
    ),
    Rule(
        name="auth_units_exceeded",
        code="AUTH_UNITS_EXCEEDED",
        severity=Severity.BLOCK,
        category=Category.AUTHORIZATION,
        condition={"$gt": {"administered_units": {"$m": "auth_remaining_units"}}},
        when="The units this infusion needs are more than the authorization has left.",
        why="Units beyond the approved quantity are denied (CARC 198).",
        source="https://www.cms.gov/medicare/coverage/prior-authorization",
        message="This infusion needs {administered_units} units but authorization "
                "{auth_number} has only {auth_remaining_units} left.",
        fires=(
            Example("needs 40 units, 35 left",
                    {"policy_found": True, "auth_found": True, "administered_units": 40,
                     "auth_remaining_units": 35}),
        ),
        passes=(
            Example("needs exactly what is left",
                    {"policy_found": True, "auth_found": True, "administered_units": 40,
                     "auth_remaining_units": 40}),
            Example("authorization without a units cap",
                    {"policy_found": True, "auth_found": True, "administered_units": 40}),
        ),
    ),
    Rule(
        name="auth_visits_exhausted",
        code="AUTH_VISITS_EXHAUSTED",
        severity=Severity.BLOCK,
        category=Category.AUTHORIZATION,
        condition={"$lte": {"auth_remaining_visits": 0}},
        when="The authorization has no approved visits left.",
        why="Visits beyond the approved number are denied (CARC 198).",
        source="https://www.cms.gov/medicare/coverage/prior-authorization",
        message="Authorization {auth_number} has no visits left.",
        fires=(
            Example("every approved visit used",
                    {"policy_found": True, "auth_found": True, "auth_remaining_visits": 0}),
            Example("over-used (recorded past the approval)",
                    {"policy_found": True, "auth_found": True, "auth_remaining_visits": -1}),
        ),
        passes=(
            Example("one visit left",
                    {"policy_found": True, "auth_found": True, "auth_remaining_visits": 1}),
            Example("authorization without a visits cap",
                    {"policy_found": True, "auth_found": True}),
        ),
    ),
    Rule(
        name="auth_expiring_soon",
        code="AUTH_EXPIRING_SOON",
        severity=Severity.WARN,
        category=Category.AUTHORIZATION,
        condition={"$and": [
            {"$lte": {"auth_days_to_expiry": {"$m": "auth_expiring_soon_days"}}},
            {"auth_window": "within"},
        ]},
        when="The authorization is valid on the date of service and ends within the warning window"
             " after it.",
        why="A renewal takes days to weeks; asking early keeps the next infusion on schedule.",
        source="https://providernews.premera.com/new-medicare-advantage-prior-authorization-rules-effective-january-1-2024/",
        message="Authorization {auth_number} expires on {auth_valid_to}, "
                "{auth_days_to_expiry} days after this infusion; request a renewal.",
        planning=True,
        fires=(
            Example("expires 10 days after the infusion, warning threshold 30",
                    {"policy_found": True, "auth_found": True, "auth_status_ok": True,
                     "auth_window": "within", "auth_days_to_expiry": 10,
                     "auth_expiring_soon_days": 30}),
            Example("exactly at the threshold",
                    {"policy_found": True, "auth_found": True, "auth_status_ok": True,
                     "auth_window": "within", "auth_days_to_expiry": 30,
                     "auth_expiring_soon_days": 30}),
        ),
        passes=(
            Example("expires long after the infusion",
                    {"policy_found": True, "auth_found": True, "auth_status_ok": True,
                     "auth_window": "within", "auth_days_to_expiry": 31,
                     "auth_expiring_soon_days": 30}),
            Example("already expired (blocks as AUTH_EXPIRED, no warning on top)",
                    {"policy_found": True, "auth_found": True, "auth_status_ok": True,
                     "auth_window": "after", "auth_days_to_expiry": -5,
                     "auth_expiring_soon_days": 30},
                    expect=("AUTH_EXPIRED",)),
        ),
    ),
    Rule(
        name="auth_units_low",
        code="AUTH_UNITS_LOW",
        severity=Severity.WARN,
        category=Category.AUTHORIZATION,
        condition={"$lt": {"auth_remaining_fraction": {"$m": "auth_units_low_fraction"}}},
        when="The share of the authorization's approved units still left is below the warning "
             "threshold.",
        why="Asking for more units before they run out keeps the next infusion on schedule.",
        source="https://providernews.premera.com/new-medicare-advantage-prior-authorization-rules-effective-january-1-2024/",
        message="Authorization {auth_number} has {auth_remaining_fraction:.0%} of its "
                "units left ({auth_remaining_units} units).",
        planning=True,
        fires=(
            Example("10% of the units left, threshold 20%",
                    {"policy_found": True, "auth_found": True, "auth_remaining_fraction": 0.1,
                     "auth_units_low_fraction": 0.2}),
        ),
        passes=(
            Example("exactly 20% left",
                    {"policy_found": True, "auth_found": True, "auth_remaining_fraction": 0.2,
                     "auth_units_low_fraction": 0.2}),
            Example("authorization without a units cap (no fraction)",
                    {"policy_found": True, "auth_found": True, "auth_units_low_fraction": 0.2}),
        ),
    ),
    Rule(
        name="specialty_pharmacy_required",
        code="SPECIALTY_PHARMACY_REQUIRED",
        severity=Severity.BLOCK,
        category=Category.COVERAGE,
        condition={"$and": [{"policy_drug_supply": "specialty_pharmacy"},
                            {"drug_supply": "buy_and_bill"}]},
        when="The policy requires the drug from a specialty pharmacy and the infusion is planned "
             "as buy and bill.",
        why="A payer that moved a drug to specialty-pharmacy supply does not pay the practice for "
            "a vial it bought: the drug must be dispensed by the pharmacy, and the practice bills "
            "the administration only.",
        source="https://www.the-rheumatologist.org/?p=62513",
        message="{policy_label} requires {drug_label} from a specialty pharmacy; the practice "
                "bills only the administration. Order it through the payer's specialty pharmacy.",
        cites_policy=True,
        fires=(
            Example("buy and bill where the payer requires a specialty pharmacy",
                    {"policy_found": True, "policy_drug_supply": "specialty_pharmacy",
                     "drug_supply": "buy_and_bill"}),
        ),
        passes=(
            Example("drug ordered from the specialty pharmacy",
                    {"policy_found": True, "policy_drug_supply": "specialty_pharmacy",
                     "drug_supply": "specialty_pharmacy"}),
            Example("policy allows either supply",
                    {"policy_found": True, "policy_drug_supply": "either",
                     "drug_supply": "buy_and_bill"}),
        ),
    ),
    Rule(
        name="provider_not_enrolled",
        code="PROVIDER_NOT_ENROLLED",
        severity=Severity.BLOCK,
        category=Category.INFORMATION,
        condition={"$or": [{"rendering_enrollment": "not_enrolled"},
                           {"rendering_enrollment": "unknown_npi"}]},
        when="The rendering provider is not enrolled with the payer on the date of service, or "
             "the NPI given is not a provider on file.",
        why="A payer denies every line a provider renders while not enrolled (credentialed) with "
            "it; before the infusion it is a question to settle, not a coverage denial.",
        source="https://apexflowrcm.com/denial-codes/carc-b7-provider-not-eligible",
        message="The rendering provider cannot bill {payer_name} on {date_of_service}: "
                "{enrollment}.",
        fires=(
            Example("enrollment ended before the date of service",
                    {"policy_found": True, "rendering_enrollment": "not_enrolled"}),
            Example("NPI not on file",
                    {"policy_found": True, "rendering_enrollment": "unknown_npi"}),
        ),
        passes=(
            Example("enrolled on the date",
                    {"policy_found": True, "rendering_enrollment": "enrolled"}),
            Example("no rendering provider named",
                    {"policy_found": True}),
        ),
    ),
    Rule(
        name="prescriber_specialty_not_covered",
        code="PRESCRIBER_SPECIALTY_NOT_COVERED",
        severity=Severity.BLOCK,
        category=Category.COVERAGE,
        condition={"prescriber_specialty_covered": False},
        when="The policy requires the prescriber to have one of its specialties and the "
             "prescriber's specialty on file is another.",
        why="Many biologic policies cover the drug only when prescribed by or in consultation "
            "with a specialist (e.g. a rheumatologist).",
        source="https://pmc.ncbi.nlm.nih.gov/articles/PMC10387921",
        message="{policy_label} requires a prescriber in {prescriber_specialties}; "
                "{prescriber}.",
        cites_policy=True,
        fires=(
            Example("dermatologist prescribing under a rheumatologist-only policy",
                    {"policy_found": True, "prescriber_specialty_covered": False}),
        ),
        passes=(
            Example("rheumatologist prescribing",
                    {"policy_found": True, "prescriber_specialty_covered": True}),
            Example("policy names no specialty",
                    {"policy_found": True}),
        ),
    ),
    ALWAYS_FIRING_RULE,
)

RULESET = Ruleset(
    name="eligibility",
    title="Eligibility: can this planned infusion go ahead on this date?",
    rules=RULES,
    facts=FACTS,
    message_context=MESSAGE_CONTEXT,
    scenarios=(
            Example("everything known and in order",
                    {"policy_found": True, "prior_auth_required": True, "diagnosis_covered": True,
                     "step_therapy_required": True, "step_therapy_met": True,
                     "new_start_exempt": False, "product_preferred": True, "site_allowed": True,
                     "dose_mg": 400, "max_dose_mg": 800, "days_since_last_dose": 56,
                     "min_days_between_doses": 28, "age": 64, "min_age": 18,
                     "missing_information": False, "auth_found": True, "auth_status_ok": True,
                     "auth_window": "within", "auth_drug_matches": True,
                     "auth_diagnosis_matches": True, "auth_site_matches": True,
                     "administered_units": 40, "auth_remaining_units": 160,
                     "auth_remaining_visits": 4, "auth_days_to_expiry": 120,
                     "auth_expiring_soon_days": 30, "auth_remaining_fraction": 1.0,
                     "auth_units_low_fraction": 0.2},),
            Example("several problems at once are all reported",
                    {"policy_found": True, "diagnosis_covered": False, "product_preferred": False,
                     "new_start_exempt": False, "prior_auth_required": True, "auth_found": False,
                     "age": 12, "min_age": 18},
                    expect=("DIAGNOSIS_NOT_COVERED", "NON_PREFERRED_PRODUCT", "AGE_NOT_COVERED",
                            "AUTH_REQUIRED")),
    ),
)
