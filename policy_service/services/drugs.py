"""Drugs: what the admin's drug form asks before it writes (the import upserts by HCPCS)."""

from __future__ import annotations

from sqlalchemy import select

from policy_service.extensions import db
from policy_service.models import Drug


def hcpcs_taken_errors(hcpcs: str, drug: Drug | None = None) -> dict[str, list[str]]:
    """``{"hcpcs": [why]}`` when a drug other than ``drug`` has the code ``hcpcs`` (stored
    upper-case, so ``j1745`` is J1745), else nothing."""
    code = hcpcs.strip().upper()
    others = select(Drug.id).where(Drug.hcpcs == code)
    if drug is not None and drug.id is not None:
        others = others.where(Drug.id != drug.id)
    if db.session.scalar(others) is None:
        return {}
    return {"hcpcs": [f"Another drug already has the HCPCS code {code}: edit that drug, or "
                      "type a different code."]}
