"""Notification payloads, in the upstream platform's formats.

Each builder returns the outbox rows to write with the state change that causes them; an event
type whose URL is not configured produces none. docs/upstream.md describes every field.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping
from typing import TYPE_CHECKING

from controller.elapsed import charge_duration_s
from controller.store.outbox import OutboxEvent
from controller.timefmt import now_iso

if TYPE_CHECKING:
    from controller.store import Store

log = logging.getLogger("evedge.upstream")

Row = sqlite3.Row | Mapping


def _kwh(row: Row, last: float | None) -> float:
    start = row["meter_start"]
    if start is None or last is None:
        return 0
    return round(max(0.0, (last - start)) / 1000, 3)


def _seconds(row: Row) -> int:
    return int(charge_duration_s(row) or 0)


class Events:
    def __init__(self, enabled: frozenset[str] = frozenset()) -> None:
        self.enabled = enabled

    def _event(self, kind: str, charger_id: str, payload: dict, transaction_id: int | None = None) -> list[OutboxEvent]:
        if kind not in self.enabled:
            return []
        return [OutboxEvent(kind, charger_id, payload, transaction_id)]

    def start(self, txn: Row, accepted: bool, payment: dict | None = None) -> list[OutboxEvent]:
        """The `start` notification in the published format; a rejected start carries transaction_id 0."""
        payload = {
            "type": "start",
            "accepted": accepted,
            "chargebox": txn["charger_id"],
            "id": txn["id_tag"],
            "connector": txn["connector_id"],
            "transaction_id": txn["id"] if accepted else 0,
            "mode": txn["mode"],
        }
        if payment is not None:
            payload["payment"] = payment
        return self._event("start", txn["charger_id"], payload, txn["id"])

    def stop(self, txn: Row, payment: dict | None = None) -> list[OutboxEvent]:
        """`stop_transaction` for a StopTransaction the charger sent (the row after `finish`)."""
        payload = {
            "type": "stop_transaction",
            "accepted": True,
            "unlocked": False,
            "chargebox": txn["charger_id"],
            "idTag": txn["id_tag"] or txn["stop_id_tag"] or "",
            "connector": txn["connector_id"],
            "transaction_id": txn["id"],
            "kwh": _kwh(txn, txn["meter_stop"]),
            "time": _seconds(txn),
        }
        if payment is not None:
            payload["payment"] = payment
        return self._event("stop_transaction", txn["charger_id"], payload, txn["id"])

    def stop_rejected(self, txn: Row) -> list[OutboxEvent]:
        """The charger refused our RemoteStopTransaction: the charge goes on."""
        energy = _kwh(txn, txn["meter_last"])
        payload = {
            "type": "stop_transaction",
            "accepted": False,
            "unlocked": False,
            "chargebox": txn["charger_id"],
            "idTag": txn["id_tag"] or "",
            "connector": txn["connector_id"],
            "transaction_id": 0,
            "kwh": energy,
            "time": _seconds(txn),
            "msg": "stop",
            "energy": energy,
        }
        return self._event("stop_transaction", txn["charger_id"], payload, txn["id"])

    def unlocked(self, charger_id: str, connector_id: int) -> list[OutboxEvent]:
        """The connector was unlocked (UnlockConnector answered Unlocked)."""
        payload = {
            "type": "stop_transaction",
            "accepted": True,
            "unlocked": True,
            "chargebox": charger_id,
            "idTag": "",
            "connector": connector_id,
            "transaction_id": 0,
            "kwh": 0,
            "time": 0,
            "msg": "stop",
            "energy": 0,
        }
        return self._event("stop_transaction", charger_id, payload)

    def status(self, charger_id: str, connector_id: int, status: str, error_code: str | None,
               info: str | None = None, vendor_error_code: str | None = None, timestamp: str | None = None,
               previous: tuple[str | None, str | None] | None = None) -> list[OutboxEvent]:
        """A connector status change, in the same flat style as `start`.

        With `previous` (the connector's known status and error code), a report that repeats
        them produces nothing.
        """
        if previous is not None and previous == (status, error_code):
            return []
        body = {
            "type": "status",
            "chargebox": charger_id,
            "connector": connector_id,
            "status": status,
            "error_code": error_code,
            "timestamp": timestamp or now_iso(),
        }
        if info:
            body["info"] = info
        if vendor_error_code:
            body["vendor_error_code"] = vendor_error_code
        return self._event("status", charger_id, body)

    def connection(self, charger_id: str, online: bool) -> list[OutboxEvent]:
        """A charger's OCPP connection opened (online) or closed (offline)."""
        return self._event("connection", charger_id, {
            "type": "connection",
            "chargebox": charger_id,
            "online": online,
            "timestamp": now_iso(),
        })


def _nothing(conn: sqlite3.Connection) -> None:
    return None


async def record(store: Store, events: list[OutboxEvent]) -> None:
    """Write events that have no state change of their own (online/offline, unlock).

    Never raises: such a notification is not worth failing a charger's connection for.
    """
    if not events:
        return
    try:
        await store.write(_nothing, events=events)
    except Exception:
        log.exception("could not queue %s notification", events[0].type)
