"""GET /api/v1/worklist: the coordinators' queue, most urgent first."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_smorest import Blueprint

from policy_service.auth import Permission, token_required
from policy_service.database import run_serialized
from policy_service.schemas.authorizations import WorklistArgs
from policy_service.services.worklist import worklist

blp = Blueprint("worklist", __name__, url_prefix="/worklist",
                description="What needs doing on which authorization, most urgent first.")


@blp.route("", methods=["GET"])
@token_required(Permission.READ)
@blp.arguments(WorklistArgs(), location="query")
def list_work(args: dict[str, Any]) -> dict[str, Any]:
    """Every item, or only the caller's with ``owner=me``."""
    owner = g.api_user.email if args.get("owner") == "me" else None
    # Reading the schedule may refresh and store appointments' standing checks.
    items = run_serialized(lambda: worklist(owner=owner))
    return {"items": [item.as_dict() for item in items]}
