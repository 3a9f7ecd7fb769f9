"""How stored values read on the admin's pages: words, plain numbers, local times, changes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context
from markupsafe import Markup

from policy_service.services.appointments import UnitBalance

# Stored vocabulary values ("hospital_outpatient") shown as words wherever a column holds one.
WORDED_COLUMNS = frozenset({"site_of_care", "sites_of_care", "status", "channel", "kind",
                            "outcome", "action", "entity_type", "decision", "category"})


def units_text(balance: UnitBalance | None) -> str:
    """An authorization's units as used / scheduled / free, in the words every page uses."""
    if balance is None:
        return ""
    if not balance.is_approved:
        return "not approved"
    if balance.approved is None:
        return f"{balance.used} used / {balance.scheduled} scheduled / no unit limit"
    text = f"{balance.used} used / {balance.scheduled} scheduled / {balance.free} free"
    return text + (f" ({balance.short} short)" if balance.short else "")


def word(value: Any) -> str:
    """Return a stored vocabulary value as words (``hospital_outpatient``: hospital outpatient)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(word(item) for item in value)
    return str(value).replace("_", " ")


def plain_number(value: Decimal | float | int) -> str:
    """Return a number without trailing zeros: ``10.000`` -> ``10``, ``2.50`` -> ``2.5``."""
    if isinstance(value, bool):
        return yes_no(value)
    number = Decimal(str(value))
    if number == number.to_integral_value():
        return f"{number.quantize(Decimal(1)):f}"
    return f"{number.normalize():f}"


def yes_no(value: bool) -> str:
    """Return ``Yes`` or ``No``."""
    return "Yes" if value else "No"


def display_zone() -> dt.tzinfo | None:
    """The zone times are shown in: ``DISPLAY_TIMEZONE`` (an IANA name) or the server's own."""
    name = current_app.config.get("DISPLAY_TIMEZONE") if has_app_context() else None
    return ZoneInfo(name) if name else None


def local_minute(value: dt.datetime, zone: dt.tzinfo | None = None) -> str:
    """Return a stored time (naive values are UTC) in local time, to the minute."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    local = value.astimezone(zone if zone is not None else display_zone())
    return local.strftime("%Y-%m-%d %H:%M")


def _shown(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "(none)"
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, int | float | Decimal):
        return plain_number(value)
    if isinstance(value, str):
        # Decimals are stored as text ("10.000"); codes with leading zeros have no point.
        if "." in value and value.replace(".", "", 1).isdigit():
            return plain_number(Decimal(value))
        return value
    if isinstance(value, list):
        return ", ".join(_shown(item) for item in value) or "(none)"
    if isinstance(value, dict):
        # A nested row (a step, a package): its filled-in fields, in words.
        return "(" + "; ".join(f"{key.replace('_', ' ')} {_shown(item)}"
                               for key, item in sorted(value.items())
                               if item not in (None, "", [])) + ")"
    return json.dumps(value, sort_keys=True)


def change_lines(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[str]:
    """Return each changed field as ``field: before -> after``, in field order.

    A record created has no before and one deleted no after; their fields read
    ``field: value`` alone.
    """
    old, new = before or {}, after or {}
    lines = []
    for field in sorted(set(old) | set(new)):
        label = field.replace("_", " ")
        if before is None:
            if new.get(field) not in (None, "", []):
                lines.append(f"{label}: {_shown(new[field])}")
        elif after is None:
            lines.append(f"{label}: {_shown(old.get(field))}")
        elif old.get(field) != new.get(field):
            lines.append(f"{label}: {_shown(old.get(field))} -> {_shown(new.get(field))}")
    return lines


def lines_markup(lines: list[str]) -> Markup:
    """Return lines as an HTML list, or a muted dash when there are none."""
    if not lines:
        return Markup('<span class="text-muted">no change</span>')
    items = Markup("").join(Markup("<li>{}</li>").format(line) for line in lines)
    return Markup('<ul class="change-lines list-unstyled mb-0">{}</ul>').format(items)
