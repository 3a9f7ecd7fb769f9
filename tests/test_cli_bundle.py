"""The import, export and seed commands: summaries, exit codes, authors, all-or-nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from policy_service.models import ChangeRecord, Drug, Payer
from policy_service.services.bundle import (
    bundle_files,
    export_bundle,
    import_bundle,
    import_files,
    seed_directory,
)
from tests.test_bundle import HAND_WRITTEN, RECORD_COUNT


def _count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def bundle_file(tmp_path: Path) -> Path:
    """The hand-written bundle saved as YAML."""
    path = tmp_path / "bundle.yaml"
    path.write_text(yaml.safe_dump(HAND_WRITTEN, sort_keys=False))
    return path


def test_import_prints_a_summary_then_no_changes(runner: FlaskCliRunner, session: Session,
                                                 bundle_file: Path) -> None:
    first = runner.invoke(args=["import", str(bundle_file)])
    assert first.exit_code == 0, first.output
    assert "created" in first.output and "unchanged" in first.output
    assert any(line.split() == ["policies", "3", "0", "0"] for line in first.output.splitlines())
    assert "No changes." not in first.output

    second = runner.invoke(args=["import", str(bundle_file)])
    assert second.exit_code == 0, second.output
    assert any(line.split() == ["payers", "0", "0", "2"] for line in second.output.splitlines())
    assert "No changes." in second.output


def test_import_records_the_system_as_author(runner: FlaskCliRunner, session: Session,
                                             bundle_file: Path) -> None:
    result = runner.invoke(args=["import", str(bundle_file)])
    assert result.exit_code == 0, result.output
    actors = session.scalars(select(ChangeRecord.actor)).all()
    assert len(actors) == RECORD_COUNT
    assert set(actors) == {"system"}


def test_import_as_a_user_records_that_user(runner: FlaskCliRunner, session: Session,
                                            make_user: Any, bundle_file: Path) -> None:
    make_user("coordinator", email="coord@example.org")
    result = runner.invoke(args=["import", str(bundle_file), "--as", "coord@example.org"])
    assert result.exit_code == 0, result.output
    assert set(session.scalars(select(ChangeRecord.actor))) == {"coord@example.org"}


@pytest.mark.parametrize(("email", "role", "message"), [
    ("nobody@example.org", None, "No user nobody@example.org"),
    ("sched@example.org", "scheduler", "may not edit policy data"),
])
def test_import_as_someone_who_may_not_edit_fails(
        runner: FlaskCliRunner, session: Session, make_user: Any, bundle_file: Path,
        email: str, role: str | None, message: str) -> None:
    if role:
        make_user(role, email=email)
    result = runner.invoke(args=["import", str(bundle_file), "--as", email])
    assert result.exit_code == 1
    assert message in result.output
    assert _count(session, Payer) == 0


def test_bad_bundle_exits_1_names_every_error_and_writes_nothing(
        runner: FlaskCliRunner, session: Session, tmp_path: Path) -> None:
    bad = copy.deepcopy(HAND_WRITTEN)
    bad["drugs"][1]["packages"][0]["amount"] = -100
    bad["authorizations"][0]["payer"] = "NOPE"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))

    result = runner.invoke(args=["import", str(path)])

    assert result.exit_code == 1
    assert "Nothing was written." in result.output
    assert "drugs[1].packages[0].amount: Must be greater than 0." in result.output
    assert "authorizations[0].payer: Unknown payer 'NOPE'" in result.output
    assert _count(session, Payer) == 0
    assert _count(session, ChangeRecord) == 0


def test_malformed_file_exits_1_with_line_and_column(
        runner: FlaskCliRunner, session: Session, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "payers": [\n    {"id": "X",,}\n  ]\n}')
    result = runner.invoke(args=["import", str(path)])
    assert result.exit_code == 1
    assert "broken.json is not valid JSON" in result.output
    assert "(file): Malformed JSON at line 3, column 16" in result.output


def test_missing_file_exits_with_an_error(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["import", str(tmp_path / "absent.yaml")])
    assert result.exit_code != 0
    assert "does not exist" in result.output


@pytest.mark.parametrize("name", ["export.json", "export.yaml", "export.yml"])
def test_export_writes_a_bundle_that_imports_back_unchanged(
        runner: FlaskCliRunner, session: Session, bundle_file: Path, tmp_path: Path,
        name: str) -> None:
    assert runner.invoke(args=["import", str(bundle_file)]).exit_code == 0
    target = tmp_path / name
    result = runner.invoke(args=["export", str(target)])
    assert result.exit_code == 0, result.output
    assert "3 policies" in result.output
    text = target.read_text()
    data = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    assert [p["id"] for p in data["payers"]] == ["ACME", "MEDICARE-B"]

    again = runner.invoke(args=["import", str(target)])
    assert again.exit_code == 0, again.output
    assert "No changes." in again.output


def _write_seed(directory: Path) -> None:
    reference = {"payers": HAND_WRITTEN["payers"], "drugs": HAND_WRITTEN["drugs"]}
    rest = {kind: HAND_WRITTEN[kind] for kind in ("policies", "patients", "authorizations")}
    (directory / "reference.yaml").write_text(yaml.safe_dump(reference, sort_keys=False))
    (directory / "policies.json").write_text(json.dumps(rest))
    (directory / "README.txt").write_text("not a bundle")


def test_seed_loads_every_file_once_as_system(
        runner: FlaskCliRunner, session: Session, tmp_path: Path) -> None:
    _write_seed(tmp_path)
    first = runner.invoke(args=["seed", "--path", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert "policies.json, reference.yaml" in first.output
    assert _count(session, Drug) == 2
    assert set(session.scalars(select(ChangeRecord.actor))) == {"system"}

    second = runner.invoke(args=["seed", "--path", str(tmp_path)])
    assert second.exit_code == 0, second.output
    assert "No changes." in second.output


def test_seed_with_one_bad_file_writes_nothing_and_names_it(
        runner: FlaskCliRunner, session: Session, tmp_path: Path) -> None:
    _write_seed(tmp_path)
    rest = json.loads((tmp_path / "policies.json").read_text())
    rest["policies"][1]["covered_diagnoses"][0] = "M99.999"
    (tmp_path / "policies.json").write_text(json.dumps(rest))

    result = runner.invoke(args=["seed", "--path", str(tmp_path)])

    assert result.exit_code == 1
    assert "policies.json: policies[1].covered_diagnoses[0]" in result.output
    assert _count(session, Payer) == 0


def test_seed_of_an_empty_folder_fails(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["seed", "--path", str(tmp_path)])
    assert result.exit_code == 1
    assert "No bundle files" in result.output


def test_shipped_seed_data_loads_idempotently(runner: FlaskCliRunner, session: Session) -> None:
    assert bundle_files(seed_directory()), "seed_data/ ships no bundle files"
    result = runner.invoke(args=["seed"])
    assert result.exit_code == 0, result.output
    assert _count(session, Payer) > 0
    again = runner.invoke(args=["seed"])
    assert again.exit_code == 0, again.output
    assert "No changes." in again.output


def test_shipped_seed_data_round_trips_exactly(session: Session) -> None:
    empty = session.begin_nested()
    import_files(bundle_files(seed_directory()), "system")
    first = export_bundle()
    empty.rollback()
    assert _count(session, Payer) == 0

    import_bundle(copy.deepcopy(first), "system")
    assert export_bundle() == first
