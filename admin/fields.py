"""Form fields for the JSON list columns people edit as text or pick from a list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wtforms import SelectChoice, SelectMultipleField, StringField, TextAreaField

from policy_service.domain.documentation import code_for_label, documentation_item


@dataclass
class Option(SelectChoice):
    """A select option that WTForms 3.3 accepts without a deprecation warning and that
    Flask-Admin's Select2 and inline-edit widgets can read (they unpack ``(value, label)``
    and read ``.name``)."""

    def __iter__(self) -> Any:
        return iter((self.value, self.label))

    @property
    def name(self) -> str:
        """The label, under the attribute name Flask-Admin's Select2Field reads."""
        return self.label


def options(vocabulary: tuple[str, ...], blank: bool = False) -> list[Option]:
    """Return select options for ``vocabulary``, labelled without underscores."""
    choices = [Option(value, value.replace("_", " ")) for value in vocabulary]
    return [Option("", ""), *choices] if blank else choices


class CommaListField(StringField):
    """A list of short codes edited as comma-separated text (``M05, M06, L40.5``)."""

    def __init__(self, *args: Any, upper: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.upper = upper

    def _value(self) -> str:
        if isinstance(self.data, str):
            return self.data
        return ", ".join(str(item) for item in self.data or [])

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Split the submitted text on commas; blanks are dropped, order and case kept."""
        if not valuelist:
            self.data = []
            return
        items = [part.strip() for part in str(valuelist[0]).replace("\n", ",").split(",")]
        self.data = [item.upper() if self.upper else item for item in items if item]

    def process_data(self, value: Any) -> None:
        """Start from the stored list (None becomes an empty list)."""
        self.data = list(value or [])


class MultiChoiceField(SelectMultipleField):
    """A list column whose items come from a fixed vocabulary (sites of care, outcomes)."""

    def __init__(self, *args: Any, vocabulary: tuple[str, ...] = (), **kwargs: Any) -> None:
        kwargs.setdefault("choices", options(vocabulary))
        super().__init__(*args, **kwargs)

    def process_data(self, value: Any) -> None:
        """Start from the stored list (None becomes an empty list)."""
        self.data = list(value or [])


class DocumentationListField(TextAreaField):
    """A policy's documentation checklist, one item a line: ``CODE | label | max age in days``.

    ``CODE | label`` has no age limit; a line with a label alone gets a code made from its
    words. An age that is not a whole number is kept as typed, so the shared validator names it.
    """

    def _value(self) -> str:
        if isinstance(self.data, str):
            return self.data
        lines = []
        for value in self.data or []:
            item = documentation_item(value)
            parts = [item.code, item.label]
            if item.max_age_days is not None:
                parts.append(str(item.max_age_days))
            lines.append(" | ".join(parts))
        return "\n".join(lines)

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Read one item from each non-blank line."""
        self.data = [parse_documentation_line(line)
                     for line in str(valuelist[0] if valuelist else "").splitlines()
                     if line.strip()]

    def process_data(self, value: Any) -> None:
        """Start from the stored list (None becomes an empty list)."""
        self.data = [documentation_item(v).as_dict() for v in value or []]


def parse_documentation_line(line: str) -> dict[str, Any]:
    """One checklist item from ``CODE | label | days`` (label alone: the code is made up)."""
    parts = [part.strip() for part in line.split("|")]
    if len(parts) == 1:
        return {"code": code_for_label(parts[0]), "label": parts[0], "max_age_days": None}
    code, label, *rest = parts
    # More than three parts leave the extra text in the age, which the validator refuses.
    days: Any = " | ".join(rest)
    if days == "":
        days = None
    elif days.isdigit():
        days = int(days)
    return {"code": code.upper(), "label": label, "max_age_days": days}
