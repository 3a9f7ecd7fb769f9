"""The stored schedule: /api/v1/appointments, series, and each authorization's forecast."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from policy_service.audit import current_actor
from policy_service.auth import Permission, token_required
from policy_service.database import run_serialized
from policy_service.errors import Invalid
from policy_service.models.appointment import APPOINTMENT_ID, APPOINTMENT_ID_RULE
from policy_service.schemas.appointments import (
    AppointmentSchema,
    ForecastArgs,
    ListArgs,
    SeriesSchema,
)
from policy_service.services import appointments
from policy_service.services.appointments import AppointmentInput

blp = Blueprint("appointments", __name__, url_prefix="",
                description="Planned infusions kept as a schedule, each with a standing check.")


def _checked_id(appointment_id: str) -> str:
    if not APPOINTMENT_ID.fullmatch(appointment_id):
        raise Invalid({"appointment_id": [APPOINTMENT_ID_RULE]})
    return appointment_id


@blp.route("/appointments", methods=["GET"])
@token_required(Permission.READ)
@blp.arguments(ListArgs(), location="query")
def list_appointments(args: dict[str, Any]) -> dict[str, Any]:
    """List appointments with filters, each with its eligibility result as of now."""
    per_page = args["per_page"]

    def page() -> dict[str, Any]:
        # Dumped before the commit, which would expire every loaded appointment.
        rows, total = appointments.list_with_checks(
            args["filters"], limit=per_page, offset=(args["page"] - 1) * per_page)
        moment = appointments.now()
        return {"items": [appointments.appointment_record(row, moment) for row in rows],
                "total": total, "page": args["page"], "per_page": per_page}

    return run_serialized(page)


@blp.route("/appointments/<appointment_id>", methods=["GET"])
@token_required(Permission.READ)
def get_appointment(appointment_id: str) -> dict[str, Any]:
    """One appointment with its eligibility result as of now."""

    def read() -> dict[str, Any]:
        checked = appointments.get_with_check(_checked_id(appointment_id))
        record = appointments.appointment_record(checked)
        # Its authorization's units and visits as used / scheduled / free.
        number = checked.check.authorization_number
        record["authorization_balance"] = appointments.unit_outlook(
            [number] if number else []).get(number or "")
        return record

    return run_serialized(read)


@blp.route("/appointments/<appointment_id>", methods=["PUT"])
@token_required(Permission.WRITE_APPOINTMENTS)
@blp.arguments(AppointmentSchema())
def put_appointment(item: AppointmentInput,
                    appointment_id: str) -> tuple[dict[str, Any], int]:
    """Create or replace one appointment: 201 when new, 200 when replaced."""
    actor = current_actor()

    def put() -> tuple[dict[str, Any], int]:
        saved = appointments.upsert(_checked_id(appointment_id), item, actor)
        return appointments.appointment_record(saved), 201 if saved.created else 200

    return run_serialized(put)


@blp.route("/appointments/<appointment_id>", methods=["DELETE"])
@token_required(Permission.WRITE_APPOINTMENTS)
def cancel_appointment(appointment_id: str) -> dict[str, Any]:
    """Cancel an appointment; it stays on record as cancelled."""
    actor = current_actor()

    def cancel() -> dict[str, Any]:
        appointments.cancel(_checked_id(appointment_id), actor)
        return appointments.appointment_record(appointments.get_with_check(appointment_id))

    return run_serialized(cancel)


@blp.route("/appointments/series", methods=["POST"])
@token_required(Permission.WRITE_APPOINTMENTS)
@blp.arguments(SeriesSchema())
def create_series(body: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Create a recurring course in one call: ``prefix-1``, ``prefix-2``... -> 201 with ids."""
    actor = current_actor()

    def create() -> dict[str, Any]:
        saved = appointments.create_series(body["appointment_id_prefix"], body["first"],
                                           body["every_days"], body["until"], actor)
        return {"appointment_ids": [s.appointment.appointment_id for s in saved],
                "items": [appointments.appointment_record(s) for s in saved]}

    return run_serialized(create), 201


@blp.route("/authorizations/<number>/forecast", methods=["GET"])
@token_required(Permission.READ)
@blp.arguments(ForecastArgs(), location="query")
def authorization_forecast(args: dict[str, Any], number: str) -> dict[str, Any]:
    """The future appointments that draw on an authorization, with cumulative units and visits,
    ``runs_out_on`` (the first it cannot cover) and ``after_valid_to``."""
    return run_serialized(lambda: appointments.forecast(number, args.get("date_from")))
