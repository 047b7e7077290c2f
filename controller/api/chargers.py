"""REST resources for chargers: list, inspect, approve or reject them, start a charge on one, and
send any central-system operation of its protocol."""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import models, openapi
from controller.api.errors import Problem, json_body, json_object
from controller.chargers import ChargerRegistry, ChargerState, ConnectorState
from controller.local_list import LocalListSync
from controller.transactions import Transactions


def connector_to_api(c: ConnectorState) -> dict[str, Any]:
    """A connector as models.Connector."""
    return {
        "connectorId": c.connector_id,
        "status": c.status,
        "errorCode": c.error_code,
        "info": c.info,
        "vendorErrorCode": c.vendor_error_code,
        "statusUpdatedAt": c.status_at,
        "energyWh": c.energy_wh,
        "powerW": c.power_w,
        "meterUpdatedAt": c.meter_at,
        "reservationId": c.reservation_id,
    }


def charger_to_api(s: ChargerState, upstream_id: str | None = None) -> dict[str, Any]:
    """A charger as models.Charger, its connectors in order."""
    return {
        "chargeBoxId": s.id,
        "upstreamId": upstream_id,
        "registration": s.registration,
        "protocol": s.protocol,
        "online": s.online,
        "connectedAt": s.connected_at,
        "vendor": s.vendor,
        "model": s.model,
        "serialNumber": s.serial_number,
        "firmwareVersion": s.firmware_version,
        "lastBoot": s.last_boot,
        "lastHeartbeat": s.last_heartbeat,
        "firmwareStatus": s.firmware_status,
        "diagnosticsStatus": s.diagnostics_status,
        "logStatus": s.log_status,
        "connectionLoops": s.connection_loops,
        "connectors": [connector_to_api(c) for _, c in sorted(s.connectors.items())],
        "localList": local_list_to_api(s.local_list or LocalListSync()),
    }


def local_list_to_api(sync: LocalListSync) -> dict[str, Any]:
    """A charger's local list sync as models.LocalList."""
    return {"version": sync.version, "state": sync.state, "syncedAt": sync.synced_at, "maxLength": sync.max_length,
            "detail": sync.detail}


def register(app: QuartTrio, chargers: ChargerRegistry, transactions: Transactions) -> None:
    def shown(s: ChargerState) -> dict[str, Any]:
        return charger_to_api(s, chargers.config.current.upstream_id(s.id))

    @app.get("/api/v1/chargers")
    async def list_chargers() -> Response:
        return jsonify({"chargers": [shown(s) for s in chargers.all()]})

    @app.get("/api/v1/chargers/<charger_id>")
    async def get_charger(charger_id: str) -> Response:
        return jsonify(shown(chargers.require(charger_id)))

    @app.post("/api/v1/chargers/<charger_id>/approve")
    async def approve_charger(charger_id: str) -> Response:
        return jsonify(shown(await chargers.approve(charger_id)))

    @app.post("/api/v1/chargers/<charger_id>/reject")
    async def reject_charger(charger_id: str) -> Response:
        return jsonify(shown(await chargers.reject(charger_id)))

    @app.post("/api/v1/chargers/<charger_id>/remote-start")
    async def remote_start(charger_id: str) -> tuple[Response, int]:
        body = await json_body(models.RemoteStartRequest)
        chargers.require(charger_id)  # an unknown charger is a 404 before anything else
        started = await transactions.remote_start(charger_id, body.connectorId, body.idTag)
        return jsonify({
            "message": "Remote start accepted by charger",
            **started,
            "status": "pending",
            "note": "Transaction will start when vehicle is connected and ready",
        }), 202

    @app.post("/api/v1/chargers/<charger_id>/operations/<action>")
    async def operation(charger_id: str, action: str) -> Response:
        chargers.require(charger_id)
        payload = await json_object()
        if payload is None:
            raise Problem(400, "BadRequest", "the request body must be the operation's JSON object")
        return jsonify(await transactions.operation(charger_id, action, payload))


# -- the OpenAPI section -------------------------------------------------------------------------

CHARGE_BOX_ID = openapi.path_param("chargeBoxId", {"type": "string"}, "The charger's charge box id")
ACTION = openapi.path_param("action", {"type": "string", "pattern": "^[A-Za-z0-9]{1,40}$"},
                            "An operation the central system initiates in the charger's OCPP version "
                            "(1.6: RemoteStartTransaction, GetConfiguration, ...; 2.0.1: GetVariables, "
                            "RequestStartTransaction, ...); another is 400 OperationNotSupported, naming the protocol")
_op, _response, _errors = openapi.operation, openapi.response, openapi.errors

SECTION = openapi.Section({
    "/api/v1/chargers": {"get": _op(
        "listChargers", "Chargers", "Configured chargers and chargers that have connected",
        {"200": _response("The chargers, by id", models.ChargerList), **_errors()})},
    "/api/v1/chargers/{chargeBoxId}": {"get": _op(
        "getCharger", "Chargers", "One charger: registration, connection, connectors",
        {"200": _response("The charger", models.Charger), **_errors(404)}, parameters=[CHARGE_BOX_ID])},
    "/api/v1/chargers/{chargeBoxId}/approve": {"post": _op(
        "approveCharger", "Chargers", "Accept a pending (or rejected) charger",
        {"200": _response("The charger, now accepted", models.Charger), **_errors(404)},
        parameters=[CHARGE_BOX_ID],
        description="A connected charger is asked to boot again at once (TriggerMessage BootNotification) and "
                    "is accepted then, not at its next retry; the answer comes after its reply, or its "
                    "timeout. The approval stands whatever it answers.")},
    "/api/v1/chargers/{chargeBoxId}/reject": {"post": _op(
        "rejectCharger", "Chargers", "Reject a charger that is not in the config file (closes its connection)",
        {"200": _response("The charger, now rejected", models.Charger), **_errors(404, 409)},
        parameters=[CHARGE_BOX_ID])},
    "/api/v1/chargers/{chargeBoxId}/remote-start": {"post": _op(
        "remoteStart", "Transactions", "Start a charging session remotely on a specific connector",
        {"202": _response("Remote start accepted by the charger", models.RemoteStartResponse),
         **_errors(400, 404, 409, 422, 504)},
        body=models.RemoteStartRequest, parameters=[CHARGE_BOX_ID],
        description="The connector must be in Preparing status. The transactionId returned is the one "
                    "the charger gets in StartTransaction.conf. 409: connector not Preparing, charger "
                    "offline, or the charger rejected the request.")},
    "/api/v1/chargers/{chargeBoxId}/operations/{action}": {"post": _op(
        "chargerOperation", "Chargers", "Send any central-system operation of the charger's OCPP version",
        {"200": _response("The charger's answer", models.OperationResponse),
         "502": openapi.error(502, models.CallErrorResponse),
         **_errors(400, 404, 409, 422, 504)},
        body=models.OperationRequest, parameters=[CHARGE_BOX_ID, ACTION],
        description="The body is validated against the operation's request schema in the charger's "
                    "OCPP version (1.6 or 2.0.1) and sent as given. A RemoteStartTransaction (2.0.1 "
                    "RequestStartTransaction) is booked like a remote start (a pending transaction, "
                    "remoteStarted, mode remote; refused with 409 ConnectorReserved on a connector reserved "
                    "for another id tag), a RemoteStopTransaction (RequestStopTransaction) the charger "
                    "accepts marks the transaction stopping.")},
})
