"""CDS Hooks: the JWT ids already accepted, so a replayed token is refused on every host."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from policy_service.extensions import db


class CdsTokenUse(db.Model):
    """One accepted CDS Hooks JWT, kept until it expires; its ``jti`` may never come again."""

    __tablename__ = "cds_token_uses"

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of issuer and jti: one issuer's ids cannot collide with another's.
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)
