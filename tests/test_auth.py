"""Users, roles and API tokens."""

import pytest
from sqlalchemy import select

from policy_service.auth import (
    Permission,
    create_token,
    create_user,
    has_permission,
    revoke_token,
    set_user_active,
    user_for_token,
    user_permissions,
)
from policy_service.errors import Invalid
from policy_service.models import ApiToken


def test_token_is_stored_hashed_and_revocable(session) -> None:
    user = create_user("coord@example.org", "coordinator", "long-enough-pw")
    token = create_token(user)
    stored = session.scalars(select(ApiToken)).one()
    assert token not in (stored.digest, stored.prefix)
    owner = user_for_token(token)
    assert (owner.id, owner.email) == (user.id, "coord@example.org")
    assert revoke_token(token[:10]) == 1
    assert user_for_token(token) is None


@pytest.mark.parametrize(("role", "permission", "allowed"), [
    ("scheduler", Permission.CHECK_ELIGIBILITY, True),
    ("scheduler", Permission.EDIT_POLICY_DATA, False),
    ("biller", Permission.RECORD_USAGE, True),
    ("biller", Permission.CHECK_ELIGIBILITY, False),
    ("coordinator", Permission.EDIT_POLICY_DATA, True),
    ("coordinator", Permission.MANAGE_USERS, False),
    ("admin", Permission.MANAGE_USERS, True),
])
def test_roles_grant_their_permissions(session, role, permission, allowed) -> None:
    user = create_user(f"{role}@example.org", role, "long-enough-pw")
    assert has_permission(user, permission) is allowed
    # The API reads the same permissions from the token's one query.
    assert (permission in user_for_token(create_token(user)).permissions) is allowed


@pytest.mark.parametrize("role", ["admin", "coordinator", "scheduler", "biller"])
def test_token_owner_has_exactly_the_roles_permissions(session, role) -> None:
    user = create_user(f"{role}@example.org", role, "long-enough-pw")
    assert user_for_token(create_token(user)).permissions == user_permissions(user)


def test_deactivated_users_token_finds_nobody(session) -> None:
    user = create_user("sched@example.org", "scheduler", "long-enough-pw")
    token = create_token(user)
    set_user_active(user, False)
    assert user_for_token(token) is None
    set_user_active(user, True)
    assert user_for_token(token).email == "sched@example.org"


def test_create_user_names_each_bad_field(session) -> None:
    with pytest.raises(Invalid) as caught:
        create_user("not-an-email", "superuser", "short")
    assert {e["field"] for e in caught.value.errors} == {"email", "role", "password"}


def test_cli_create_user_and_token(runner) -> None:
    result = runner.invoke(args=["create-user", "Sched@Example.org", "--role", "scheduler"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["create-token", "sched@example.org"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert user_for_token(token).email == "sched@example.org"


def test_cli_rejects_unknown_user_without_traceback(runner) -> None:
    result = runner.invoke(args=["create-token", "nobody@example.org"])
    assert result.exit_code == 1
    assert "No user nobody@example.org" in result.output
    assert "Traceback" not in result.output
