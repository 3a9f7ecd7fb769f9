"""The reference data shipped in seed_data/: it loads, it is consistent, and it says what a
coordinator expects (units, preferred products, billing settings, demo states)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from policy_service.domain.codes import hcpcs_error
from policy_service.domain.icd10 import is_valid_code
from policy_service.models import Authorization, Drug, Payer, Policy, PolicyVersion
from policy_service.schemas.bundle import BundleSchema

SEED_DIR = Path(__file__).resolve().parent.parent / "seed_data"
SEED_FILES = ("drugs.yaml", "payers.yaml", "policies.yaml", "demo.yaml")
# The demo data is written relative to this day (see seed_data/demo.yaml).
DEMO_TODAY = dt.date(2026, 11, 26)
REQUIRED_FAMILIES = ("infliximab", "rituximab", "tocilizumab", "abatacept", "golimumab",
                     "belimumab", "denosumab", "hyaluronan")


@cache
def seed(name: str) -> dict[str, Any]:
    """Return one seed file parsed as YAML."""
    return yaml.safe_load((SEED_DIR / name).read_text(encoding="utf-8"))


def drugs() -> dict[str, dict[str, Any]]:
    """Return the seeded drugs by HCPCS code."""
    return {drug["hcpcs"]: drug for drug in seed("drugs.yaml")["drugs"]}


def payers() -> dict[str, dict[str, Any]]:
    """Return the seeded payers by id."""
    return {payer["id"]: payer for payer in seed("payers.yaml")["payers"]}


def policies() -> list[dict[str, Any]]:
    """Return every seeded policy version."""
    return seed("policies.yaml")["policies"]


def current_policy(policy_id: str, day: dt.date = DEMO_TODAY) -> dict[str, Any]:
    """Return the version of ``policy_id`` in effect on ``day``."""
    matches = [p for p in policies() if p["id"] == policy_id and p["effective_from"] <= day
               and (p["effective_to"] is None or day <= p["effective_to"])]
    assert len(matches) == 1, f"{policy_id} has {len(matches)} versions in effect on {day}"
    return matches[0]


def covers(families: list[str], code: str) -> bool:
    """Return whether ``code`` falls under one of the ICD-10-CM ``families``."""
    return any(code == family or code.startswith(family) for family in families)


@pytest.mark.parametrize("name", SEED_FILES)
def test_every_seed_file_is_a_valid_bundle(name: str) -> None:
    loaded = BundleSchema().load(seed(name))
    assert loaded and all(loaded.values())


def test_every_diagnosis_is_a_real_icd10cm_code_or_family() -> None:
    used = [(p["id"], code) for p in policies() for code in p["covered_diagnoses"]]
    used += [(a["number"], code) for a in seed("demo.yaml")["authorizations"]
             for code in a["diagnoses"]]
    assert len(used) > 100
    assert [(owner, code) for owner, code in used if not is_valid_code(code)] == []


def test_every_drug_reference_names_a_seeded_drug() -> None:
    known = set(drugs())
    referenced = [(p["id"], code) for p in policies()
                  for code in p["hcpcs"] + p["preferred_products"]]
    referenced += [(a["number"], code) for a in seed("demo.yaml")["authorizations"]
                   for code in a["hcpcs"]]
    referenced += [(d["hcpcs"], d["biosimilar_of"]) for d in drugs().values()
                   if d.get("biosimilar_of")]
    referenced += [(p["id"], t["drug"]) for p in seed("demo.yaml")["patients"]
                   for t in p["therapies"] if hcpcs_error(t["drug"]) is None]
    assert [(owner, code) for owner, code in referenced if code not in known] == []


def test_every_payer_and_patient_reference_exists() -> None:
    patient_ids = {p["id"] for p in seed("demo.yaml")["patients"]}
    for policy in policies():
        assert policy["payer"] in payers(), policy["id"]
        # Policy ids read "PAYER/drugfamily", so the prefix must be the policy's own payer.
        assert policy["id"].split("/") == [policy["payer"], policy["id"].split("/")[1]]
    for authorization in seed("demo.yaml")["authorizations"]:
        assert authorization["payer"] in payers(), authorization["number"]
        assert authorization["patient"] in patient_ids, authorization["number"]


def test_preferred_products_are_among_the_policy_codes() -> None:
    for policy in policies():
        assert set(policy["preferred_products"]) <= set(policy["hcpcs"]), policy["id"]


def test_infliximab_is_billed_per_10_mg_from_100_mg_single_dose_vials() -> None:
    for code in ("J1745", "Q5103", "Q5104", "Q5121"):
        drug = drugs()[code]
        assert drug["billing_unit"] == {"amount": 10, "unit": "mg"}
        vials = [{k: v for k, v in p.items() if k != "ndc"} for p in drug["packages"]]
        assert vials == [{"amount": 100, "unit": "mg", "single_dose": True}]
        assert drug["admin_class"] == "biologic"
        assert drug["source"].startswith("https://")
    # The biosimilars' vials carry their NDC from the product's openFDA record (issue 14).
    ndcs = {code: drugs()[code]["packages"][0].get("ndc") for code in ("Q5103", "Q5104", "Q5121")}
    assert ndcs == {"Q5103": "0069-0809-01", "Q5104": "78206-162-01", "Q5121": "55513-670-01"}
    assert {drugs()[code]["biosimilar_of"] for code in ("Q5103", "Q5104", "Q5121")} == {"J1745"}
    assert drugs()["J1745"]["biosimilar_of"] is None


def test_every_drug_has_its_package_sizes_from_its_label() -> None:
    assert [code for code, drug in drugs().items() if not drug.get("packages")] == []
    sizes = {code: [(p["amount"], p["single_dose"]) for p in drugs()[code]["packages"]]
             for code in ("J1010", "J1569", "J7329", "Q5156")}
    # Depo-Medrol: 40 and 80 mg single-dose; 20 mg/mL x 5 mL, 40 mg/mL x 5 and x 10 mL
    # (and 80 mg/mL x 5 mL) multi-dose.
    assert sizes["J1010"] == [(40, True), (80, True), (100, False), (200, False), (400, False)]
    assert sizes["J1569"] == [(1000, True), (2500, True), (5000, True), (10000, True),
                              (20000, True)]
    assert sizes["J7329"] == [(25, True)]
    assert sizes["Q5156"] == [(80, True), (200, True), (400, True)]


def test_packages_are_whole_billing_units_in_the_billing_unit() -> None:
    for code, drug in drugs().items():
        assert hcpcs_error(code) is None
        unit = drug["billing_unit"]
        for package in drug.get("packages", []):
            assert package["unit"] == unit["unit"], code
            units = Decimal(str(package["amount"])) / Decimal(str(unit["amount"]))
            assert units == units.to_integral_value(), f"{code}: {package['amount']} {units}"


def test_code_set_changes_and_pharmacy_only_products() -> None:
    assert drugs()["J1030"]["valid_to"] == dt.date(2024, 3, 31)
    assert drugs()["J1010"]["valid_from"] == dt.date(2024, 4, 1)
    assert drugs()["J1010"]["billing_unit"] == {"amount": 1, "unit": "mg"}
    # Zymfentra is self-administered (pharmacy benefit) and must not be offered for buy and bill.
    assert "J1748" not in drugs()
    # Per-dose hyaluronans bill one unit per syringe; Gelsyn-3 bills 0.1 mg units.
    assert drugs()["J7323"]["billing_unit"] == {"amount": 1, "unit": "dose"}
    assert drugs()["J7328"]["billing_unit"] == {"amount": 0.1, "unit": "mg"}
    unconfirmed = [code for code in ("Q5135", "Q5136", "J1568")
                   if "UNCONFIRMED" not in drugs()[code]["notes"]]
    assert unconfirmed == []


def test_payer_billing_settings() -> None:
    medicare = payers()["MEDICARE-B"]
    assert medicare["kind"] == "medicare"
    assert medicare["requires_jw_jz"] is True
    assert medicare["timely_filing_days"] == 365
    assert medicare["complex_admin_for_biologics"] is True
    assert payers()["UHC-MA"]["kind"] == "medicare_advantage"
    assert payers()["UHC-MA"]["requires_jw_jz"] is True
    filing = {code: payers()[code]["timely_filing_days"] for code in ("UHC", "CIGNA", "AETNA")}
    assert filing == {"UHC": 90, "CIGNA": 90, "AETNA": 120}
    commercial = [p for p in payers().values() if p["kind"] == "commercial"]
    assert {p["id"] for p in commercial} == {"UHC", "BCBS-ND", "BCBS-NC", "CIGNA", "AETNA"}
    assert not any(p["requires_jw_jz"] for p in commercial)


@pytest.mark.parametrize("family", REQUIRED_FAMILIES)
def test_every_drug_family_has_a_medicare_policy_and_a_drug(family: str) -> None:
    policy = current_policy(f"MEDICARE-B/{family}")
    assert policy["prior_auth_required"] is False
    assert policy["step_therapy"] == []
    assert policy["covered_diagnoses"]
    assert all(code in drugs() for code in policy["hcpcs"])


def test_commercial_preferred_infliximab_lists_differ_by_payer() -> None:
    preferred = {payer: set(current_policy(f"{payer}/infliximab")["preferred_products"])
                 for payer in ("UHC", "BCBS-ND", "BCBS-NC", "UHC-MA")}
    assert preferred == {
        "UHC": {"Q5103", "Q5121"},
        "BCBS-ND": {"Q5103", "Q5104"},
        "BCBS-NC": {"Q5103", "Q5121"},
        "UHC-MA": {"Q5103", "Q5104"},
    }
    assert current_policy("UHC-MA/infliximab")["new_starts_only_lookback_days"] == 120
    # Remicade was still preferred at Blue Cross NC before the 2023-01-01 change.
    assert "J1745" in current_policy("BCBS-NC/infliximab", dt.date(2022, 6, 1))[
        "preferred_products"]


def test_uhc_infliximab_requires_three_months_of_a_csdmard() -> None:
    policy = current_policy("UHC/infliximab")
    assert policy["step_therapy"] == [{
        "any_of": ["methotrexate", "leflunomide", "sulfasalazine", "hydroxychloroquine"],
        "count": 1, "min_days": 90,
        "accepted_outcomes": ["inadequate_response", "intolerance", "contraindication"],
    }]
    assert "hospital_outpatient" not in policy["sites_of_care"]
    assert "UNCONFIRMED" in policy["notes"]


def test_policy_versions_do_not_overlap_and_old_ones_are_closed() -> None:
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for policy in policies():
        by_id[policy["id"]].append(policy)
    versioned = {code: rows for code, rows in by_id.items() if len(rows) > 1}
    assert {"UHC/infliximab", "BCBS-NC/infliximab", "BCBS-ND/infliximab"} <= set(versioned)
    for code, rows in versioned.items():
        rows.sort(key=lambda row: row["effective_from"])
        for older, newer in zip(rows, rows[1:], strict=False):
            assert older["effective_to"] == newer["effective_from"] - dt.timedelta(days=1), code
            assert older["status"] == "retired", code
        assert rows[-1]["status"] == "active" and rows[-1]["effective_to"] is None, code


def test_every_policy_cites_a_source_or_says_why_not() -> None:
    for policy in policies():
        assert policy["notes"], policy["id"]
        assert (policy["source"] or "").startswith("http") or "URL" in policy["notes"], policy["id"]


def test_demo_records_are_clearly_synthetic() -> None:
    demo = seed("demo.yaml")
    assert 6 <= len(demo["patients"]) <= 10
    assert all(p["id"].startswith("DEMO-") for p in demo["patients"])
    assert all(a["number"].startswith("DEMO-A-") for a in demo["authorizations"])


def test_demo_authorizations_show_every_state_a_coordinator_meets() -> None:
    authorizations = seed("demo.yaml")["authorizations"]

    def live(a: dict[str, Any]) -> bool:
        return a["status"] == "approved" and a["valid_from"] <= DEMO_TODAY <= a["valid_to"]

    current = [a for a in authorizations if live(a)]
    expiring = [a for a in current if (a["valid_to"] - DEMO_TODAY).days <= 30]
    low_units = [a for a in current if a["approved_units"] - a["used_units"] < 50]
    expired = [a for a in authorizations
               if a["status"] == "approved" and a["valid_to"] < DEMO_TODAY]
    assert len(current) - len(expiring) - len(low_units) >= 1
    assert expiring and low_units
    assert [a["status"] for a in authorizations].count("submitted") == 1
    assert [a["status"] for a in authorizations].count("denied") == 1
    assert expired and all(a["valid_to"] < DEMO_TODAY for a in expired)
    for a in authorizations:
        if a["approved_units"] is not None:
            assert a["used_units"] <= a["approved_units"], a["number"]


def test_demo_authorizations_match_a_policy_of_their_payer() -> None:
    for authorization in seed("demo.yaml")["authorizations"]:
        code = authorization["hcpcs"][0]
        day = max(authorization["valid_from"], min(authorization["valid_to"], DEMO_TODAY))
        candidates = [p for p in policies() if p["payer"] == authorization["payer"]
                      and code in p["hcpcs"] and p["effective_from"] <= day
                      and (p["effective_to"] is None or day <= p["effective_to"])]
        assert len(candidates) == 1, authorization["number"]
        policy = candidates[0]
        assert all(covers(policy["covered_diagnoses"], dx) for dx in authorization["diagnoses"])
        assert authorization["site_of_care"] in policy["sites_of_care"], authorization["number"]


def test_seed_command_loads_everything_and_a_second_run_changes_nothing(
        runner: FlaskCliRunner, session: Session) -> None:
    first = runner.invoke(args=["seed"])
    assert first.exit_code == 0, first.output
    assert "No changes" not in first.output

    remicade = session.scalars(select(Drug).where(Drug.hcpcs == "J1745")).one()
    assert (remicade.billing_unit_amount, remicade.billing_unit) == (Decimal(10), "mg")
    assert [(p.amount, p.single_dose) for p in remicade.packages] == [(Decimal(100), True)]
    medicare = session.scalars(select(Payer).where(Payer.code == "MEDICARE-B")).one()
    assert medicare.requires_jw_jz and medicare.timely_filing_days == 365
    uhc = session.scalars(select(Policy).where(Policy.code == "UHC/infliximab")).one()
    assert [(v.number, v.status) for v in uhc.versions] == [(1, "retired"), (2, "active")]
    assert uhc.versions[-1].preferred_products == ["Q5103", "Q5121"]
    assert session.scalar(select(func.count()).select_from(PolicyVersion)) == len(policies())
    expiring = session.scalars(select(Authorization)
                               .where(Authorization.number == "DEMO-A-1002")).one()
    assert expiring.valid_to == dt.date(2026, 12, 15) and expiring.remaining_units == 93

    second = runner.invoke(args=["seed"])
    assert second.exit_code == 0, second.output
    assert "No changes" in second.output


def test_demo_providers_pass_the_npi_check_and_enroll_with_seeded_payers() -> None:
    from policy_service.domain.codes import npi_error

    providers = seed("demo.yaml")["providers"]
    assert len(providers) >= 3
    assert [p["npi"] for p in providers if npi_error(p["npi"])] == []
    enrolled = {e["payer"] for p in providers for e in p["enrollments"]}
    assert enrolled <= set(payers())
    assert enrolled == set(payers()), "the demo rheumatologist bills every seeded payer"


def test_pharmacy_only_policies_cite_a_payers_published_requirement() -> None:
    pharmacy = [p for p in policies() if p.get("drug_supply") == "specialty_pharmacy"]
    assert len(pharmacy) >= 2
    for policy in pharmacy:
        assert policy["source"].startswith("https://"), policy["id"]
        assert "pharmacy" in policy["notes"], policy["id"]
        names = {case["name"] for case in policy["cases"]}
        supplies = {case["request"].get("drug_supply", "buy_and_bill")
                    for case in policy["cases"]}
        assert supplies == {"buy_and_bill", "specialty_pharmacy"}, names


def test_remicade_on_aetna_needs_the_pharmacy_from_july_2025(runner: FlaskCliRunner,
                                                            session: Session) -> None:
    from policy_service.services.policy_index import index_cache

    assert runner.invoke(args=["seed"]).exit_code == 0
    index = index_cache.current()
    before = index.policy_for("AETNA", "J1745", dt.date(2025, 6, 30))
    after = index.policy_for("AETNA", "J1745", dt.date(2025, 7, 1))
    assert (before.code, before.drug_supply) == ("AETNA/infliximab", "either")
    assert (after.code, after.drug_supply) == ("AETNA/infliximab-remicade", "specialty_pharmacy")
    # The biosimilars stay under the medical benefit.
    assert index.policy_for("AETNA", "Q5103", dt.date(2025, 7, 1)).drug_supply == "either"
    assert index.providers["1679576722"].enrolled_with("AETNA", dt.date(2025, 12, 31))
    assert not index.providers["1679576722"].enrolled_with("AETNA", DEMO_TODAY)
