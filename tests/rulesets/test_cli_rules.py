"""policy-service rules: the catalogue on the command line, as text and as JSON."""

from __future__ import annotations

import json

from flask.testing import FlaskCliRunner

from rulesets import get_ruleset, ruleset_names


def test_text_catalogue_names_every_rule_with_its_reason(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["rules"])
    assert result.exit_code == 0, result.output
    for name in ruleset_names():
        ruleset = get_ruleset(name)
        assert ruleset.title in result.output
        for rule in ruleset.rules:
            if rule.code:
                assert f"{rule.code}  [{rule.severity}, {rule.category}]  rule {rule.name}" \
                    in result.output
    assert "Why:       Units above the MUE deny every unit of the line (MUE)." in result.output
    assert "Fires: 76942 with 20610 (" in result.output


def test_json_catalogue_of_one_ruleset(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["rules", "--ruleset", "eligibility", "--format", "json"])
    assert result.exit_code == 0, result.output
    [section] = json.loads(result.output)
    assert section["ruleset"] == "eligibility"
    by_name = {rule["name"]: rule for rule in section["rules"]}
    assert set(by_name) == {r.name for r in get_ruleset("eligibility").rules if r.code}
    billable = by_name["diagnosis_not_billable"]
    assert (billable["code"], billable["severity"], billable["category"]) == (
        "DIAGNOSIS_NOT_BILLABLE", "block", "information")
    assert billable["condition"] == "diagnosis_billable is false"
    assert billable["reads"] == [{"name": "diagnosis_billable", "meaning": (
        "every diagnosis of the request is a billable (leaf) ICD-10-CM code")}]
    assert billable["fires"][0]["expect"] == ["DIAGNOSIS_NOT_BILLABLE"]


def test_unknown_ruleset_is_refused(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["rules", "--ruleset", "nope"])
    assert result.exit_code == 2
    assert "nope" in result.output
