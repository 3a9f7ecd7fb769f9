"""Providers by NPI with their payer enrollments, saved through the providers service."""

from __future__ import annotations

from typing import Any

from flask import flash, request
from flask_admin.model.form import InlineFormAdmin
from sqlalchemy.exc import SQLAlchemyError
from wtforms import Form

from admin.checks import field_messages, value
from admin.security import STALE_MESSAGE, SecureModelView, history_link
from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import Provider, ProviderEnrollment
from policy_service.services.providers import (
    delete_provider,
    enrollment_payer_codes,
    npi_errors,
    provider_errors,
    save_provider,
    stored_payers,
)


def enrollments_text(_view: Any, _context: Any, model: Provider, _name: str) -> str:
    """Column formatter: each enrollment as ``PAYER from to end``."""
    return "; ".join(str(e) for e in sorted(model.enrollments, key=lambda e: e.position))


class EnrollmentInline(InlineFormAdmin):
    """One enrollment period with a payer, edited on the provider's page."""

    form_columns = ["id", "payer", "effective_from", "effective_to"]
    form_args = {"effective_to": {"description": "Leave empty while the enrollment is open."}}


class ProviderView(SecureModelView):
    """Clinicians by NPI: specialty (for policies that name one) and payer enrollments."""

    column_list = ["npi", "name", "specialty", "enrollments", "history"]
    column_searchable_list = ["npi", "name", "specialty"]
    column_filters = ["specialty"]
    column_labels = {"npi": "NPI", "history": "History"}
    column_formatters = {"history": history_link, "enrollments": enrollments_text}
    column_formatters_export = {"enrollments": enrollments_text}
    column_default_sort = "npi"
    form_columns = ["npi", "name", "specialty", "enrollments"]
    form_args = {"npi": {"label": "NPI", "description": "10 digits; the last is a check digit."},
                 "specialty": {"description": "As policies name it, e.g. rheumatology."}}
    inline_models = [EnrollmentInline(ProviderEnrollment)]
    unique_checks = {"npi": npi_errors}

    def form_record(self, form: Form) -> dict[str, Any]:
        """The submitted provider in bundle shape (enrollments by payer code)."""
        record: dict[str, Any] = {
            "npi": (value(form, "npi") or "").strip(),
            "name": (value(form, "name") or "").strip() or None,
            "specialty": (value(form, "specialty") or "").strip() or None,
        }
        rows = []
        field = getattr(form, "enrollments", None)
        for entry in field.entries if field is not None else []:
            if field.should_delete(entry):
                continue
            payer = entry.form.payer.data
            rows.append({"payer": payer.code if payer is not None else None,
                         "effective_from": entry.form.effective_from.data,
                         "effective_to": entry.form.effective_to.data})
        record["enrollments"] = rows
        return record

    def _editing(self) -> Provider | None:
        record_id = request.args.get("id", "")
        if (request.endpoint or "").endswith("edit_view") and record_id.isdigit():
            return db.session.get(Provider, int(record_id))
        return None

    def check_form(self, form: Form) -> dict[str, str]:
        """The import's rules: NPI check digit, payers known, no overlapping enrollments."""
        record = self.form_record(form)
        missing = [i for i, row in enumerate(record["enrollments"]) if not row["payer"]
                   or row["effective_from"] is None]
        errors = field_messages(provider_errors(
            {**record, "enrollments": [r for i, r in enumerate(record["enrollments"])
                                       if i not in missing]},
            stored_payers(enrollment_payer_codes(record)), creating=self._editing() is None))
        if missing:
            errors["enrollments"] = "Each enrollment needs a payer and a start date."
        return errors

    def _save(self, form: Form, stored: Provider | None) -> Provider | None:
        record = self.form_record(form)
        try:
            provider, _created, _changed = save_provider(record, stored=stored)
            db.session.commit()
        except Invalid as exc:
            db.session.rollback()
            flash("; ".join(exc.lines()), "error")
            return None
        return provider

    def create_model(self, form: Form) -> Provider | bool:
        """Create through the providers service (the one write path)."""
        provider = self._save(form, None)
        if provider is None:
            return False
        self.after_model_change(form, provider, True)
        return provider

    def save_once(self, form: Form, model: Provider) -> bool:
        """Edit through the providers service; a stale form is refused."""
        expected = getattr(form, "expected_version", None)
        if expected is not None and str(expected.data or "") not in ("", str(model.version)):
            flash(STALE_MESSAGE, "error")
            return False
        try:
            saved = self._save(form, model)
        except SQLAlchemyError as exc:
            db.session.rollback()
            self.handle_view_exception(exc)
            return False
        if saved is None:
            return False
        self.after_model_change(form, model, False)
        return True

    def delete_model(self, model: Provider) -> bool:
        """Delete through the providers service (the one write path)."""
        try:
            delete_provider(model)
            db.session.commit()
        except SQLAlchemyError as exc:
            db.session.rollback()
            self.handle_view_exception(exc)
            return False
        self.after_model_delete(model)
        return True
