"""Payers with their billing settings; drugs with billing unit and packages."""

from __future__ import annotations

from typing import Any

from flask_admin.model.form import InlineFormAdmin
from wtforms import Form

from admin.checks import drug_errors, number_positions, payer_errors
from admin.fields import CommaListField, options
from admin.security import SecureModelView, external_link, history_link
from policy_service.models import PAYER_KINDS, DrugPackage
from policy_service.services.drugs import hcpcs_taken_errors
from policy_service.services.payers import code_errors, external_id_conflicts


class PayerView(SecureModelView):
    """Payers and the billing settings their claims must follow."""

    column_list = ["code", "name", "kind", "external_ids", "requires_jw_jz", "requires_ndc",
                   "timely_filing_days", "complex_admin_for_biologics", "history"]
    column_searchable_list = ["code", "name"]
    column_filters = ["kind", "requires_jw_jz", "requires_ndc", "complex_admin_for_biologics"]
    column_labels = {"requires_jw_jz": "JW/JZ required", "requires_ndc": "NDC required",
                     "complex_admin_for_biologics": "Biologics as complex admin (96413)",
                     "external_ids": "External ids (payer ids)", "history": "History"}
    column_descriptions = {"external_ids": "How claims and EHRs name this payer: the payer id "
                                           "in NM1*PR of 837/835 files, CDS Hooks payor ids."}
    column_formatters = {"history": history_link,
                         "external_ids": lambda _v, _c, m, _n: ", ".join(m.external_ids or [])}
    column_default_sort = "code"
    form_choices = {"kind": options(PAYER_KINDS)}
    form_overrides = {"external_ids": CommaListField}
    form_args = {"external_ids": {"label": "External ids (payer ids)",
                                  "description": "Comma-separated, e.g. 87726, 60054."}}
    unique_checks = {"code": code_errors}

    def check_form(self, form: Form) -> dict[str, str]:
        """The import's rules for a payer (filing limit, external ids naming one payer)."""
        errors = payer_errors(form)
        code = (form.code.data or "").strip() if hasattr(form, "code") else ""
        if "external_ids" not in errors and code:
            conflicts = external_id_conflicts({code: form.external_ids.data or []})
            if conflicts.get(code):
                errors["external_ids"] = " ".join(conflicts[code])
        return errors


class PackageInline(InlineFormAdmin):
    """The package sizes a drug comes in, edited on the drug's page."""

    form_columns = ["id", "amount", "unit", "single_dose", "ndc"]


class DrugView(SecureModelView):
    """Drugs: HCPCS code, billing unit, biosimilar reference and package sizes."""

    column_list = ["hcpcs", "name", "generic", "biosimilar_of", "billing_unit_amount",
                   "billing_unit", "route", "admin_class", "mue_units", "rxnorm", "packages",
                   "source", "history"]
    column_searchable_list = ["hcpcs", "name", "generic"]
    column_filters = ["generic", "biosimilar_of", "route", "admin_class"]
    column_labels = {"hcpcs": "HCPCS", "billing_unit_amount": "Billing unit amount",
                     "mue_units": "MUE units", "rxnorm": "RxNorm", "history": "History"}
    column_formatters = {"history": history_link, "source": external_link,
                         "packages": lambda _v, _c, m, _n: ", ".join(str(p) for p in m.packages)}
    column_formatters_export = {"packages": lambda _v, _c, m, _n: ", ".join(
        str(p) for p in m.packages)}
    column_default_sort = "hcpcs"
    form_excluded_columns = ["version"]
    form_overrides = {"rxnorm": CommaListField}
    form_args = {"rxnorm": {"label": "RxNorm codes (RXCUI, comma-separated)"}}
    inline_models = [PackageInline(DrugPackage)]
    unique_checks = {"hcpcs": hcpcs_taken_errors}

    def check_form(self, form: Form) -> dict[str, str]:
        """The import's rules: codes, dates in order, amounts positive, packages."""
        return drug_errors(form)

    def on_model_change(self, form: Form, model: Any, is_created: bool) -> None:
        """HCPCS codes are stored upper-case, as payers print them."""
        model.hcpcs = (model.hcpcs or "").strip().upper()
        model.biosimilar_of = (model.biosimilar_of or "").strip().upper() or None
        number_positions(model.packages)
