"""The FHIR R4 resources a hook call carries: found by type in prefetch, else read from the EHR.

Prefetch keys are the EHR's to name (CDS Hooks: services SHOULD NOT rely on them), so every
prefetched resource, or every entry of a prefetched Bundle, is filed by its resource type.
What is missing may be read from the call's ``fhirServer`` with its ``fhirAuthorization``, but
only when that base is configured for the calling client: no other address is ever contacted.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

from policy_service.logging import get_logger

# The resource types coverage is decided from; others in prefetch are not parsed at all.
USED_TYPES = frozenset({"Patient", "Coverage", "Organization", "ServiceRequest",
                        "MedicationRequest", "Medication", "Appointment", "Location",
                        "Practitioner", "PractitionerRole"})
# Read only for the prescriber's and rendering provider's NPIs, which a call may lack: one
# that is not valid R4 is left out (as if not sent) rather than refusing the whole call. Only
# the elements read are validated: names, addresses and their extensions were most of the
# cost of parsing a prefetched Practitioner.
OPTIONAL_TYPES_READ = {"Practitioner": ("resourceType", "id", "identifier"),
                       "PractitionerRole": ("resourceType", "id", "identifier", "practitioner")}
IDENTIFIER_ELEMENTS_READ = ("system", "value", "use")
ORDER_TYPES = ("ServiceRequest", "MedicationRequest")
READ_TIMEOUT_SECONDS = 2.0
MAX_RESPONSE_BYTES = 2_000_000
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

log = get_logger("cds")


class MalformedFhir(Exception):
    """A resource in the call is not valid FHIR R4; ``where`` names it."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error.get("loc", ()))
    return f"{location}: {error.get('msg', 'invalid')}" if location else error.get("msg", "")


def parse_resource(data: Any, where: str) -> FHIRAbstractModel:
    """Return ``data`` parsed as the FHIR R4 resource its ``resourceType`` names."""
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise MalformedFhir(where, "not a FHIR resource (no resourceType)")
    try:
        model = get_fhir_model_class(data["resourceType"])
    except ValueError as exc:
        raise MalformedFhir(where, f"unknown resource type {data['resourceType']!r}") from exc
    if data["resourceType"] == "Bundle":
        # fhir.resources fails with a bare KeyError on an entry of an unknown type: name it.
        for position, entry in enumerate(data.get("entry") or ()):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict):
                parse_resource_type(resource.get("resourceType"),
                                    f"{where}.entry[{position}].resource")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise MalformedFhir(where, _first_error(exc)) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedFhir(where, "not a valid R4 resource") from exc


def parse_resource_type(name: Any, where: str) -> None:
    """Raise MalformedFhir unless ``name`` is an R4 resource type."""
    try:
        get_fhir_model_class(str(name))
    except ValueError as exc:
        raise MalformedFhir(where, f"unknown resource type {name!r}") from exc


def reference_key(reference: str | None) -> tuple[str, str] | None:
    """Return (type, id) of a literal reference, absolute or relative, else None."""
    if not reference:
        return None
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) < 2 or not FHIR_ID.match(parts[-1]):
        return None
    return parts[-2], parts[-1]


@dataclass
class FhirReader:
    """Reads single resources and searches from one configured FHIR base, within a deadline."""

    base: str
    access_token: str | None
    deadline: float = field(default_factory=lambda: time.monotonic() + READ_TIMEOUT_SECONDS)

    def _get(self, path: str) -> dict[str, Any] | None:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return None
        request = urllib.request.Request(  # noqa: S310 - the base is a configured https/http URL
            f"{self.base.rstrip('/')}/{path}", headers={"Accept": "application/fhir+json"})
        if self.access_token:
            request.add_header("Authorization", f"Bearer {self.access_token}")
        try:
            with _NO_REDIRECTS.open(request, timeout=min(remaining, READ_TIMEOUT_SECONDS)) as reply:
                body = reply.read(MAX_RESPONSE_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # The resource type only: a path's id may be the EHR's patient id.
            log.info("cds_fhir_read_failed", resource_type=path.split("/")[0].split("?")[0],
                     error=type(exc).__name__)
            return None
        if len(body) > MAX_RESPONSE_BYTES:
            return None
        try:
            document = json.loads(body)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """Return the resource ``resource_type/resource_id``, or None if it cannot be read."""
        if not FHIR_ID.match(resource_id):
            return None
        return self._get(f"{resource_type}/{resource_id}")

    def search(self, resource_type: str, params: dict[str, str]) -> dict[str, Any] | None:
        """Return the searchset Bundle of a search, or None if it cannot be read."""
        return self._get(f"{resource_type}?{urllib.parse.urlencode(params)}")


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would leave the configured base: treat it as a failed read."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_NO_REDIRECTS = urllib.request.build_opener(_RefuseRedirects())


def _elements_read(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without what is never read here: the narrative (for people; its XHTML is the
    costliest to check) and, of an optional type, every element but those read."""
    elements = OPTIONAL_TYPES_READ.get(data["resourceType"])
    if elements is None:
        return {k: v for k, v in data.items() if k != "text"}
    part = {k: data[k] for k in elements if k in data}
    identifiers = part.get("identifier")
    if isinstance(identifiers, list):
        part["identifier"] = [
            {k: v for k, v in identifier.items() if k in IDENTIFIER_ELEMENTS_READ}
            if isinstance(identifier, dict) else identifier for identifier in identifiers]
    return part


@dataclass
class Resources:
    """The call's resources of the types we use, by type and by (type, id)."""

    by_type: dict[str, list[FHIRAbstractModel]] = field(default_factory=lambda: defaultdict(list))
    by_key: dict[tuple[str, str], FHIRAbstractModel] = field(default_factory=dict)
    # References the EHR could not serve in this call: asked once, not once per order.
    unreadable: set[tuple[str, str]] = field(default_factory=set)

    def add(self, data: Any, where: str) -> None:
        """Parse and file ``data`` (a resource or a Bundle of them) if it is of a used type."""
        if not isinstance(data, dict):
            return
        if data.get("resourceType") == "Bundle":
            entries = data.get("entry")
            if not isinstance(entries, list):
                return
            for position, entry in enumerate(entries):
                if isinstance(entry, dict):
                    self.add(entry.get("resource"), f"{where}.entry[{position}].resource")
            return
        if data.get("resourceType") not in USED_TYPES:
            return
        try:
            resource = parse_resource(_elements_read(data), where)
        except MalformedFhir as exc:
            if data["resourceType"] not in OPTIONAL_TYPES_READ:
                raise
            log.info("cds_resource_skipped", resource_type=data["resourceType"],
                     problem=exc.problem[:200])
            return
        if resource.id and (resource.get_resource_type(), resource.id) in self.by_key:
            return
        self.by_type[resource.get_resource_type()].append(resource)
        if resource.id:
            self.by_key[(resource.get_resource_type(), resource.id)] = resource

    def first(self, resource_type: str) -> FHIRAbstractModel | None:
        """Return the first resource of ``resource_type``, if any."""
        found = self.by_type.get(resource_type)
        return found[0] if found else None

    def resolve(self, reference: str | None, reader: FhirReader | None = None,
                ) -> FHIRAbstractModel | None:
        """Return the referenced resource: from the call, else read from the EHR if allowed."""
        key = reference_key(reference)
        if key is None:
            return None
        if key in self.by_key:
            return self.by_key[key]
        if reader is None or key[0] not in USED_TYPES or key in self.unreadable:
            return None
        data = reader.read(*key)
        if data is None or data.get("resourceType") != key[0]:
            self.unreadable.add(key)
            return None
        try:
            self.add(data, f"{reader.base}/{key[0]}/{key[1]}")
        except MalformedFhir:
            self.unreadable.add(key)
            return None
        found = self.by_key.get(key)
        if found is None:
            self.unreadable.add(key)
        return found
