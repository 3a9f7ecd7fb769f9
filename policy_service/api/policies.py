"""Policy versions: drafts, test cases, test, impact, activation, diff and payer comparison."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Response, json, request
from flask_smorest import Blueprint
from marshmallow import RAISE, fields, validate
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from policy_service.auth import Permission, token_required
from policy_service.errors import Invalid, NotFound, PreconditionRequired, StaleRecord
from policy_service.extensions import db
from policy_service.models import Policy, PolicyVersion
from policy_service.schemas.bundle import CaseSchema, ExpectSchema, PolicyVersionSchema
from policy_service.schemas.common import StrictSchema
from policy_service.services import policies, policy_review
from policy_service.services.bundle import policy_record

blp = Blueprint("policies", __name__, url_prefix="/policies",
                description="Policy versions: drafts, test cases, impact and activation.")

# One instance each for every dump: building a schema costs more than dumping with it.
_POLICY_VERSION_SCHEMA = PolicyVersionSchema()

class DraftSchema(PolicyVersionSchema):
    """The fields a draft may set (every one optional)."""

    class Meta:
        unknown = RAISE
        fields = policies.DRAFT_FIELDS


class DiffArgs(StrictSchema):
    from_ = fields.Integer(data_key="from", required=True, validate=validate.Range(min=1))
    to = fields.Integer(required=True, validate=validate.Range(min=1))


class CompareArgs(StrictSchema):
    hcpcs = fields.String(required=True, validate=validate.Regexp(r"^[A-Z0-9]{5}$"))
    on = fields.Date(load_default=None)


def _policy(code: str) -> Policy:
    policy = db.session.scalar(
        select(Policy).where(Policy.code == code)
        .options(selectinload(Policy.versions).selectinload(PolicyVersion.steps),
                 selectinload(Policy.versions).selectinload(PolicyVersion.cases)))
    if policy is None:
        raise NotFound(f"No policy {code}.")
    return policy


def _version(code: str, number: int) -> PolicyVersion:
    version = next((v for v in _policy(code).versions if v.number == number), None)
    if version is None:
        raise NotFound(f"No version {number} of policy {code}.")
    return version


def _dump(version: PolicyVersion, status: int = 200) -> Response:
    body = _POLICY_VERSION_SCHEMA.dump(policy_record(version.policy, version))
    response = Response(blp_json(body), status=status, mimetype="application/json")
    response.headers["ETag"] = f'"{version.version}"'
    return response


def blp_json(body: Any) -> str:
    """Serialise a response body the way the app's JSON provider does."""
    return json.dumps(body)


@blp.route("/compare", methods=["GET"])
@token_required(Permission.READ)
@blp.arguments(CompareArgs(), location="query", unknown=RAISE)
def compare(args: dict[str, Any]) -> dict[str, Any]:
    """One drug on one date across every payer: each payer's criteria with its source."""
    day = args["on"] or dt.date.today()
    rows = [policy_review.compare_row(v) for v in policy_review.in_effect(args["hcpcs"], day)]
    return {"hcpcs": args["hcpcs"], "on": day.isoformat(), "payers": rows}


@blp.route("/<path:code>/versions", methods=["POST"])
@token_required(Permission.EDIT_POLICY_DATA)
@blp.arguments(DraftSchema(partial=True))
def new_version(body: dict[str, Any], code: str) -> Response:
    """Copy the newest version into a draft with the given fields changed."""
    version = policies.new_draft(_policy(code), body)
    db.session.commit()
    return _dump(version, 201)


@blp.route("/<path:code>/versions/<int:number>", methods=["GET"])
@token_required(Permission.READ)
def get_version(code: str, number: int) -> Response:
    """One version, with its ETag for a later PATCH."""
    return _dump(_version(code, number))


@blp.route("/<path:code>/versions/<int:number>", methods=["PATCH"])
@token_required(Permission.EDIT_POLICY_DATA)
@blp.arguments(DraftSchema(partial=True))
def edit_version(body: dict[str, Any], code: str, number: int) -> Response:
    """Edit a draft; active and retired versions answer 409 POLICY_VERSION_LOCKED."""
    version = _version(code, number)
    sent = request.headers.get("If-Match")
    if not sent:
        raise PreconditionRequired("Send the version's ETag as If-Match.")
    if sent.strip().strip('"') != str(version.version):
        raise StaleRecord("Someone changed this version since you read it; read it again.")
    policies.ensure_editable(version)
    policies.update_version(version, body)
    db.session.commit()
    return _dump(version)


class NewCaseSchema(CaseSchema):
    """A case to add; without ``expect`` it is filled from checking the request now."""

    expect = fields.Nested(ExpectSchema, load_default=None, metadata={
        "description": "Leave out to save what the check gives now (decision and every "
                       "finding code): \"Save as test case\" on an eligibility result."})


@blp.route("/<path:code>/versions/<int:number>/cases", methods=["POST"])
@token_required(Permission.EDIT_POLICY_DATA)
@blp.arguments(NewCaseSchema())
def add_case(body: dict[str, Any], code: str, number: int) -> tuple[dict[str, Any], int]:
    """Add a test case: a planned treatment and the expected decision and codes (or, without
    ``expect``, the decision and codes the version gives it now)."""
    case = policies.add_case(_version(code, number), body["name"], body["request"],
                             body["expect"])
    db.session.commit()
    return {"name": case.name, "request": case.request, "expect": case.expectation()}, 201


@blp.route("/<path:code>/versions/<int:number>/test", methods=["POST"])
@token_required(Permission.READ)
def test_version(code: str, number: int) -> dict[str, Any]:
    """Run the version's cases and its predecessor's as if the version were active."""
    return policy_review.run_cases(_version(code, number))


@blp.route("/<path:code>/versions/<int:number>/impact", methods=["POST"])
@token_required(Permission.READ)
def impact(code: str, number: int) -> dict[str, Any]:
    """The stored appointments whose decision or findings the version would change."""
    return policy_review.impact(_version(code, number))


@blp.route("/<path:code>/versions/<int:number>/activate", methods=["POST"])
@token_required(Permission.EDIT_POLICY_DATA)
def activate(code: str, number: int) -> Response:
    """Activate a draft (409 POLICY_CASES_FAILING while a case fails)."""
    version = _version(code, number)
    result = policies.activate(version)
    db.session.commit()
    response = _dump(version)
    response.set_data(blp_json({**response.get_json(), "impact": result.impact,
                                "ended": [v.number for v in result.ended],
                                "retired": [v.number for v in result.retired]}))
    return response


@blp.route("/<path:code>/diff", methods=["GET"])
@token_required(Permission.READ)
@blp.arguments(DiffArgs(), location="query", unknown=RAISE)
def diff(args: dict[str, Any], code: str) -> dict[str, Any]:
    """What changed between two versions, in words."""
    older, newer = _version(code, args["from_"]), _version(code, args["to"])
    if older is newer:
        raise Invalid({"to": ["Compare two different versions."]})
    return {"from": older.number, "to": newer.number,
            "changes": policy_review.diff(older, newer)}
