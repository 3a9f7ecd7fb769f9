"""A remittance denial opens an appeal_due item in the work queue until its window closes."""

from __future__ import annotations

import datetime as dt

from policy_service.services.remittance import import_remittance
from policy_service.services.worklist import worklist
from tests.remittances.builder import Cas, Claim, Line, build_835
from tests.remittances.conftest import APPEAL_DAYS, World

DECIDED = dt.date(2026, 3, 18)


def test_a_denied_claim_is_an_appeal_due_item_until_its_window_closes(world: World) -> None:
    denied = Line("J1745", 1000, units=35, adjustments=[Cas("CO", "197", 1000)])
    import_remittance(build_835([Claim("CLM-30", [denied], status="4")]), "biller@example.org")
    due = DECIDED + dt.timedelta(days=APPEAL_DAYS)
    items = [i for i in worklist(today=DECIDED) if i.kind == "appeal_due"]
    assert [(i.due_on, i.authorization, i.priority) for i in items] == [(due, "A-1001", 1)]
    assert "Claim CLM-30" in items[0].message and "CO-197" in items[0].message
    assert "P001" not in items[0].message
    later = worklist(today=due + dt.timedelta(days=1))
    assert not [i for i in later if i.kind == "appeal_due"]


def test_the_appeal_date_follows_the_payer_appeal_days(world: World) -> None:
    world.payer.appeal_days = 30
    denied = Line("96413", 300, adjustments=[Cas("CO", "4", 300)], rarcs=["N822"])
    (result,) = import_remittance(build_835([Claim("CLM-31", [denied], status="4")]),
                                  "biller@example.org")
    assert result["claims"][0]["denials"][0]["appeal_due"] == DECIDED + dt.timedelta(days=30)
