"""Admin forms: validation on the fields, list fields, stale edits, retired versions, history."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from admin.security import CORRECT_FIELDS_MESSAGE, STALE_MESSAGE
from policy_service.audit import POLICY_REVISION
from policy_service.errors import Invalid
from policy_service.models import (
    Authorization,
    ChangeRecord,
    Patient,
    Payer,
    Policy,
    PolicyVersion,
    Revision,
)
from policy_service.services import policies

Login = Callable[[str], Any]


def version_form(policy_id: int, **overrides: Any) -> dict[str, Any]:
    """Form data for a new policy version with one step-therapy step."""
    data = {
        "policy": policy_id, "effective_from": "2027-01-01", "effective_to": "",
        "status": "draft", "hcpcs": "j1745, Q5103", "prior_auth_required": "y",
        "covered_diagnoses": "M05, m06, L40.5", "preferred_products": "Q5103",
        "sites_of_care": ["office", "home"], "documentation_required": "",
        "source": "https://example.org/policy.pdf#s2",
        "steps-0-any_of": "methotrexate, leflunomide", "steps-0-count": "1",
        "steps-0-min_days": "90", "steps-0-accepted_outcomes": ["intolerance"],
    }
    data.update(overrides)
    return data


def authorization_form(records: Any, **overrides: Any) -> dict[str, Any]:
    """Edit-form data for the fixture's authorization, as the page would post it."""
    auth = records.authorization
    data = {
        "number": auth.number, "patient": auth.patient_id, "payer": auth.payer_id,
        "hcpcs": "J1745", "approved_units": "160", "approved_visits": "4",
        "valid_from": auth.valid_from.isoformat(), "valid_to": auth.valid_to.isoformat(),
        "diagnoses": "M05.79", "site_of_care": "office", "notes": "",
        "expected_version": str(auth.version),
    }
    data.update(overrides)
    return data


def field_errors(page: str, field: str) -> str:
    """Return the HTML of the form group of ``field`` (where its messages are shown)."""
    start = page.index(f'id="{field}"')
    return page[start:start + 1500]


def test_coordinator_creates_version_with_step_and_lists(client: FlaskClient, login: Login,
                                                         records: Any, session: Session) -> None:
    login("coordinator")
    response = client.post("/admin/policyversion/new/", data=version_form(records.policy.id))
    assert response.status_code == 302, response.get_data(as_text=True)
    created = session.scalar(select(PolicyVersion).where(
        PolicyVersion.effective_from == dt.date(2027, 1, 1)))
    assert created.number == 2
    assert created.hcpcs == ["J1745", "Q5103"]
    assert created.covered_diagnoses == ["M05", "M06", "L40.5"]
    assert created.sites_of_care == ["office", "home"]
    assert [s.as_dict() for s in created.steps] == [{
        "any_of": ["methotrexate", "leflunomide"], "count": 1, "min_days": 90,
        "accepted_outcomes": ["intolerance"]}]


def test_invalid_icd10_code_is_shown_on_its_field(client: FlaskClient, login: Login,
                                                  records: Any, session: Session) -> None:
    login("coordinator")
    response = client.post("/admin/policyversion/new/", data=version_form(
        records.policy.id, covered_diagnoses="M05, M99.999X", effective_to="2026-12-01"))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "is not an ICD-10-CM code or code family" in field_errors(page, "covered_diagnoses")
    assert "Must not be before effective_from (2027-01-01)." in field_errors(page, "effective_to")
    assert session.scalar(select(PolicyVersion).where(
        PolicyVersion.effective_from == dt.date(2027, 1, 1))) is None


def test_authorization_units_rules_on_fields(client: FlaskClient, login: Login,
                                             records: Any, session: Session) -> None:
    login("coordinator")
    url = f"/admin/authorization/edit/?id={records.authorization.id}"
    response = client.post(url, data=authorization_form(records, approved_visits="-1",
                                                        diagnoses="M05.79, XYZ",
                                                        ordering_npi="1234567890"))
    page = response.get_data(as_text=True)
    assert "Must not be negative." in field_errors(page, "approved_visits")
    assert "&#39;XYZ&#39; is not an ICD-10-CM code" in field_errors(page, "diagnoses")
    assert "Not a valid NPI" in field_errors(page, "ordering_npi")
    session.expire_all()
    assert session.get(Authorization, records.authorization.id).approved_visits == 4


def test_approved_authorization_needs_a_limit_on_the_form(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    login("coordinator")
    url = f"/admin/authorization/edit/?id={records.authorization.id}"
    page = client.post(url, data=authorization_form(records, approved_units="0",
                                                    approved_visits="")).get_data(as_text=True)
    assert "needs approved_units or approved_visits" in field_errors(page, "approved_units")
    session.expire_all()
    assert session.get(Authorization, records.authorization.id).approved_units == 160


def test_stale_edit_is_refused(client: FlaskClient, login: Login, records: Any,
                               session: Session) -> None:
    login("coordinator")
    url = f"/admin/authorization/edit/?id={records.authorization.id}"
    opened = authorization_form(records)
    first = client.post(url, data={**opened, "approved_units": "150"})
    assert first.status_code == 302
    second = client.post(url, data={**opened, "approved_units": "140"})
    assert second.status_code == 200
    assert STALE_MESSAGE in second.get_data(as_text=True)
    session.expire_all()
    assert session.get(Authorization, records.authorization.id).approved_units == 150


def test_edit_form_carries_the_opened_version(client: FlaskClient, login: Login,
                                              records: Any) -> None:
    login("coordinator")
    page = client.get(f"/admin/authorization/edit/?id={records.authorization.id}")
    assert (f'name="expected_version" type="hidden" value="{records.authorization.version}"'
            in page.get_data(as_text=True))


@pytest.mark.parametrize("status", ["active", "retired"])
def test_active_and_retired_versions_are_read_only(client: FlaskClient, login: Login,
                                                   records: Any, session: Session,
                                                   status: str) -> None:
    records.version.status = status
    session.flush()
    login("coordinator")
    response = client.get(f"/admin/policyversion/edit/?id={records.version.id}")
    assert response.status_code == 302
    assert "/admin/policyversion/details/" in response.location
    details = client.get(response.location).get_data(as_text=True)
    assert f"is {status}: only drafts can be edited. Make a new version instead." in details
    forged = client.post(f"/admin/policyversion/edit/?id={records.version.id}",
                         data={"hcpcs": "J1745", "effective_from": "2026-01-01"},
                         follow_redirects=True)
    assert "only drafts can be edited" in forged.get_data(as_text=True)
    # Status is not a form field any more: only activation changes it.
    inline = client.post("/admin/policyversion/ajax/update/",
                         data={"list_form_pk": records.version.id, "status": "draft"})
    assert inline.status_code == 403
    session.expire_all()
    assert session.get(PolicyVersion, records.version.id).status == status
    assert "ACME/infliximab" in details


def test_history_link_lists_the_records_changes(client: FlaskClient, login: Login,
                                                records: Any) -> None:
    login("coordinator")
    url = f"/admin/authorization/edit/?id={records.authorization.id}"
    client.post(url, data=authorization_form(records, used_units="40"))
    listing = client.get("/admin/authorization/").get_data(as_text=True)
    link = ("/admin/changerecord/?flt0_entity_type_equals=authorization&amp;"
            "flt1_entity_key_equals=A-1001")
    assert link in listing
    history = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    # Each field reads "field: value" (an update "field: before -> after"), never raw names.
    assert "approved units: 160" in history
    assert "used_units" not in history
    assert "A-1001" in history


def test_change_history_is_read_only(client: FlaskClient, login: Login, records: Any,
                                     session: Session) -> None:
    login("admin")
    change = session.scalars(select(ChangeRecord)).first()
    assert client.get(f"/admin/changerecord/edit/?id={change.id}").status_code == 403
    details = client.get(f"/admin/changerecord/details/?id={change.id}").get_data(as_text=True)
    assert change.entity_key in details


def test_authorization_filters(client: FlaskClient, login: Login, records: Any,
                               session: Session) -> None:
    today = dt.date.today()
    later = Authorization(number="A-LATER", patient=records.patient, payer=records.payer,
                          hcpcs=["Q5103"], status="approved", approved_units=100,
                          used_units=90, valid_from=today, valid_to=today + dt.timedelta(days=25))
    session.add(later)
    session.flush()
    login("scheduler")

    def numbers(query: str) -> set[str]:
        page = client.get(f"/admin/authorization/?{query}").get_data(as_text=True)
        return set(re.findall(r'class="col-number">\s*([\w-]+)\s*<', page))

    assert numbers("flt0_expiring_within=14") == {"A-1001"}
    assert numbers("flt0_expiring_within=30") == {"A-1001", "A-LATER"}
    assert numbers("flt0_low_remaining_is=1") == {"A-LATER"}
    assert numbers("flt0_drug_hcpcs_includes=J1745") == {"A-1001"}


def test_editor_inline_edit_and_bulk_delete(client: FlaskClient, login: Login, records: Any,
                                            session: Session) -> None:
    login("coordinator")
    auth_id = records.authorization.id
    # Status moves only by transition: the list no longer edits it in place.
    inline = client.post("/admin/authorization/ajax/update/",
                         data={"list_form_pk": auth_id, "status": "cancelled"})
    assert inline.status_code == 403
    session.expire_all()
    assert session.get(Authorization, auth_id).status == "approved"
    deleted = client.post("/admin/authorization/action/",
                          data={"action": "delete", "rowid": [str(auth_id)]})
    assert deleted.status_code == 302
    session.expire_all()
    assert session.get(Authorization, auth_id) is None


def test_policy_lists_all_its_versions_read_only_for_schedulers(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    session.add(PolicyVersion(policy=records.policy, number=2, status="draft",
                              effective_from=dt.date(2030, 1, 1), hcpcs=["J1745"]))
    session.flush()
    login("scheduler")
    listing = client.get("/admin/policy/").get_data(as_text=True)
    link = "/admin/policyversion/?flt0_policy_code_equals=ACME/infliximab"
    assert f'href="{link}">2 version(s)' in listing
    versions = client.get(link).get_data(as_text=True)
    assert "2030-01-01" in versions
    assert "/admin/policyversion/edit/" not in versions


def test_patient_therapy_dates_are_checked(client: FlaskClient, login: Login,
                                           session: Session) -> None:
    login("coordinator")
    data = {"external_id": "P777", "birth_date": "1970-05-05", "weight_kg": "70",
            "therapies-0-drug": "methotrexate", "therapies-0-start": "2025-06-01",
            "therapies-0-end": "2025-01-01", "therapies-0-outcome": "intolerance"}
    refused = client.post("/admin/patient/new/", data=data)
    page = refused.get_data(as_text=True)
    assert "Must not be before start (2025-06-01)." in field_errors(page, "therapies-0-end")
    accepted = client.post("/admin/patient/new/", data={**data, "therapies-0-end": "2025-09-01"})
    assert accepted.status_code == 302
    patient = session.scalar(select(Patient).where(Patient.external_id == "P777"))
    assert [(t.drug, t.outcome) for t in patient.therapies] == [("methotrexate", "intolerance")]


def test_save_racing_another_writer_is_retried_then_meets_the_version_check(
        client: FlaskClient, login: Login, records: Any, session: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's "database is locked" is retried like the API's writes, never shown as SQL."""
    login("coordinator")
    url = f"/admin/authorization/edit/?id={records.authorization.id}"
    real_commit = session.commit
    locked = OperationalError("UPDATE authorizations SET used_units=?", {}, Exception(
        "database is locked"))
    failures = iter([locked, locked])

    def commit_after_two_locks() -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        real_commit()

    monkeypatch.setattr(session, "commit", commit_after_two_locks)
    saved = client.post(url, data=authorization_form(records, approved_units="170"))
    assert saved.status_code == 302
    session.expire_all()
    assert session.get(Authorization, records.authorization.id).approved_units == 170


def test_save_that_stays_locked_shows_the_stale_message_without_sql(
        client: FlaskClient, login: Login, records: Any, session: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    login("coordinator")
    url = f"/admin/authorization/edit/?id={records.authorization.id}"

    def always_locked() -> None:
        raise OperationalError("UPDATE authorizations SET used_units=? WHERE id = ?", {},
                               Exception("database is locked"))

    monkeypatch.setattr(session, "commit", always_locked)
    monkeypatch.setattr("admin.security.SAVE_ATTEMPTS", 3)
    page = client.post(url, data=authorization_form(records, approved_units="170")
                       ).get_data(as_text=True)
    assert STALE_MESSAGE in page
    assert "UPDATE" not in page and "database is locked" not in page


@pytest.mark.parametrize("pk", ["999999", "not-a-number", "9" * 40])
def test_inline_edit_is_refused_whatever_the_id(client: FlaskClient, login: Login,
                                                records: Any, pk: str) -> None:
    """Status moves only through transitions, so no inline edit is open, even to coordinators."""
    login("coordinator")
    response = client.post("/admin/authorization/ajax/update/",
                           data={"list_form_pk": pk, "status": "cancelled"})
    assert response.status_code == 403


def test_a_blank_version_form_shows_no_error(client: FlaskClient, login: Login) -> None:
    login("coordinator")
    page = client.get("/admin/policyversion/new/").get_data(as_text=True)
    assert "Name at least one HCPCS code." not in page
    assert "invalid-feedback" not in page


def test_a_new_authorization_starts_without_patient_or_payer(client: FlaskClient, login: Login,
                                                             records: Any) -> None:
    login("coordinator")
    page = client.get("/admin/authorization/new/").get_data(as_text=True)
    for field, blank in (("patient", "Choose a patient"), ("payer", "Choose a payer")):
        select_html = page[page.index(f'id="{field}"'):]
        select_html = select_html[:select_html.index("</select>")]
        assert f'<option selected value="__None">{blank}</option>' in select_html
        assert select_html.count("selected") == 1
    form = authorization_form(records, number="A-NEW-1", patient="__None", payer="__None")
    refused = client.post("/admin/authorization/new/", data=form).get_data(as_text=True)
    assert "Choose the patient." in refused
    assert "Choose the payer." in refused


def test_dates_use_the_browsers_own_date_field(client: FlaskClient, login: Login,
                                               records: Any) -> None:
    # Flask-Admin's pop-up picker stayed open over the next field.
    login("coordinator")
    page = client.get(f"/admin/authorization/edit/?id={records.authorization.id}"
                      ).get_data(as_text=True)
    valid_from = re.search(r'<input[^>]*id="valid_from"[^>]*>', page)
    assert valid_from is not None
    assert 'type="date"' in valid_from[0]
    assert f'value="{records.authorization.valid_from.isoformat()}"' in valid_from[0]
    assert 'data-role="datepicker"' not in page


def new_policy_form(payer_id: int, **overrides: Any) -> dict[str, Any]:
    """A filled new policy form: the policy and its first version."""
    return {"payer": payer_id, "title": "Vedolizumab IV", "code": "",
            "hcpcs": "j3380", "covered_diagnoses": "k50, K51",
            "effective_from": "2026-01-01", "effective_to": "",
            "prior_auth_required": "y", "source": "https://payer.example/vedolizumab",
            "notes": "", **overrides}


def test_one_form_creates_a_policy_and_its_first_draft_version(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    login("coordinator")
    blank = client.get("/admin/policy/new/").get_data(as_text=True)
    payer_select = blank[blank.index('id="payer"'):]
    assert '<option selected value="__None">Choose a payer</option>' in \
        payer_select[:payer_select.index("</select>")]
    assert "e.g. ACME/infliximab" in blank
    for name in ("hcpcs", "covered_diagnoses", "effective_from", "source"):
        assert f'for="{name}"' in blank and f'id="{name}"' in blank
    assert "Name at least one HCPCS code." not in blank
    code_input = re.search(r'<input[^>]*id="code"[^>]*>', blank)
    assert code_input is not None and "required" not in code_input[0]

    saved = client.post("/admin/policy/new/",
                        data=new_policy_form(records.authorization.payer_id))
    policy = session.scalar(select(Policy).where(Policy.title == "Vedolizumab IV"))
    assert policy is not None
    assert policy.code == f"{policy.payer.code}/vedolizumab-iv"
    [version] = policy.versions
    assert (version.number, version.status) == (1, "draft")
    assert version.hcpcs == ["J3380"]
    assert version.covered_diagnoses == ["K50", "K51"]
    assert version.effective_from.isoformat() == "2026-01-01"
    assert version.effective_to is None and version.prior_auth_required
    assert version.source == "https://payer.example/vedolizumab"
    assert saved.status_code == 302
    assert saved.headers["Location"].endswith(f"/admin/policyversion/lifecycle/?id={version.id}")


def test_the_new_policy_form_marks_every_field_it_requires(
        client: FlaskClient, login: Login, records: Any) -> None:
    # HCPCS codes were required but unmarked: the form said so only after a save.
    login("coordinator")
    blank = client.get("/admin/policy/new/").get_data(as_text=True)
    for name in ("payer", "hcpcs", "effective_from"):
        label = re.search(rf'<label for="{name}"[^>]*>(.*?)</label>', blank, re.DOTALL)
        assert label is not None and "&#42;" in label[1], name
    hcpcs = re.search(r'<input[^>]*id="hcpcs"[^>]*>', blank)
    assert hcpcs is not None and " required" in hcpcs[0]
    refused = client.post("/admin/policy/new/", data=new_policy_form(
        records.authorization.payer_id, hcpcs=""))
    assert refused.get_data(as_text=True).count("Name at least one HCPCS code.") == 1


@pytest.mark.parametrize("url", ["/admin/policyversion/new/", "edit"])
def test_the_version_form_marks_hcpcs_codes_required(
        client: FlaskClient, login: Login, records: Any, session: Session, url: str) -> None:
    # The service refuses a version without one, but the version form did not mark the field.
    records.version.status = "draft"
    session.flush()
    if url == "edit":
        url = f"/admin/policyversion/edit/?id={records.version.id}"
    login("coordinator")
    blank = client.get(url).get_data(as_text=True)
    label = re.search(r'<label for="hcpcs"[^>]*>(.*?)</label>', blank, re.DOTALL)
    assert label is not None and "&#42;" in label[1]
    hcpcs = re.search(r'<input[^>]*id="hcpcs"[^>]*>', blank)
    assert hcpcs is not None and " required" in hcpcs[0]
    data = version_form(records.policy.id, hcpcs="")
    if "edit" in url:
        data["expected_version"] = str(records.version.version)
    refused = client.post(url, data=data).get_data(as_text=True)
    assert "Name at least one HCPCS code." in field_errors(refused, "hcpcs")
    assert refused.count("Name at least one HCPCS code.") == 1


@pytest.mark.parametrize(("field", "value", "message"), [
    ("hcpcs", "", "Name at least one HCPCS code."),
    ("effective_from", "", "Give the date the first version takes effect."),
    ("effective_to", "2025-12-01", "Must not be before effective_from (2026-01-01)."),
])
def test_a_bad_first_version_field_is_named_and_nothing_is_written(
        client: FlaskClient, login: Login, records: Any, session: Session,
        field: str, value: str, message: str) -> None:
    login("coordinator")
    policies_before = session.scalar(select(func.count()).select_from(Policy))
    versions_before = session.scalar(select(func.count()).select_from(PolicyVersion))
    refused = client.post("/admin/policy/new/", data=new_policy_form(
        records.authorization.payer_id, **{field: value}))
    page = refused.get_data(as_text=True)
    assert refused.status_code == 200
    shown = re.search(rf'id="{field}"[^>]*>\s*<div class="invalid-feedback">(.*?)</div>', page,
                      re.DOTALL)
    assert shown is not None and message in shown[1]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Policy)) == policies_before
    assert session.scalar(select(func.count()).select_from(PolicyVersion)) == versions_before


TAKEN_CODE = "Another policy already has the code ACME/infliximab: type a different one."


@pytest.mark.parametrize("typed", [
    pytest.param({"code": "ACME/infliximab"}, id="typed"),
    pytest.param({"code": "", "title": "Infliximab"}, id="suggested"),
])
def test_a_taken_policy_code_gets_one_message_that_says_what_to_do(
        client: FlaskClient, login: Login, records: Any, session: Session,
        typed: dict[str, str]) -> None:
    # Flask-Admin's own "Already exists." showed instead of the message naming the code.
    login("coordinator")
    versions_before = session.scalar(select(func.count()).select_from(PolicyVersion))
    refused = client.post("/admin/policy/new/", data=new_policy_form(
        records.authorization.payer_id, hcpcs="", **typed))
    page = refused.get_data(as_text=True)
    assert refused.status_code == 200
    assert TAKEN_CODE in field_errors(page, "code")
    assert page.count(TAKEN_CODE) == 1 and "Already exists." not in page
    # The first version's errors show in the same answer, not one round later.
    assert "Name at least one HCPCS code." in field_errors(page, "hcpcs")
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(PolicyVersion)) == versions_before


def test_an_edit_to_a_taken_policy_code_says_what_to_do(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    other = Policy(code="ACME/rituximab", payer=records.payer, title="Rituximab")
    session.add(other)
    session.flush()
    login("coordinator")
    refused = client.post(f"/admin/policy/edit/?id={other.id}", data={
        "payer": records.payer.id, "title": "Rituximab", "code": "ACME/infliximab"})
    page = refused.get_data(as_text=True)
    assert TAKEN_CODE in field_errors(page, "code")
    assert page.count(TAKEN_CODE) == 1 and "Already exists." not in page
    session.expire_all()
    assert session.get(Policy, other.id).code == "ACME/rituximab"
    kept = client.post(f"/admin/policy/edit/?id={other.id}", data={
        "payer": records.payer.id, "title": "Rituximab IV", "code": "ACME/rituximab"})
    assert kept.status_code == 302


def test_a_policy_edit_saves_as_the_import_does(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    # The admin saved a policy with Flask-Admin's own save: a new payer left every version's
    # indexed (payer, HCPCS) rows on the old payer (the import moves them).
    other = Payer(code="OTHER", name="Other Health", kind="commercial")
    session.add(other)
    session.flush()
    revision_before = session.scalar(select(Revision.value).where(
        Revision.name == POLICY_REVISION))
    login("coordinator")
    saved = client.post(f"/admin/policy/edit/?id={records.policy.id}", data={
        "payer": other.id, "title": "", "code": "OTHER/infliximab"})
    assert saved.status_code == 302
    session.expire_all()
    policy = session.get(Policy, records.policy.id)
    assert (policy.code, policy.payer.code, policy.title) == ("OTHER/infliximab", "OTHER", None)
    assert {(row.payer_id, row.hcpcs) for row in policy.versions[0].codes} == \
        {(other.id, "J1745")}
    change = session.scalar(select(ChangeRecord).where(
        ChangeRecord.entity_type == "policy", ChangeRecord.entity_key == "OTHER/infliximab",
        ChangeRecord.action == "update"))
    assert change is not None
    assert change.before == {"code": "ACME/infliximab", "title": "Infliximab", "payer": "ACME"}
    assert change.after == {"code": "OTHER/infliximab", "title": None, "payer": "OTHER"}
    assert session.scalar(select(Revision.value).where(
        Revision.name == POLICY_REVISION)) != revision_before


def test_a_policy_edit_goes_through_the_policies_service(
        client: FlaskClient, login: Login, records: Any, session: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # One write path: a rule the service adds holds for the admin too.
    def refuse(_policy: Policy, _values: Any) -> bool:
        raise Invalid({"title": ["The service refused this title."]})

    monkeypatch.setattr(policies, "update_policy", refuse)
    login("coordinator")
    refused = client.post(f"/admin/policy/edit/?id={records.policy.id}", data={
        "payer": records.payer.id, "title": "Infliximab IV", "code": "ACME/infliximab"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 200
    assert "The service refused this title." in field_errors(page, "title")
    session.expire_all()
    assert session.get(Policy, records.policy.id).title == "Infliximab"


def draft_version(records: Any) -> PolicyVersion:
    """Version 2 of the fixture's policy: a draft from 2027 with one methotrexate step."""
    return policies.create_version(records.policy, {
        "effective_from": dt.date(2027, 1, 1), "hcpcs": ["J1745"], "source": "kept",
        "step_therapy": [{"any_of": ["methotrexate"], "min_days": 90}]})


def version_save(records: Any, draft: PolicyVersion, writing: str,
                 **overrides: Any) -> tuple[str, dict[str, Any]]:
    """The URL and form data of a new version (``create``) or of an edit of ``draft``."""
    if writing == "create":
        return "/admin/policyversion/new/", version_form(
            records.policy.id, **{"effective_from": "2028-01-01", **overrides})
    return f"/admin/policyversion/edit/?id={draft.id}", version_form(
        records.policy.id, expected_version=str(draft.version), **overrides)


@pytest.mark.parametrize("writing", ["create", "edit"])
def test_a_version_save_goes_through_the_policies_service(
        client: FlaskClient, login: Login, records: Any, session: Session,
        monkeypatch: pytest.MonkeyPatch, writing: str) -> None:
    # One write path: the version form saved with Flask-Admin's own save, so a rule that
    # only the service holds (as for the import and the API) did not hold for the admin.
    draft = draft_version(records)
    session.flush()

    def refuse(*_args: Any) -> Any:
        raise Invalid({"source": ["The service refused this source."]})

    monkeypatch.setattr(policies, f"{'create' if writing == 'create' else 'update'}_version",
                        refuse)
    login("coordinator")
    url, data = version_save(records, draft, writing, source="https://example.org/new")
    refused = client.post(url, data=data)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 200
    assert "The service refused this source." in field_errors(page, "source")
    assert banners(page) == [CORRECT_FIELDS_MESSAGE]
    session.expire_all()
    assert [v.source for v in session.get(Policy, records.policy.id).versions] == [
        records.version.source, "kept"]


@pytest.mark.parametrize("writing", ["create", "edit"])
def test_a_version_cannot_start_on_the_day_another_does(
        client: FlaskClient, login: Login, records: Any, session: Session,
        writing: str) -> None:
    # The service names the clash on its field; the admin's own save met the database's
    # unique constraint and could only say the record already exists.
    draft = draft_version(records)
    session.flush()
    taken = records.version.effective_from.isoformat()
    login("coordinator")
    url, data = version_save(records, draft, writing, effective_from=taken)
    page = client.post(url, data=data).get_data(as_text=True)
    assert (f"Another version of ACME/infliximab starts on {taken}."
            in field_errors(page, "effective_from"))
    assert banners(page) == [CORRECT_FIELDS_MESSAGE]
    session.expire_all()
    assert [v.effective_from for v in session.get(Policy, records.policy.id).versions] == [
        records.version.effective_from, dt.date(2027, 1, 1)]


def test_a_draft_edited_in_the_admin_is_stored_as_the_service_stores_it(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    draft = draft_version(records)
    session.flush()
    login("coordinator")
    url = f"/admin/policyversion/edit/?id={draft.id}"
    steps = {"steps-0-id": str(draft.steps[0].id), "steps-0-any_of": "methotrexate",
             "steps-0-count": "1", "steps-0-min_days": "90",
             "steps-1-any_of": "adalimumab, etanercept", "steps-1-count": "1",
             "steps-1-min_days": "84", "steps-1-accepted_outcomes": ["intolerance"]}
    saved = client.post(url, data={
        **version_form(records.policy.id, expected_version=str(draft.version),
                       effective_from="2027-02-01", covered_diagnoses="m0579, K50",
                       prescriber_specialties=" Rheumatology "), **steps})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    session.expire_all()
    stored = session.get(PolicyVersion, draft.id)
    assert (stored.number, stored.status, stored.effective_from) == (
        2, "draft", dt.date(2027, 2, 1))
    assert stored.covered_diagnoses == ["M05.79", "K50"]
    assert stored.prescriber_specialties == ["rheumatology"]
    assert [(s.position, s.any_of) for s in stored.steps] == [
        (0, ["methotrexate"]), (1, ["adalimumab", "etanercept"])]
    change = session.scalars(select(ChangeRecord).where(
        ChangeRecord.entity_key == "ACME/infliximab@2027-02-01",
        ChangeRecord.action == "update")).one()
    assert change.before["effective_from"] == "2027-01-01"

    # The first step deleted: the one left is step 1 of 1, as the import and API number it.
    removed = client.post(url, data={
        **version_form(records.policy.id, expected_version=str(stored.version),
                       effective_from="2027-02-01"),
        **steps, "steps-1-id": str(stored.steps[1].id), "del-steps-0": "y"})
    assert removed.status_code == 302, removed.get_data(as_text=True)
    session.expire_all()
    assert [(s.position, s.any_of) for s in session.get(PolicyVersion, draft.id).steps] == [
        (0, ["adalimumab", "etanercept"])]


def test_a_drafts_test_cases_stay_through_an_admin_edit(
        client: FlaskClient, login: Login, records: Any, session: Session) -> None:
    draft = draft_version(records)
    case = policies.add_case(draft, "RA on infliximab", {
        "patient": {"id": "P001"}, "payer": "ACME", "date_of_service": "2027-03-01",
        "hcpcs": "J1745", "diagnosis_codes": ["M05.79"], "site_of_care": "office",
        "dose": {"mg": 400}}, {"decision": "eligible"})
    login("coordinator")
    url = f"/admin/policyversion/edit/?id={draft.id}"
    form = client.get(url).get_data(as_text=True)
    assert 'name="cases"' not in form and "PolicyCase" not in form
    saved = client.post(url, data=version_form(
        records.policy.id, expected_version=str(draft.version)))
    assert saved.status_code == 302, saved.get_data(as_text=True)
    session.expire_all()
    [kept] = session.get(PolicyVersion, draft.id).cases
    assert (kept.id, kept.name, kept.expect_decision) == (case.id, case.name, "eligible")


def banners(page: str) -> list[str]:
    """The texts of the messages heading the page (Flask's flashed alerts)."""
    return [re.sub(r"<[^>]+>|\s+", " ", text).replace("&times;", "").strip()
            for text in re.findall(r'<div class="alert[^"]*"[^>]*>(.*?)</div>', page,
                                   re.DOTALL)]


@pytest.mark.parametrize("refused", [
    pytest.param(lambda client, records: client.post("/admin/patient/new/", data={
        "external_id": "P777", "birth_date": "1970-05-05", "weight_kg": "-70"}), id="create"),
    pytest.param(lambda client, records: client.post(
        f"/admin/authorization/edit/?id={records.authorization.id}",
        data=authorization_form(records, approved_visits="-1")), id="edit"),
])
def test_a_refused_form_says_once_to_correct_the_marked_fields(
        client: FlaskClient, login: Login, records: Any,
        refused: Callable[[FlaskClient, Any], Any]) -> None:
    # Flask-Admin headed the field messages with "Failed to create record." (or "save").
    login("coordinator")
    response = refused(client, records)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert banners(page) == [CORRECT_FIELDS_MESSAGE]
    assert "Failed to create record." not in page and "Failed to save record." not in page


def test_lists_show_words_and_plain_numbers(client: FlaskClient, login: Login, records: Any,
                                            session: Session) -> None:
    records.authorization.site_of_care = "hospital_outpatient"
    session.flush()
    login("coordinator")
    drugs = client.get("/admin/drug/").get_data(as_text=True)
    assert re.search(r'<td class="col-billing_unit_amount">\s*10\s*</td>', drugs)
    assert "10.000" not in drugs and "100.000" not in drugs
    versions = client.get("/admin/policyversion/").get_data(as_text=True)
    assert re.search(r'<td class="col-prior_auth_required">\s*Yes\s*</td>', versions)
    details = client.get(f"/admin/authorization/details/?id={records.authorization.id}"
                         ).get_data(as_text=True)
    assert "hospital outpatient" in details and "hospital_outpatient" not in details


def test_the_favicon_is_served(client: FlaskClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    icon = client.get(response.headers["Location"])
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    icon.close()
