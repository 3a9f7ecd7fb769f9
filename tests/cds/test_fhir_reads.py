"""No prefetch: what is needed is read from fhirServer, only from a base configured for the EHR.

The EHR's FHIR server is a small stub on 127.0.0.1 serving a few resources; it records every
request so the tests can tell what was (and was not) read.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.cds.conftest import MRN_SYSTEM, fixture, payer_organization, write_clients

PATIENT = {"resourceType": "Patient", "id": "123", "birthDate": "1987-02-20",
           "identifier": [{"system": MRN_SYSTEM, "value": "1032702"}]}
COVERAGE = {"resourceType": "Coverage", "id": "COV9", "status": "active",
            "beneficiary": {"reference": "Patient/123"},
            "payor": [{"reference": "Organization/acme-payer"}]}
ORDER = {"resourceType": "ServiceRequest", "id": "sr-9", "status": "active",
         "intent": "order", "subject": {"reference": "Patient/123"},
         "code": {"coding": [{"system": "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                              "code": "J1745"}]},
         "quantityQuantity": {"value": 400, "unit": "mg", "code": "mg"},
         "locationCode": [{"coding": [{
             "system": "https://www.cms.gov/Medicare/Coding/place-of-service-codes/"
                       "Place_of_Service_Code_Set", "code": "11"}]}],
         "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                     "code": "M05.79"}]}]}
RESOURCES = {"/fhir/Patient/123": PATIENT, "/fhir/ServiceRequest/sr-9": ORDER,
             "/fhir/Organization/acme-payer": payer_organization()}


class FhirStub(BaseHTTPRequestHandler):
    """Answers reads and the Coverage search; records the path and token of every request."""

    seen: list[tuple[str, str | None]] = []
    delay_seconds = 0.0
    redirect_to: str | None = None
    extra: dict[str, dict[str, Any]] = {}  # more resources, for one test

    def do_GET(self) -> None:  # noqa: N802 - the http.server hook name
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        time.sleep(type(self).delay_seconds)
        if type(self).redirect_to:
            self.send_response(302)
            self.send_header("Location", type(self).redirect_to + self.path)
            self.end_headers()
            return
        path = self.path.split("?")[0]
        if path == "/fhir/Coverage":
            body = {"resourceType": "Bundle", "type": "searchset",
                    "entry": [{"resource": COVERAGE}]}
        elif path in RESOURCES or path in type(self).extra:
            body = RESOURCES.get(path) or type(self).extra[path]
        else:
            self.send_response(404)
            self.end_headers()
            return
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: Any) -> None:
        """Quiet: the test output is not a server log."""


@pytest.fixture
def fhir_server() -> Iterator[str]:
    """A FHIR stub on a free loopback port; stopped after the test."""
    FhirStub.seen = []
    FhirStub.delay_seconds = 0.0
    FhirStub.redirect_to = None
    FhirStub.extra = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), FhirStub)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/fhir"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def appointment_call(fhir_base: str) -> dict[str, Any]:
    """The guide's appointment-book example (no prefetch), based on order sr-9 at our stub."""
    body = copy.deepcopy(fixture("CRDServiceRequest4.json"))
    body["fhirServer"] = fhir_base
    appointment = body["context"]["appointments"]["entry"][0]["resource"]
    appointment["basedOn"] = [{"reference": "ServiceRequest/sr-9"}]
    appointment["start"] = "2026-03-10T09:00:00Z"
    appointment["end"] = "2026-03-10T12:00:00Z"
    return body


@pytest.fixture
def trusted_base(fhir_server: str, cds_config: Path, ehr_keys: dict[str, Any]) -> str:
    """The stub's base, configured as a FHIR server of the test EHR."""
    write_clients(cds_config, ehr_keys["jwks"], fhir_servers=[fhir_server])
    return fhir_server


def test_missing_resources_are_read_with_the_ehrs_token(
        call: Callable[..., Any], world: dict[str, Any], trusted_base: str) -> None:
    reply = call("appointment-book", appointment_call(trusted_base))
    assert reply.status_code == 200, reply.get_json()
    [action] = reply.get_json()["systemActions"]
    extension = action["resource"]["extension"][-1]["extension"]
    assert {"url": "pa-needed", "valueCode": "satisfied"} in extension
    assert {"url": "coverage", "valueReference": {"reference": "Coverage/COV9"}} in extension
    paths = [path for path, _token in FhirStub.seen]
    assert "/fhir/Patient/123" in paths and "/fhir/ServiceRequest/sr-9" in paths
    assert any(p.startswith("/fhir/Coverage?") and "patient=123" in p for p in paths)
    assert {token for _path, token in FhirStub.seen} == {"Bearer some-opaque-fhir-access-token"}


def test_a_fhir_server_not_configured_for_the_client_is_never_contacted(
        call: Callable[..., Any], world: dict[str, Any], fhir_server: str,
        cds_config: Path) -> None:
    reply = call("appointment-book", appointment_call(fhir_server))
    assert reply.status_code == 200
    assert FhirStub.seen == []
    [card] = reply.get_json()["cards"]
    assert card["indicator"] == "info"
    assert "not readable from fhirServer" in card["detail"]


def test_a_slow_fhir_server_is_given_two_seconds_in_all(
        call: Callable[..., Any], world: dict[str, Any], trusted_base: str) -> None:
    FhirStub.delay_seconds = 3.0
    started = time.monotonic()
    reply = call("appointment-book", appointment_call(trusted_base))
    elapsed = time.monotonic() - started
    assert reply.status_code == 200
    assert elapsed < 3.0
    assert reply.get_json()["cards"][0]["indicator"] == "info"


def test_a_redirect_away_from_the_configured_base_is_not_followed(
        call: Callable[..., Any], world: dict[str, Any], trusted_base: str) -> None:
    FhirStub.redirect_to = "http://127.0.0.2:9"
    reply = call("appointment-book", appointment_call(trusted_base))
    assert reply.status_code == 200
    assert reply.get_json()["cards"][0]["indicator"] == "info"


NURSE_ROLE = {"resourceType": "PractitionerRole", "id": "987",
              "practitioner": {"reference": "Practitioner/nurse-9"}}
NURSE = {"resourceType": "Practitioner", "id": "nurse-9",
         "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1679576722"}]}


def _practitioner_reads() -> list[str]:
    return [path for path, _token in FhirStub.seen if path.startswith("/fhir/Practitioner")]


def test_the_booked_practitioner_is_read_when_prefetch_lacks_it(
        call: Callable[..., Any], world: dict[str, Any], trusted_base: str) -> None:
    # The guide's appointment names PractitionerRole/987: read it, then its Practitioner.
    FhirStub.extra = {"/fhir/PractitionerRole/987": NURSE_ROLE,
                      "/fhir/Practitioner/nurse-9": NURSE}
    reply = call("appointment-book", appointment_call(trusted_base))
    assert reply.status_code == 200
    [card] = reply.get_json()["cards"]
    assert "rendering NPI 1679576722 is not a provider on file" in card["detail"]
    assert _practitioner_reads() == ["/fhir/PractitionerRole/987", "/fhir/Practitioner/nurse-9"]


def test_a_prefetched_practitioner_is_not_read_again(
        call: Callable[..., Any], world: dict[str, Any], trusted_base: str) -> None:
    FhirStub.extra = {"/fhir/PractitionerRole/987": NURSE_ROLE,
                      "/fhir/Practitioner/nurse-9": NURSE}
    body = appointment_call(trusted_base)
    body["prefetch"] = {"practitionerRoles": {"resourceType": "Bundle", "type": "searchset",
                                              "entry": [{"resource": NURSE_ROLE}]},
                        "practitioners": {"resourceType": "Bundle", "type": "searchset",
                                          "entry": [{"resource": NURSE}]}}
    reply = call("appointment-book", body)
    assert "rendering NPI 1679576722" in reply.get_json()["cards"][0]["detail"]
    assert _practitioner_reads() == []


def test_a_practitioner_the_ehr_cannot_serve_is_asked_for_once(
        call: Callable[..., Any], world: dict[str, Any], trusted_base: str) -> None:
    body = appointment_call(trusted_base)
    appointments = body["context"]["appointments"]["entry"]
    appointments += [copy.deepcopy(appointments[0]) for _ in range(3)]
    for number, entry in enumerate(appointments):
        entry["resource"]["id"] = f"apt-{number}"
    reply = call("appointment-book", body)
    assert reply.status_code == 200
    assert {action["resource"]["id"] for action in reply.get_json()["systemActions"]} == {
        "apt-0", "apt-1", "apt-2", "apt-3"}
    assert _practitioner_reads() == ["/fhir/PractitionerRole/987"]
