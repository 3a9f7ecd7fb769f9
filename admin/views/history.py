"""The change history of every record: who, when, what changed, before and after. Read-only."""

from __future__ import annotations

import json
from typing import Any

from flask_admin.contrib.sqla.filters import FilterEqual, FilterLike
from markupsafe import Markup

from admin.display import change_lines, lines_markup
from admin.security import ReadOnlyModelView
from policy_service.models import ChangeRecord


def changed_fields(_view: Any, _context: Any, model: ChangeRecord, _name: str) -> str:
    """Export formatter: the names of the fields this change touched."""
    return ", ".join(model.changed_fields())


def what_changed(_view: Any, _context: Any, model: ChangeRecord, _name: str) -> Markup:
    """Column formatter: each changed field as ``field: before -> after``."""
    return lines_markup(change_lines(model.before, model.after))


def snapshot(_view: Any, _context: Any, model: ChangeRecord, name: str) -> Markup:
    """Details formatter: every field of a snapshot as ``field: value``."""
    data = getattr(model, name)
    if data is None:
        return Markup('<span class="text-muted">none</span>')
    return lines_markup(change_lines(None, data))


def compact_json(_view: Any, _context: Any, model: ChangeRecord, name: str) -> str:
    """Export formatter: a snapshot as one line of JSON."""
    data = getattr(model, name)
    return "" if data is None else json.dumps(data, sort_keys=True)


class ChangeRecordView(ReadOnlyModelView):
    """Every change made to policy data, patients and authorizations, newest first."""

    column_list = ["at", "actor", "action", "entity_type", "entity_key", "changed"]
    column_details_list = ["at", "actor", "action", "entity_type", "entity_key", "changed",
                           "before", "after"]
    column_export_list = ["at", "actor", "action", "entity_type", "entity_key", "changed",
                          "before", "after"]
    column_labels = {"at": "When", "actor": "Who", "entity_type": "Entity type",
                     "entity_key": "Entity key", "changed": "What changed"}
    column_searchable_list = ["entity_key", "actor"]
    column_filters = [
        FilterEqual(ChangeRecord.entity_type, "Entity type",
                    options=[(k, k) for k in ("payer", "drug", "policy", "patient",
                                              "authorization", "appointment", "provider")]),
        FilterEqual(ChangeRecord.entity_key, "Entity key"),
        FilterLike(ChangeRecord.entity_key, "Entity key"),
        "actor",
        "action",
        "at",
    ]
    column_formatters = {"changed": what_changed}
    column_formatters_detail = {"changed": what_changed, "before": snapshot,
                                "after": snapshot}
    column_formatters_export = {"changed": changed_fields, "before": compact_json,
                                "after": compact_json}
    column_default_sort = ("at", True)
