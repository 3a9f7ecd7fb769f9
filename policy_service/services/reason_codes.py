"""The reason code table: CARC/RARC meanings and the findings that catch their causes early.

The table is data (seed_data/codes/reason_codes.yaml, loaded by ``policy-service seed``); every
finding code it names must be one the rulesets produce, so a renamed finding cannot leave a
mapping pointing at nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from marshmallow import ValidationError
from sqlalchemy import select

from policy_service.errors import Invalid
from policy_service.extensions import db
from policy_service.models import ReasonCode
from policy_service.schemas.remittance import ReasonCodeFileSchema
from rulesets import get_ruleset, ruleset_names

REASON_CODE_FILE = Path("codes") / "reason_codes.yaml"
FIELDS = ("description", "source", "denial", "preventable_by", "why")


def finding_codes() -> frozenset[str]:
    """Every finding code the rulesets produce."""
    return frozenset(code for name in ruleset_names() for code in get_ruleset(name).codes())


def read_reason_code_file(path: Path) -> list[dict[str, Any]]:
    """Parse and validate a reason code file; raise Invalid naming every bad entry."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise Invalid({path.name: [f"Not valid YAML: {exc}"]}) from None
    try:
        loaded: dict[str, Any] = ReasonCodeFileSchema().load(data if data is not None else {})
    except ValidationError as exc:
        raise Invalid({f"{path.name}: {k}": v for k, v in _messages(exc).items()}) from None
    known = finding_codes()
    errors: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    for index, record in enumerate(loaded["reason_codes"]):
        where = f"{path.name}: reason_codes[{index}]"
        key = (record["kind"], record["code"])
        if key in seen:
            errors[f"{where}.code"] = [f"{record['kind']} {record['code']} is listed twice."]
        seen.add(key)
        unknown = [code for code in record["preventable_by"] if code not in known]
        if unknown:
            errors[f"{where}.preventable_by"] = [
                f"{', '.join(unknown)}: not a finding code of this service."]
    if errors:
        raise Invalid(errors)
    return list(loaded["reason_codes"])


def _messages(exc: ValidationError) -> dict[str, Any]:
    return exc.messages if isinstance(exc.messages, dict) else {"(file)": exc.messages}


def load_reason_codes(records: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """Create or update the reason code table from validated records; return the counts."""
    existing = {(r.kind, r.code): r for r in db.session.scalars(select(ReasonCode))}
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for record in records:
        row = existing.get((record["kind"], record["code"]))
        values = {name: record[name] for name in FIELDS}
        if row is None:
            db.session.add(ReasonCode(kind=record["kind"], code=record["code"], **values))
            counts["created"] += 1
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    db.session.flush()
    return counts


@dataclass(frozen=True)
class ReasonTable:
    """The reason codes in memory for one import or one report (never kept between requests)."""

    carcs: Mapping[str, ReasonCode]
    rarcs: Mapping[str, ReasonCode]

    def is_denial(self, carc: str) -> bool:
        """Whether an adjustment with ``carc`` is a denial; a code not in the table counts as
        one, so an unknown reason reaches a biller instead of vanishing."""
        row = self.carcs.get(carc)
        return True if row is None else row.denial

    def description(self, carc: str) -> str:
        """The CARC's description, or a note that the table does not hold it."""
        row = self.carcs.get(carc)
        return row.description if row else f"CARC {carc} (not in the reason code table)"

    def rarc_descriptions(self, rarcs: Sequence[str]) -> dict[str, str]:
        """The known descriptions of ``rarcs``."""
        return {code: self.rarcs[code].description for code in rarcs if code in self.rarcs}

    def preventable_by(self, carc: str, rarcs: Sequence[str]) -> list[str]:
        """The finding codes that catch this denial's cause: its remarks' when they map to any
        (a remark is the more specific reason: 16 with M119 is the NDC), else the CARC's."""
        remarks = [code for rarc in rarcs if rarc in self.rarcs
                   for code in self.rarcs[rarc].preventable_by or []]
        if remarks:
            return list(dict.fromkeys(remarks))
        row = self.carcs.get(carc)
        return list(row.preventable_by or []) if row else []


def reason_table() -> ReasonTable:
    """Read the whole reason code table (a few dozen rows)."""
    rows = list(db.session.scalars(select(ReasonCode)))
    return ReasonTable({r.code: r for r in rows if r.kind == "CARC"},
                       {r.code: r for r in rows if r.kind == "RARC"})
