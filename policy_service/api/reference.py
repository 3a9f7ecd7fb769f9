"""Read endpoints: payers, drugs, policies and authorizations in the bundle's shapes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import RAISE, fields, validate
from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import selectinload

from policy_service.api.authorizations import authorization_item, authorization_response
from policy_service.auth import Permission, token_required
from policy_service.database import run_serialized
from policy_service.errors import NotFound
from policy_service.extensions import db
from policy_service.models import (
    AUTHORIZATION_STATUSES,
    PAYER_KINDS,
    POLICY_STATUSES,
    Authorization,
    Drug,
    Patient,
    Payer,
    Policy,
    PolicyVersion,
)
from policy_service.models.policy import PolicyCode
from policy_service.schemas.bundle import (
    DrugSchema,
    PayerSchema,
    PolicyVersionSchema,
)
from policy_service.schemas.common import StrictSchema
from policy_service.schemas.fields import BoundedDate, QueryInteger
from policy_service.services.bundle import (
    drug_record,
    payer_record,
    policy_record,
)
from policy_service.services.payers import find_payer_by_external_id
from policy_service.services.policies import versions_naming_drug

blp = Blueprint("reference", __name__, url_prefix="",
                description="Payers, drugs, policies and authorizations (read-only).")

# One instance each for every dump: building a schema costs more than dumping with it.
_PAYER_SCHEMA = PayerSchema()
_DRUG_SCHEMA = DrugSchema()
_POLICY_VERSION_SCHEMA = PolicyVersionSchema()


# Deepest page a list serves: 5 million records at the largest page size.
MAX_PAGE = 10_000


class PageArgs(StrictSchema):
    """Pagination shared by every list."""

    page = QueryInteger(load_default=1, minimum=1, maximum=MAX_PAGE)
    per_page = QueryInteger(load_default=50, minimum=1, maximum=500)


class PayerArgs(PageArgs):
    kind = fields.String(validate=validate.OneOf(PAYER_KINDS))
    external_id = fields.String(validate=validate.Length(min=1, max=80), metadata={
        "description": "A payer id as claims or EHRs carry it (NM1*PR NM109): the one payer "
                       "it names, matched on our id or an external id."})


class DrugArgs(PageArgs):
    generic = fields.String()
    q = fields.String(metadata={"description": "Text in the brand or generic name."})


class PolicyArgs(PageArgs):
    payer = fields.String()
    hcpcs = fields.String()
    drug = fields.String(validate=validate.Length(min=1, max=100), metadata={
        "description": "A drug the version covers: its HCPCS code or text in its brand or "
                       "generic name (remicade, infliximab)."})
    status = fields.String(validate=validate.OneOf(POLICY_STATUSES))
    in_effect_on = BoundedDate()


class AuthorizationArgs(PageArgs):
    patient = fields.String()
    payer = fields.String()
    hcpcs = fields.String()
    status = fields.String(validate=validate.OneOf(AUTHORIZATION_STATUSES))
    valid_on = BoundedDate()
    expiring_within_days = QueryInteger(minimum=0, maximum=3650)


def _page(query: Select[Any], args: dict[str, Any],
          to_item: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    """One page of ``query`` and how many rows it lists in all.

    The total rides on each row as a window count, so a page costs one round trip; only a
    page past the end (no rows to carry it) counts separately.
    """
    per_page, page = args["per_page"], args["page"]
    rows = db.session.execute(
        query.add_columns(func.count().over()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    if rows:
        total = rows[0][-1]
    else:
        total = db.session.scalar(
            select(func.count()).select_from(query.order_by(None).subquery()))
    return {"items": [to_item(row[0]) for row in rows], "page": page, "per_page": per_page,
            "total": total}


@blp.route("/payers", methods=["GET"])
@token_required(Permission.READ)
@blp.arguments(PayerArgs(), location="query", unknown=RAISE)
def list_payers(args: dict[str, Any]) -> dict[str, Any]:
    """List payers with their billing settings."""
    query = select(Payer).order_by(Payer.code)
    if "kind" in args:
        query = query.where(Payer.kind == args["kind"])
    if "external_id" in args:
        match = find_payer_by_external_id(args["external_id"])
        query = query.where(Payer.id == match.id if match else false())
    return _page(query, args, lambda p: _PAYER_SCHEMA.dump(payer_record(p)))


@blp.route("/payers/<code>", methods=["GET"])
@token_required(Permission.READ)
def get_payer(code: str) -> dict[str, Any]:
    """One payer by its id."""
    payer = db.session.scalar(select(Payer).where(Payer.code == code))
    if payer is None:
        raise NotFound(f"No payer {code}.")
    return _PAYER_SCHEMA.dump(payer_record(payer))


@blp.route("/drugs", methods=["GET"])
@token_required(Permission.READ)
@blp.arguments(DrugArgs(), location="query", unknown=RAISE)
def list_drugs(args: dict[str, Any]) -> dict[str, Any]:
    """List drugs with billing unit and packages."""
    query = select(Drug).order_by(Drug.hcpcs).options(selectinload(Drug.packages))
    if "generic" in args:
        query = query.where(func.lower(Drug.generic) == args["generic"].lower())
    if "q" in args:
        pattern = f"%{args['q'].lower()}%"
        query = query.where(func.lower(Drug.name).like(pattern)
                            | func.lower(Drug.generic).like(pattern))
    return _page(query, args, lambda d: _DRUG_SCHEMA.dump(drug_record(d)))


@blp.route("/drugs/<hcpcs>", methods=["GET"])
@token_required(Permission.READ)
def get_drug(hcpcs: str) -> dict[str, Any]:
    """One drug by HCPCS code."""
    drug = db.session.scalar(select(Drug).where(Drug.hcpcs == hcpcs.upper()))
    if drug is None:
        raise NotFound(f"No drug {hcpcs}.")
    return _DRUG_SCHEMA.dump(drug_record(drug))


def _policy_query() -> Select[Any]:
    return (select(PolicyVersion).join(PolicyVersion.policy)
            .order_by(Policy.code, PolicyVersion.effective_from)
            .options(selectinload(PolicyVersion.steps),
                     selectinload(PolicyVersion.policy).selectinload(Policy.payer)))


def _policy_item(version: PolicyVersion) -> dict[str, Any]:
    return _POLICY_VERSION_SCHEMA.dump(policy_record(version.policy, version))


@blp.route("/policies", methods=["GET"])
@token_required(Permission.READ)
@blp.arguments(PolicyArgs(), location="query", unknown=RAISE)
def list_policies(args: dict[str, Any]) -> dict[str, Any]:
    """List policy versions (one item per effective-dated version)."""
    query = _policy_query()
    if "payer" in args:
        query = query.join(Policy.payer).where(Payer.code == args["payer"])
    if "hcpcs" in args:
        query = query.where(PolicyVersion.id.in_(
            select(PolicyCode.policy_version_id).where(PolicyCode.hcpcs == args["hcpcs"])))
    if "drug" in args:
        query = query.where(PolicyVersion.id.in_(versions_naming_drug(args["drug"])))
    if "status" in args:
        query = query.where(PolicyVersion.status == args["status"])
    if "in_effect_on" in args:
        day = args["in_effect_on"]
        query = query.where(PolicyVersion.effective_from <= day,
                            (PolicyVersion.effective_to.is_(None))
                            | (PolicyVersion.effective_to >= day))
    return _page(query, args, _policy_item)


@blp.route("/policies/<path:code>", methods=["GET"])
@token_required(Permission.READ)
def get_policy(code: str) -> dict[str, Any]:
    """One policy by id: its current version and every version."""
    versions = list(db.session.scalars(_policy_query().where(Policy.code == code)))
    if not versions:
        raise NotFound(f"No policy {code}.")
    today = dt.date.today()
    current = next((v for v in reversed(versions) if v.covers_date(today)), versions[-1])
    return {**_policy_item(current), "versions": [_policy_item(v) for v in versions]}


@blp.route("/authorizations", methods=["GET"])
@token_required(Permission.READ)
@blp.arguments(AuthorizationArgs(), location="query", unknown=RAISE)
def list_authorizations(args: dict[str, Any]) -> dict[str, Any]:
    """List authorizations with what remains of each."""
    query = (select(Authorization).order_by(Authorization.number)
             .options(selectinload(Authorization.payer), selectinload(Authorization.patient)))
    if "patient" in args:
        query = query.join(Authorization.patient).where(Patient.external_id == args["patient"])
    if "payer" in args:
        query = query.join(Authorization.payer).where(Payer.code == args["payer"])
    if "status" in args:
        query = query.where(Authorization.status == args["status"])
    if "valid_on" in args:
        query = query.where(Authorization.valid_from <= args["valid_on"],
                            Authorization.valid_to >= args["valid_on"])
    if "expiring_within_days" in args:
        today = dt.date.today()
        horizon = today + dt.timedelta(days=args["expiring_within_days"])
        query = query.where(Authorization.valid_to >= today, Authorization.valid_to <= horizon)
    if "hcpcs" in args:
        # The code list is a JSON column on both databases; a match on its text keeps the
        # filter in SQL so pagination stays right.
        quoted = f'%"{args["hcpcs"]}"%'
        query = query.where(func.cast(Authorization.hcpcs, db.String).like(quoted))
    return _page(query, args, authorization_item)


@blp.route("/authorizations/<number>", methods=["GET"])
@token_required(Permission.READ)
def get_authorization(number: str) -> Response:
    """One authorization with remaining units and visits, its state and its ETag."""
    auth = db.session.scalar(select(Authorization).where(Authorization.number == number))
    if auth is None:
        raise NotFound(f"No authorization {number}.")
    # Reading the schedule may refresh appointments' standing checks; keep them.
    return run_serialized(lambda: authorization_response(auth, with_doses=True))
