"""Notification payloads, in the upstream platform's formats.

Each builder returns the outbox rows to write with the state change that causes them; an event
type whose URL is not configured produces none.
"""

from __future__ import annotations

import sqlite3

from controller.store.outbox import OutboxEvent


class Events:
    def __init__(self, enabled: frozenset[str] = frozenset()) -> None:
        self.enabled = enabled

    def _event(self, kind: str, charger_id: str, payload: dict, transaction_id: int | None = None) -> list[OutboxEvent]:
        if kind not in self.enabled:
            return []
        return [OutboxEvent(kind, charger_id, payload, transaction_id)]

    def start(self, txn: sqlite3.Row | dict, accepted: bool) -> list[OutboxEvent]:
        """The seed's `start` notification; a rejected start carries transaction_id 0."""
        payload = {
            "type": "start",
            "accepted": accepted,
            "chargebox": txn["charger_id"],
            "id": txn["id_tag"],
            "connector": txn["connector_id"],
            "transaction_id": txn["id"] if accepted else 0,
            "mode": txn["mode"],
        }
        return self._event("start", txn["charger_id"], payload, txn["id"])

    def status(self, charger_id: str, payload: dict) -> list[OutboxEvent]:
        """A connector status change, in the same flat style as `start`."""
        return self._event("status", charger_id, {
            "type": "status",
            "chargebox": charger_id,
            "connector": payload["connectorId"],
            "status": payload["status"],
            "error_code": payload["errorCode"],
        })
