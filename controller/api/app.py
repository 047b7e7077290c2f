"""The REST API (Quart on Trio), served by hypercorn inside the controller's nursery."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from pydantic import ValidationError
from quart import Response, jsonify, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from controller.api import auth, circuits, errors, hardware, notifications
from controller.api.models import IdTagBody, NewIdTagBody, RemoteStartBody, TransactionQuery
from controller.api.openapi import openapi_document
from controller.authorization import IdTag
from controller.chargers import ChargerState, ConnectorState
import sqlite3

from controller.timefmt import parse_iso, utcnow
from controller.config import parse_listen
from controller.api.errors import Problem, not_found
from controller.public_charging import api as public_charging_api

if TYPE_CHECKING:
    from controller.site import Site

log = logging.getLogger("evedge.api")
MAX_BODY_BYTES = 64 * 1024
"""Larger request bodies answer 413, by Content-Length before anything is read, or while reading."""
PUBLIC_PATHS = ("/healthz", "/api/v1/openapi.json")


async def _drain_body(response: Response) -> None:
    """Read what is left of the request body before answering.

    An answer given before the body has arrived (a 401, a 404, a 429) otherwise leaves hypercorn's
    keep-alive connection stuck: the client's next request on it never gets an answer. A body that
    cannot be read (too large, too slow) closes the connection instead.
    """
    if not request.content_length and "chunked" not in request.headers.get("Transfer-Encoding", "").lower():
        return
    try:
        await request.get_data()  # cached: free when the view has read it already
    except HTTPException:
        response.headers["Connection"] = "close"


def create_app(site: Site) -> QuartTrio:
    app = QuartTrio("evedge")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False
    errors.install(app)

    def is_public() -> bool:
        if request.path in PUBLIC_PATHS or request.path.startswith(public_charging_api.PUBLIC_PREFIXES):
            return True
        return request.path == "/metrics" and not site.config.api.metrics_require_api_key

    @app.before_request
    async def _guard() -> Response | None:
        api = site.config.api  # read per request: a SIGHUP reload changes keys and origins
        if auth.is_preflight(request):
            return auth.preflight(api, request)
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise Problem(413, "PayloadTooLarge", f"the request body is larger than {MAX_BODY_BYTES} bytes")
        if not is_public():
            try:
                auth.authorize(api, request)
            except Problem as problem:
                log.info("API %s %s from %s refused: %s", request.method, request.path, request.remote_addr,
                         problem.message)  # never the key itself
                raise
        return None

    @app.after_request
    async def _finish(response: Response) -> Response:
        await _drain_body(response)
        return auth.add_cors_headers(site.config.api, request, response)

    @app.get("/healthz")
    async def healthz() -> tuple[Response, int]:
        health = await site.health()
        return jsonify(health), 503 if health.get("status") == "failing" else 200

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        from controller import metrics

        return Response(await metrics.render(site), content_type=metrics.CONTENT_TYPE)

    @app.get("/api/v1/openapi.json")
    async def openapi() -> Response:
        return jsonify(openapi_document())

    # -- chargers --------------------------------------------------------------------------

    @app.get("/api/v1/chargers")
    async def list_chargers() -> Response:
        return jsonify({"chargers": [charger_to_api(s) for s in site.chargers.all()]})

    @app.get("/api/v1/chargers/<charger_id>")
    async def get_charger(charger_id: str) -> Response:
        return jsonify(charger_to_api(site.chargers.require(charger_id)))

    @app.post("/api/v1/chargers/<charger_id>/approve")
    async def approve_charger(charger_id: str) -> Response:
        return jsonify(charger_to_api(await site.chargers.approve(charger_id)))

    @app.post("/api/v1/chargers/<charger_id>/reject")
    async def reject_charger(charger_id: str) -> Response:
        return jsonify(charger_to_api(await site.chargers.reject(charger_id)))

    @app.post("/api/v1/chargers/<charger_id>/remote-start")
    async def remote_start(charger_id: str) -> tuple[Response, int]:
        body = await errors.json_body(RemoteStartBody)
        site.chargers.require(charger_id)
        started = await site.transactions.remote_start(charger_id, body.connectorId, body.idTag)
        return jsonify({
            "message": "Remote start accepted by charger",
            **started,
            "status": "pending",
            "note": "Transaction will start when vehicle is connected and ready",
        }), 202

    @app.post("/api/v1/chargers/<charger_id>/operations/<action>")
    async def operation(charger_id: str, action: str) -> Response:
        site.chargers.require(charger_id)
        payload = await errors.json_object()
        if payload is None:
            raise Problem(400, "BadRequest", "the request body must be the operation's JSON object")
        return jsonify(await site.chargers.operation(charger_id, action, payload))

    # -- transactions ----------------------------------------------------------------------

    @app.get("/api/v1/transactions")
    async def list_transactions() -> Response:
        try:
            query = TransactionQuery.model_validate(request.args.to_dict())
        except ValidationError as exc:
            raise errors.validation_problem(exc, where="query") from None
        rows, total = await site.transactions.page(query.chargeBoxId, query.status, query.limit, query.offset)
        return jsonify({
            "transactions": [transaction_to_api(r, detail=False) for r in rows],
            "pagination": {"total": total, "limit": query.limit, "offset": query.offset},
        })

    @app.get("/api/v1/transactions/<transaction_id>")
    async def get_transaction(transaction_id: str) -> Response:
        row = await site.transactions.get(errors.int_param("transactionId", transaction_id))
        return jsonify(transaction_to_api(row, detail=True))

    @app.post("/api/v1/transactions/<transaction_id>/stop")
    async def stop_transaction(transaction_id: str) -> tuple[Response, int]:
        stopped = await site.transactions.remote_stop(errors.int_param("transactionId", transaction_id))
        return jsonify({
            "message": "Remote stop accepted by charger",
            **stopped,
            "status": "stopping",
            "note": "Transaction will stop shortly. Final details available after StopTransaction is received.",
        }), 202

    # -- id tags ---------------------------------------------------------------------------

    @app.get("/api/v1/id-tags")
    async def list_id_tags() -> Response:
        tags = sorted(site.authorization.tags.values(), key=lambda t: t.id_tag)
        return jsonify({"idTags": [id_tag_to_api(t) for t in tags]})

    @app.post("/api/v1/id-tags")
    async def create_id_tag() -> tuple[Response, int]:
        body = await errors.json_body(NewIdTagBody)
        if site.authorization.get(body.idTag) is not None:
            raise Problem(409, "IdTagExists", f"id tag {body.idTag} already exists; PUT to change it")
        tag = IdTag(body.idTag, body.status, body.expiryDate, body.parentIdTag)
        await site.authorization.put(tag)
        return jsonify(id_tag_to_api(tag)), 201

    @app.get("/api/v1/id-tags/<id_tag>")
    async def get_id_tag(id_tag: str) -> Response:
        tag = site.authorization.get(id_tag)
        if tag is None:
            raise not_found("IdTag", id_tag)
        return jsonify(id_tag_to_api(tag))

    @app.put("/api/v1/id-tags/<id_tag>")
    async def put_id_tag(id_tag: str) -> Response:
        body = await errors.json_body(IdTagBody)
        if not 1 <= len(id_tag) <= 20:
            raise Problem(422, "InvalidRequest", "path parameter 'idTag': 1 to 20 characters")
        tag = IdTag(id_tag, body.status, body.expiryDate, body.parentIdTag)
        await site.authorization.put(tag)
        return jsonify(id_tag_to_api(tag))

    @app.delete("/api/v1/id-tags/<id_tag>")
    async def delete_id_tag(id_tag: str) -> tuple[str, int]:
        if not await site.authorization.delete(id_tag):
            raise not_found("IdTag", id_tag)
        return "", 204

    notifications.register(app, site)
    hardware.register(app, site)
    circuits.register(app, site.load)
    public_charging_api.register(app, site)
    return app


def connector_to_api(c: ConnectorState) -> dict:
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
    }


def charger_to_api(s: ChargerState) -> dict:
    return {
        "chargeBoxId": s.id,
        "registration": s.registration,
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
        "connectors": [connector_to_api(c) for _, c in sorted(s.connectors.items())],
    }


def id_tag_to_api(tag: IdTag) -> dict:
    return {"idTag": tag.id_tag, "status": tag.status, "expiryDate": tag.expiry_date, "parentIdTag": tag.parent_id_tag}


def transaction_to_api(row: sqlite3.Row, detail: bool) -> dict:
    """A transaction in the API's shape (seed 001), from its stored row."""
    meter_start, meter_stop = row["meter_start"], row["meter_stop"]
    last = meter_stop if meter_stop is not None else row["meter_last"]
    energy = round((last - meter_start) / 1000, 3) if meter_start is not None and last is not None else None
    duration = None
    if row["start_time"]:
        end = parse_iso(row["stop_time"]) if row["stop_time"] else utcnow()
        duration = max(0, int((end - parse_iso(row["start_time"])).total_seconds() // 60))
    body = {
        "id": f"txn_{row['id']}",
        "transactionId": row["id"],
        "chargeBoxId": row["charger_id"],
        "connectorId": row["connector_id"],
        "idTag": row["id_tag"],
        "status": row["status"],
    }
    if detail:
        body.update(meterStart=meter_start, meterStop=meter_stop)
    body.update(energyDelivered=energy, durationMinutes=duration,
                startTime=row["start_time"], stopTime=row["stop_time"])
    if detail:
        body.update(stopReason=row["stop_reason"], remoteStarted=bool(row["remote_started"]),
                    mode=row["mode"], idTagStatus=row["id_tag_status"], paymentAmount=row["payment_amount"])
    return body


async def serve_api(site: Site, shutdown: trio.Event, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    host, port = parse_listen(site.config.api.listen)
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("evedge.http")
    config.graceful_timeout = 2
    app = create_app(site)
    await serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
