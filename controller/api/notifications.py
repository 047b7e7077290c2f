"""REST resources for the upstream outbox: see, page and replay notifications (all through the
delivery worker, the outbox's one owner)."""

from __future__ import annotations

import sqlite3
from typing import Any, Literal

import orjson
from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import openapi
from controller.api.errors import int_param, not_found, parse_query
from controller.api.models import PageQuery, page
from controller.upstream.delivery import Delivery


class NotificationQuery(PageQuery):
    status: Literal["pending", "delivered", "failed"] | None = None
    chargeBoxId: str | None = None
    type: str | None = None


def notification_to_api(row: sqlite3.Row) -> dict[str, Any]:
    """An outbox row as models.Notification."""
    return {
        "id": row["id"],
        "eventId": row["event_id"],
        "type": row["type"],
        "chargeBoxId": row["charger_id"],
        "transactionId": row["transaction_id"],
        "status": row["status"],
        "attempts": row["attempts"],
        "lastStatus": row["last_status"],
        "lastError": row["last_error"],
        "lastAttemptAt": row["last_attempt_at"],
        "nextAttemptAt": row["next_attempt_at"],
        "createdAt": row["created_at"],
        "deliveredAt": row["delivered_at"],
        "payload": orjson.loads(row["payload"]),
    }


def _id(text: str) -> int:
    return int_param("id", text)


def register(app: QuartTrio, delivery: Delivery) -> None:
    @app.get("/api/v1/notifications")
    async def list_notifications() -> Response:
        query = parse_query(NotificationQuery)
        rows, total = await delivery.notifications(
            query.status, query.chargeBoxId, query.type, query.limit, query.offset)
        return jsonify(page("notifications", [notification_to_api(r) for r in rows], total, query,
                            queue=await delivery.queue()))

    @app.get("/api/v1/notifications/queue")
    async def notification_queue() -> Response:
        return jsonify(await delivery.queue())

    @app.get("/api/v1/notifications/<row_id>")
    async def get_notification(row_id: str) -> Response:
        row = await delivery.notification(_id(row_id))
        if row is None:
            raise not_found("Notification", row_id)
        return jsonify(notification_to_api(row))

    @app.post("/api/v1/notifications/<row_id>/retry")
    async def retry_notification(row_id: str) -> Response:
        row = await delivery.replay(_id(row_id))
        if row is None:
            raise not_found("Notification", row_id)
        return jsonify(notification_to_api(row))


# -- the OpenAPI section -------------------------------------------------------------------------

NOTIFICATION_ID = openapi.path_param("id", openapi.ID_SCHEMA, "The notification's row id")
_op, _response, _errors = openapi.operation, openapi.response, openapi.errors

_NSTATUS = {"type": "string", "enum": ["pending", "delivered", "failed"]}
_NULL_STR = {"type": ["string", "null"]}
_NULL_TIME = {"type": ["string", "null"], "format": "date-time"}
_NULL_INT = {"type": ["integer", "null"]}

SCHEMAS = {
    "Notification": {
        "type": "object",
        "required": ["id", "eventId", "type", "chargeBoxId", "transactionId", "status", "attempts", "lastStatus",
                     "lastError", "lastAttemptAt", "nextAttemptAt", "createdAt", "deliveredAt", "payload"],
        "properties": {
            "id": {"type": "integer", "description": "Row id: the delivery order within one charger"},
            "eventId": {"type": "string", "description": "Sent as X-Evedge-Event-Id; stable across retries"},
            "type": {"type": "string", "description": "start | stop_transaction | status | connection"},
            "chargeBoxId": {"type": "string"},
            "transactionId": _NULL_INT,
            "status": _NSTATUS,
            "attempts": {"type": "integer", "minimum": 0},
            "lastStatus": {**_NULL_INT, "description": "HTTP status of the last attempt (null: no answer)"},
            "lastError": _NULL_STR,
            "lastAttemptAt": _NULL_TIME,
            "nextAttemptAt": _NULL_TIME,
            "createdAt": {"type": "string", "format": "date-time"},
            "deliveredAt": _NULL_TIME,
            "payload": {"type": "object", "description": "The JSON body POSTed to the upstream"},
        },
    },
    "NotificationQueue": {
        "type": "object",
        "required": ["pending", "delivered", "failed", "oldestPendingAgeSeconds"],
        "properties": {
            "pending": {"type": "integer", "minimum": 0, "description": "Queue depth"},
            "delivered": {"type": "integer", "minimum": 0},
            "failed": {"type": "integer", "minimum": 0},
            "oldestPendingAgeSeconds": {"type": ["number", "null"], "minimum": 0},
        },
    },
    "NotificationList": {
        "type": "object",
        "required": ["notifications", "pagination", "queue"],
        "properties": {
            "notifications": {"type": "array", "items": openapi.ref("Notification")},
            "pagination": openapi.PAGINATION,
            "queue": openapi.ref("NotificationQueue"),
        },
    },
}

SECTION = openapi.Section({
    "/api/v1/notifications": {"get": _op(
        "listNotifications", "Notifications",
        "Upstream notifications (pending oldest first, others newest first) and the queue's state",
        {"200": _response("A page of notifications", openapi.ref("NotificationList")), **_errors(422)},
        parameters=[
            openapi.query_param("status", _NSTATUS, "Filter by delivery status"),
            openapi.query_param("chargeBoxId", {"type": "string"}, "Filter by charger"),
            openapi.query_param("type", {"type": "string"}, "Filter by event type"),
            openapi.query_param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
                                "Results per page"),
            openapi.query_param("offset", openapi.OFFSET_SCHEMA, "Pagination offset"),
        ])},
    "/api/v1/notifications/queue": {"get": _op(
        "notificationQueue", "Notifications", "Queue depth and the age of the oldest pending notification",
        {"200": _response("The queue", openapi.ref("NotificationQueue")), **_errors()})},
    "/api/v1/notifications/{id}": {"get": _op(
        "getNotification", "Notifications", "One notification",
        {"200": _response("The notification", openapi.ref("Notification")), **_errors(404, 422)},
        parameters=[NOTIFICATION_ID])},
    "/api/v1/notifications/{id}/retry": {"post": _op(
        "retryNotification", "Notifications",
        "Send a notification again now (a failed one, a delivered one as a replay, or a waiting one)",
        {"200": _response("The notification, pending again", openapi.ref("Notification")), **_errors(404, 422)},
        parameters=[NOTIFICATION_ID])},
}, SCHEMAS)
