"""The coordinators' work queue ("My work", "All") and the lifecycle actions taken in place.

Every role that reads sees the queue; only users who may edit authorizations see and post the
action forms (transition with a reason, note, follow-up date, owner, renewal, letter). Each
action calls the authorizations service, then returns to the page it came from.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_security import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from admin.security import SecurePageView
from policy_service.api.authorizations import attachment_download
from policy_service.audit import current_actor
from policy_service.auth import Permission, has_permission
from policy_service.errors import DomainError, Invalid
from policy_service.extensions import db
from policy_service.models import Authorization, User
from policy_service.services import authorizations as service
from policy_service.services.appointments import unit_balances
from policy_service.services.worklist import WorkItem, authorizations_by_number, worklist

ACTIONS = ("transition", "note", "follow_up", "assign", "renew", "attach")


def may_change_authorizations() -> bool:
    """Whether the signed-in user may move authorizations along (coordinators, admins)."""
    return bool(current_user.is_authenticated) and has_permission(
        current_user, Permission.EDIT_AUTHORIZATIONS)


def assignable_users() -> list[str]:
    """Emails of active users who may own authorizations."""
    users = db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.email))
    return [u.email for u in users if has_permission(u, Permission.EDIT_AUTHORIZATIONS)]


def _back(default: str) -> str:
    """The local page to return to (never another site)."""
    target = request.form.get("next") or default
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and target.startswith("/") \
        else default


def _date(text: str | None, field: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise Invalid({field: ["Not a valid date (YYYY-MM-DD)."]}) from exc


def _number(text: str | None, field: str) -> int | None:
    if text in (None, ""):
        return None
    if not text.strip().isdigit():
        raise Invalid({field: ["Not a whole number of 0 or more."]})
    return int(text)


def _decision(form: Any) -> dict[str, Any]:
    """What the payer's answer says, from the transition form's optional fields."""
    decision: dict[str, Any] = {}
    for name in ("approved_units", "approved_visits"):
        if form.get(name):
            decision[name] = _number(form.get(name), name)
    for name in ("valid_from", "valid_to"):
        if form.get(name):
            decision[name] = _date(form.get(name), name)
    if form.get("payer_reference"):
        decision["payer_reference"] = form["payer_reference"].strip()[:64]
    return decision


def apply_action(auth: Authorization, action: str, form: Any, files: Any) -> str:
    """Carry out one action on ``auth`` from a posted form; return what to tell the user."""
    actor = current_actor()
    if action == "transition":
        to = form.get("to", "")
        service.transition(auth, to, actor, on=_date(form.get("on"), "on"),
                           reason=(form.get("reason") or "").strip() or None,
                           decision=_decision(form))
        return f"{auth.number} is now {to.replace('_', ' ')}."
    if action == "note":
        service.add_note(auth, form.get("text", ""), actor)
        return f"Note added to {auth.number}."
    if action == "follow_up":
        day = _date(form.get("follow_up_on"), "follow_up_on")
        service.set_follow_up(auth, day, actor)
        return f"{auth.number}: follow-up {day.isoformat() if day else 'cleared'}."
    if action == "assign":
        service.assign(auth, form.get("owner") or None, actor)
        return f"{auth.number} assigned to {form.get('owner') or 'nobody'}."
    if action == "renew":
        renewal = service.renew(auth, actor)
        return f"{auth.number} renewed by {renewal.number}."
    upload = files.get("file")
    if upload is None:
        raise Invalid({"file": ["Choose a file."]})
    data = upload.stream.read(service.MAX_ATTACHMENT_BYTES + 1)
    service.add_attachment(auth, upload.filename or "", data, actor)
    return f"Letter kept with {auth.number}."


class WorkView(SecurePageView):
    """My work and All: the queue, most urgent first, with actions in place."""

    permission = Permission.READ

    def _render(self, items: list[WorkItem], mine: bool) -> str:
        # Reading the schedule may have refreshed appointments' standing checks: keep them.
        db.session.commit()
        numbers = {item.authorization for item in items if item.authorization}
        records = authorizations_by_number(numbers)
        balances = unit_balances(records.values())
        # Reading the schedule expired them: reload once for the rows, not once per row.
        authorizations_by_number(numbers)
        return self.render("admin/worklist.html", items=items, mine=mine, records=records,
                           balances=balances,
                           may_act=may_change_authorizations(), users=assignable_users(),
                           transitions=service.TRANSITIONS, today=dt.date.today())

    @expose("/")
    def index(self) -> str:
        """The signed-in user's items."""
        return self._render(worklist(owner=current_user.email), mine=True)

    @expose("/all")
    def all(self) -> str:
        """Everyone's items."""
        return self._render(worklist(), mine=False)

    @expose("/act/<number>/<action>", methods=["POST"])
    def act(self, number: str, action: str) -> Response:
        """Apply one lifecycle action, then go back where the user was."""
        if not may_change_authorizations():
            abort(403)
        if action not in ACTIONS:
            abort(404)
        back = _back(url_for(".index"))
        try:
            auth = service.get_authorization(number, lock=True)
            message = apply_action(auth, action, request.form, request.files)
            db.session.commit()
        except Invalid as exc:
            db.session.rollback()
            flash("; ".join(exc.lines()), "error")
        except DomainError as exc:
            db.session.rollback()
            flash(exc.detail, "error")
        else:
            flash(message, "success")
        return redirect(back)

    @expose("/letter/<number>/<int:attachment_id>")
    def letter(self, number: str, attachment_id: int) -> Response:
        """Download a letter (any role that reads authorizations)."""
        auth = service.get_authorization(number)
        return attachment_download(service.get_attachment(auth, attachment_id))
