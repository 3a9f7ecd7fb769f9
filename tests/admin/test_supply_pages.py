"""Scheduler pages with drug supply and provider NPIs: the form, one appointment, the export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from policy_service.schemas.appointments import load_appointment
from policy_service.services import appointments
from tests.admin.test_scheduler_pages import banner, check, error_near
from tests.claims.world import build_world
from tests.factories import make_authorization, make_drug, make_patient, make_payer, make_policy

Login = Callable[[str], Any]
TODAY = dt.date.today()


def test_form_checks_supply_and_the_rendering_provider(client: FlaskClient, login: Login,
                                                       session: Any) -> None:
    build_world(policy={"drug_supply": "specialty_pharmacy"})
    login("scheduler")
    page = check(client, packages="100x4")
    assert banner(page).startswith("danger not_eligible")
    assert "SPECIALTY_PHARMACY_REQUIRED" in page
    page = check(client, packages="100x4", drug_supply="specialty_pharmacy",
                 rendering_npi="1245319599")
    assert banner(page).startswith("warning needs_information")
    assert "PROVIDER_NOT_ENROLLED" in page and "enrolled 2024-01-01 to 2025-12-31" in page


def test_a_bad_npi_is_shown_on_its_field(client: FlaskClient, login: Login,
                                         session: Any) -> None:
    build_world()
    login("scheduler")
    page = check(client, rendering_npi="1234567890")
    assert "check digit" in error_near(page, "rendering_npi")
    assert 'id="decision"' not in page


def test_appointment_page_and_export_show_supply_and_npi(client: FlaskClient, login: Login,
                                                         session: Any) -> None:
    payer = make_payer()
    make_drug("J1745")
    make_policy(payer=payer, effective_from=TODAY - dt.timedelta(days=400))
    patient = make_patient("P001")
    make_authorization("A-1001", patient=patient, payer=payer,
                       valid_from=TODAY - dt.timedelta(days=30),
                       valid_to=TODAY + dt.timedelta(days=180))
    appointments.upsert("SP-1", load_appointment({
        "patient": {"id": "P001"}, "payer": "MEDICARE-B",
        "date_of_service": (TODAY + dt.timedelta(days=3)).isoformat(), "site_of_care": "office",
        "diagnosis_codes": ["M05.79"], "hcpcs": "J1745", "dose": {"mg": 400},
        "drug_supply": "specialty_pharmacy", "rendering_npi": "1003000126"}),
        "scheduler@example.org")
    login("coordinator")
    page = client.get("/admin/upcoming/appointment/SP-1").get_data(as_text=True)
    assert 'id="drug-supply">specialty pharmacy<' in page
    assert 'id="rendering-npi">1003000126<' in page
    assert "PROVIDER_NOT_ENROLLED" in page
    export = client.get("/admin/upcoming/export.csv?range=dates"
                        f"&start={TODAY.isoformat()}&end={(TODAY + dt.timedelta(days=30))}")
    [line] = list(csv.DictReader(io.StringIO(export.get_data(as_text=True))))
    assert (line["drug_supply"], line["rendering_npi"]) == ("specialty_pharmacy", "1003000126")
    assert line["decision"] == "needs_information"


def test_claim_page_names_the_unbillable_drug_and_the_unenrolled_provider(
        client: FlaskClient, login: Login, session: Any) -> None:
    from tests.admin.test_biller_pages import post_claim

    build_world(policy={"drug_supply": "specialty_pharmacy"})
    login("biller")
    page = post_claim(client, rendering_npi="1245319599")
    assert "DRUG_LINE_NOT_BILLABLE" in page
    assert "PROVIDER_NOT_ENROLLED" in page and "CARC B7" in page
