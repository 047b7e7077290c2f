"""REST resources for the upstream outbox: see, page and replay notifications (all through the
delivery worker, the outbox's one owner)."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
from quart import Response, jsonify
from quart_trio import QuartTrio

from controller.api import models, openapi
from controller.api.errors import int_param, not_found, parse_query
from controller.upstream.delivery import Delivery


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
        query = parse_query(models.NotificationQuery)
        rows, total = await delivery.notifications(
            query.status, query.chargeBoxId, query.type, query.limit, query.offset)
        return jsonify(models.page("notifications", [notification_to_api(r) for r in rows], total, query,
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

SECTION = openapi.Section({
    "/api/v1/notifications": {"get": _op(
        "listNotifications", "Notifications",
        "Upstream notifications (pending oldest first, others newest first) and the queue's state",
        {"200": _response("A page of notifications", models.NotificationList), **_errors(422)},
        query=models.NotificationQuery)},
    "/api/v1/notifications/queue": {"get": _op(
        "notificationQueue", "Notifications", "Queue depth and the age of the oldest pending notification",
        {"200": _response("The queue", models.NotificationQueue), **_errors()})},
    "/api/v1/notifications/{id}": {"get": _op(
        "getNotification", "Notifications", "One notification",
        {"200": _response("The notification", models.Notification), **_errors(404, 422)},
        parameters=[NOTIFICATION_ID])},
    "/api/v1/notifications/{id}/retry": {"post": _op(
        "retryNotification", "Notifications",
        "Send a notification again now (a failed one, a delivered one as a replay, or a waiting one)",
        {"200": _response("The notification, pending again", models.Notification), **_errors(404, 422)},
        parameters=[NOTIFICATION_ID])},
})
