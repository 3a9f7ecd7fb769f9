"""Policies and their effective-dated versions, with step therapy edited inline.

Every save goes through the policies service (``policies.create_policy``, ``update_policy``,
``create_version``, ``update_version``), the one write path the import and the API use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.contrib.sqla import tools
from flask_admin.model.form import InlineFormAdmin
from markupsafe import Markup
from sqlalchemy import Select, or_, select
from sqlalchemy.exc import SQLAlchemyError
from wtforms import BooleanField, DateField, Form, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import DateInput

from admin.checks import POLICY_VERSION_FIELDS, form_values, policy_version_errors
from admin.fields import CommaListField, DocumentationListField, MultiChoiceField, options
from admin.security import (
    CORRECT_FIELDS_MESSAGE,
    SecureModelView,
    external_link,
    history_link,
    join_list,
)
from policy_service.domain.fields import STEP_ATTRS
from policy_service.domain.icd10 import normalise_code
from policy_service.errors import DomainError, Invalid
from policy_service.extensions import db
from policy_service.models import (
    POLICY_DRUG_SUPPLIES,
    SITES_OF_CARE,
    THERAPY_OUTCOMES,
    Policy,
    PolicyVersion,
    StepTherapyStep,
)
from policy_service.schemas.bundle import normalise_specialty
from policy_service.services import policies, policy_review
from policy_service.services.policies import (
    DRAFT,
    HCPCS_REQUIRED,
    hcpcs_errors,
    is_locked,
    locked_message,
)

LIST_COLUMNS = ("hcpcs", "covered_diagnoses", "preferred_products", "sites_of_care")
EFFECTIVE_FROM_REQUIRED = "Give the date the first version takes effect."
STEP_OUTCOMES = tuple(o for o in THERAPY_OUTCOMES if o not in {"ongoing", "response"})

T = TypeVar("T")


def lifecycle_link(_view: Any, _context: Any, model: Any, _name: str) -> Markup:
    """Column formatter: the version's rules in words, cases, impact and activation."""
    url = url_for("policyversion.lifecycle_view", id=model.id)
    return Markup('<a href="{}">Rules, cases, impact</a>').format(url)


def versions_link(_view: Any, _context: Any, model: Any, _name: str) -> Markup:
    """Column formatter: every version of a policy, earlier ones included."""
    url = url_for("policyversion.index_view", flt0_policy_code_equals=model.code)
    return Markup('<a href="{}">{} version(s)</a>').format(url, len(model.versions))


def policy_codes(_view: Any, _context: Any, model: Any, _name: str) -> str:
    """Column formatter: every HCPCS code any version of the policy covers."""
    return ", ".join(sorted({code for v in model.versions for code in v.hcpcs or []}))


def search_with_drugs(query: Any, count_query: Any, search: str,
                      matches: Callable[[str], Any], key: Any,
                      version_ids: Callable[[Select[Any]], Select[Any]]) -> tuple[Any, Any]:
    """Filter a list by every word of ``search``: ``matches(like pattern)``, or naming a drug
    the record covers (its HCPCS code, or text in its brand or generic name)."""
    for term in search.split():
        condition = or_(matches(tools.parse_like_term(term)),
                        key.in_(version_ids(policies.versions_naming_drug(term))))
        query = query.filter(condition)
        if count_query is not None:
            count_query = count_query.filter(condition)
    return query, count_query


def suggested_policy_code(payer_code: str, title: str | None) -> str:
    """The code a new policy gets when none is typed: ``ACME/infliximab``."""
    drug = re.sub(r"[^a-z0-9]+", "-", (title or "policy").lower()).strip("-") or "policy"
    return f"{payer_code}/{drug}"


def chosen_code(form: Form) -> str:
    """The code typed on the policy form, else the one suggested from its payer and title
    (empty while no payer is chosen)."""
    typed = (form.code.data or "").strip()
    if typed or form.payer.data is None:
        return typed
    return suggested_policy_code(form.payer.data.code, form.title.data)


class PolicyAggregateView(SecureModelView):
    """A view of the policy aggregate: its saves are policies-service writes."""

    def _committed(self, form: Form, write: Callable[[], T]) -> T | None:
        """Run a policies-service write and commit; on an error roll back, show it on the
        form's fields (or as the view's error) and return None."""
        try:
            result = write()
            db.session.commit()
        except Invalid as exc:
            db.session.rollback()
            if show_errors(form, exc):
                flash(CORRECT_FIELDS_MESSAGE, "error")
            return None
        except DomainError as exc:
            db.session.rollback()
            flash(exc.detail, "error")
            return None
        except SQLAlchemyError as exc:
            db.session.rollback()
            self.handle_view_exception(exc)
            return None
        return result


class PolicyView(PolicyAggregateView):
    """A payer's policy for one drug family; its versions carry the criteria."""

    column_list = ["code", "payer", "title", "hcpcs", "versions"]
    column_searchable_list = ["code", "title"]
    column_filters = ["payer.code"]
    column_labels = {"payer.code": "Payer", "hcpcs": "HCPCS"}
    column_formatters = {"versions": versions_link, "hcpcs": policy_codes}
    column_formatters_export = {"versions": lambda _v, _c, m, _n: len(m.versions),
                                "hcpcs": policy_codes}
    column_default_sort = "code"
    form_columns = ["payer", "title", "code"]
    form_args = {
        "code": {"validators": [Optional()],
                 "description": "How checks, imports and the history name this policy: the "
                                "payer's code and the drug, e.g. ACME/infliximab. Left empty, "
                                "it is made from the payer and the title."},
        "payer": {"validators": [DataRequired("Choose the payer.")]},
        "title": {"description": "The drug or family the policy covers, e.g. Infliximab."},
    }
    form_widget_args = {"code": {"placeholder": "suggested from the payer and the title"}}
    unique_checks = {"code": policies.code_errors}

    def scaffold_form(self) -> type[Form]:
        """The form, whose payer starts unchosen (a preselected first payer was saved
        unnoticed) and whose code may be left empty."""
        form_class = super().scaffold_form()
        form_class.payer.kwargs.update(allow_blank=True, blank_text="Choose a payer")
        # The column is NOT NULL, so Flask-Admin marks the field required and the browser
        # refused an empty code: left empty, the suggested code is filled in.
        code_validators = form_class.code.kwargs["validators"]
        code_validators[:] = [v for v in code_validators if not isinstance(v, InputRequired)]
        return form_class

    def unique_value(self, form: Form, name: str) -> str:
        """The code checked is the one saved: typed, else suggested."""
        return chosen_code(form) if name == "code" else super().unique_value(form, name)

    def get_create_form(self) -> type[Form]:
        """The new policy form: the policy's fields and its first version's, one page."""
        base = super().get_create_form()

        class NewPolicyForm(base):  # type: ignore[valid-type, misc]
            # Required, like the payer and the date: the form marks it, the browser asks.
            hcpcs = CommaListField("HCPCS codes", upper=True,
                                   validators=[InputRequired(HCPCS_REQUIRED)],
                                   description="The drugs the first version covers, "
                                               "comma-separated, e.g. J1745, Q5103.")
            covered_diagnoses = CommaListField(
                "Covered diagnoses (ICD-10-CM codes or families)", upper=True,
                description="Comma-separated, e.g. M05, M06; empty: any diagnosis.")
            effective_from = DateField("Effective from", widget=DateInput(),
                                       validators=[DataRequired(EFFECTIVE_FROM_REQUIRED)])
            effective_to = DateField("Effective to", widget=DateInput(),
                                     validators=[Optional()],
                                     description="Empty: open-ended.")
            prior_auth_required = BooleanField("Prior authorization required", default=True)
            source = StringField("Source", validators=[Optional(), Length(max=1000)],
                                 description="Where the payer publishes the policy (a URL).")
            notes = TextAreaField("Notes", validators=[Optional(), Length(max=4000)])

        return NewPolicyForm

    def check_form(self, form: Form) -> dict[str, str]:
        """On the new policy form, the first version's rules (the code: ``unique_checks``)."""
        return first_version_errors(form) if getattr(form, "hcpcs", None) is not None else {}

    def create_model(self, form: Form) -> Policy | bool:
        """Create the policy and its first draft version through the policies service, in
        one transaction: on any error nothing is written and the fields say why."""
        policy = self._committed(form, lambda: policies.create_policy(
            form.payer.data, chosen_code(form), form.title.data or None,
            first_version_values(form)))
        if policy is None:
            return False
        self.after_model_change(form, policy, True)
        return policy

    def save_once(self, form: Form, model: Policy) -> bool:
        """Edit through the policies service, as the import does: its checks, a new payer's
        indexed codes, the change history and the policy revision. An emptied code gets the
        suggested one."""
        saved = self._committed(form, lambda: policies.update_policy(model, {
            "payer": form.payer.data, "code": chosen_code(form),
            "title": form.title.data or None}) or True)
        if saved is None:
            return False
        self.after_model_change(form, model, False)
        return True

    def get_save_return_url(self, model: Any, is_created: bool = False) -> str:
        """After a new policy, open its first version's rules: cases and activation are
        there."""
        if is_created and request.form.get("_add_another") is None \
                and request.form.get("_continue_editing") is None and model.versions:
            return url_for("policyversion.lifecycle_view", id=model.versions[0].id)
        return super().get_save_return_url(model, is_created)

    def search_placeholder(self) -> str:
        """Say what the search box finds."""
        return "Code, title, HCPCS code or drug name"

    def _apply_search(self, query: Any, count_query: Any, joins: Any, count_joins: Any,
                      search: str) -> tuple[Any, Any, Any, Any]:
        """Code or title, or a drug any version covers (J1745, remicade, infliximab)."""
        query, count_query = search_with_drugs(
            query, count_query, search,
            lambda like: or_(Policy.code.ilike(like), Policy.title.ilike(like)), Policy.id,
            lambda ids: select(PolicyVersion.policy_id).where(PolicyVersion.id.in_(ids)))
        return query, count_query, joins, count_joins


class StepInline(InlineFormAdmin):
    """One step-therapy step, edited on its policy version's page."""

    form_columns = ["id", "any_of", "count", "min_days", "accepted_outcomes"]
    form_overrides = {"any_of": CommaListField, "accepted_outcomes": MultiChoiceField}
    form_args = {
        "any_of": {"label": "Any of (drugs or classes, comma-separated)"},
        "accepted_outcomes": {"vocabulary": STEP_OUTCOMES},
    }


def rule_in_words(label: str) -> Callable[..., str]:
    """Column formatter: one line of the version's rules in words (``Step therapy``...)."""

    def formatter(_view: Any, _context: Any, model: Any, _name: str) -> str:
        return dict(policy_review.rules_in_words(model))[label]

    return formatter


def documentation_in_words(_view: Any, _context: Any, model: Any, _name: str) -> str:
    """Column formatter: the documentation checklist, each item with its code and age limit."""
    return "; ".join(policy_review.documentation_words(model.documentation_required or [])) \
        or "none listed"


# The details page: the rules in words; "Version" is the version number (the row's edit
# counter, also a column named version, stays out of sight).
DETAILS_IN_WORDS = {"steps": "Step therapy", "dose_limit": "Dose limit",
                    "min_days_between_doses": "Interval", "age_limits": "Age"}


class PolicyVersionView(PolicyAggregateView):
    """Effective-dated criteria of a policy; retired versions stay read-only."""

    column_list = ["policy", "number", "status", "effective_from", "effective_to", "hcpcs",
                   "covered_diagnoses", "preferred_products", "sites_of_care",
                   "prior_auth_required", "source", "lifecycle", "history"]
    column_searchable_list = ["policy.code", "source"]
    column_filters = ["policy.code", "policy.payer.code", "status", "effective_from",
                      "effective_to", "prior_auth_required"]
    column_labels = {"policy.code": "Policy code", "policy.payer.code": "Payer",
                     "hcpcs": "HCPCS", "number": "Version", "history": "History",
                     "lifecycle": "Lifecycle", **DETAILS_IN_WORDS,
                     "documentation_required": "Documentation",
                     "new_starts_only_lookback_days": "New starts only: look-back (days)",
                     "approval_days": "Approval length (days)"}
    column_formatters = {"source": external_link, "history": history_link,
                         "lifecycle": lifecycle_link,
                         **{name: join_list for name in LIST_COLUMNS}}
    column_formatters_export = {name: join_list for name in LIST_COLUMNS}
    column_details_list = ["policy", "number", "status", "effective_from", "effective_to",
                           "hcpcs", "prior_auth_required", "covered_diagnoses",
                           "preferred_products", "sites_of_care", *DETAILS_IN_WORDS,
                           "documentation_required", "drug_supply", "prescriber_specialties",
                           "new_starts_only_lookback_days", "approval_days", "source", "notes",
                           "lifecycle", "history"]
    column_formatters_detail = {
        **column_formatters, "prescriber_specialties": join_list,
        **{name: rule_in_words(label) for name, label in DETAILS_IN_WORDS.items()},
        "documentation_required": documentation_in_words}
    column_default_sort = [("policy.code", False), ("effective_from", True)]
    column_export_exclude_list = ["history", "lifecycle"]
    # Status changes only by activation (services.policies), never by a form field. Test
    # cases are kept on the version's "Rules, cases, impact" page, by name and expectation;
    # the form's generated select listed every case of the store as "<PolicyCase 7>".
    form_excluded_columns = ["version", "number", "codes", "status", "cases"]
    form_overrides = {"hcpcs": CommaListField, "covered_diagnoses": CommaListField,
                      "preferred_products": CommaListField, "documentation_required":
                      DocumentationListField, "sites_of_care": MultiChoiceField,
                      "prescriber_specialties": CommaListField}
    form_choices = {"drug_supply": options(POLICY_DRUG_SUPPLIES)}
    form_args = {
        # Required, as on the new policy form: marked, and asked by the browser.
        "hcpcs": {"label": "HCPCS codes", "upper": True,
                  "validators": [InputRequired(HCPCS_REQUIRED)]},
        "covered_diagnoses": {"label": "Covered diagnoses (ICD-10-CM codes or families)",
                              "upper": True},
        "preferred_products": {"label": "Preferred products (HCPCS)", "upper": True},
        "sites_of_care": {"vocabulary": SITES_OF_CARE},
        "drug_supply": {"label": "Drug supply",
                        "description": "specialty pharmacy: the payer requires the drug from a "
                                       "specialty pharmacy; the practice bills only the "
                                       "administration."},
        "prescriber_specialties": {"label": "Prescriber specialties (comma-separated)",
                                   "description": "e.g. rheumatology; empty: any prescriber."},
        "documentation_required": {
            "label": "Documentation checklist",
            "description": "One item a line: CODE | label | max age in days (optional), "
                           "e.g. TB_SCREENING | TB screening within 12 months | 365"},
    }
    inline_models = [StepInline(StepTherapyStep)]

    def search_placeholder(self) -> str:
        """Say what the search box finds."""
        return "Policy code, source, HCPCS code or drug name"

    def _apply_search(self, query: Any, count_query: Any, joins: Any, count_joins: Any,
                      search: str) -> tuple[Any, Any, Any, Any]:
        """Policy code or source, or a drug the version covers (J1745, remicade)."""
        query, count_query = search_with_drugs(
            query, count_query, search,
            lambda like: or_(PolicyVersion.source.ilike(like), PolicyVersion.policy_id.in_(
                select(Policy.id).where(Policy.code.ilike(like)))),
            PolicyVersion.id, lambda ids: ids)
        return query, count_query, joins, count_joins

    def create_form(self, obj: Any = None) -> Form:
        """The new version form; ``?policy=`` (a policy just created) chooses its policy."""
        form = super().create_form(obj)
        policy_id = request.args.get("policy", type=int)
        if request.method == "GET" and policy_id is not None and hasattr(form, "policy"):
            form.policy.data = db.session.get(Policy, policy_id)
        return form

    def edit_form(self, obj: Any = None) -> Form:
        """A version stays with the policy it was created under: its number counts within that
        policy, and the import and API never move one. The edit form leaves the policy out."""
        form = super().edit_form(obj)
        if hasattr(form, "policy"):
            del form.policy
        return form

    def check_form(self, form: Form) -> dict[str, str]:
        """The import's rules (codes, date order, limits, steps), and at least one drug."""
        if getattr(form, "hcpcs", None) is None:
            return policy_version_errors(form)
        return first_version_errors(form)

    def create_model(self, form: Form) -> PolicyVersion | bool:
        """Add the version through the policies service, as the import and the API do: a
        draft numbered after the policy's last version; on any error nothing is written and
        the fields say why."""
        version = self._committed(form, lambda: policies.create_version(
            form.policy.data, {**version_values(form), "status": DRAFT}))
        if version is None:
            return False
        self.after_model_change(form, version, True)
        return version

    def save_once(self, form: Form, model: PolicyVersion) -> bool:
        """Edit the draft through the policies service, as the API's PATCH does: its checks,
        its step numbering and the change history."""
        saved = self._committed(
            form, lambda: policies.update_version(model, version_values(form)) or True)
        if saved is None:
            return False
        self.after_model_change(form, model, False)
        return True

    @expose("/edit/", methods=("GET", "POST"))
    def edit_view(self) -> Any:
        """Active and retired versions are shown read-only: only drafts are edited."""
        record = self.get_one(request.args.get("id", ""))
        if record is not None and is_locked(record):
            flash(locked_message(record), "info")
            return redirect(url_for(".details_view", id=record.id))
        return super().edit_view()

    @expose("/lifecycle/")
    def lifecycle_view(self) -> Any:
        """The rules in words, the test cases' results, the impact and the activation form."""
        version = self.get_one(request.args.get("id", ""))
        if version is None:
            abort(404)
        previous = policy_review.predecessor(version)
        return self.render(
            "admin/policy_lifecycle.html", version=version,
            words=policy_review.rules_in_words(version),
            tested=policy_review.run_cases(version),
            impact=policy_review.impact(version) if version.status == DRAFT else None,
            previous=previous,
            changes=policy_review.diff(previous, version) if previous is not None else [],
            can_edit=self.can_edit)

    @expose("/new-draft/", methods=("POST",))
    def new_draft_view(self) -> Any:
        """Copy the newest version of this version's policy into a draft, then edit it."""
        version = self.get_one(request.args.get("id", ""))
        if version is None:
            abort(404)
        try:
            draft = policies.new_draft(version.policy, {})
        except DomainError as exc:
            db.session.rollback()
            flash(exc.detail, "error")
            return redirect(url_for(".lifecycle_view", id=version.id))
        db.session.commit()
        flash(f"Draft version {draft.number} created from the newest version.", "success")
        return redirect(url_for(".edit_view", id=draft.id))

    @expose("/activate/", methods=("POST",))
    def activate_view(self) -> Any:
        """Activate a draft after the coordinator confirmed the impact shown to them."""
        version = self.get_one(request.args.get("id", ""))
        if version is None:
            abort(404)
        if request.form.get("confirm") != "yes":
            flash("Tick the confirmation to activate.", "error")
            return redirect(url_for(".lifecycle_view", id=version.id))
        try:
            result = policies.activate(version)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.detail, "error")
            return redirect(url_for(".lifecycle_view", id=version.id))
        db.session.commit()
        flash(f"Version {version.number} is active from {version.effective_from}; "
              f"{len(result.impact['changed'])} appointment(s) changed.", "success")
        return redirect(url_for(".lifecycle_view", id=version.id))

    def update_model(self, form: Form, model: Any) -> bool:
        """Refuse every write to an active or retired version (the service's lock)."""
        if is_locked(model):
            flash(locked_message(model), "error")
            return False
        return super().update_model(form, model)


def show_errors(form: Form, exc: Invalid) -> bool:
    """Put each of the service's messages on the field it names (at the top if none); return
    whether any field was marked."""
    marked = False
    for error in exc.errors:
        field = getattr(form, error["field"], None)
        if field is None:
            flash(f"{error['field']}: {error['message']}", "error")
        else:
            field.errors = [*field.errors, error["message"]]
            marked = True
    return marked


def first_version_errors(form: Form) -> dict[str, str]:
    """The version form's rules (codes, date order) and at least one HCPCS code."""
    errors = policy_version_errors(form)
    # A field whose own check already said it is empty is not told twice.
    if not errors.get("hcpcs") and not form.hcpcs.errors:
        missing = hcpcs_errors({"hcpcs": value_list(form, "hcpcs")}, creating=True)
        errors.update({name: " ".join(messages) for name, messages in missing.items()})
    return errors


def first_version_values(form: Form) -> dict[str, Any]:
    """The new policy form's first version in bundle shape, as the service takes it."""
    return {"hcpcs": value_list(form, "hcpcs"),
            "covered_diagnoses": [normalise_code(c) for c in value_list(form,
                                                                          "covered_diagnoses")],
            "effective_from": form.effective_from.data,
            "effective_to": form.effective_to.data,
            "prior_auth_required": bool(form.prior_auth_required.data),
            "source": (form.source.data or "").strip() or None,
            "notes": (form.notes.data or "").strip() or None}


def version_values(form: Form) -> dict[str, Any]:
    """The version form in bundle shape, as the service takes it: codes as they are stored,
    ``max_dose`` nested and the step rows left on the form (test cases are not on it)."""
    submitted = form_values(form, POLICY_VERSION_FIELDS)
    values = {name: submitted[name] for name in policies.DRAFT_FIELDS if name in submitted}
    values["covered_diagnoses"] = [normalise_code(c)
                                   for c in values.get("covered_diagnoses") or []]
    values["prescriber_specialties"] = [normalise_specialty(s)
                                        for s in values.get("prescriber_specialties") or []]
    values["step_therapy"] = step_values(form.steps)
    return values


def step_values(steps: Any) -> list[dict[str, Any]]:
    """The step rows of the form in their order, those ticked for deletion left out; a
    number left empty takes the step's default."""
    return [{name: row.form[name].data for name in STEP_ATTRS
             if row.form[name].data is not None}
            for row in steps if not steps.should_delete(row)]


def value_list(form: Form, name: str) -> list[Any]:
    """Return the submitted list of ``name`` (empty when missing)."""
    field = getattr(form, name, None)
    return list(field.data or []) if field is not None else []
