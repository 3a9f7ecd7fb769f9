"""Payers as others name them: the payer ids on X12 files and CDS Hooks Coverage payors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select

from policy_service.domain.codes import external_id_key
from policy_service.extensions import db
from policy_service.models import Payer
from policy_service.services.policy_index import index_cache

__all__ = ["code_errors", "external_id_conflicts", "external_id_key",
           "find_payer_by_external_id"]


def code_errors(code: str, payer: Payer | None = None) -> dict[str, list[str]]:
    """``{"code": [why]}`` when a payer other than ``payer`` has ``code``, else nothing."""
    others = select(Payer.id).where(Payer.code == code)
    if payer is not None and payer.id is not None:
        others = others.where(Payer.id != payer.id)
    if db.session.scalar(others) is None:
        return {}
    return {"code": [f"Another payer already has the code {code}: type a different one, "
                     "or edit that payer."]}


def find_payer_by_external_id(value: str) -> Payer | None:
    """Return the payer whose id or one of whose ``external_ids`` is ``value``, else None.

    Our own payer id wins over an external id, so files written with internal ids still match.
    """
    key = external_id_key(value)
    if not key:
        return None
    own = db.session.scalar(select(Payer).where(Payer.code == value.strip()))
    if own is not None:
        return own
    # A JSON list cannot be indexed on both SQLite and PostgreSQL: the policy index keys the
    # payers by external id (payers are policy data, so an edit rebuilds it).
    code = index_cache.current().payer_codes_by_external_id.get(key)
    return db.session.scalar(select(Payer).where(Payer.code == code)) if code else None


def external_id_conflicts(wanted: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """Return, per payer id in ``wanted``, each external id another payer already holds.

    ``wanted`` maps payer ids to the external ids they are about to have; the other payers are
    the stored ones (with their stored ids unless ``wanted`` replaces them) and the rest of
    ``wanted``.
    """
    holders: dict[str, set[str]] = {}
    for payer in db.session.scalars(select(Payer).order_by(Payer.code)):
        if payer.code not in wanted:
            for item in payer.external_ids or []:
                holders.setdefault(external_id_key(item), set()).add(payer.code)
    for code, items in wanted.items():
        for item in items:
            holders.setdefault(external_id_key(item), set()).add(code)
    conflicts: dict[str, list[str]] = {}
    for code, items in wanted.items():
        for item in items:
            others = sorted(holders[external_id_key(item)] - {code})
            if others:
                conflicts.setdefault(code, []).append(
                    f"{item!r} already names payer {', '.join(others)}; an external id names "
                    "one payer.")
    return conflicts
