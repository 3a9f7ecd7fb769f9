"""Policy bundles: round trip, all-or-nothing validation with paths, idempotent upserts."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from policy_service.errors import Invalid
from policy_service.models import (
    Authorization,
    ChangeRecord,
    Drug,
    Payer,
    Policy,
    PolicyVersion,
)
from policy_service.services.bundle import (
    export_bundle,
    has_changes,
    import_bundle,
    import_files,
    parse_bundle_text,
    validate_bundle,
)
from policy_service.services.usage import record_usage

HAND_WRITTEN: dict[str, Any] = {
    "payers": [
        {"id": "MEDICARE-B", "name": "Medicare Part B", "kind": "medicare",
         "requires_jw_jz": True, "requires_ndc": False, "timely_filing_days": 365,
         "complex_admin_for_biologics": True},
        {"id": "ACME", "name": "Acme Health", "kind": "commercial", "notes": "Test payer"},
    ],
    "drugs": [
        {"hcpcs": "J1745", "name": "Remicade", "generic": "infliximab", "biosimilar_of": None,
         "billing_unit": {"amount": 10, "unit": "mg"},
         "packages": [{"amount": 100, "unit": "mg", "single_dose": True,
                       "ndc": "57894-0030-01"}],
         "route": "IV", "admin_class": "biologic", "mue_units": 140, "rxnorm": ["310994"]},
        {"hcpcs": "Q5103", "name": "Inflectra", "generic": "infliximab-dyyb",
         "biosimilar_of": "J1745", "billing_unit": {"amount": 10, "unit": "mg"},
         "packages": [{"amount": 100, "unit": "mg", "single_dose": True}],
         "valid_from": "2017-04-01"},
    ],
    "policies": [
        {"id": "MEDICARE-B/infliximab", "payer": "MEDICARE-B", "title": "Infliximab",
         "hcpcs": ["J1745", "Q5103"], "effective_from": "2025-01-01",
         "effective_to": "2025-12-31", "status": "retired", "covered_diagnoses": ["M05", "M06"]},
        {"id": "MEDICARE-B/infliximab", "hcpcs": ["J1745", "Q5103"],
         "effective_from": "2026-01-01", "effective_to": None, "status": "active",
         "prior_auth_required": True, "covered_diagnoses": ["M05", "M06", "L40.5", "M45"],
         "preferred_products": ["Q5103"], "sites_of_care": ["office", "home"],
         "max_dose": {"mg_per_kg": 10, "mg": None, "units": None},
         "min_days_between_doses": 28, "min_age": 18,
         "step_therapy": [{"any_of": ["methotrexate", "leflunomide"], "count": 1,
                           "min_days": 90,
                           "accepted_outcomes": ["inadequate_response", "intolerance"]}],
         "approval_days": 365, "documentation_required": ["chart notes"],
         "drug_supply": "specialty_pharmacy", "prescriber_specialties": ["rheumatology"],
         "source": "https://example.org/policy.pdf#section-3"},
        {"id": "ACME/infliximab", "payer": "ACME", "version": 4, "hcpcs": ["Q5103"],
         "effective_from": "2026-02-01", "status": "draft", "max_dose": {"mg": 1000.5},
         "notes": "Dose limit uncertain in the source."},
    ],
    "patients": [
        {"id": "P001", "birth_date": "1961-03-02", "weight_kg": 80.5,
         "therapies": [
             {"drug": "sulfasalazine", "start": "2025-07-01", "end": None, "outcome": "ongoing"},
             {"drug": "methotrexate", "start": "2025-01-01", "end": "2025-06-01",
              "outcome": "inadequate_response"},
         ]},
    ],
    "authorizations": [
        {"number": "A-1001", "payer": "MEDICARE-B", "patient": "P001", "hcpcs": ["J1745"],
         "status": "approved", "approved_units": 160, "approved_visits": 4, "used_units": 0,
         "used_visits": 0, "valid_from": "2026-01-01", "valid_to": "2026-06-30",
         "diagnoses": ["m0579"], "site_of_care": "office"},
    ],
    "providers": [
        {"npi": "1234567893", "name": "Ada Lovelace, MD", "specialty": "Rheumatology",
         "enrollments": [
             {"payer": "MEDICARE-B", "effective_from": "2024-01-01", "effective_to": None},
             {"payer": "ACME", "effective_from": "2025-01-01", "effective_to": "2025-12-31"},
         ]},
    ],
}
# payers + drugs + policy versions + policies (new policy codes are audited too) + patient
# + authorization + provider
RECORD_COUNT = 2 + 2 + 3 + 2 + 1 + 1 + 1


@pytest.fixture
def bundle() -> dict[str, Any]:
    """A fresh copy of the hand-written bundle, free to mutate."""
    return copy.deepcopy(HAND_WRITTEN)


def _count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _fields(exc: pytest.ExceptionInfo[Invalid]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in exc.value.errors}


def test_import_creates_every_record(session: Session, bundle: dict[str, Any]) -> None:
    summary = import_bundle(bundle, "system")
    assert summary == {
        "payers": {"created": 2, "updated": 0, "unchanged": 0},
        "drugs": {"created": 2, "updated": 0, "unchanged": 0},
        "policies": {"created": 3, "updated": 0, "unchanged": 0},
        "patients": {"created": 1, "updated": 0, "unchanged": 0},
        "authorizations": {"created": 1, "updated": 0, "unchanged": 0},
        "providers": {"created": 1, "updated": 0, "unchanged": 0},
    }
    versions = session.scalars(select(PolicyVersion).join(Policy)
                               .order_by(Policy.code, PolicyVersion.effective_from)).all()
    assert [(v.policy.code, v.number) for v in versions] == [
        ("ACME/infliximab", 4), ("MEDICARE-B/infliximab", 1), ("MEDICARE-B/infliximab", 2)]
    assert versions[2].steps[0].any_of == ["methotrexate", "leflunomide"]
    assert versions[2].policy.payer.code == "MEDICARE-B"
    assert versions[2].policy.title == "Infliximab"


def test_export_matches_what_was_imported(session: Session, bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    exported = export_bundle()
    assert [p["id"] for p in exported["payers"]] == ["ACME", "MEDICARE-B"]
    assert [d["hcpcs"] for d in exported["drugs"]] == ["J1745", "Q5103"]
    assert [(p["id"], p["effective_from"], p["version"]) for p in exported["policies"]] == [
        ("ACME/infliximab", "2026-02-01", 4),
        ("MEDICARE-B/infliximab", "2025-01-01", 1),
        ("MEDICARE-B/infliximab", "2026-01-01", 2),
    ]
    current = exported["policies"][2]
    assert current["max_dose"] == {"mg_per_kg": 10, "mg": None, "units": None}
    assert isinstance(current["max_dose"]["mg_per_kg"], int)
    assert exported["policies"][0]["max_dose"]["mg"] == 1000.5
    assert current["step_therapy"] == HAND_WRITTEN["policies"][1]["step_therapy"]
    assert current["payer"] == "MEDICARE-B" and current["title"] == "Infliximab"
    assert exported["drugs"][0]["billing_unit"] == {"amount": 10, "unit": "mg"}
    assert exported["drugs"][0]["packages"][0]["ndc"] == "57894-0030-01"
    patient = exported["patients"][0]
    assert patient["weight_kg"] == 80.5
    assert [t["drug"] for t in patient["therapies"]] == ["methotrexate", "sulfasalazine"]
    authorization = exported["authorizations"][0]
    assert authorization["diagnoses"] == ["M05.79"]
    assert authorization["approved_units"] == 160
    assert authorization["payer"] == "MEDICARE-B" and authorization["patient"] == "P001"
    assert current["drug_supply"] == "specialty_pharmacy"
    assert current["prescriber_specialties"] == ["rheumatology"]
    assert exported["policies"][0]["drug_supply"] == "either"
    assert exported["providers"] == [{
        "npi": "1234567893", "name": "Ada Lovelace, MD", "specialty": "rheumatology",
        "enrollments": [
            {"payer": "MEDICARE-B", "effective_from": "2024-01-01", "effective_to": None},
            {"payer": "ACME", "effective_from": "2025-01-01", "effective_to": "2025-12-31"}]}]


def test_export_import_into_empty_database_export_is_identical(
        session: Session, bundle: dict[str, Any]) -> None:
    empty = session.begin_nested()
    import_bundle(bundle, "system")
    first = export_bundle()
    empty.rollback()
    assert _count(session, Payer) == 0

    summary = import_bundle(copy.deepcopy(first), "system")
    assert summary["policies"]["created"] == 3
    assert export_bundle() == first


def test_second_import_changes_nothing(session: Session, bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    history = _count(session, ChangeRecord)

    summary = import_bundle(copy.deepcopy(HAND_WRITTEN), "system")

    assert not has_changes(summary)
    assert {kind: counts["unchanged"] for kind, counts in summary.items()} == {
        "payers": 2, "drugs": 2, "policies": 3, "patients": 1, "authorizations": 1,
        "providers": 1}
    assert _count(session, ChangeRecord) == history


def test_exported_bundle_reimports_unchanged(session: Session, bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    assert not has_changes(import_bundle(export_bundle(), "system"))


def test_every_change_is_in_the_history_with_its_author(
        session: Session, bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "coordinator@example.org")
    records = session.scalars(select(ChangeRecord)).all()
    assert len(records) == RECORD_COUNT
    assert {r.actor for r in records} == {"coordinator@example.org"}
    assert {(r.entity_type, r.entity_key) for r in records} >= {
        ("payer", "ACME"), ("drug", "Q5103"), ("policy", "MEDICARE-B/infliximab@2026-01-01"),
        ("patient", "P001"), ("authorization", "A-1001")}

    changed = copy.deepcopy(HAND_WRITTEN)
    changed["drugs"][1]["packages"] = [{"amount": 100, "unit": "mg"},
                                       {"amount": 400, "unit": "mg", "single_dose": False}]
    changed["authorizations"][0]["used_units"] = 40
    summary = import_bundle(changed, "system")

    assert summary["drugs"] == {"created": 0, "updated": 1, "unchanged": 1}
    assert summary["authorizations"] == {"created": 0, "updated": 1, "unchanged": 0}
    updates = session.scalars(select(ChangeRecord).where(ChangeRecord.action == "update")).all()
    assert {(r.entity_key, r.actor) for r in updates} == {("Q5103", "system"),
                                                         ("A-1001", "system")}
    drug_change = next(r for r in updates if r.entity_key == "Q5103")
    assert len(drug_change.before["packages"]) == 1
    assert drug_change.after["packages"][1] == {"amount": 400, "unit": "mg",
                                                "single_dose": False, "ndc": None}
    auth_change = next(r for r in updates if r.entity_key == "A-1001")
    assert auth_change.changed_fields() == ["used_units"]


def test_child_collections_are_replaced(session: Session, bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    changed = copy.deepcopy(HAND_WRITTEN)
    # Only a draft's criteria may change (policies[2] is ACME's draft).
    changed["policies"][2]["step_therapy"] = [
        {"any_of": ["adalimumab"], "min_days": 84},
        {"any_of": ["methotrexate"], "count": 1, "min_days": 90},
    ]
    changed["patients"][0]["therapies"] = [{"drug": "methotrexate", "start": "2024-01-01"}]
    summary = import_bundle(changed, "system")
    assert summary["policies"]["updated"] == 1
    assert summary["patients"]["updated"] == 1
    exported = export_bundle()
    assert [s["any_of"] for s in exported["policies"][0]["step_therapy"]] == [
        ["adalimumab"], ["methotrexate"]]
    assert exported["policies"][0]["step_therapy"][0]["count"] == 1
    assert exported["patients"][0]["therapies"] == [
        {"drug": "methotrexate", "start": "2024-01-01", "end": None, "outcome": None}]


def test_partial_record_updates_only_the_given_keys(
        session: Session, bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    summary = import_bundle({"payers": [{"id": "ACME", "requires_ndc": True}]}, "system")
    assert summary["payers"] == {"created": 0, "updated": 1, "unchanged": 0}
    payer = session.scalars(select(Payer).where(Payer.code == "ACME")).one()
    assert payer.requires_ndc is True
    assert payer.name == "Acme Health"
    assert payer.notes == "Test payer"


def test_references_may_point_at_stored_records(
        session: Session, bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    summary = import_bundle({"authorizations": [
        {"number": "A-2002", "payer": "ACME", "patient": "P001", "hcpcs": ["Q5103"],
         "valid_from": "2026-03-01", "valid_to": "2026-08-31"}]}, "system")
    assert summary["authorizations"]["created"] == 1


def test_new_policy_version_gets_the_next_number(
        session: Session, bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    import_bundle({"policies": [{"id": "MEDICARE-B/infliximab", "hcpcs": ["J1745"],
                                 "effective_from": "2027-01-01"}]}, "system")
    numbers = session.scalars(select(PolicyVersion.number).join(Policy)
                              .where(Policy.code == "MEDICARE-B/infliximab")
                              .order_by(PolicyVersion.number)).all()
    assert numbers == [1, 2, 3]


def test_version_number_already_used_is_an_error(
        session: Session, bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    with pytest.raises(Invalid) as exc:
        import_bundle({"policies": [{"id": "MEDICARE-B/infliximab", "version": 1,
                                     "effective_from": "2027-01-01"}]}, "system")
    assert "already the version effective 2025-01-01" in _fields(exc)["policies[0].version"]


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Return a mutation that sets the dotted/indexed ``path`` of a bundle to ``value``."""
    def mutate(data: dict[str, Any]) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k
                           for k in path.replace("[", ".").replace("]", "").split(".")]
        node: Any = data
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return mutate


BAD_RECORDS = [
    ("unknown key", _set("policies[2].colour", "red"), "policies[2].colour", "Unknown field"),
    ("unknown top-level key", _set("formulary", []), "formulary", "Unknown field"),
    ("bad ICD-10 family", _set("policies[1].covered_diagnoses[1]", "M99.999"),
     "policies[1].covered_diagnoses[1]", "not an ICD-10-CM code"),
    ("bad ICD-10 code on an authorization", _set("authorizations[0].diagnoses[0]", "X"),
     "authorizations[0].diagnoses[0]", "not an ICD-10-CM code"),
    ("bad HCPCS", _set("drugs[1].hcpcs", "J174"), "drugs[1].hcpcs", "Not a HCPCS code"),
    ("bad HCPCS in a list", _set("policies[1].hcpcs[1]", "q5103"), "policies[1].hcpcs[1]",
     "Not a HCPCS code"),
    ("unknown payer", _set("authorizations[0].payer", "NOPE"), "authorizations[0].payer",
     "Unknown payer 'NOPE'"),
    ("unknown drug", _set("policies[1].preferred_products[0]", "J9999"),
     "policies[1].preferred_products[0]", "Unknown drug 'J9999'"),
    ("unknown patient", _set("authorizations[0].patient", "P404"), "authorizations[0].patient",
     "Unknown patient 'P404'"),
    ("negative package amount", _set("drugs[1].packages[0].amount", -100),
     "drugs[1].packages[0].amount", "greater than 0"),
    ("zero billing unit", _set("drugs[0].billing_unit.amount", 0), "drugs[0].billing_unit.amount",
     "greater than 0"),
    ("zero dose limit", _set("policies[1].max_dose.mg_per_kg", 0),
     "policies[1].max_dose.mg_per_kg", "greater than 0"),
    ("reversed policy dates", _set("policies[0].effective_to", "2024-12-31"),
     "policies[0].effective_to", "before effective_from"),
    ("reversed authorization dates", _set("authorizations[0].valid_to", "2025-12-31"),
     "authorizations[0].valid_to", "before valid_from"),
    ("therapy ending before it starts", _set("patients[0].therapies[1].end", "2024-01-01"),
     "patients[0].therapies[1].end", "before start"),
    ("used above approved", _set("authorizations[0].used_units", 161),
     "authorizations[0].used_units", "more than the 160 approved"),
    ("unknown status", _set("authorizations[0].status", "maybe"), "authorizations[0].status",
     "Must be one of"),
    ("unknown payer kind", _set("payers[1].kind", "charity"), "payers[1].kind", "Must be one of"),
    ("unknown site of care", _set("policies[1].sites_of_care[1]", "spa"),
     "policies[1].sites_of_care[1]", "Must be one of"),
    ("duplicate natural key", _set("payers[1].id", "MEDICARE-B"), "payers[1].id",
     "already given in payers[0]"),
    ("missing natural key", lambda data: data["patients"][0].pop("id"), "patients[0].id",
     "required"),
    ("new payer without a name", lambda data: data["payers"][1].pop("name"), "payers[1].name",
     "not in the database yet"),
    ("policies disagreeing on the payer", _set("policies[1].payer", "ACME"),
     "policies[1].payer", "Differs from policies[0]"),
    ("not a number", _set("authorizations[0].approved_visits", "four"),
     "authorizations[0].approved_visits", "Not a valid integer"),
    ("RxNorm code that is not an RXCUI", _set("drugs[1].rxnorm", ["1860157", "J1745"]),
     "drugs[1].rxnorm", "Not an RxNorm code (RXCUI, 1 to 10 digits): J1745"),
]


@pytest.mark.parametrize(("mutate", "field", "message"),
                         [case[1:] for case in BAD_RECORDS], ids=[case[0] for case in BAD_RECORDS])
def test_one_bad_record_writes_nothing_and_names_the_field(
        session: Session, bundle: dict[str, Any], mutate: Callable[[dict[str, Any]], None],
        field: str, message: str) -> None:
    mutate(bundle)
    with pytest.raises(Invalid) as exc:
        import_bundle(bundle, "system")
    errors = _fields(exc)
    assert field in errors, errors
    assert message in errors[field]
    assert _count(session, Payer) == 0
    assert _count(session, Drug) == 0
    assert _count(session, ChangeRecord) == 0


def test_every_error_is_reported_at_once(session: Session, bundle: dict[str, Any]) -> None:
    bundle["payers"][0]["fax"] = "none"
    bundle["drugs"][0]["packages"][0]["amount"] = -1
    bundle["policies"][1]["covered_diagnoses"].append("M99.999")
    bundle["authorizations"][0]["used_units"] = 500
    bundle["authorizations"][0]["patient"] = "P404"
    with pytest.raises(Invalid) as exc:
        validate_bundle(bundle)
    assert [e["field"] for e in exc.value.errors] == [
        "payers[0].fax",
        "drugs[0].packages[0].amount",
        "policies[1].covered_diagnoses[4]",
        "authorizations[0].used_units",
        "authorizations[0].patient",
    ]


def test_partial_update_is_checked_against_stored_values(
        session: Session, bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    with pytest.raises(Invalid) as exc:
        import_bundle({"authorizations": [{"number": "A-1001", "used_units": 170}]}, "system")
    assert "more than the 160 approved" in _fields(exc)["authorizations[0].used_units"]


def test_a_bad_record_among_stored_data_changes_nothing(
        session: Session, bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    history = _count(session, ChangeRecord)
    changed = copy.deepcopy(HAND_WRITTEN)
    changed["payers"][0]["name"] = "Renamed"
    changed["authorizations"][0]["valid_to"] = "2020-01-01"
    with pytest.raises(Invalid):
        import_bundle(changed, "system")
    assert session.scalars(select(Payer.name).where(Payer.code == "MEDICARE-B")).one() == (
        "Medicare Part B")
    assert _count(session, ChangeRecord) == history


@pytest.mark.parametrize(("text", "filename", "position"), [
    ('{\n  "payers": [\n    {"id": "X",,}\n  ]\n}', "bundle.json", "line 3, column 16"),
    ('{"payers": [}', "bundle", "line 1, column 13"),
    ("payers:\n  - id: X\n    name: [unclosed\n", "bundle.yaml", "line 4, column 1"),
    ("payers:\n  - id: X\n   name: Y\n", "bundle.yml", "line 3, column 4"),
])
def test_malformed_files_name_line_and_column(text: str, filename: str, position: str) -> None:
    with pytest.raises(Invalid) as exc:
        parse_bundle_text(text, filename)
    (error,) = exc.value.errors
    assert error["field"] == "(file)"
    assert error["message"].startswith("Malformed JSON" if "json" in filename or "{" in text
                                       else "Malformed YAML")
    assert position in error["message"]
    assert filename in exc.value.detail


def test_yaml_and_json_load_the_same_bundle() -> None:
    yaml_text = ("policies:\n  - id: P\n    payer: X\n    effective_from: 2026-01-01\n"
                 "    covered_diagnoses: [M05]\n")
    json_text = ('{"policies": [{"id": "P", "payer": "X", "effective_from": "2026-01-01", '
                 '"covered_diagnoses": ["M05"]}]}')
    assert parse_bundle_text(yaml_text, "a.yaml") == parse_bundle_text(json_text, "a.json")


def test_a_bundle_must_be_a_mapping() -> None:
    with pytest.raises(Invalid) as exc:
        parse_bundle_text("- just\n- a list\n", "list.yaml")
    assert "must be a mapping" in exc.value.errors[0]["message"]


def test_several_files_import_as_one_and_errors_name_the_file(
        session: Session, tmp_path: Path, bundle: dict[str, Any]) -> None:
    import json

    (tmp_path / "a-reference.json").write_text(json.dumps(
        {"payers": bundle["payers"], "drugs": bundle["drugs"]}))
    (tmp_path / "b-policies.json").write_text(json.dumps(
        {"policies": bundle["policies"], "patients": bundle["patients"],
         "authorizations": bundle["authorizations"]}))
    files = sorted(tmp_path.iterdir())
    summary = import_files(files, "system")
    assert summary["policies"]["created"] == 3
    assert not has_changes(import_files(files, "system"))

    bundle["policies"][2]["hcpcs"] = ["J0000"]
    (tmp_path / "b-policies.json").write_text(json.dumps({"policies": bundle["policies"]}))
    with pytest.raises(Invalid) as exc:
        import_files(files, "system")
    assert "b-policies.json: policies[2].hcpcs[0]" in _fields(exc)


def test_import_cannot_undo_use_recorded_by_claims(session: Session,
                                                   bundle: dict[str, Any]) -> None:
    import_bundle(bundle, "system")
    number = HAND_WRITTEN["authorizations"][0]["number"]
    authorization = session.scalars(select(Authorization).where(
        Authorization.number == number)).one()
    record_usage(number, "CLM-1", authorization.valid_from, 10, 1, "biller@example.org")
    with pytest.raises(Invalid) as caught:
        import_bundle(bundle, "system")
    assert {e["field"] for e in caught.value.errors} == {"authorizations[0].used_units",
                                                          "authorizations[0].used_visits"}
    assert authorization.used_units == 10
