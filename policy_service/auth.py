"""Roles, permissions and API-token authentication."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from email_validator import EmailNotValidError, validate_email
from flask import Flask, Request, g, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_principal import AnonymousIdentity
from flask_security import hash_password
from sqlalchemy import bindparam, func, select

from policy_service.database import PreparedRead
from policy_service.errors import Conflict, Forbidden, Invalid, NotFound, Unauthorized
from policy_service.extensions import db
from policy_service.models import ROLES, ApiToken, Role, User
from policy_service.models.users import roles_users

TOKEN_PREFIX = "ps_"  # noqa: S105 - a public marker, not a secret


class Permission(enum.Enum):
    """What a role may do; routes and admin views ask for a permission, never a role name."""

    READ = "read"
    EDIT_POLICY_DATA = "edit_policy_data"
    CHECK_ELIGIBILITY = "check_eligibility"
    CHECK_CLAIMS = "check_claims"
    RECORD_USAGE = "record_usage"
    WRITE_APPOINTMENTS = "write_appointments"
    MANAGE_USERS = "manage_users"
    IMPORT_REMITTANCES = "import_remittances"
    READ_DENIALS = "read_denials"
    # Create authorizations and move them along the payer's process (schedulers and billers
    # read the queue but do not change authorizations; billers record use with RECORD_USAGE).
    EDIT_AUTHORIZATIONS = "edit_authorizations"


ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "coordinator": frozenset({Permission.READ, Permission.EDIT_POLICY_DATA,
                              Permission.CHECK_ELIGIBILITY, Permission.WRITE_APPOINTMENTS,
                              Permission.READ_DENIALS, Permission.EDIT_AUTHORIZATIONS}),
    "scheduler": frozenset({Permission.READ, Permission.CHECK_ELIGIBILITY,
                            Permission.WRITE_APPOINTMENTS}),
    "biller": frozenset({Permission.READ, Permission.CHECK_CLAIMS, Permission.RECORD_USAGE,
                         Permission.IMPORT_REMITTANCES, Permission.READ_DENIALS}),
}


def permissions_for(role_names: Iterable[str]) -> frozenset[Permission]:
    """Return every permission these roles grant together."""
    granted: set[Permission] = set()
    for name in role_names:
        granted |= ROLE_PERMISSIONS.get(name, frozenset())
    return frozenset(granted)


def user_permissions(user: Any) -> frozenset[Permission]:
    """Return every permission the user's roles grant."""
    if user is None or not getattr(user, "is_active", False):
        return frozenset()
    return permissions_for(role.name for role in user.roles)


def has_permission(user: Any, permission: Permission) -> bool:
    """Return whether ``user`` holds ``permission``."""
    return permission in user_permissions(user)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def ensure_roles() -> None:
    """Create the fixed roles if they are missing."""
    existing = set(db.session.scalars(select(Role.name)))
    for name, description in ROLES.items():
        if name not in existing:
            db.session.add(Role(name=name, description=description))
    db.session.flush()


def is_email_address(email: str) -> bool:
    """Whether ``email`` is a well-formed address (syntax only: no mail is sent or looked up)."""
    try:
        validated = validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return False
    return validated.normalized.lower() == email


def create_user(email: str, role: str, password: str | None = None) -> User:
    """Create a user with one role; raise Invalid on a bad email, role or password."""
    email = email.strip().lower()
    errors: dict[str, list[str]] = {}
    if not is_email_address(email):
        errors["email"] = [f"{email!r} is not an email address."]
    if role not in ROLES:
        errors["role"] = [f"Unknown role {role!r}; choose one of {', '.join(ROLES)}."]
    if password is not None and len(password) < 10:
        errors["password"] = ["Use at least 10 characters."]
    if not errors and db.session.scalar(select(User.id).where(User.email == email)):
        errors["email"] = [f"A user {email} already exists."]
    if errors:
        raise Invalid(errors)
    ensure_roles()
    role_row = db.session.scalar(select(Role).where(Role.name == role))
    user = User(
        email=email,
        password=hash_password(password) if password else None,
        active=True,
        fs_uniquifier=uuid.uuid4().hex,
        roles=[role_row],
    )
    db.session.add(user)
    db.session.flush()
    return user


def find_user(email: str) -> User:
    """Return the user with this email or raise NotFound."""
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        raise NotFound(f"No user {email}.")
    return user


def create_token(user: User) -> str:
    """Issue a new API token for ``user`` and return it; only its digest is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db.session.add(ApiToken(user=user, digest=_digest(token), prefix=token[:10],
                            created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
    db.session.flush()
    return token


def revoke_token(prefix_or_token: str) -> int:
    """Revoke every live token matching a full token or its shown prefix; return how many."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    query = select(ApiToken).where(ApiToken.revoked_at.is_(None))
    if prefix_or_token.startswith(TOKEN_PREFIX) and len(prefix_or_token) > 12:
        query = query.where(ApiToken.digest == _digest(prefix_or_token))
    else:
        query = query.where(ApiToken.prefix == prefix_or_token)
    tokens = list(db.session.scalars(query))
    for token in tokens:
        token.revoked_at = now
    db.session.flush()
    return len(tokens)


@dataclass(frozen=True)
class TokenUser:
    """Who sent an API request: the owner of its token, with what their roles allow.

    Plain values, not an ORM ``User``: every API call needs only these, and loading a user
    with its roles into the session cost a third of a plain read.
    """

    id: int
    email: str
    permissions: frozenset[Permission]


# One query for token, user and role names (one row per role), run as a prepared read on
# every API call. Revoked tokens and deactivated users find no row.
_LIVE_TOKEN = PreparedRead(
    select(User.id, User.email, Role.name)
    .select_from(ApiToken)
    .join(User, User.id == ApiToken.user_id)
    .outerjoin(roles_users, roles_users.c.user_id == User.id)
    .outerjoin(Role, Role.id == roles_users.c.role_id)
    .where(ApiToken.digest == bindparam("digest"), ApiToken.revoked_at.is_(None),
           User.active.is_(True))
)


def user_for_token(token: str) -> TokenUser | None:
    """Return the active user owning a live token, or None."""
    rows = _LIVE_TOKEN.rows(digest=_digest(token))
    if not rows:
        return None
    user_id, email, _role = rows[0]
    return TokenUser(user_id, email, permissions_for(role for _, _, role in rows if role))


def bearer_token() -> str | None:
    """Return the token of the ``Authorization: Bearer`` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


F = TypeVar("F", bound=Callable[..., Any])


# --- token-authenticated paths: no cookie session, no browser user ------------------------

# Callers of these paths authenticate every call by its own token (API bearer tokens, CDS
# Hooks JWTs), never by a cookie. A session cookie sent along is ignored: the call gets no
# session and no signed-in browser user, so a signed-in browser cannot lend its login to an
# API call, and no call spends time loading one.
TOKEN_AUTHENTICATED_PATHS = ("/api/", "/cds-services")


def token_authenticated(path: str) -> bool:
    """Whether callers of ``path`` authenticate by token alone."""
    return path.startswith(TOKEN_AUTHENTICATED_PATHS)


class BrowserSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, for the browser pages only."""

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        """No session for token-authenticated paths (Flask then gives a read-only empty one)."""
        if token_authenticated(request.path):
            return None
        return super().open_session(app, request)


def init_token_authenticated_paths(app: Flask) -> None:
    """Serve token-authenticated paths without the browser's session and signed-in user.

    Flask-Security's identity loading (Flask-Principal, then Flask-Login's session, remember
    cookie and request loaders) runs before every request. On these paths the identity is the
    anonymous one, and Flask-Login's user is never loaded (with no session it could only be
    anonymous); the browser pages keep the loading, in the same place in the order.
    """
    app.session_interface = BrowserSessionInterface()
    principal = app.extensions["security"].principal
    before = app.before_request_funcs[None]
    position = before.index(principal._on_before_request)

    def load_browser_identity() -> None:
        if token_authenticated(request.path):
            g.identity = AnonymousIdentity()
            return
        principal._on_before_request()

    before[position] = load_browser_identity


def require_token(permission: Permission) -> None:
    """Authenticate this request's API token and check ``permission`` (401 / 403 otherwise)."""
    token = bearer_token()
    if token is None:
        raise Unauthorized("Send an API token: 'Authorization: Bearer <token>'.")
    user = user_for_token(token)
    if user is None:
        raise Unauthorized("The API token is unknown or revoked.")
    if permission not in user.permissions:
        raise Forbidden(f"Your role does not allow {permission.value.replace('_', ' ')}.")
    g.api_user = user


def token_required(permission: Permission) -> Callable[[F], F]:
    """Guard an API view: a valid token whose user holds ``permission`` (401 / 403 otherwise)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            require_token(permission)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


# --- user management (the admin's Users page) ---------------------------------------------


def live_token_counts() -> dict[int, int]:
    """Return ``{user id: number of unrevoked API tokens}`` for users holding any."""
    rows = db.session.execute(
        select(ApiToken.user_id, func.count(ApiToken.id))
        .where(ApiToken.revoked_at.is_(None))
        .group_by(ApiToken.user_id)
    )
    return {user_id: count for user_id, count in rows}


def get_user(user_id: int) -> User:
    """Return the user with this id or raise NotFound."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    return user


def _other_active_admins(user: User) -> int:
    return len(db.session.scalars(
        select(User.id).join(User.roles)
        .where(Role.name == "admin", User.active.is_(True), User.id != user.id)
    ).all())


def end_sessions(user: User) -> None:
    """End every signed-in session of ``user`` on every host (logout, deactivation, role change).

    Session and remember-me cookies name the user by ``fs_uniquifier``; a new one makes every
    cookie issued before unknown, wherever it was saved. API tokens are separate (revoke them).
    """
    user.fs_uniquifier = uuid.uuid4().hex
    db.session.flush()


def set_user_active(user: User, active: bool) -> User:
    """Activate or deactivate ``user``; refuse to deactivate the last active admin."""
    if not active and any(r.name == "admin" for r in user.roles) and not _other_active_admins(user):
        # Nobody could sign in to reactivate anyone.
        raise Conflict(f"{user.email} is the last active admin; make someone else admin first.")
    if not active:
        # Reactivation must not bring an old session back to life.
        end_sessions(user)
    user.active = active
    db.session.flush()
    return user


def set_user_role(user: User, role: str) -> User:
    """Give ``user`` exactly the role ``role``; refuse to demote the last active admin."""
    if role not in ROLES:
        raise Invalid({"role": [f"Unknown role {role!r}; choose one of {', '.join(ROLES)}."]})
    is_admin = any(r.name == "admin" for r in user.roles)
    if is_admin and role != "admin" and user.active and not _other_active_admins(user):
        raise Conflict(f"{user.email} is the last active admin; make someone else admin first.")
    ensure_roles()
    if [r.name for r in user.roles] != [role]:
        # A session signed in under the old role must not keep its permissions' menu or forms.
        end_sessions(user)
    user.roles = [db.session.scalars(select(Role).where(Role.name == role)).one()]
    db.session.flush()
    return user


def set_user_password(user: User, password: str) -> User:
    """Set a new password and end the user's open sessions (an admin reset, or a lost one)."""
    if len(password or "") < 10:
        raise Invalid({"password": ["Use at least 10 characters."]})
    user.password = hash_password(password)
    # Every session cookie issued for the old password ends.
    end_sessions(user)
    return user


def revoke_user_tokens(user: User) -> int:
    """Revoke every live API token of ``user``; return how many."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    tokens = list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
    ))
    for token in tokens:
        token.revoked_at = now
    db.session.flush()
    return len(tokens)
