"""CDS Hooks test kit: EHR signing keys, a clients file, signed calls and a small world."""

from __future__ import annotations

import copy
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import make_authorization, make_drug, make_patient, make_payer, make_policy

DATA = Path(__file__).resolve().parents[1] / "data" / "cds"
ISSUER = "https://ehr.example.org"
BASE_URL = "http://localhost"
MRN_SYSTEM = "http://example.org/NamingSystem/mrn"
PAYER_ID_SYSTEM = "http://example.org/fhir/sid/payer-id"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
POS = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"


def fixture(name: str) -> dict[str, Any]:
    """Return a published example from tests/data/cds."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def ehr_keys() -> dict[str, Any]:
    """The EHR's private keys and its public JWKS (an ES384 and an RS384 key)."""
    ec_key = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = [
        {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())),
         "kid": "ec-1", "alg": "ES384", "use": "sig"},
        {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())),
         "kid": "rsa-1", "alg": "RS384", "use": "sig"},
    ]
    return {"ES384": ("ec-1", ec_key), "RS384": ("rsa-1", rsa_key), "jwks": {"keys": public}}


def write_clients(path: Path, jwks: dict[str, Any], **extra: Any) -> Path:
    """Write a clients file with one client (our test EHR) and return its path."""
    path.write_text(json.dumps({"clients": [{"iss": ISSUER, "jwks": jwks, **extra}]}))
    return path


@pytest.fixture
def cds_config(app: Flask, tmp_path: Path, ehr_keys: dict[str, Any],
               monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the app at a clients file trusting the test EHR, and at its MRN system."""
    path = write_clients(tmp_path / "cds-clients.json", ehr_keys["jwks"])
    monkeypatch.setitem(app.config, "CDS_CLIENTS_FILE", str(path))
    monkeypatch.setitem(app.config, "CDS_PATIENT_IDENTIFIER_SYSTEM", MRN_SYSTEM)
    monkeypatch.setitem(app.config, "CDS_BASE_URL", None)
    return path


@pytest.fixture
def sign(ehr_keys: dict[str, Any]) -> Callable[..., str]:
    """Return a signer: ``sign(service, alg=..., headers=..., **claim_overrides)``."""

    def build(service: str = "order-sign", alg: str = "ES384",
              headers: dict[str, Any] | None = None, **overrides: Any) -> str:
        kid, key = ehr_keys[alg]
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": f"{BASE_URL}/cds-services/{service}", "exp": now + 300,
                  "iat": now, "jti": str(uuid.uuid4())}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, **(headers or {})})

    return build


@pytest.fixture
def call(client: FlaskClient, cds_config: Path, sign: Callable[..., str]) -> Callable[..., Any]:
    """POST a hook call with a fresh valid token (or the ``token`` given)."""

    def post(service: str, body: Any, token: str | None = None) -> Any:
        token = token or sign(service)
        kwargs = {"json": body} if not isinstance(body, str | bytes) else {
            "data": body, "content_type": "application/json"}
        return client.post(f"/cds-services/{service}",
                           headers={"Authorization": f"Bearer {token}"}, **kwargs)

    return post


@pytest.fixture
def world(session: Any) -> dict[str, Any]:
    """ACME (known to EHRs as ACME-PAYER-1), infliximab by RxNorm, patient 1032702, auth A-77."""
    payer = make_payer("ACME", name="Acme Health Plan", kind="commercial",
                       external_ids=["ACME-PAYER-1"])
    make_drug("J1745", rxnorm=["310994"])
    drug = make_drug("Q5103", name="Inflectra", generic="infliximab-dyyb",
                     biosimilar_of="J1745")
    drug.packages[0].ndc = "00069-0809-01"
    make_policy("ACME/infliximab", payer=payer, effective_from=dt.date(2026, 1, 1),
                source="https://example.org/acme/infliximab.pdf")
    patient = make_patient("1032702")
    auth = make_authorization("A-77", patient=patient, payer=payer,
                              valid_from=dt.date(2026, 1, 1), valid_to=dt.date(2026, 12, 31))
    return {"payer": payer, "patient": patient, "authorization": auth}


def medication_request(rxnorm: str = "310994", *, mg_per_kg: float | None = 5,
                       diagnosis: str | None = "M05.79", start: str = "2026-03-10",
                       resource_id: str = "mr-1") -> dict[str, Any]:
    """A draft MedicationRequest for infliximab as an EHR writes one."""
    order: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": resource_id, "status": "draft",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": rxnorm,
                                                  "display": "infliximab 100 MG Injection"}]},
        "subject": {"reference": "Patient/123"},
        "authoredOn": "2026-03-01",
        "dispenseRequest": {"validityPeriod": {"start": start}},
    }
    if mg_per_kg is not None:
        order["dosageInstruction"] = [{"doseAndRate": [{"doseQuantity": {
            "value": mg_per_kg, "unit": "mg/kg", "system": "http://unitsofmeasure.org",
            "code": "mg/kg"}}]}]
    if diagnosis:
        order["reasonCode"] = [{"coding": [{"system": ICD10, "code": diagnosis}]}]
    return order


def payer_organization(value: str = "ACME-PAYER-1") -> dict[str, Any]:
    """The payer Organization a Coverage's payor points at."""
    return {"resourceType": "Organization", "id": "acme-payer", "name": "Acme Health Plan",
            "identifier": [{"system": PAYER_ID_SYSTEM, "value": value}]}


def order_sign_call(*orders: dict[str, Any], organization: dict[str, Any] | None = None,
                    configuration: dict[str, Any] | None = None) -> dict[str, Any]:
    """The guide's order-sign example with our orders and the payer Organization in prefetch.

    Prefetch keys are renamed on purpose: resources are found by type, not by key.
    """
    body = copy.deepcopy(fixture("CRDServiceRequest.json"))
    body["context"]["draftOrders"]["entry"] = [
        {"fullUrl": f"http://example.org/someEHR/fhir/{o['resourceType']}/{o['id']}",
         "resource": o} for o in orders]
    prefetch = body.pop("prefetch")
    body["prefetch"] = {
        "pt": prefetch["patient"],
        "cov": prefetch["coverage"],
        "payers": {"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": organization or payer_organization()}]},
        "people": prefetch["practitioners"],
        "places": {"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "Location", "id": "infusion-suite",
                          "type": [{"coding": [{"system": POS, "code": "11"}]}]}}]},
    }
    if configuration is not None:
        body["extension"] = {"davinci-crd.configuration": configuration}
    return body


def appointment_book_call(order: dict[str, Any] | None = None) -> dict[str, Any]:
    """The order-sign example turned into an appointment booked for its order (by default the
    infliximab MedicationRequest)."""
    request = order_sign_call(order or medication_request())
    order = request["context"].pop("draftOrders")["entry"][0]["resource"]
    request["hook"] = "appointment-book"
    request["prefetch"]["orders"] = {"resourceType": "Bundle", "type": "searchset",
                                     "entry": [{"resource": order}]}
    request["context"]["appointments"] = {"resourceType": "Bundle", "type": "collection",
                                          "entry": [{"resource": {
        "resourceType": "Appointment", "id": "apt-1", "status": "proposed",
        "start": "2026-03-10T09:00:00Z", "end": "2026-03-10T12:00:00Z",
        "basedOn": [{"reference": f"{order['resourceType']}/{order['id']}"}],
        "participant": [{"actor": {"reference": "Patient/123"}, "status": "accepted"}]}}]}
    return request
