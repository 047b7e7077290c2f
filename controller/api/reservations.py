"""REST resources for reservations: hold a charger's connector for an id tag until a time
(ReserveNow), cancel it (CancelReservation), list them."""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

from pydantic import Field
from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import openapi
from controller.api.errors import int_param, json_body, parse_query
from controller.api.models import ExpiryDate, IdTagText, PageQuery, Pagination, RequestBody, ResponseBody, Timestamp
from controller.api.models import page as paged
from controller.chargers import ChargerRegistry
from controller.reservations import Reservations
from controller.store.reservations import STATUSES

ReservationStatus = Literal[STATUSES]  # type: ignore[valid-type]


def reservation_to_api(row: sqlite3.Row) -> dict[str, Any]:
    """A stored reservation as `Reservation`."""
    return {
        "reservationId": row["id"],
        "chargeBoxId": row["charger_id"],
        "connectorId": row["connector_id"],
        "idTag": row["id_tag"],
        "parentIdTag": row["parent_id_tag"],
        "expiresAt": row["expires_at"],
        "status": row["status"],
        "transactionId": row["transaction_id"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def register(app: QuartTrio, chargers: ChargerRegistry, reservations: Reservations) -> None:
    @app.post("/api/v1/chargers/<charger_id>/reservations")
    async def create_reservation(charger_id: str) -> tuple[Response, int]:
        chargers.require(charger_id)  # an unknown charger is a 404 before anything else
        body = await json_body(ReservationRequest)
        row = await reservations.reserve(charger_id, body.connectorId, body.idTag, body.expiresAt, body.parentIdTag)
        return jsonify(reservation_to_api(row)), 201

    @app.delete("/api/v1/chargers/<charger_id>/reservations/<reservation_id>")
    async def cancel_reservation(charger_id: str, reservation_id: str) -> Response:
        chargers.require(charger_id)
        row = await reservations.cancel(charger_id, int_param("reservationId", reservation_id))
        return jsonify(reservation_to_api(row))

    @app.get("/api/v1/reservations")
    async def list_reservations() -> Response:
        query = parse_query(ReservationQuery)
        rows, total = await reservations.page(query.chargeBoxId, query.status, query.limit, query.offset)
        return jsonify(paged("reservations", [reservation_to_api(r) for r in rows], total, query))


# -- models --------------------------------------------------------------------------------------


class ReservationRequest(RequestBody):
    connectorId: int = Field(ge=1, le=100, description="The connector to hold (one the charger has)")
    idTag: IdTagText = Field(description="The id tag it is held for")
    expiresAt: ExpiryDate = Field(description="With a time zone; in the future")
    parentIdTag: IdTagText | None = Field(
        None, description="Cards with this parent may use it too; default: the id tag's parent on the local list")


class ReservationQuery(PageQuery):
    chargeBoxId: str | None = Field(None, description="Filter by charger")
    status: ReservationStatus | None = Field(None, description="Filter by status")


class Reservation(ResponseBody):
    reservationId: int = Field(description="The reservationId the charger got")
    chargeBoxId: str
    connectorId: int = Field(ge=1)
    idTag: str
    parentIdTag: str | None
    expiresAt: Timestamp
    status: ReservationStatus = Field(
        description="requested (sent, answer on its way) and accepted are in force; faulted, occupied, rejected, "
                    "unavailable: the charger's refusal; failed: never sent; then cancelled, used (by "
                    "transactionId) or expired")
    transactionId: int | None = Field(description="The charge that used it")
    createdAt: Timestamp
    updatedAt: Timestamp


class ReservationList(ResponseBody):
    reservations: list[Reservation]
    pagination: Pagination


# -- the OpenAPI section -------------------------------------------------------------------------

CHARGE_BOX_ID = openapi.path_param("chargeBoxId", {"type": "string"}, "The charger's charge box id")
RESERVATION_ID = openapi.path_param("reservationId", openapi.ID_SCHEMA, "The reservation's id")
_op, _response, _errors = openapi.operation, openapi.response, openapi.errors

SECTION = openapi.Section({
    "/api/v1/chargers/{chargeBoxId}/reservations": {"post": _op(
        "createReservation", "Reservations", "Reserve a connector for an id tag until a time (ReserveNow)",
        {"201": _response("Accepted by the charger: in force", Reservation), **_errors(400, 404, 409, 422, 502, 504)},
        body=ReservationRequest, parameters=[CHARGE_BOX_ID],
        description="The controller allocates the reservation id and stores the reservation with the charger's "
                    "answer. 409 ReservationRefused: the charger answered Faulted, Occupied, Rejected or "
                    "Unavailable (listed with that status); 409 ConnectorReserved: one is in force on the "
                    "connector already. A start for the id tag (or a card with its parent) uses it; other tags' "
                    "starts on the connector are refused until it ends. It survives a restart.")},
    "/api/v1/chargers/{chargeBoxId}/reservations/{reservationId}": {"delete": _op(
        "cancelReservation", "Reservations", "Cancel a reservation in force (CancelReservation)",
        {"200": _response("The reservation, cancelled", Reservation), **_errors(404, 409, 422, 502, 504)},
        parameters=[CHARGE_BOX_ID, RESERVATION_ID],
        description="A charger that answers Rejected holds no reservation of that id: it is cancelled all the "
                    "same. 409 ReservationNotActive: used, expired, cancelled or refused already.")},
    "/api/v1/reservations": {"get": _op(
        "listReservations", "Reservations", "Reservations, newest first, with optional filters",
        {"200": _response("A page of reservations", ReservationList), **_errors(422)},
        query=ReservationQuery)},
})
