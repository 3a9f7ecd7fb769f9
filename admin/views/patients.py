"""Patients (external id, birth date, weight; no names) with their therapy history."""

from __future__ import annotations

from typing import Any

from flask_admin.model.form import InlineFormAdmin
from wtforms import Form

from admin.checks import patient_errors
from admin.fields import options
from admin.security import SecureModelView, history_link
from policy_service.models import THERAPY_OUTCOMES, PatientDocument, Therapy
from policy_service.services.patients import external_id_errors, set_documentation


def therapy_summary(_view: Any, _context: Any, model: Any, _name: str) -> str:
    """Column formatter: the therapies a patient received, oldest first."""
    return "; ".join(f"{t} ({t.outcome or 'no outcome'})" for t in model.therapies)


class TherapyInline(InlineFormAdmin):
    """One course of a drug, edited on the patient's page."""

    form_columns = ["id", "drug", "start", "end", "outcome"]
    form_choices = {"outcome": options(THERAPY_OUTCOMES, blank=True)}


def documentation_summary(_view: Any, _context: Any, model: Any, _name: str) -> str:
    """Column formatter: the documents on file, by code and date."""
    return "; ".join(f"{d.code} {d.on_date.isoformat()}" for d in model.documents)


class DocumentInline(InlineFormAdmin):
    """A document on file (its checklist code and date), edited on the patient's page."""

    form_columns = ["id", "code", "on_date"]
    form_label = "Documentation on file"
    column_labels = {"code": "Code (e.g. TB_SCREENING)", "on_date": "Date"}


class PatientView(SecureModelView):
    """Patients known by the practice's identifier, with therapy history inline."""

    column_list = ["external_id", "birth_date", "weight_kg", "therapies", "documents", "history"]
    column_searchable_list = ["external_id"]
    column_filters = ["birth_date"]
    column_labels = {"external_id": "Patient id", "weight_kg": "Weight (kg)",
                     "history": "History", "documents": "Documentation on file"}
    column_formatters = {"therapies": therapy_summary, "documents": documentation_summary,
                         "history": history_link}
    column_formatters_export = {"therapies": therapy_summary,
                                "documents": documentation_summary}
    column_default_sort = "external_id"
    inline_models = [TherapyInline(Therapy), DocumentInline(PatientDocument)]
    unique_checks = {"external_id": external_id_errors}

    def check_form(self, form: Form) -> dict[str, str]:
        """The import's rules: a positive weight; each therapy ends after it starts."""
        return patient_errors(form)

    def on_model_change(self, form: Form, model: Any, is_created: bool) -> None:
        """Blank outcomes are stored as none; documents go through the patients service."""
        for therapy in model.therapies:
            therapy.outcome = therapy.outcome or None
        set_documentation(model, [{"code": d.code, "date": d.on_date} for d in model.documents])
