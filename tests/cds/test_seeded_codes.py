"""The seeded drug table's RxNorm and NDC codes map EHR orders to our HCPCS codes (issue 14)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskCliRunner

from tests.cds.conftest import medication_request, order_sign_call, payer_organization
from tests.cds.test_hooks import coverage_information

NDC = "http://hl7.org/fhir/sid/ndc"


@pytest.fixture
def seeded(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("rxnorm", "hcpcs"), [
    ("1790541", "Q5103"),  # Inflectra SCD, from its openFDA NDC record
    ("1790546", "Q5103"),  # Inflectra SBD
    ("1927285", "Q5104"),  # Renflexis
    ("2680294", "Q5133"),  # Tofidence
    ("2679431", "Q5135"),  # Tyenne IV (openFDA enforcement record)
])
def test_an_order_coded_only_by_a_seeded_rxnorm_code_gets_a_coverage_answer(
        call: Callable[..., Any], seeded: None, rxnorm: str, hcpcs: str) -> None:
    order = medication_request(rxnorm)
    request = order_sign_call(order, organization=payer_organization("87726"))  # UHC
    body = call("order-sign", request).get_json()
    info = coverage_information(body["systemActions"][0])
    assert info["billingCode"][0]["code"] == hcpcs
    assert info["covered"] != ["indeterminate"], body["cards"]


def test_an_order_naming_a_seeded_package_ndc_maps_to_its_hcpcs(
        call: Callable[..., Any], seeded: None) -> None:
    order = medication_request()
    del order["medicationCodeableConcept"]
    order["medicationReference"] = {"reference": "Medication/med-1"}
    request = order_sign_call(order, organization=payer_organization("87726"))
    request["prefetch"]["meds"] = {"resourceType": "Medication", "id": "med-1", "code": {
        "coding": [{"system": NDC, "code": "55513-670-01"}]}}  # Avsola 100 mg/10 mL vial
    body = call("order-sign", request).get_json()
    info = coverage_information(body["systemActions"][0])
    assert info["billingCode"][0]["code"] == "Q5121"
    assert info["covered"] != ["indeterminate"], body["cards"]
