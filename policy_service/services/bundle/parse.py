"""Reading bundles: JSON or YAML text and files into plain data, with positions on errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from policy_service.errors import Invalid
from policy_service.schemas.bundle import (
    BUNDLE_KINDS,
)

BUNDLE_SUFFIXES = (".yaml", ".yml", ".json")


class _BundleYamlLoader(yaml.SafeLoader):
    """Safe YAML without implicit timestamps: dates stay text so JSON and YAML load alike."""


_BundleYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _file_error(message: str, detail: str) -> Invalid:
    return Invalid([{"field": "(file)", "message": message}], detail=detail)


def parse_bundle_text(text: str, filename: str = "bundle") -> dict[str, Any]:
    """Parse a JSON or YAML bundle (by extension, else by content); raise Invalid with position."""
    suffix = Path(filename).suffix.lower()
    if suffix == ".json":
        is_json = True
    elif suffix in (".yaml", ".yml"):
        is_json = False
    else:
        is_json = text.lstrip().startswith(("{", "["))
    if is_json:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _file_error(
                f"Malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                f"{filename} is not valid JSON",
            ) from exc
    else:
        try:
            data = yaml.load(text, Loader=_BundleYamlLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise _file_error(_yaml_message(exc), f"{filename} is not valid YAML") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _file_error(
            f"A bundle must be a mapping with any of: {', '.join(BUNDLE_KINDS)}.",
            f"{filename} is not a bundle",
        )
    return data


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    reason = f"{problem} ({context})" if context else problem
    if mark is None:
        return f"Malformed YAML: {reason}"
    # PyYAML marks count from zero; editors count from one.
    return f"Malformed YAML at line {mark.line + 1}, column {mark.column + 1}: {reason}"


def read_bundle_file(path: Path) -> dict[str, Any]:
    """Read and parse one bundle file."""
    return parse_bundle_text(path.read_text(encoding="utf-8"), path.name)


def seed_directory() -> Path:
    """Return the seed_data/ folder shipped at the top of the repository."""
    return Path(__file__).resolve().parents[3] / "seed_data"


def bundle_files(directory: Path) -> list[Path]:
    """Return the bundle files of ``directory`` in name order."""
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and p.suffix.lower() in BUNDLE_SUFFIXES)


_PATH = re.compile(r"^(?P<kind>[a-z_]+)\[(?P<index>\d+)\](?P<rest>.*)$")


def merge_bundle_files(paths: Sequence[Path]) -> tuple[dict[str, list[Any]], Callable[[str], str]]:
    """Concatenate several bundle files into one; return it and a mapper from merged paths
    back to ``file: kind[i]...`` paths for error messages."""
    merged: dict[str, list[Any]] = {kind: [] for kind in BUNDLE_KINDS}
    origins: dict[str, list[tuple[int, int, str]]] = {kind: [] for kind in BUNDLE_KINDS}
    errors: list[dict[str, str]] = []
    for path in paths:
        try:
            data = read_bundle_file(path)
        except Invalid as exc:
            errors.extend({"field": f"{path.name}: {e['field']}", "message": e["message"]}
                          for e in exc.errors)
            continue
        for key, value in data.items():
            if key not in BUNDLE_KINDS:
                errors.append({"field": f"{path.name}: {key}", "message": "Unknown field."})
            elif value is not None and not isinstance(value, list):
                errors.append({"field": f"{path.name}: {key}", "message": "Not a valid list."})
            elif value:
                origins[key].append((len(merged[key]), len(value), path.name))
                merged[key].extend(value)
    if errors:
        raise Invalid(errors)

    def origin(field: str) -> str:
        match = _PATH.match(field)
        if not match or match["kind"] not in origins:
            return field
        index = int(match["index"])
        for start, count, name in origins[match["kind"]]:
            if start <= index < start + count:
                return f"{name}: {match['kind']}[{index - start}]{match['rest']}"
        return field

    return merged, origin


