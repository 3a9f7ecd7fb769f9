"""Change history and the policy revision counter that invalidates in-memory caches."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from policy_service.extensions import db


class ChangeRecord(db.Model):
    """Who changed which record, when, and its values before and after."""

    __tablename__ = "change_records"
    __table_args__ = (Index("ix_change_records_entity", "entity_type", "entity_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(10))
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_key: Mapped[str] = mapped_column(String(200))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    def changed_fields(self) -> list[str]:
        """Return the names of the fields whose value differs between before and after."""
        before, after = self.before or {}, self.after or {}
        return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


class Revision(db.Model):
    """A marker changed to a new random value whenever policy data changes.

    Caches compare against it. Random rather than incrementing, so a rolled-back change can
    never make two different states share one value.
    """

    __tablename__ = "revisions"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
