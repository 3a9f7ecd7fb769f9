"""The admin's Users page, the change-password page and create-user without a password."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, g
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from policy_service.models import ApiToken, User
from tests.admin.conftest import PASSWORD

ROLES = ["admin", "coordinator", "scheduler", "biller"]
NEW_PASSWORD = "a-much-longer-new-secret"


class IsolatedClient(FlaskClient):
    """A test client that never sees another client's user.

    The test's app context outlives requests, and Flask-Login caches the signed-in user in
    ``g``; without dropping it, a second client would be served the first client's user.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        """Send the request with only this client's cookies deciding who is signed in."""
        g.pop("_login_user", None)
        return super().open(*args, **kwargs)


def new_client(app: Flask) -> FlaskClient:
    """Return another browser, with its own cookies."""
    return IsolatedClient(app, app.response_class, use_cookies=True)


@pytest.fixture
def client(app: Flask, session: Session) -> FlaskClient:
    """The admin's browser (the ``login`` fixture signs in through it)."""
    return new_client(app)


def sign_in(client: FlaskClient, email: str, password: str) -> Any:
    """Post the login form; a 302 means the user got in."""
    return client.post("/login", data={"email": email, "password": password})


def csrf_token_of(html: str) -> str:
    """Return the first CSRF token of a rendered page."""
    return html.split('name="csrf_token" type="hidden" value="', 1)[1].split('"', 1)[0]


@pytest.fixture
def target(make_user: Callable[..., tuple[Any, str]]) -> tuple[User, str]:
    """A coordinator with one live API token, the user the admin acts on."""
    return make_user("coordinator")


def user_endpoints(user_id: int) -> list[tuple[str, str, dict[str, str]]]:
    """Every Users endpoint with a request that would change something."""
    return [
        ("GET", "/admin/users/", {}),
        ("POST", "/admin/users/create", {"email": "forged@example.org", "role": "admin",
                                         "password": "forged-password-123"}),
        ("POST", f"/admin/users/{user_id}/active", {"active": "0"}),
        ("POST", f"/admin/users/{user_id}/role", {"role": "admin"}),
        ("POST", f"/admin/users/{user_id}/revoke-tokens", {}),
        ("POST", f"/admin/users/{user_id}/password", {"password": "forged-password-123"}),
    ]


@pytest.mark.parametrize("role", [None, "coordinator", "scheduler", "biller"])
def test_only_admins_reach_users_endpoints(client: FlaskClient, login: Callable[[str], Any],
                                           session: Session, target: tuple[User, str],
                                           role: str | None) -> None:
    user, token = target
    if role:
        login(role)
    for method, path, data in user_endpoints(user.id):
        response = client.open(path, method=method, data=data)
        if role is None:
            assert response.status_code == 302, path
            assert "/login" in response.headers["Location"], path
        else:
            assert response.status_code == 403, path
    # The forged posts changed nothing.
    session.expire_all()
    assert session.scalar(select(User).where(User.email == "forged@example.org")) is None
    assert user.active is True
    assert [r.name for r in user.roles] == ["coordinator"]
    assert client.get("/api/v1/payers",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_users_menu_entry_only_for_admins(client: FlaskClient, login: Callable[[str], Any],
                                          role: str) -> None:
    login(role)
    page = client.get("/admin/").get_data(as_text=True)
    assert ('href="/admin/users/"' in page) == (role == "admin")
    # Everybody signed in gets the change-password link beside "Log out".
    assert 'href="/change-password"' in page
    assert "Change password" in page


def test_admin_reaches_every_users_endpoint(client: FlaskClient, login: Callable[[str], Any],
                                            session: Session, target: tuple[User, str]) -> None:
    login("admin")
    user, _token = target
    statuses = [client.open(path, method=method, data=data).status_code
                for method, path, data in user_endpoints(user.id)]
    assert statuses == [200, 302, 302, 302, 302, 302]
    session.expire_all()
    assert session.scalar(select(User).where(User.email == "forged@example.org")) is not None
    assert user.active is False
    assert [r.name for r in user.roles] == ["admin"]


def test_list_shows_users_without_secrets(client: FlaskClient, login: Callable[[str], Any],
                                          session: Session, target: tuple[User, str]) -> None:
    login("admin")
    user, token = target
    page = client.get("/admin/users/").get_data(as_text=True)
    row = page.split(f'id="user-{user.id}"', 1)[1].split("</tr>", 1)[0]
    assert user.email in row
    # Yes/No as every other admin list says it (was lower-case).
    assert '<td class="user-active">Yes</td>' in row
    assert '<option value="coordinator" selected>' in row
    assert '<td class="user-tokens">1</td>' in row
    digest = session.scalar(select(ApiToken.digest).where(ApiToken.user_id == user.id))
    assert digest not in page
    assert token not in page
    assert user.password not in page


def test_create_user_shows_field_messages(client: FlaskClient, login: Callable[[str], Any],
                                          session: Session) -> None:
    login("admin")
    response = client.post("/admin/users/create", data={"email": "not-an-email",
                                                        "role": "scheduler",
                                                        "password": "short"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "is not an email address." in page.split('id="password"', 1)[0]
    assert "Use at least 10 characters." in page.split('id="password"', 1)[1]
    assert session.scalar(select(User).where(User.email == "not-an-email")) is None


def test_an_empty_create_user_form_says_what_to_fill_in(
        client: FlaskClient, login: Callable[[str], Any]) -> None:
    # Email and password said only WTForms' "This field is required.".
    login("admin")
    response = client.post("/admin/users/create", data={"email": "", "role": "",
                                                        "password": ""})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    form = page[page.index('id="create-user-form"'):]
    before_role, after_role = form.split('id="role"', 1)
    assert "Type the new user&#39;s email address." in before_role
    role_field, password_field = after_role.split('id="password"', 1)
    assert "Choose the new user&#39;s role." in role_field
    assert "Type an initial password." in password_field
    assert "This field is required." not in page


def test_create_user_then_sign_in(app: Flask, client: FlaskClient,
                                  login: Callable[[str], Any], session: Session) -> None:
    login("admin")
    response = client.post("/admin/users/create", data={"email": "New.Nurse@Example.org",
                                                        "role": "scheduler",
                                                        "password": "new-nurse-password"})
    assert response.status_code == 302
    assert "Created new.nurse@example.org (scheduler)." in client.get(
        "/admin/users/").get_data(as_text=True)
    duplicate = client.post("/admin/users/create", data={"email": "new.nurse@example.org",
                                                         "role": "biller",
                                                         "password": "another-password"})
    assert "A user new.nurse@example.org already exists." in duplicate.get_data(as_text=True)
    other = new_client(app)
    assert sign_in(other, "new.nurse@example.org", "new-nurse-password").status_code == 302
    assert other.get("/admin/users/").status_code == 403
    assert other.get("/admin/").status_code == 200


def test_deactivate_stops_sign_in_and_api(app: Flask, client: FlaskClient,
                                          login: Callable[[str], Any],
                                          target: tuple[User, str]) -> None:
    user, token = target
    theirs = new_client(app)
    assert sign_in(theirs, user.email, PASSWORD).status_code == 302
    login("admin")
    assert client.post(f"/admin/users/{user.id}/active", data={"active": "0"}).status_code == 302
    # Their open session ends, a new sign-in is refused, and the API refuses their token.
    assert "/login" in theirs.get("/admin/").headers["Location"]
    refused = sign_in(new_client(app), user.email, PASSWORD)
    assert refused.status_code == 200
    assert "/admin/" not in refused.headers.get("Location", "")
    assert new_client(app).get("/api/v1/payers", headers={
        "Authorization": f"Bearer {token}"}).status_code == 401
    listing = client.get("/admin/users/").get_data(as_text=True)
    row = listing.split(f'id="user-{user.id}"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="user-active">No</td>' in row
    assert client.post(f"/admin/users/{user.id}/active", data={"active": "1"}).status_code == 302
    assert sign_in(new_client(app), user.email, PASSWORD).status_code == 302


def test_admin_cannot_lock_everyone_out(client: FlaskClient, login: Callable[[str], Any],
                                        session: Session) -> None:
    me = login("admin")
    refused = client.post(f"/admin/users/{me.id}/active", data={"active": "0"},
                          follow_redirects=True)
    assert "You cannot deactivate yourself." in refused.get_data(as_text=True)
    # With every other admin deactivated, demoting the last one would leave nobody in charge.
    session.execute(update(User).where(User.id != me.id).values(active=False))
    demoted = client.post(f"/admin/users/{me.id}/role", data={"role": "biller"},
                          follow_redirects=True)
    assert "is the last active admin" in demoted.get_data(as_text=True)
    session.expire_all()
    assert me.active is True
    assert [r.name for r in me.roles] == ["admin"]


def test_change_role_changes_what_the_user_may_do(app: Flask, client: FlaskClient,
                                                  login: Callable[[str], Any], session: Session,
                                                  target: tuple[User, str]) -> None:
    user, token = target
    login("admin")
    bad = client.post(f"/admin/users/{user.id}/role", data={"role": "owner"},
                      follow_redirects=True)
    assert "Unknown role &#39;owner&#39;" in bad.get_data(as_text=True)
    response = client.post(f"/admin/users/{user.id}/role", data={"role": "scheduler"},
                           follow_redirects=True)
    assert f"{user.email} is now scheduler." in response.get_data(as_text=True)
    session.expire_all()
    assert [r.name for r in user.roles] == ["scheduler"]
    theirs = new_client(app)
    assert sign_in(theirs, user.email, PASSWORD).status_code == 302
    assert theirs.get("/admin/payer/new/").status_code == 403


def test_revoke_tokens_makes_the_api_answer_401(app: Flask, client: FlaskClient,
                                                login: Callable[[str], Any],
                                                make_user: Callable[..., tuple[Any, str]],
                                                target: tuple[User, str]) -> None:
    user, token = target
    _other, other_token = make_user("coordinator")
    api = new_client(app)
    assert api.get("/api/v1/payers",
                   headers={"Authorization": f"Bearer {token}"}).status_code == 200
    login("admin")
    response = client.post(f"/admin/users/{user.id}/revoke-tokens", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert f"Revoked 1 API token of {user.email}." in page
    assert api.get("/api/v1/payers",
                   headers={"Authorization": f"Bearer {token}"}).status_code == 401
    # Only that user's tokens go.
    assert api.get("/api/v1/payers",
                   headers={"Authorization": f"Bearer {other_token}"}).status_code == 200
    row = page.split(f'id="user-{user.id}"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="user-tokens">0</td>' in row


def test_users_posts_need_csrf_when_enabled(app: Flask, client: FlaskClient,
                                            login: Callable[[str], Any], session: Session,
                                            target: tuple[User, str]) -> None:
    user, _token = target
    login("admin")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        refused = client.post(f"/admin/users/{user.id}/active", data={"active": "0"})
        token = csrf_token_of(client.get("/admin/users/").get_data(as_text=True))
        accepted = client.post(f"/admin/users/{user.id}/active",
                               data={"active": "0", "csrf_token": token})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert [refused.status_code, accepted.status_code] == [400, 302]
    session.expire_all()
    assert user.active is False


def test_change_password_page_is_styled_and_needs_sign_in(client: FlaskClient,
                                                          login: Callable[[str], Any]) -> None:
    anonymous = client.get("/change-password")
    assert anonymous.status_code == 302
    assert "/login" in anonymous.headers["Location"]
    login("biller")
    page = client.get("/change-password").get_data(as_text=True)
    login_page_card = 'class="signin"'
    assert login_page_card in page
    assert 'name="new_password_confirm"' in page
    assert 'href="/admin/"' in page


@pytest.mark.parametrize("role", ROLES)
def test_change_password_then_old_one_stops_working(app: Flask, client: FlaskClient,
                                                    login: Callable[[str], Any],
                                                    role: str) -> None:
    user = login(role)
    short = client.post("/change-password", data={"password": PASSWORD, "new_password": "short",
                                                   "new_password_confirm": "short"})
    assert short.status_code == 200
    assert "Password must be at least 10 characters" in short.get_data(as_text=True)
    wrong = client.post("/change-password", data={"password": "not-my-password",
                                                  "new_password": NEW_PASSWORD,
                                                  "new_password_confirm": NEW_PASSWORD})
    assert "Invalid password" in wrong.get_data(as_text=True)
    changed = client.post("/change-password", data={"password": PASSWORD,
                                                    "new_password": NEW_PASSWORD,
                                                    "new_password_confirm": NEW_PASSWORD})
    assert changed.status_code == 302
    assert sign_in(new_client(app), user.email, PASSWORD).status_code == 200
    assert sign_in(new_client(app), user.email, NEW_PASSWORD).status_code == 302


def test_change_password_needs_csrf_when_enabled(app: Flask, client: FlaskClient,
                                                 login: Callable[[str], Any]) -> None:
    user = login("scheduler")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        forged = client.post("/change-password", data={"password": PASSWORD,
                                                       "new_password": NEW_PASSWORD,
                                                       "new_password_confirm": NEW_PASSWORD})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert forged.status_code in {200, 400}
    assert "Location" not in forged.headers
    assert sign_in(new_client(app), user.email, PASSWORD).status_code == 302
    assert sign_in(new_client(app), user.email, NEW_PASSWORD).status_code == 200


def test_create_user_without_password_says_it_cannot_sign_in(runner: FlaskCliRunner) -> None:
    without = runner.invoke(args=["create-user", "api-only@example.org", "--role", "biller"])
    assert without.exit_code == 0, without.output
    assert ("api-only@example.org has no password, so cannot sign in to the admin"
            in without.output)
    assert "API tokens still work." in without.output
    with_password = runner.invoke(args=["create-user", "person@example.org", "--role",
                                        "biller", "--password", "long-enough-password"])
    assert with_password.exit_code == 0, with_password.output
    assert "cannot sign in" not in with_password.output


def test_admin_sets_a_password_and_the_old_one_stops_working(
        client: FlaskClient, login: Callable[[str], Any], session: Session,
        target: tuple[User, str]) -> None:
    user, _token = target
    login("admin")
    short = client.post(f"/admin/users/{user.id}/password", data={"password": "short"},
                        follow_redirects=True)
    assert "Use at least 10 characters." in short.get_data(as_text=True)
    done = client.post(f"/admin/users/{user.id}/password",
                       data={"password": NEW_PASSWORD}, follow_redirects=True)
    assert f"New password set for {user.email}" in done.get_data(as_text=True)
    client.post("/logout")
    client.get("/login")
    assert sign_in(client, user.email, PASSWORD).status_code == 200
    assert sign_in(client, user.email, NEW_PASSWORD).status_code == 302


def test_a_new_users_role_is_chosen_not_defaulted(client: FlaskClient,
                                                  login: Callable[[str], Any],
                                                  session: Session) -> None:
    login("admin")
    page = client.get("/admin/users/").get_data(as_text=True)
    role_select = page[page.index('id="role"'):]
    role_select = role_select[:role_select.index("</select>")]
    assert 'required><option value="">Choose a role</option>' in role_select
    assert "selected" not in role_select
    response = client.post("/admin/users/create", data={"email": "new@example.org",
                                                        "password": "long-enough-pass"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Choose the new user&#39;s role." in page
    assert session.scalar(select(User).where(User.email == "new@example.org")) is None
