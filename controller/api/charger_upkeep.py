"""REST resources for a charger's upkeep: its charging profiles (as records), firmware updates and
diagnostics with their history, triggered messages, and a new password."""

from __future__ import annotations

from typing import Any

from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import models, openapi
from controller.api.errors import int_param, json_body, parse_query
from controller.charger_passwords import ChargerPasswords
from controller.chargers import ChargerRegistry
from controller.charging_profiles import ChargingProfiles, StoredProfile
from controller.maintenance import (
    DIAGNOSTICS_KINDS,
    FIRMWARE_KINDS,
    Maintenance,
    Report,
)


def profile_to_api(p: StoredProfile) -> dict[str, Any]:
    """A stored profile as models.ChargingProfile."""
    return {"chargingProfileId": p.profile_id, "connectorId": p.connector_id, "purpose": p.purpose,
            "stackLevel": p.stack_level, "status": p.status, "sentAt": p.sent_at, "createdAt": p.created_at,
            "csChargingProfiles": p.profile}


def report_to_api(r: Report) -> dict[str, Any]:
    """A request or report as models.Report."""
    return {"id": r.id, "kind": r.kind, "status": r.status, "detail": r.detail, "at": r.at}


def register(app: QuartTrio, chargers: ChargerRegistry, profiles: ChargingProfiles, maintenance: Maintenance,
             passwords: ChargerPasswords) -> None:
    @app.get("/api/v1/chargers/<charger_id>/charging-profiles")
    async def list_profiles(charger_id: str) -> Response:
        return jsonify({"chargingProfiles": [profile_to_api(p) for p in profiles.of(charger_id)]})

    @app.post("/api/v1/chargers/<charger_id>/charging-profiles")
    async def add_profile(charger_id: str) -> tuple[Response, int]:
        body = await json_body(models.ChargingProfileRequest)
        return jsonify(profile_to_api(await profiles.add(charger_id, body.connectorId, body.csChargingProfiles))), 201

    @app.delete("/api/v1/chargers/<charger_id>/charging-profiles/<profile_id>")
    async def clear_profile(charger_id: str, profile_id: str) -> Response:
        pid = int_param("chargingProfileId", profile_id)
        return jsonify({"chargingProfileId": pid, "status": await profiles.remove(charger_id, pid)})

    @app.post("/api/v1/chargers/<charger_id>/firmware")
    async def update_firmware(charger_id: str) -> tuple[Response, int]:
        body = await json_body(models.FirmwareRequest)
        report = await maintenance.update_firmware(charger_id, body.location, body.retrieveDate, body.retries,
                                                   body.retryInterval)
        return jsonify(report_to_api(report)), 202

    async def history(charger_id: str, kinds: tuple[str, ...], **latest: str | None) -> Response:
        """A page of the charger's history of `kinds`, newest first, with its `latest` statuses."""
        query = parse_query(models.PageQuery)
        reports, total = await maintenance.history(charger_id, kinds, query.limit, query.offset)
        return jsonify(models.page("history", [report_to_api(r) for r in reports], total, query,
                                   chargeBoxId=charger_id, **latest))

    @app.get("/api/v1/chargers/<charger_id>/firmware")
    async def firmware_history(charger_id: str) -> Response:
        state = chargers.require(charger_id)
        return await history(charger_id, FIRMWARE_KINDS, firmwareVersion=state.firmware_version,
                             firmwareStatus=state.firmware_status)

    @app.post("/api/v1/chargers/<charger_id>/diagnostics")
    async def get_diagnostics(charger_id: str) -> tuple[Response, int]:
        body = await json_body(models.DiagnosticsRequest)
        report = await maintenance.get_diagnostics(charger_id, body.location, body.startTime, body.stopTime,
                                                   body.retries, body.retryInterval)
        return jsonify(report_to_api(report)), 202

    @app.get("/api/v1/chargers/<charger_id>/diagnostics")
    async def diagnostics_history(charger_id: str) -> Response:
        state = chargers.require(charger_id)
        return await history(charger_id, DIAGNOSTICS_KINDS, diagnosticsStatus=state.diagnostics_status,
                             logStatus=state.log_status)

    @app.post("/api/v1/chargers/<charger_id>/trigger")
    async def trigger(charger_id: str) -> Response:
        body = await json_body(models.TriggerRequest)
        status = await maintenance.trigger(charger_id, body.requestedMessage, body.connectorId)
        return jsonify({"requestedMessage": body.requestedMessage, "status": status})

    @app.post("/api/v1/chargers/<charger_id>/password")
    async def rotate_password(charger_id: str) -> Response:
        body = await json_body(models.PasswordRequest)
        chargers.require(charger_id)
        return jsonify({"password": await passwords.rotate(charger_id, body.password), "status": "Accepted"})


# -- the OpenAPI section -------------------------------------------------------------------------

CHARGE_BOX_ID = openapi.path_param("chargeBoxId", {"type": "string"}, "The charger's charge box id")
PROFILE_ID = openapi.path_param("chargingProfileId", openapi.ID_SCHEMA, "The profile's chargingProfileId")
_op, _response, _errors = openapi.operation, openapi.response, openapi.errors
_SENT = "502: the charger answered with a CALLERROR; 504: no answer in time (it may act on it all the same)."

SECTION = openapi.Section({
    "/api/v1/chargers/{chargeBoxId}/charging-profiles": {
        "get": _op("listChargingProfiles", "Charging profiles", "The profiles set on a charger through the API",
                   {"200": _response("Its profiles by id, with its last answer to each", models.ChargingProfileList),
                    **_errors(404)}, parameters=[CHARGE_BOX_ID]),
        "post": _op("setChargingProfile", "Charging profiles", "Store an OCPP 1.6 charging profile and send it",
                    {"201": _response("Stored; `status` is the charger's answer (pending: offline, sent when it "
                                      "next boots)", models.ChargingProfile), **_errors(400, 404, 409, 422, 504)},
                    body=models.ChargingProfileRequest, parameters=[CHARGE_BOX_ID],
                    description="Checked against the 1.6 SetChargingProfile schema (422 names the field). Ids "
                                "from 2000 and stack levels from 1: load management uses stack level 0 and lower "
                                "ids. A load-managed charger takes only ChargePointMaxProfile (409 LoadManaged). "
                                "A profile with the id of a stored one replaces it. Stored profiles other than "
                                "TxProfile are sent again after the charger boots. " + _SENT)},
    "/api/v1/chargers/{chargeBoxId}/charging-profiles/{chargingProfileId}": {"delete": _op(
        "clearChargingProfile", "Charging profiles", "Clear a stored profile on the charger (ClearChargingProfile)",
        {"200": _response("The charger's answer; the record is gone once it answers Accepted or Unknown",
                          models.ClearedProfile), **_errors(404, 409, 422, 504)},
        parameters=[CHARGE_BOX_ID, PROFILE_ID])},
    "/api/v1/chargers/{chargeBoxId}/firmware": {
        "get": _op("firmwareHistory", "Firmware and diagnostics",
                   "Firmware requests, FirmwareStatusNotifications and each boot's firmware version",
                   {"200": _response("Newest first", models.FirmwareHistory), **_errors(404, 422)},
                   query=models.PageQuery, parameters=[CHARGE_BOX_ID]),
        "post": _op("updateFirmware", "Firmware and diagnostics", "Ask the charger to update its firmware",
                    {"202": _response("Sent and stored with the charger's answer; its progress follows in the "
                                      "history", models.Report), **_errors(400, 404, 409, 422, 504)},
                    body=models.FirmwareRequest, parameters=[CHARGE_BOX_ID],
                    description="UpdateFirmware (2.0.1: its requestId is the request's id). " + _SENT)},
    "/api/v1/chargers/{chargeBoxId}/diagnostics": {
        "get": _op("diagnosticsHistory", "Firmware and diagnostics",
                   "Diagnostics requests and DiagnosticsStatusNotifications (2.0.1: LogStatusNotifications)",
                   {"200": _response("Newest first", models.DiagnosticsHistory), **_errors(404, 422)},
                   query=models.PageQuery, parameters=[CHARGE_BOX_ID]),
        "post": _op("getDiagnostics", "Firmware and diagnostics", "Ask the charger to upload its diagnostics",
                    {"202": _response("Sent and stored with the charger's answer (its fileName)", models.Report),
                     **_errors(400, 404, 409, 422, 504)},
                    body=models.DiagnosticsRequest, parameters=[CHARGE_BOX_ID],
                    description="GetDiagnostics (2.0.1: GetLog of the DiagnosticsLog). " + _SENT)},
    "/api/v1/chargers/{chargeBoxId}/trigger": {"post": _op(
        "triggerMessage", "Chargers", "Ask the charger to send a message now (TriggerMessage)",
        {"200": _response("The charger's answer", models.TriggerResponse), **_errors(400, 404, 409, 422, 504)},
        body=models.TriggerRequest, parameters=[CHARGE_BOX_ID],
        description="requestedMessage is checked against the charger's OCPP version (422 names it). " + _SENT)},
    "/api/v1/chargers/{chargeBoxId}/password": {"post": _op(
        "rotatePassword", "Chargers", "Give the charger a new password (security profile 1's AuthorizationKey)",
        {"200": _response("The charger accepted it", models.PasswordResponse), **_errors(400, 404, 409, 422, 504)},
        body=models.PasswordRequest, parameters=[CHARGE_BOX_ID],
        description="The new key is stored (hashed) before it is sent, so the charger's reconnect with it is "
                    "accepted; its old key keeps working until it has connected with the new one. A charger "
                    "that refuses it keeps the old one (409 ChargerRejected). Without `password` a random "
                    "40-character key is made: it is in this answer only. A ChangeConfiguration of "
                    "AuthorizationKey through the operations endpoint does the same. " + _SENT)},
})
