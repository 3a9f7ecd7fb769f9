"""The one write path for providers and their payer enrollments; reads for the API and checks.

The bundle import and the admin views call ``provider_errors`` and ``save_provider``, so an
invalid NPI, an unknown payer or two overlapping enrollments with one payer are refused the
same way whichever way a provider is written. Values arrive in bundle shape
(``{"npi", "name", "specialty", "enrollments": [{"payer", "effective_from", "effective_to"}]}``,
as ``ProviderSchema`` loads them). Functions flush at most; the caller commits once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from policy_service.domain.fields import ENROLLMENT_ATTRS, PROVIDER_ATTRS, apply_values
from policy_service.errors import Invalid, NotFound
from policy_service.extensions import db
from policy_service.models import Payer, Provider, ProviderEnrollment
from policy_service.schemas.bundle import (
    Messages,
    normalise_specialty,
    validate_provider_fields,
)

REQUIRED_ON_CREATE = ("name",)


def unknown_payer_errors(entry: Mapping[str, Any], known_payers: Iterable[str]) -> Messages:
    """Return an error on each enrollment whose payer is not known."""
    known = set(known_payers)
    problems = {position: {"payer": [f"Unknown payer {row['payer']!r}: not in this bundle "
                                     "or the database."]}
                for position, row in enumerate(entry.get("enrollments") or [])
                if isinstance(row, Mapping) and isinstance(row.get("payer"), str)
                and row["payer"] not in known}
    return {"enrollments": problems} if problems else {}


def provider_errors(entry: Mapping[str, Any], known_payers: Iterable[str],
                    creating: bool) -> Messages:
    """Every rule a provider must meet before it is written, as ``{field: messages}``."""
    errors = validate_provider_fields(entry)
    for position, row_errors in unknown_payer_errors(entry, known_payers).get(
            "enrollments", {}).items():
        target = errors.setdefault("enrollments", {}).setdefault(position, {})
        for name, messages in row_errors.items():
            target.setdefault(name, []).extend(messages)
    if creating:
        for name in REQUIRED_ON_CREATE:
            if not entry.get(name):
                errors.setdefault(name, []).append(
                    f"Required to create provider {entry.get('npi')!r}.")
    return errors


def stored_payers(codes: Iterable[str]) -> dict[str, Payer]:
    """The stored payers among ``codes``, by code (one query)."""
    wanted = set(codes)
    if not wanted:
        return {}
    return {p.code: p for p in db.session.scalars(select(Payer).where(Payer.code.in_(wanted)))}


def enrollment_payer_codes(entry: Mapping[str, Any]) -> set[str]:
    """The payer codes a provider's enrollments name."""
    return {row["payer"] for row in entry.get("enrollments") or []
            if isinstance(row, Mapping) and isinstance(row.get("payer"), str)}


def _enrollment_rows(entry: Mapping[str, Any], payers: Mapping[str, Payer]
                     ) -> list[dict[str, Any]]:
    return [{"payer": payers[row["payer"]], "effective_from": row["effective_from"],
             "effective_to": row.get("effective_to")}
            for row in entry.get("enrollments") or []]


def _sync_enrollments(provider: Provider, rows: list[dict[str, Any]]) -> bool:
    """Make the provider's enrollments exactly ``rows``, updating rows in place by position."""
    changed = False
    for position, values in enumerate(rows):
        if position < len(provider.enrollments):
            row = provider.enrollments[position]
            changed |= apply_values(row, {name: values[name] for name in ENROLLMENT_ATTRS})
            if row.payer is not values["payer"]:
                row.payer = values["payer"]
                changed = True
        else:
            provider.enrollments.append(ProviderEnrollment(position=position, **values))
            changed = True
    while len(provider.enrollments) > len(rows):
        provider.enrollments.pop()
        changed = True
    return changed


def find_provider(npi: str) -> Provider | None:
    """The stored provider with this NPI, with its enrollments, or None."""
    return db.session.scalar(select(Provider).where(Provider.npi == npi)
                             .options(selectinload(Provider.enrollments)
                                      .selectinload(ProviderEnrollment.payer)))


def npi_errors(npi: str, provider: Provider | None = None) -> dict[str, list[str]]:
    """``{"npi": [why]}`` when a provider other than ``provider`` has ``npi``, else nothing.

    The import updates the provider an NPI names; a form that adds or renames one asks this
    first, so it never overwrites another provider.
    """
    others = select(Provider.id).where(Provider.npi == npi)
    if provider is not None and provider.id is not None:
        others = others.where(Provider.id != provider.id)
    if db.session.scalar(others) is None:
        return {}
    return {"npi": [f"Another provider already has the NPI {npi}: edit that provider, or "
                    "check the number."]}


def save_provider(entry: Mapping[str, Any], payers: Mapping[str, Payer] | None = None,
                  stored: Provider | None = None) -> tuple[Provider, bool, bool]:
    """Create or update the provider ``entry`` names by NPI; return it, created?, changed?.

    ``payers`` may hold the payers already looked up (an import passes its own, new ones
    included); any others are read. Raises Invalid naming every bad field; nothing is written
    then.
    """
    npi = entry.get("npi")
    provider = stored if stored is not None else (
        find_provider(npi) if isinstance(npi, str) else None)
    payers = dict(payers or {})
    missing = enrollment_payer_codes(entry) - set(payers)
    payers.update(stored_payers(missing))
    errors = provider_errors(entry, payers, creating=provider is None)
    if errors:
        raise Invalid(errors)
    values = {name: entry[name] for name in PROVIDER_ATTRS if name in entry}
    if isinstance(values.get("specialty"), str):
        values["specialty"] = normalise_specialty(values["specialty"]) or None
    created = provider is None
    if provider is None:
        provider = Provider(npi=npi, **{"specialty": None, **values})
        db.session.add(provider)
        changed = True
    else:
        if stored is not None and npi != provider.npi:
            changed = apply_values(provider, {"npi": npi})
        else:
            changed = False
        changed |= apply_values(provider, values)
    if "enrollments" in entry:
        changed |= _sync_enrollments(provider, _enrollment_rows(entry, payers))
    db.session.flush()
    return provider, created, changed


def delete_provider(provider: Provider) -> None:
    """Delete a provider and its enrollments (recorded in the change history); flush only."""
    db.session.delete(provider)
    db.session.flush()


def provider_record(provider: Provider) -> dict[str, Any]:
    """Return a provider as a raw bundle record (dump it with ProviderSchema)."""
    return {"npi": provider.npi, "name": provider.name, "specialty": provider.specialty,
            "enrollments": [{"payer": e.payer.code, "effective_from": e.effective_from,
                             "effective_to": e.effective_to}
                            for e in sorted(provider.enrollments, key=lambda e: e.position)]}


def provider_query() -> Select[Any]:
    """Every provider in NPI order, enrollments and their payers loaded."""
    return (select(Provider).order_by(Provider.npi)
            .options(selectinload(Provider.enrollments).selectinload(ProviderEnrollment.payer)))


def get_provider(npi: str) -> Provider:
    """The provider with this NPI; NotFound otherwise."""
    provider = find_provider(npi)
    if provider is None:
        raise NotFound(f"No provider {npi}.")
    return provider
