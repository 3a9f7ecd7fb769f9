"""The Rules page: the rules catalogue for every role, so a coordinator can read why a finding
exists (when it fires, why, its source and its example cases) without reading Python."""

from __future__ import annotations

from flask import request
from flask_admin import expose

from admin.scheduler import SEVERITY_TONES
from admin.security import SecurePageView
from policy_service.auth import Permission
from policy_service.catalogue import catalogue
from rulesets import ruleset_names
from rulesets.vocabulary import Category


class RulesView(SecurePageView):
    """Every rule of every ruleset: code, severity, category, condition, why, source, cases."""

    permission = Permission.READ

    @expose("/")
    def index(self) -> str:
        """The catalogue, optionally narrowed to one category or one finding code."""
        category = request.args.get("category", "")
        code = request.args.get("code", "").strip().upper()
        sections = []
        for ruleset, entries in catalogue():
            shown = [entry for entry in entries
                     if (not category or entry.category == category)
                     and (not code or entry.code == code)]
            if shown:
                sections.append((ruleset, shown))
        return self.render("admin/rules.html", sections=sections, category=category, code=code,
                           categories=[c.value for c in Category], rulesets=ruleset_names(),
                           severity_tones=SEVERITY_TONES)
