"""Users, roles and API tokens (stored hashed, revocable)."""

from __future__ import annotations

import datetime as dt

from flask_security import RoleMixin, UserMixin
from sqlalchemy import Column, ForeignKey, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from policy_service.extensions import db

ROLES = {
    "admin": "Everything, including users",
    "coordinator": "Edits payers, drugs, policies, patients and authorizations",
    "scheduler": "Reads; runs eligibility checks; keeps the schedule of appointments",
    "biller": "Reads; runs claim checks and records authorization use",
}

roles_users = Table(
    "roles_users",
    db.metadata,
    Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("role_id", ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
)


class Role(db.Model, RoleMixin):
    """A role a user holds; its name is one of ``ROLES``."""

    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))

    def __str__(self) -> str:
        return self.name


class User(db.Model, UserMixin):
    """A person who signs in to the admin or holds API tokens."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    fs_uniquifier: Mapped[str] = mapped_column(String(64), unique=True)
    confirmed_at: Mapped[dt.datetime | None]

    roles: Mapped[list[Role]] = relationship(secondary=roles_users, lazy="selectin")
    tokens: Mapped[list[ApiToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )

    def __str__(self) -> str:
        return self.email


class ApiToken(db.Model):
    """An API token; only its SHA-256 digest is stored, so a leaked database leaks no token."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, shown in listings so people can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[dt.datetime]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class LoginFailure(db.Model):
    """One failed sign-in, kept for the rate-limit window so every worker process counts it."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of email and address: who tried is not kept in the clear.
    key_digest: Mapped[str] = mapped_column(String(64), index=True)
    # Seconds since the epoch.
    at: Mapped[float]
