"""Outbox rows: upstream notifications written in the same transaction as their cause.

A row is `pending` until the upstream acknowledged it (`delivered`) or the delivery worker gave
up on it (`failed`, parked for an operator to retry). Rows of one charger are delivered in `id`
order.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from controller.timefmt import now_iso

STATUSES = ("pending", "delivered", "failed")
BILLING = ("start", "stop_transaction")
"""Events about money and energy: never parked or pruned to make room (only by age, when failed)."""
STATUS_BACKLOG = 20
"""Undelivered status events kept per connector: beyond it the oldest go (a flapping connector
must not flood the queue while the upstream is away; its latest statuses are what matter)."""
CONNECTION_BACKLOG = 10
"""Undelivered connection events kept per charger (a charger reconnecting in a loop): the latest."""
CHARGER_BACKLOG = 500
"""Undelivered events other than BILLING kept per charger, whatever their kind: one charger's
flood never fills the outbox for the others."""

# Bumped (from the writer thread) whenever rows are inserted, committed or not: the store tells
# from it whether a transaction stored notifications (db.py `Store.outbox_generation`).
_last_insert = [0]


def insert_generation() -> int:
    return _last_insert[0]


def last_id(conn: sqlite3.Connection) -> int:
    """The id of the newest row (0: none yet)."""
    return conn.execute("SELECT max(id) FROM outbox").fetchone()[0] or 0


@dataclass(frozen=True)
class OutboxEvent:
    type: str
    charger_id: str
    payload: dict
    transaction_id: int | None = None
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def insert_events(conn: sqlite3.Connection, events: Iterable[OutboxEvent]) -> None:
    """Queue the events; a connector keeps at most STATUS_BACKLOG undelivered status events, a
    charger CONNECTION_BACKLOG connection events and CHARGER_BACKLOG events that are not BILLING."""
    events = list(events)
    billing = ", ".join("?" * len(BILLING))
    for e in events:
        if e.type == "status":
            conn.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND charger_id = ?"
                " AND type = 'status' AND json_extract(payload, '$.connector') = ? ORDER BY id DESC LIMIT -1 OFFSET ?)",
                (e.charger_id, e.payload.get("connector"), STATUS_BACKLOG - 1))
        elif e.type == "connection":
            conn.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND charger_id = ?"
                " AND type = 'connection' ORDER BY id DESC LIMIT -1 OFFSET ?)", (e.charger_id, CONNECTION_BACKLOG - 1))
        if e.type not in BILLING:
            conn.execute(
                "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND charger_id = ?"
                f" AND type NOT IN ({billing}) ORDER BY id DESC LIMIT -1 OFFSET ?)",
                (e.charger_id, *BILLING, CHARGER_BACKLOG - 1))
    rows = [
        (e.event_id, e.type, e.charger_id, e.transaction_id, orjson.dumps(e.payload).decode(), now_iso())
        for e in events
    ]
    if not rows:
        return
    conn.executemany(
        "INSERT INTO outbox (event_id, type, charger_id, transaction_id, payload, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    _last_insert[0] += 1


# -- the delivery worker ----------------------------------------------------------------------

def pending_chargers(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT charger_id FROM outbox WHERE status = 'pending' ORDER BY charger_id")]


def head(conn: sqlite3.Connection, charger_id: str) -> sqlite3.Row | None:
    """The charger's oldest pending event: the only one that may be sent now."""
    return conn.execute(
        "SELECT * FROM outbox WHERE status = 'pending' AND charger_id = ? ORDER BY id LIMIT 1", (charger_id,)
    ).fetchone()


def mark_delivered(conn: sqlite3.Connection, row_id: int, status_code: int, at: str,
                   payment_amount: str | None = None) -> None:
    """Acknowledged; an API-payment `amount` in the answer goes onto the transaction."""
    conn.execute(
        "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, last_status = ?, last_error = NULL,"
        " last_attempt_at = ?, delivered_at = ?, next_attempt_at = NULL WHERE id = ? AND status = 'pending'",
        (status_code, at, at, row_id),
    )
    if payment_amount is not None:
        conn.execute(
            "UPDATE transactions SET payment_amount = ?, updated_at = ? WHERE id ="
            " (SELECT transaction_id FROM outbox WHERE id = ?)",
            (payment_amount, at, row_id),
        )


def mark_retry(conn: sqlite3.Connection, row_id: int, at: str, next_attempt_at: str, error: str,
               status_code: int | None, client_error: bool) -> None:
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, client_errors = client_errors + ?, last_status = ?,"
        " last_error = ?, last_attempt_at = ?, next_attempt_at = ? WHERE id = ? AND status = 'pending'",
        (int(client_error), status_code, error[:500], at, next_attempt_at, row_id),
    )


def mark_failed(conn: sqlite3.Connection, row_id: int, at: str, error: str, status_code: int | None,
                attempted: bool = True) -> None:
    conn.execute(
        "UPDATE outbox SET status = 'failed', attempts = attempts + ?, client_errors = client_errors + ?,"
        " last_status = ?, last_error = ?, last_attempt_at = coalesce(?, last_attempt_at),"
        " next_attempt_at = NULL WHERE id = ? AND status = 'pending'",
        (int(attempted), int(attempted), status_code, error[:500], at if attempted else None, row_id),
    )


def prune(conn: sqlite3.Connection, delivered_before: str, failed_before: str, max_rows: int, at: str) -> dict:
    """Keep the outbox bounded: old delivered and failed rows go, an overfull queue is parked.

    Billing events (`BILLING`) are never parked or removed to make room: a dead upstream must not
    lose a charge's start or stop because of other events. What this pass parks is not removed in
    the same pass (an operator sees it, and may replay it, until the retention removes it).
    """
    removed = conn.execute(
        "DELETE FROM outbox WHERE status = 'delivered' AND delivered_at < ?", (delivered_before,)).rowcount
    removed += conn.execute(
        "DELETE FROM outbox WHERE status = 'failed' AND coalesce(last_attempt_at, created_at) < ?",
        (failed_before,)).rowcount
    billing = ", ".join("?" * len(BILLING))
    parked = conn.execute(
        "UPDATE outbox SET status = 'failed', last_error = 'outbox full: parked', next_attempt_at = NULL,"
        f" last_attempt_at = ? WHERE id IN (SELECT id FROM outbox WHERE status = 'pending' AND type NOT IN ({billing})"
        " ORDER BY id LIMIT max(0, (SELECT count(*) FROM outbox WHERE status = 'pending') - ?))",
        (at, *BILLING, max_rows)).rowcount
    for status in ("delivered", "failed"):
        removed += conn.execute(
            f"DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE status = ? AND type NOT IN ({billing})"
            " AND coalesce(last_attempt_at, '') < ? ORDER BY id"
            " LIMIT max(0, (SELECT count(*) FROM outbox WHERE status = ?) - ?))",
            (status, *BILLING, at, status, max_rows)).rowcount
    return {"removed": removed, "parked": parked}


# -- the operator's view -----------------------------------------------------------------------

def get(conn: sqlite3.Connection, row_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM outbox WHERE id = ?", (row_id,)).fetchone()


def page(conn: sqlite3.Connection, status: str | None, charger_id: str | None, event_type: str | None,
         limit: int, offset: int) -> tuple[list[sqlite3.Row], int]:
    """Pending rows oldest first (delivery order); delivered and failed newest first."""
    where, args = [], []
    for column, value in (("status", status), ("charger_id", charger_id), ("type", event_type)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    order = "id" if status == "pending" else "id DESC"
    total = conn.execute(f"SELECT count(*) FROM outbox{clause}", args).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM outbox{clause} ORDER BY {order} LIMIT ? OFFSET ?", [*args, limit, offset]
    ).fetchall()
    return rows, total


def retry(conn: sqlite3.Connection, row_id: int) -> sqlite3.Row | None:
    """Queue a row again, now: a failed one, a delivered one (replay) or a waiting pending one."""
    conn.execute(
        "UPDATE outbox SET status = 'pending', client_errors = 0, next_attempt_at = NULL, delivered_at = NULL"
        " WHERE id = ?", (row_id,))
    return get(conn, row_id)


def stats(conn: sqlite3.Connection) -> dict:
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in conn.execute("SELECT status, count(*) FROM outbox GROUP BY status"):
        counts[status] = count
    oldest = conn.execute("SELECT min(id) FROM outbox WHERE status = 'pending'").fetchone()[0]
    return {**counts, "oldest_pending_id": oldest}
