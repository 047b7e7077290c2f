"""Outbox rows: upstream notifications written in the same transaction as their cause."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from controller.timefmt import now_iso


@dataclass(frozen=True)
class OutboxEvent:
    type: str
    charger_id: str
    payload: dict
    transaction_id: int | None = None
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def insert_events(conn: sqlite3.Connection, events: Iterable[OutboxEvent]) -> None:
    conn.executemany(
        "INSERT INTO outbox (event_id, type, charger_id, transaction_id, payload, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [
            (e.event_id, e.type, e.charger_id, e.transaction_id, orjson.dumps(e.payload).decode(), now_iso())
            for e in events
        ],
    )
