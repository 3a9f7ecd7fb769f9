"""The admin's Users page: list, create, (de)activate, change role, revoke API tokens.

Only users holding MANAGE_USERS (the admin role) reach it; every endpoint, GET or POST, goes
through ``SecurePageView._handle_view``, so a forged POST from another role gets 403. Every
change calls a service in ``policy_service.auth`` (creation is ``create_user``, the same
validation as the CLI). Password hashes and token digests are never read into the page.
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_security import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired

from admin.security import SecurePageView
from policy_service.auth import (
    Permission,
    create_user,
    get_user,
    live_token_counts,
    revoke_user_tokens,
    set_user_active,
    set_user_password,
    set_user_role,
)
from policy_service.errors import Conflict, Invalid, NotFound
from policy_service.extensions import db
from policy_service.models import ROLES, User

ROLE_CHOICES = [SelectChoice(name, f"{name} – {description}")
                for name, description in ROLES.items()]


class CreateUserForm(FlaskForm):
    """A new user: email, one role, an initial password (checked by ``create_user``).

    An empty field says what to fill in, as the role does (not WTForms' "This field is
    required.")."""

    email = StringField("Email",
                        validators=[InputRequired("Type the new user's email address.")])
    # No role is preselected: a new user's role is a choice the admin makes on purpose.
    role = SelectField("Role", choices=[SelectChoice("", "Choose a role"), *ROLE_CHOICES],
                       validate_choice=False,
                       validators=[InputRequired("Choose the new user's role.")])
    password = PasswordField("Initial password",
                             validators=[InputRequired("Type an initial password.")],
                             description="At least 10 characters; tell the user to change it.")


class ActionForm(FlaskForm):
    """A row button's post: just the CSRF token (``csrf_token()`` in the template)."""


class UserAdminView(SecurePageView):
    """Users and their roles, sign-in status and API tokens; admins only."""

    permission = Permission.MANAGE_USERS

    def _render_list(self, form: CreateUserForm, status: int = 200) -> tuple[str, int]:
        users = db.session.scalars(select(User).order_by(User.email)).all()
        return self.render("admin/users.html", users=users, form=form,
                           token_counts=live_token_counts(), roles=list(ROLES)), status

    @expose("/")
    def index(self) -> Any:
        """List every user, with the form to create one."""
        return self._render_list(CreateUserForm())

    @expose("/create", methods=["POST"])
    def create(self) -> Any:
        """Create a user; errors from ``create_user`` show on their fields."""
        form = CreateUserForm()
        if form.validate_on_submit():
            try:
                user = create_user(form.email.data or "", form.role.data or "",
                                   form.password.data or "")
            except Invalid as error:
                for item in error.errors:
                    field = getattr(form, item["field"], None)
                    if field is None:
                        form.form_errors.append(item["message"])
                    else:
                        field.errors = [*field.errors, item["message"]]
            else:
                db.session.commit()
                flash(f"Created {user.email} ({form.role.data}).", "success")
                return redirect(url_for(".index"))
        return self._render_list(form, 422)

    def _change(self, user_id: int, change: Any) -> Response:
        """Run ``change(user)`` for a row button, after its CSRF token checked out."""
        if not ActionForm().validate_on_submit():
            abort(400)
        try:
            message = change(get_user(user_id))
        except NotFound:
            abort(404)
        except (Conflict, Invalid) as error:
            db.session.rollback()
            flash(error.detail if isinstance(error, Conflict)
                  else "; ".join(e["message"] for e in error.errors), "error")
        else:
            db.session.commit()
            flash(message, "success")
        return redirect(url_for(".index"))

    @expose("/<int:user_id>/active", methods=["POST"])
    def set_active(self, user_id: int) -> Response:
        """Deactivate (no sign-in, no API) or reactivate a user."""
        active = request.form.get("active") == "1"
        if not active and user_id == current_user.id:
            flash("You cannot deactivate yourself.", "error")
            return redirect(url_for(".index"))

        def change(user: User) -> str:
            set_user_active(user, active)
            return f"{user.email} {'reactivated' if active else 'deactivated'}."

        return self._change(user_id, change)

    @expose("/<int:user_id>/role", methods=["POST"])
    def set_role(self, user_id: int) -> Response:
        """Give a user a different role."""
        role = request.form.get("role", "")

        def change(user: User) -> str:
            set_user_role(user, role)
            return f"{user.email} is now {role}."

        return self._change(user_id, change)

    @expose("/<int:user_id>/password", methods=["POST"])
    def set_password(self, user_id: int) -> Response:
        """Set a user's password (they sign in with it and should change it)."""
        password = request.form.get("password", "")

        def change(user: User) -> str:
            set_user_password(user, password)
            return f"New password set for {user.email}; their open sessions have ended."

        return self._change(user_id, change)

    @expose("/<int:user_id>/revoke-tokens", methods=["POST"])
    def revoke_tokens(self, user_id: int) -> Response:
        """Revoke every live API token of a user."""

        def change(user: User) -> str:
            count = revoke_user_tokens(user)
            return f"Revoked {count} API token{'s' if count != 1 else ''} of {user.email}."

        return self._change(user_id, change)
