"""The change history of records moved through the admin's forms: "before" names what they had."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from policy_service.models import ChangeRecord, Payer, Policy, PolicyVersion
from tests.admin.test_forms import authorization_form, version_form

Login = Callable[[str], Any]


def updates(session: Session, kind: str) -> list[ChangeRecord]:
    """The ``update`` entries of records of ``kind``, oldest first."""
    return list(session.scalars(select(ChangeRecord).where(
        ChangeRecord.entity_type == kind, ChangeRecord.action == "update")
        .order_by(ChangeRecord.id)))


def test_an_authorization_moved_to_another_payer_in_the_admin_names_both(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    other = Payer(code="OTHER", name="Other Health", kind="commercial")
    session.add(other)
    session.flush()
    login("coordinator")
    saved = client.post(f"/admin/authorization/edit/?id={records.authorization.id}",
                        data=authorization_form(records, payer=other.id))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    [change] = updates(session, "authorization")
    assert (change.before["payer"], change.after["payer"]) == ("ACME", "OTHER")


def test_a_draft_stays_with_its_policy_when_edited_in_the_admin(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    # A version's number counts within its policy; the import and the API never move one.
    # The edit form does not offer the policy, and a forged field changes nothing.
    other = Policy(code="ACME/rituximab", payer=records.payer, title="Rituximab")
    session.add(other)
    session.flush()
    login("coordinator")
    created = client.post("/admin/policyversion/new/", data=version_form(records.policy.id))
    assert created.status_code == 302, created.get_data(as_text=True)
    draft = session.scalars(select(PolicyVersion).where(PolicyVersion.status == "draft")).one()
    page = client.get(f"/admin/policyversion/edit/?id={draft.id}").get_data(as_text=True)
    assert 'name="policy"' not in page
    saved = client.post(f"/admin/policyversion/edit/?id={draft.id}", data=version_form(
        other.id, expected_version=str(draft.version)))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    session.expire_all()
    assert session.get(PolicyVersion, draft.id).policy.code == "ACME/infliximab"
    assert all(change.after.get("policy") != "ACME/rituximab"
               for change in updates(session, "policy"))
