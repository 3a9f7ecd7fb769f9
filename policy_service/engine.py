"""The durable-rules adapter: the ONLY module that imports ``durable``.

durable-rules 2.0.28 has crash and hang bugs on some usage patterns (see the engine section
of docs/architecture.md). Everything here follows the pattern that survived testing:

- a quiet host (no background dispatcher thread) installed before the first ``get_host``;
- each ruleset registered once per process from its JSON form (a name cannot be re-used);
- one pre-joined case fact per evaluation, asserted with ``assert_fact`` (never ``post``:
  an event is consumed by one rule only);
- a fresh sid per evaluation, ``delete_state`` in ``finally`` (a ruleset holds at most 1024
  live sids);
- an always-firing rule (a clean case otherwise raises ``MessageNotHandledException`` and
  deleting a sid where nothing fired crashes);
- an exception inside an action lands in the returned state, so it is re-raised here as
  EngineError: a broken rule must never look like a clean pass;
- one process-wide lock around every call into the C core, which is not thread-safe.

Rules are data (see ``rulesets``); ``_definition`` compiles them into durable's JSON form, and
every case is checked against its ruleset's table of declared fields before it is asserted.
Two defects of durable's C core, found by the oracle property test, shape that compilation:

- a field-to-field comparison (``{"$gt": {"dose_mg": {"$m": "max_dose_mg"}}}``) whose
  referenced field is ABSENT does not fail as it should: it compares against some other
  value and fires (thousands of false findings in 20,000 random cases). Every such
  comparison is therefore guarded by ``{"$ex": {"max_dose_mg": 1}}``;
- ``$or`` on one fact fires once per true branch (and, unguarded, on absent fields), so
  ``$or`` is compiled into one durable rule per alternative; the alternatives map back to
  their ruleset rule, so each rule yields at most one finding.

Also: ``$ex`` on ``sid`` spins forever, so the always-firing rule tests a marker field.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Callable, Mapping
from typing import Any

from durable import engine as durable_engine
from durable import lang as durable_lang

from rulesets import CASE_MARKER_FIELD, Finding, Rule, Ruleset, RulesetError, get_ruleset

__all__ = ["EngineError", "Finding", "evaluate", "fired_rules", "register"]


class EngineError(RuntimeError):
    """The rules engine could not evaluate a case; never to be read as a clean pass."""


class _QuietHost(durable_engine.Host):
    """A durable host without the background dispatcher thread (it segfaults under load)."""

    def _run(self) -> None:
        """Start nothing: every evaluation here is synchronous."""


# One lock for the whole process: durable's C core is not safe for concurrent calls.
_LOCK = threading.Lock()
_SIDS = itertools.count(1)
_registered: dict[str, Ruleset] = {}
# Per-evaluation storage: sid -> names of the ruleset rules whose actions ran.
_fired: dict[str, list[str]] = {}


def _host() -> durable_engine.Host:
    """Return the quiet host, installing it as durable's main host on first use."""
    if durable_lang._main_host is None:
        durable_lang._main_host = _QuietHost()
    host = durable_lang._main_host
    if not isinstance(host, _QuietHost):
        raise EngineError("a durable host with a dispatcher thread was created elsewhere")
    return host


def _record_firing(sid: str, rule_name: str) -> None:
    """Note that ``rule_name`` fired in evaluation ``sid`` (called from a durable action)."""
    _fired[sid].append(rule_name)


def _action(rule_name: str) -> Callable[[Any], None]:
    """Build the durable action of one rule: record the firing under the evaluation's sid."""

    def run(closure: Any) -> None:
        # Looked up at call time so a test can make the action fail like a broken rule would.
        _record_firing(closure.s.sid, rule_name)

    return run


def _alternatives(condition: dict[str, Any]) -> list[dict[str, Any]]:
    """Rewrite a condition as a list of or-free conditions, any of which matching means a match."""
    ((key, operand),) = condition.items()
    if key == "$or":
        return [alt for child in operand for alt in _alternatives(child)]
    if key == "$and":
        alternatives: list[list[dict[str, Any]]] = [[]]
        for child in operand:
            alternatives = [
                terms + _conjuncts(alt) for terms in alternatives for alt in _alternatives(child)
            ]
        return [terms[0] if len(terms) == 1 else {"$and": terms} for terms in alternatives]
    return [_guarded(condition)]


def _guarded(condition: dict[str, Any]) -> dict[str, Any]:
    """Guard a field-to-field comparison with an existence test of the referenced field."""
    ((key, operand),) = condition.items()
    if key.startswith("$") and isinstance(operand, dict):
        ((field, right),) = operand.items()
        if isinstance(right, dict) and "$m" in right:
            return {"$and": [{"$ex": {right["$m"]: 1}}, copy.deepcopy(condition)]}
    return copy.deepcopy(condition)


def _conjuncts(condition: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the terms of an or-free condition, flattening a nested ``$and``."""
    if "$and" in condition:
        return [term for child in condition["$and"] for term in _conjuncts(child)]
    return [condition]


def _definition(rules: tuple[Rule, ...]) -> dict[str, dict[str, Any]]:
    """Translate ruleset data into durable's JSON ruleset form, with actions bound."""
    definition: dict[str, dict[str, Any]] = {}
    for rule in rules:
        alternatives = _alternatives(rule.condition)
        for index, alternative in enumerate(alternatives):
            durable_name = rule.name if len(alternatives) == 1 else f"{rule.name}__or{index}"
            definition[durable_name] = {"all": [{"m": alternative}], "run": _action(rule.name)}
    return definition


def _register_locked(name: str, ruleset: Ruleset | None) -> Ruleset:
    """Register ruleset ``name`` once per process and return it (lock held)."""
    if name in _registered:
        if ruleset is not None and ruleset != _registered[name]:
            raise EngineError(f"ruleset {name!r} is already registered with other rules")
        return _registered[name]
    if ruleset is None:
        try:
            ruleset = get_ruleset(name)
        except KeyError:
            raise EngineError(f"unknown ruleset {name!r}") from None
    try:
        ruleset.validate()
    except RulesetError as error:
        raise EngineError(f"ruleset {name!r} is malformed: {error}") from error
    try:
        _host().register_rulesets({name: _definition(ruleset.rules)})
    except EngineError:
        raise
    except Exception as error:
        raise EngineError(f"durable-rules refused ruleset {name!r}: {error}") from error
    # Keep our own copy: the registered network can never change, so neither may the data.
    _registered[name] = copy.deepcopy(ruleset)
    return _registered[name]


def register(name: str, ruleset: Ruleset | None = None) -> None:
    """Register a ruleset (by default the one ``rulesets`` defines under ``name``)."""
    with _LOCK:
        _register_locked(name, ruleset)


def _fact(ruleset: Ruleset, case: Mapping[str, Any], sid: str) -> dict[str, Any]:
    """Check the case against the ruleset's declared fields; return the fact to assert."""
    try:
        ruleset.check_case(case)
    except RulesetError as error:
        raise EngineError(str(error)) from None
    return {**case, "sid": sid, CASE_MARKER_FIELD: True}


def _run(ruleset_name: str, case: Mapping[str, Any]) -> tuple[Ruleset, list[str]]:
    """Evaluate one case; return the ruleset and the names of the rules that fired, in order."""
    with _LOCK:
        ruleset = _register_locked(ruleset_name, None)
        host = _host()
        sid = str(next(_SIDS))
        fact = _fact(ruleset, case, sid)
        _fired[sid] = []
        reached_actions = False
        try:
            try:
                state = host.assert_fact(ruleset_name, fact)
                reached_actions = True
            except durable_engine.MessageNotHandledException:
                raise EngineError(
                    f"no rule of {ruleset_name!r} fired; is the always-firing rule missing?"
                ) from None
            except Exception as error:
                raise EngineError(f"durable-rules failed on {ruleset_name!r}: {error}") from error
            if state and state.get("exception"):
                raise EngineError(f"a rule action of {ruleset_name!r} failed: {state['exception']}")
            fired = set(_fired[sid])
        finally:
            fired_any = bool(_fired.pop(sid, None))
            # Deleting a sid where nothing fired crashes the C core, so only delete after
            # actions ran (the always-firing rule guarantees that on every normal path).
            if reached_actions or fired_any:
                host.delete_state(ruleset_name, sid)
    return ruleset, [rule.name for rule in ruleset.rules if rule.name in fired]


def fired_rules(ruleset_name: str, case: Mapping[str, Any]) -> list[str]:
    """Evaluate one case and return the names of every rule that fired, in ruleset order."""
    return _run(ruleset_name, case)[1]


def evaluate(ruleset_name: str, case: Mapping[str, Any]) -> list[Finding]:
    """Evaluate one case with a ruleset and return its findings, in ruleset order."""
    ruleset, fired = _run(ruleset_name, case)
    return ruleset.findings_for(fired)
