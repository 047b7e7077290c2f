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

from controller.api import auth, errors, hardware, notifications
from controller.api.models import IdTagBody, NewIdTagBody, RemoteStartBody, TransactionQuery
from controller.api.openapi import openapi_document
from controller.authorization import IdTag
from controller.config import parse_listen
from controller.csms.frames import CENTRAL_ACTIONS, CALL, OcppError, validate
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

    def charger(charger_id: str):
        state = site.chargers.get(charger_id)
        if state is None:
            raise not_found("Charger", charger_id)
        return state

    @app.get("/api/v1/chargers")
    async def list_chargers() -> Response:
        return jsonify({"chargers": [s.to_api() for _, s in sorted(site.chargers.chargers.items())]})

    @app.get("/api/v1/chargers/<charger_id>")
    async def get_charger(charger_id: str) -> Response:
        return jsonify(charger(charger_id).to_api())

    @app.post("/api/v1/chargers/<charger_id>/approve")
    async def approve_charger(charger_id: str) -> Response:
        charger(charger_id)
        state = await site.chargers.set_registration(charger_id, "accepted")
        return jsonify(state.to_api())

    @app.post("/api/v1/chargers/<charger_id>/reject")
    async def reject_charger(charger_id: str) -> Response:
        state = charger(charger_id)
        if state.configured:
            raise Problem(409, "ChargerConfigured", f"charger {charger_id} is in the config file; remove it there")
        state = await site.chargers.set_registration(charger_id, "rejected")
        if state.session is not None:
            await state.session.aclose(1008, "rejected by the operator")
        return jsonify(state.to_api())

    @app.post("/api/v1/chargers/<charger_id>/remote-start")
    async def remote_start(charger_id: str) -> tuple[Response, int]:
        body = await errors.json_body(RemoteStartBody)
        charger(charger_id)
        started = await site.transactions.remote_start(charger_id, body.connectorId, body.idTag)
        return jsonify({
            "message": "Remote start accepted by charger",
            **started,
            "status": "pending",
            "note": "Transaction will start when vehicle is connected and ready",
        }), 202

    @app.post("/api/v1/chargers/<charger_id>/operations/<action>")
    async def operation(charger_id: str, action: str) -> Response:
        state = charger(charger_id)
        if action not in CENTRAL_ACTIONS:
            raise Problem(404, "OperationNotFound",
                          f"{action!r} is not an OCPP 1.6 operation a central system can send")
        payload = await errors.json_object()
        if payload is None:
            raise Problem(400, "BadRequest", "the request body must be the operation's JSON object")
        try:
            validate(CALL, action, payload)
        except OcppError as err:
            raise Problem(422, "InvalidRequest", f"{action} {err.description}") from None
        try:
            answer = await site.transactions.call(state, action, payload)
        except OcppError as err:
            return errors.problem_response(
                502, "CallError", f"charger answered {err.code}: {err.description}",
                callError={"code": err.code, "description": err.description, "details": err.details},
            )
        return jsonify(answer)

    # -- transactions ----------------------------------------------------------------------

    @app.get("/api/v1/transactions")
    async def list_transactions() -> Response:
        try:
            query = TransactionQuery.model_validate(request.args.to_dict())
        except ValidationError as exc:
            raise errors.validation_problem(exc, where="query") from None
        return jsonify(await site.transactions.page(query.chargeBoxId, query.status, query.limit, query.offset))

    @app.get("/api/v1/transactions/<transaction_id>")
    async def get_transaction(transaction_id: str) -> Response:
        return jsonify(await site.transactions.get(errors.int_param("transactionId", transaction_id)))

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
        return jsonify({"idTags": [t.to_api() for t in tags]})

    @app.post("/api/v1/id-tags")
    async def create_id_tag() -> tuple[Response, int]:
        body = await errors.json_body(NewIdTagBody)
        if site.authorization.get(body.idTag) is not None:
            raise Problem(409, "IdTagExists", f"id tag {body.idTag} already exists; PUT to change it")
        tag = IdTag(body.idTag, body.status, body.expiryDate, body.parentIdTag)
        await site.authorization.put(tag)
        return jsonify(tag.to_api()), 201

    @app.get("/api/v1/id-tags/<id_tag>")
    async def get_id_tag(id_tag: str) -> Response:
        tag = site.authorization.get(id_tag)
        if tag is None:
            raise not_found("IdTag", id_tag)
        return jsonify(tag.to_api())

    @app.put("/api/v1/id-tags/<id_tag>")
    async def put_id_tag(id_tag: str) -> Response:
        body = await errors.json_body(IdTagBody)
        if not 1 <= len(id_tag) <= 20:
            raise Problem(422, "InvalidRequest", "path parameter 'idTag': 1 to 20 characters")
        tag = IdTag(id_tag, body.status, body.expiryDate, body.parentIdTag)
        await site.authorization.put(tag)
        return jsonify(tag.to_api())

    @app.delete("/api/v1/id-tags/<id_tag>")
    async def delete_id_tag(id_tag: str) -> tuple[str, int]:
        if not await site.authorization.delete(id_tag):
            raise not_found("IdTag", id_tag)
        return "", 204

    notifications.register(app, site)
    hardware.register(app, site)
    public_charging_api.register(app, site)
    return app


async def serve_api(site: Site, shutdown: trio.Event, task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    host, port = parse_listen(site.config.api.listen)
    config = HypercornConfig()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("evedge.http")
    config.graceful_timeout = 2
    app = create_app(site)
    await serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
