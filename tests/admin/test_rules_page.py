"""The Rules page: every role reads the catalogue of rules with their reasons and cases."""

from __future__ import annotations

import pytest

from rulesets import get_ruleset, ruleset_names


@pytest.mark.parametrize("role", ["admin", "coordinator", "scheduler", "biller"])
def test_every_role_reads_every_rule(client, login, role) -> None:
    login(role)
    page = client.get("/admin/rules/").get_data(as_text=True)
    for name in ruleset_names():
        for rule in get_ruleset(name).rules:
            if rule.code:
                assert f'id="rule-{rule.name}"' in page, rule.name
    jw = get_ruleset("claims").rule("jw_missing")
    assert jw.why in page.replace("&#39;", "'")
    assert jw.source in page
    assert jw.fires[0].name in page


def test_filter_by_code_and_category(client, login) -> None:
    login("scheduler")
    page = client.get("/admin/rules/?code=imaging_bundled").get_data(as_text=True)
    assert 'id="rule-imaging_bundled"' in page
    assert 'id="rule-imaging_bundled_unguided_joint"' in page
    assert 'id="rule-jw_missing"' not in page
    coverage = client.get("/admin/rules/?category=coverage").get_data(as_text=True)
    assert 'id="rule-diagnosis_not_covered"' in coverage
    assert 'id="rule-auth_required"' not in coverage
    none = client.get("/admin/rules/?code=NO_SUCH_CODE").get_data(as_text=True)
    assert 'id="rules-none"' in none


def test_rules_page_needs_sign_in(client, session) -> None:
    response = client.get("/admin/rules/")
    assert response.status_code in (302, 401)
