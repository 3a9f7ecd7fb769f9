"""Importing an 835: outcomes, authorization use by itself, denials, idempotence, bad files."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from policy_service.errors import Invalid
from policy_service.models import AuthorizationUsage, Denial, Remittance, RemittanceClaim
from policy_service.services.remittance import import_remittance
from tests.factories import make_authorization, make_patient
from tests.remittances.builder import Cas, Claim, Line, build_835
from tests.remittances.conftest import APPEAL_DAYS, World

DRUG = Line("J1745", 1000, units=35, adjustments=[Cas("CO", "45", 200)])
ADMIN = Line("96413", 300, adjustments=[Cas("CO", "45", 50)])
DECIDED = dt.date(2026, 3, 18)


def one(text: str, actor: str = "biller@example.org") -> dict:
    """Import ``text`` (one payment) and return its result."""
    (result,) = import_remittance(text, actor)
    return result


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_a_paid_claim_draws_its_drug_units_and_one_visit_from_ref_g1(world: World) -> None:
    result = one(build_835([Claim("CLM-1", [DRUG, ADMIN], authorization="A-1001")]))
    (claim,) = result["claims"]
    assert claim["outcome"] == "paid" and claim["denials"] == []
    assert (claim["authorization"], claim["units_recorded"], claim["visits_recorded"]) == (
        "A-1001", 35, 1)
    assert (world.authorization.used_units, world.authorization.used_visits) == (35, 1)
    usage = world.authorization.usages[0]
    assert (usage.claim_reference, usage.date_of_service, usage.recorded_by) == (
        "CLM-1", dt.date(2026, 3, 10), "biller@example.org")


def test_without_ref_g1_the_authorization_matching_patient_payer_code_and_date_is_used(
        world: World, session: Session) -> None:
    other = make_authorization("A-OTHER", patient=world.authorization.patient, payer=world.payer,
                               hcpcs=["J9312"])
    result = one(build_835([Claim("CLM-2", [DRUG])]))
    assert result["claims"][0]["authorization"] == "A-1001"
    assert world.authorization.used_units == 35 and other.used_units == 0


def test_partially_paid_claim_records_use_and_a_denial_with_its_appeal_date(
        world: World) -> None:
    denied = Line("96413", 300, adjustments=[Cas("CO", "197", 300)], rarcs=["N54"])
    result = one(build_835([Claim("CLM-3", [DRUG, denied])]))
    (claim,) = result["claims"]
    assert claim["outcome"] == "partially_paid" and claim["units_recorded"] == 35
    (denial,) = claim["denials"]
    assert denial["group"] == "CO" and denial["carc"] == "197" and denial["rarc"] == "N54"
    assert denial["amount"] == Decimal(300) and denial["claim_reference"] == "CLM-3"
    assert denial["authorization"] == "A-1001" and denial["service_code"] == "96413"
    assert denial["appeal_due"] == DECIDED + dt.timedelta(days=APPEAL_DAYS)
    assert denial["description"].startswith("Precertification/authorization")
    assert "AUTH_DRUG_MISMATCH" in denial["preventable_by"]


def test_a_denied_claim_uses_nothing_and_records_each_denial(world: World) -> None:
    line = Line("J1745", 1000, units=35, adjustments=[Cas("CO", "197", 1000)])
    result = one(build_835([Claim("CLM-4", [line], status="4")]))
    (claim,) = result["claims"]
    assert claim["outcome"] == "denied" and claim["units_recorded"] == 0
    assert [d["carc"] for d in claim["denials"]] == ["197"]
    assert claim["denials"][0]["preventable_by"][:3] == [
        "AUTH_REQUIRED", "AUTH_EXPIRED", "AUTH_NOT_APPROVED"]
    assert world.authorization.used_units == 0 and world.authorization.used_visits == 0


def test_claim_level_denial_and_patient_responsibility(world: World) -> None:
    # A deductible (PR-1) is not a denial; a claim-level CO-29 is.
    line = Line("J1745", 1000, units=35, adjustments=[Cas("PR", "1", 1000)])
    result = one(build_835([Claim("CLM-5", [line], adjustments=[], remarks=["MA130"])]))
    assert result["claims"][0]["outcome"] == "paid"
    assert result["claims"][0]["units_recorded"] == 35
    late = Claim("CLM-6", [Line("96413", 300)], adjustments=[Cas("CO", "29", 300)])
    result = one(build_835([late], trace="TRACE-2"))
    (denial,) = result["claims"][0]["denials"]
    assert (denial["carc"], denial["service_code"], denial["preventable_by"]) == (
        "29", None, ["TIMELY_FILING_EXCEEDED"])


def test_a_reversal_gives_the_units_and_visit_back(world: World, session: Session) -> None:
    one(build_835([Claim("CLM-7", [DRUG], authorization="A-1001")]))
    assert world.authorization.used_units == 35
    reversal = Claim("CLM-7", [Line("J1745", -1000, units=-35,
                                    adjustments=[Cas("CO", "45", -200)])], status="22")
    result = one(build_835([reversal], trace="TRACE-REV"))
    (claim,) = result["claims"]
    assert claim["outcome"] == "reversed" and claim["usage_voided"]
    assert (claim["units_recorded"], claim["visits_recorded"]) == (-35, -1)
    assert (world.authorization.used_units, world.authorization.used_visits) == (0, 0)
    usage = session.scalars(select(AuthorizationUsage)).one()
    assert usage.voided_at is not None


def test_reversal_and_correction_in_one_file(world: World) -> None:
    one(build_835([Claim("CLM-8", [DRUG], authorization="A-1001")]))
    reversal = Claim("CLM-8", [Line("J1745", -1000, units=-35,
                                    adjustments=[Cas("CO", "45", -200)])], status="22")
    corrected = Claim("CLM-8", [Line("J1745", 1200, units=40,
                                     adjustments=[Cas("CO", "45", 300)])],
                      authorization="A-1001")
    result = one(build_835([reversal, corrected], trace="TRACE-COR"))
    assert [c["outcome"] for c in result["claims"]] == ["reversed", "paid"]
    assert (world.authorization.used_units, world.authorization.used_visits) == (40, 1)


def test_several_claims_in_one_file(world: World) -> None:
    second_patient = make_patient("P002")
    make_authorization("A-2002", patient=second_patient, payer=world.payer)
    claims = [
        Claim("CLM-10", [DRUG], authorization="A-1001"),
        Claim("CLM-11", [DRUG], patient="P002"),
        Claim("CLM-12", [Line("J1745", 500, units=10, adjustments=[Cas("CO", "4", 500)],
                              rarcs=["N822"])], status="4"),
    ]
    result = one(build_835(claims))
    assert [(c["claim_reference"], c["outcome"], c["authorization"], c["units_recorded"])
            for c in result["claims"]] == [("CLM-10", "paid", "A-1001", 35),
                                           ("CLM-11", "paid", "A-2002", 35),
                                           ("CLM-12", "denied", "A-1001", 0)]
    assert result["claims"][2]["denials"][0]["preventable_by"] == [
        "JW_MISSING", "JZ_MISSING", "MODIFIER_25_MISSING", "LATERALITY_MISSING"]


def test_the_same_file_twice_changes_nothing(world: World, session: Session) -> None:
    denied = Line("96413", 300, adjustments=[Cas("CO", "197", 300)])
    text = build_835([Claim("CLM-13", [DRUG, denied], authorization="A-1001")])
    first = one(text)
    before = (world.authorization.used_units, world.authorization.used_visits,
              count(session, Denial), count(session, RemittanceClaim),
              count(session, AuthorizationUsage))
    second = one(text, actor="someone-else@example.org")
    assert not first["already_imported"] and second["already_imported"]
    assert second["claims"] == first["claims"] and second["imported_by"] == "biller@example.org"
    assert (world.authorization.used_units, world.authorization.used_visits,
            count(session, Denial), count(session, RemittanceClaim),
            count(session, AuthorizationUsage)) == before == (35, 1, 1, 1, 1)


def test_a_discarded_drug_line_draws_nothing(world: World) -> None:
    waste = Line("J1745", 100, units=5, modifiers=("JW",), adjustments=[Cas("CO", "45", 20)])
    one(build_835([Claim("CLM-14", [DRUG, waste], authorization="A-1001")]))
    assert world.authorization.used_units == 35


def test_use_beyond_the_authorization_is_reported_not_recorded(world: World) -> None:
    world.authorization.approved_units = 20
    result = one(build_835([Claim("CLM-15", [DRUG], authorization="A-1001")]))
    (claim,) = result["claims"]
    assert claim["outcome"] == "paid" and claim["units_recorded"] == 0
    assert "A-1001" in claim["usage_problem"] and "exceed" in claim["usage_problem"]
    assert world.authorization.used_units == 0


def test_an_unknown_authorization_number_is_reported(world: World) -> None:
    result = one(build_835([Claim("CLM-16", [DRUG], authorization="NOPE-1")]))
    assert "No authorization NOPE-1" in result["claims"][0]["usage_problem"]


def test_the_payer_is_found_by_its_external_id(world: World) -> None:
    world.payer.external_ids = ["87726"]
    result = one(build_835([Claim("CLM-17", [DRUG])], payer="87726"))
    assert result["payer"] == "ACME" and result["claims"][0]["units_recorded"] == 35


BAD_FILES = [
    ("not x12 at all", "segment 1 (ISA)"),
    (build_835([Claim("CLM-1", [DRUG])]).replace("CLP*CLM-1*1*1000*800",
                                                 "CLP*CLM-1*1*1000*8X0"),
     "segment 13 (CLP), element CLP04"),
    (build_835([Claim("CLM-1", [DRUG])]).replace("SVC*HC:J1745*1000*800",
                                                 "SVC*HC:J1745*1000*790"),
     "segment 16 (SVC), element SVC03"),
    (build_835([Claim("CLM-1", [DRUG])]).replace("ST*835", "ST*837"),
     "segment 3 (ST), element ST01"),
    (build_835([Claim("CLM-1", [DRUG])]).replace("CLP*CLM-1*1*", "CLP*CLM-1*9*"),
     "segment 13 (CLP), element CLP02"),
    (build_835([Claim("CLM 1/A", [DRUG])]), "segment 13 (CLP), element CLP01"),
    (build_835([Claim("CLM-1", [DRUG])]).replace("CAS*CO*45", "CAS*XX*45"),
     "segment 18 (CAS), element CAS01"),
    (build_835([Claim("CLM-1", [DRUG])]).replace("DTM*472*20260310", "DTM*472*20261310"),
     "segment 17 (DTM), element DTM02"),
    (build_835([Claim("CLM-1", [DRUG])], payer="NOBODY"), "segment 7 (N1), element N104"),
    (build_835([Claim("CLM-1", [DRUG])]).replace("BPR*I*800", "BPR*I*900"),
     "segment 4 (BPR), element BPR02"),
    (build_835([Claim("CLM-1", [DRUG])]).replace("BPR*I*800", "BPR*I*8E9"),
     "segment 4 (BPR), element BPR02"),
    (build_835([Claim("CLM-1", [DRUG])]).replace("**35~", "**1.5~"),
     "segment 16 (SVC), element SVC05"),
    (build_835([Claim("CLM-1", [DRUG])]).replace("CAS*CO*45", "CAS*CO*" + "4" * 300),
     "segment 18 (CAS), element CAS02"),
]


@pytest.mark.parametrize(("text", "where"), BAD_FILES)
def test_a_malformed_file_names_segment_and_element_and_changes_nothing(
        world: World, session: Session, text: str, where: str) -> None:
    with pytest.raises(Invalid) as caught:
        import_remittance(text, "biller@example.org")
    assert any(e["field"].startswith(where) for e in caught.value.errors), caught.value.errors
    assert all(len(e["message"]) < 200 for e in caught.value.errors)
    assert count(session, Remittance) == 0 and world.authorization.used_units == 0


def test_denials_with_an_open_appeal_window_are_listed_once_per_claim(world: World) -> None:
    from policy_service.services.denials import open_appeals

    line = Line("96413", 300, adjustments=[Cas("CO", "197", 200), Cas("CO", "16", 100)])
    one(build_835([Claim("CLM-20", [DRUG, line], authorization="A-1001")]))
    (appeal,) = open_appeals(DECIDED)
    assert (appeal.claim_reference, appeal.codes, appeal.amount, appeal.appeal_due) == (
        "CLM-20", ("CO-197", "CO-16"), Decimal(300), DECIDED + dt.timedelta(days=APPEAL_DAYS))
    assert appeal.authorization.number == "A-1001"
    assert "P001" not in appeal.message and "appeal by" in appeal.message
    assert open_appeals(DECIDED + dt.timedelta(days=APPEAL_DAYS + 1)) == []
