"""The one secure base every admin view subclasses: login, permissions, CSRF, stale edits.

Access is decided per request from the signed-in user's permissions (never role names):
anonymous users are sent to the login page, users without READ get 403, and users without
EDIT_POLICY_DATA get 403 on every write endpoint (create, edit, delete, inline edit, bulk
actions) and on every POST, because Flask-Admin's inline edit and actions ignore ``can_edit``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import mimetypes
import random
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

import tablib
from flask import abort, flash, g, redirect, request, session, url_for
from flask_admin import BaseView, expose
from flask_admin._compat import csv_encode
from flask_admin.actions import action
from flask_admin.babel import gettext, lazy_gettext
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.form import AdminModelConverter
from flask_admin.contrib.sqla.validators import Unique
from flask_admin.helpers import is_form_submitted
from flask_admin.model import typefmt
from flask_admin.model.form import converts
from flask_admin.tools import rec_getattr
from flask_security import current_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.utils import secure_filename
from werkzeug.wrappers import Response
from wtforms import DateField, Form, HiddenField
from wtforms.widgets import DateInput

from admin.display import WORDED_COLUMNS, local_minute, plain_number, word, yes_no
from policy_service.audit import AUDITED
from policy_service.auth import Permission, has_permission
from policy_service.domain.spreadsheet import neutralise_cell
from policy_service.logging import get_logger, safe_traceback

# Views that change data; read-only users get 403 on them even for a GET of the form.
WRITE_VIEWS = frozenset({"create_view", "edit_view", "delete_view", "ajax_update", "action_view"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STALE_MESSAGE = "Someone else saved this record after you opened it; reload to see their changes."
DUPLICATE_MESSAGE = "Another record already has this key or a record it refers to is missing."
BUSY_MESSAGE = "Someone else was saving at the same moment; nothing was changed, try again."
SAVE_FAILED_MESSAGE = "The record could not be saved; the error has been logged."
CORRECT_FIELDS_MESSAGE = "Nothing was saved: correct the marked fields, then save again."
# What Flask-Admin flashes over a form that failed its checks (create, edit).
GENERIC_FAILURES = ("Failed to create record.", "Failed to save record.")
# Saves retried when SQLite reports another writer (as run_serialized does for the API).
SAVE_ATTEMPTS = 10
# A service's check that a unique value is free: (value, record edited) -> {field: [why]}.
UniqueCheck = Callable[[str, Any], dict[str, list[str]]]
# Largest export built in one request; a bigger one is refused, never cut short.
EXPORT_MAX_ROWS = 50_000


# Flask-Admin's formatters by type, with words for booleans, plain numbers and local times.
READABLE_FORMATTERS: dict[type, Any] = {
    **typefmt.BASE_FORMATTERS,
    bool: lambda _view, value, _name: yes_no(value),
    Decimal: lambda _view, value, _name: plain_number(value),
    dt.datetime: lambda _view, value, _name: local_minute(value),
    list: lambda _view, value, _name: ", ".join(str(item) for item in value),
}


def may_read() -> bool:
    """Return whether the signed-in user may see the admin."""
    return bool(current_user.is_authenticated) and has_permission(current_user, Permission.READ)


def may_edit() -> bool:
    """Return whether the signed-in user may change policy data."""
    return bool(current_user.is_authenticated) and has_permission(
        current_user, Permission.EDIT_POLICY_DATA
    )


def login_redirect() -> Response:
    """Send an anonymous visitor to the login page, back here afterwards."""
    return redirect(url_for("security.login", next=request.full_path.rstrip("?")))


def guard_request() -> Response | None:
    """Return the response refusing the current admin request, or None to let it through."""
    if not current_user.is_authenticated:
        return login_redirect()
    if not may_read():
        abort(403)
    return None


def history_url(model: Any) -> str | None:
    """Return the change-history list filtered to ``model``, or None if it is not audited."""
    audited = AUDITED.get(type(model))
    if audited is None:
        return None
    kind, key, _snapshot = audited
    return url_for("changerecord.index_view", flt0_entity_type_equals=kind,
                   flt1_entity_key_equals=key(model))


def history_link(_view: Any, _context: Any, model: Any, _name: str) -> Markup:
    """Column formatter: a link to the record's change history."""
    url = history_url(model)
    return Markup('<a href="{}">History</a>').format(url) if url else Markup("")


def external_link(_view: Any, _context: Any, model: Any, name: str) -> Markup:
    """Column formatter: show a URL as a link that opens in a new tab."""
    value = getattr(model, name)
    if not value:
        return Markup("")
    if not str(value).startswith(("http://", "https://")):
        return Markup("{}").format(value)
    return Markup('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>').format(
        value, value
    )


def join_list(_view: Any, _context: Any, model: Any, name: str) -> str:
    """Column formatter: a JSON list shown as comma-separated text."""
    return ", ".join(str(v) for v in (getattr(model, name) or []))


class AdminForm(FlaskForm):
    """Flask-WTF's form (CSRF through the app's global protection) that remembers the record
    it edits, as Flask-Admin's unique-value validator expects."""

    def __init__(self, *args: Any, obj: Any = None, **kwargs: Any) -> None:
        self._obj = obj
        super().__init__(*args, obj=obj, **kwargs)


class NativeDateConverter(AdminModelConverter):
    """Dates edited in the browser's own date field: Flask-Admin's pop-up picker stayed open
    over the next field, and the native one works with the keyboard."""

    @converts("Date")
    def convert_date(self, field_args: Any, **extra: Any) -> DateField:
        """A date column as ``<input type="date">``."""
        field_args["widget"] = DateInput()
        return DateField(**field_args)


class SecureModelView(ModelView):
    """Base of every admin model view: login required, writes only with EDIT_POLICY_DATA."""

    form_base_class = AdminForm
    model_form_converter = NativeDateConverter
    # Flask-Admin's list with selection boxes and help icons that have accessible names.
    list_template = "admin/model/accessible_list.html"
    # Values read as words: Yes/No, 10 not 10.000, local time to the minute.
    column_type_formatters = READABLE_FORMATTERS
    column_type_formatters_detail = READABLE_FORMATTERS
    # What this view offers to users allowed to edit; the can_* properties add the user check.
    allow_create = True
    allow_edit = True
    allow_delete = True
    can_view_details = True
    can_export = True
    export_types = ["csv", "xlsx"]
    page_size = 50
    can_set_page_size = True
    named_filter_urls = True
    column_display_pk = False
    form_excluded_columns = ["version"]
    column_export_exclude_list = ["history"]
    column_labels = {"history": "History"}

    @property  # type: ignore[override]
    def can_create(self) -> bool:
        """Create is offered only to users who may edit."""
        return self.allow_create and may_edit()

    @property  # type: ignore[override]
    def can_edit(self) -> bool:
        """Edit is offered only to users who may edit."""
        return self.allow_edit and may_edit()

    @property  # type: ignore[override]
    def can_delete(self) -> bool:
        """Delete is offered only to users who may edit."""
        return self.allow_delete and may_edit()

    def is_accessible(self) -> bool:
        """Signed-in users with READ see the view (and its menu entry)."""
        return may_read()

    def _get_list_value(self, context: Any, model: Any, name: str, column_formatters: Any,
                        column_type_formatters: Any) -> Any:
        # Vocabulary columns ("hospital_outpatient") read as words unless a view formats them.
        if name in WORDED_COLUMNS and name not in (column_formatters or {}):
            return word(rec_getattr(model, name))
        return super()._get_list_value(context, model, name, column_formatters,
                                       column_type_formatters)

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        refused = guard_request()
        if refused is not None:
            return refused
        if (name in WRITE_VIEWS or request.method not in SAFE_METHODS) and not may_edit():
            abort(403)
        if name in WRITE_VIEWS and not self.offers(name):
            abort(403)
        return None

    def offers(self, name: str) -> bool:
        """Return whether this view offers the write endpoint ``name`` to editors at all."""
        return {
            "create_view": self.allow_create,
            "edit_view": self.allow_edit,
            "delete_view": self.allow_delete,
            "ajax_update": self.allow_edit and bool(self.column_editable_list),
            "action_view": self.allow_edit or self.allow_delete,
        }.get(name, True)

    def is_action_allowed(self, name: str) -> bool:
        """Bulk actions change data: only for users who may edit, and delete only if offered."""
        if not may_edit():
            return False
        if name == "delete" and not self.allow_delete:
            return False
        return super().is_action_allowed(name)

    @action("delete", lazy_gettext("Delete"),
            lazy_gettext("Are you sure you want to delete selected records?"))
    def action_delete(self, ids: tuple[str, ...]) -> None:
        """Bulk delete; ids arrive as text and PostgreSQL will not compare text to integer."""
        super().action_delete(tuple(int(i) for i in ids if str(i).isdigit()))  # type: ignore[arg-type]

    # --- validation shown on the fields -------------------------------------------------

    # Unique columns, each checked by the service that owns the aggregate:
    # ``{field name: check(value, record edited or None) -> {field name: [messages]}}``.
    # Flask-Admin's own Unique validator said only "Already exists.": ``scaffold_form``
    # drops it from these fields.
    unique_checks: ClassVar[Mapping[str, UniqueCheck]] = {}

    def scaffold_form(self) -> type[Form]:
        """The form, without Flask-Admin's bare unique check where a service's stands in."""
        form_class = super().scaffold_form()
        for name in self.unique_checks:
            field = getattr(form_class, name, None)
            validators = field.kwargs.get("validators") if field is not None else None
            if validators:
                validators[:] = [v for v in validators if not isinstance(v, Unique)]
        return form_class

    def unique_value(self, form: Form, name: str) -> str:
        """The value of ``name`` the unique check compares: what was typed, trimmed."""
        return str(getattr(form, name).data or "").strip()

    def unique_errors(self, form: Form, known: Mapping[str, str]) -> dict[str, str]:
        """The services' messages for each unique value another record already has; a field
        already marked (empty, badly formed) is not asked about."""
        errors: dict[str, str] = {}
        for name, check in self.unique_checks.items():
            field = getattr(form, name, None)
            if field is None or field.errors or name in known:
                continue
            value = self.unique_value(form, name)
            if value:
                taken = check(value, getattr(form, "_obj", None))
                errors.update({key: " ".join(messages) for key, messages in taken.items()})
        return errors

    def check_form(self, form: Form) -> dict[str, str]:
        """Return ``{field name: message}`` for every business rule the form breaks."""
        return {}

    def render(self, template: str, **kwargs: Any) -> Any:
        """Render; a refused form gets one banner that points at its marked fields."""
        form = kwargs.get("form")
        if form is not None and request.method == "POST":
            replace_generic_failure(form)
        return super().render(template, **kwargs)

    def validate_form(self, form: Form) -> bool:
        """Run the field validators, then the view's business rules, errors on the fields."""
        valid = super().validate_form(form)
        endpoint = (request.endpoint or "").rsplit(".", 1)[-1]
        # Flask-Admin also asks on a GET (a form just opened): a blank form shows no error.
        if endpoint not in {"create_view", "edit_view", "ajax_update"} or not is_form_submitted():
            return valid
        errors = self.check_form(form)
        errors.update(self.unique_errors(form, errors))
        for field_name, message in errors.items():
            field = getattr(form, field_name, None)
            if field is None:
                # A rule about nested rows marks its own fields; say so at the top too.
                flash(message, "error")
                valid = False
                continue
            if not isinstance(field.errors, list):
                field.errors = list(field.errors)
            field.errors.append(message)
            valid = False
        return valid

    # --- stale edits -------------------------------------------------------------------

    def get_edit_form(self) -> type[Form]:
        """The edit form carries the version the user opened, to refuse stale saves."""
        base = super().get_edit_form()

        class EditForm(base):  # type: ignore[valid-type, misc]
            expected_version = HiddenField()

        return EditForm

    def edit_form(self, obj: Any = None) -> Form:
        """Fill the hidden version on the first display of the edit form."""
        form = super().edit_form(obj)
        if request.method == "GET" and obj is not None and hasattr(obj, "version"):
            form.expected_version.data = str(obj.version)
        return form

    def update_model(self, form: Form, model: Any) -> bool:
        """Save, unless someone else saved the record after this form was opened.

        On SQLite a save racing another writer is told "database is locked" at once; like the
        API (``run_serialized``) it is rolled back and run again, and then meets the version
        check of whichever save won.
        """
        for attempt in range(SAVE_ATTEMPTS):
            expected = getattr(form, "expected_version", None)
            if (expected is not None and hasattr(model, "version")
                    and str(expected.data or "") != str(model.version)):
                flash(STALE_MESSAGE, "error")
                return False
            g.admin_save_locked = False
            g.admin_save_retries = True
            try:
                saved = self.save_once(form, model)
            finally:
                g.admin_save_retries = False
            if saved:
                return True
            if not g.admin_save_locked:
                return False
            time.sleep(min(0.005 * 2 ** attempt, 0.25) * (1 + random.random()))  # noqa: S311
        flash(STALE_MESSAGE, "error")
        return False

    def save_once(self, form: Form, model: Any) -> bool:
        """One attempt at saving an edit; a view that writes through a service overrides it."""
        return super().update_model(form, model)

    def handle_view_exception(self, exc: Exception) -> bool:
        """Database errors become a plain message; the user never sees SQL."""
        if isinstance(exc, StaleDataError):
            flash(STALE_MESSAGE, "error")
            return True
        if isinstance(exc, OperationalError) and "database is locked" in str(exc):
            g.admin_save_locked = True
            if not g.get("admin_save_retries"):
                flash(BUSY_MESSAGE, "error")
            return True
        if isinstance(exc, IntegrityError):
            flash(DUPLICATE_MESSAGE, "error")
            return True
        if isinstance(exc, SQLAlchemyError):
            get_logger("admin").error("admin_save_failed", view=self.endpoint,
                                      error=type(exc).__name__, stack=safe_traceback(exc))
            flash(SAVE_FAILED_MESSAGE, "error")
            return True
        return super().handle_view_exception(exc)

    def get_one(self, id: Any) -> Any:
        """The record with this id, or None for an id that cannot be one (text for a number)."""
        key_type = self.model.__mapper__.primary_key[0].type
        if getattr(key_type, "python_type", None) is int and not (
                isinstance(id, int) or (isinstance(id, str) and id.isascii() and id.isdigit()
                                        and len(id) < 19)):
            return None
        return super().get_one(id)

    @expose("/ajax/update/", methods=("POST",))
    def ajax_update(self) -> Any:
        """Inline edit with honest statuses: 404 for a missing record, 409 for a stale one,
        422 for a value the form refuses (Flask-Admin answers 500 to all three)."""
        result = super().ajax_update()
        if not (isinstance(result, tuple) and result[1] == 500):
            return result
        message = str(result[0])
        if message == str(gettext("Record does not exist.")):
            return message, 404
        return message, 409 if STALE_MESSAGE in message else 422

    # --- export --------------------------------------------------------------------------

    def get_export_value(self, model: Any, name: Any) -> str:
        """The cell's final text, which never starts like a spreadsheet formula.

        Related records (a payer, a patient) are turned into text here, before neutralising:
        neutralising the object and letting the exporter call ``str`` later let ``=...`` through.
        """
        value = super().get_export_value(model, name)
        return neutralise_cell("" if value is None else csv_encode(value))

    def export_rows(self) -> list[list[str]] | None:
        """The title row and every record's final cells, built now inside the request; None
        when there are more records than one export may hold."""
        count, data = self._export_data()
        if count is not None and count > EXPORT_MAX_ROWS:
            return None
        titles = [neutralise_cell(csv_encode(title)) for _name, title in self._export_columns]
        return [titles, *([self.get_export_value(row, name) for name, _title in
                           self._export_columns] for row in data)]

    def _refuse_export(self, return_url: str) -> Response:
        flash(f"An export holds at most {EXPORT_MAX_ROWS:,} records; filter the list first.",
              "error")
        return redirect(return_url)

    def _export_csv(self, return_url: str) -> Response:
        """The whole CSV at once: a streamed export read lazy relations after the request's
        database session had closed, and was cut off."""
        rows = self.export_rows()
        if rows is None:
            return self._refuse_export(return_url)
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return self._attachment(buffer.getvalue().encode("utf-8"), "csv", "text/csv")

    def _export_tablib(self, export_type: str, return_url: str) -> Response:
        """XLSX (or another tablib format) from the same final, neutralised cells."""
        rows = self.export_rows()
        if rows is None:
            return self._refuse_export(return_url)
        dataset = tablib.Dataset(*rows[1:], headers=rows[0])
        try:
            data = dataset.export(format=export_type)
        except tablib.UnsupportedFormat:
            flash(f"Export type {export_type} is not supported.", "error")
            return redirect(return_url)
        mimetype = mimetypes.guess_type(f"export.{export_type}")[0] or "application/octet-stream"
        return self._attachment(data if isinstance(data, bytes) else data.encode("utf-8"),
                                export_type, mimetype)

    def _attachment(self, data: bytes, export_type: str, mimetype: str) -> Response:
        filename = secure_filename(self.get_export_name(export_type))
        return Response(data, mimetype=mimetype, headers={
            "Content-Disposition": f"attachment;filename={filename}"})


def replace_generic_failure(form: Form) -> None:
    """Swap Flask-Admin's "Failed to create record." (or "save") for one banner saying to
    correct the marked fields: the fields already say what is wrong. No banner is added when
    another message already heads the form (a rule about nested rows, a stale edit)."""
    flashes = list(session.get("_flashes", []))
    generic = {str(gettext(message)) for message in GENERIC_FAILURES}
    kept = [(category, message) for category, message in flashes if message not in generic]
    if len(kept) == len(flashes):
        return
    if form.errors and not any(category in ("error", "danger") for category, _m in kept):
        kept.append(("error", CORRECT_FIELDS_MESSAGE))
    session["_flashes"] = kept


class ReadOnlyModelView(SecureModelView):
    """A view nobody edits through the admin (change history, earlier versions)."""

    allow_create = False
    allow_edit = False
    allow_delete = False



class SecurePageView(BaseView):
    """Base of every custom admin page (forms, uploads): login, then the page's permission.

    ``is_accessible`` hides the menu entry from users without the permission; ``_handle_view``
    refuses every endpoint of the page, GET and POST alike, so a forged POST gets 403 too.
    """

    permission: Permission = Permission.READ

    def is_accessible(self) -> bool:
        """Signed-in users holding the page's permission see it (and its menu entry)."""
        return bool(current_user.is_authenticated) and has_permission(current_user,
                                                                      self.permission)

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        refused = guard_request()
        if refused is not None:
            return refused
        if not self.is_accessible():
            abort(403)
        return None
