"""Local-controller mode: the per-charger queue of messages for the central system above the site,
and the central system's transaction ids beside ours.

A row is queued in the write that precedes the charger's answer, so what a charger was answered
is never lost; it is deleted once the central system answered it. Rows of one charger go in
`id` order.
"""

from __future__ import annotations

import sqlite3

import orjson

from controller.timefmt import now_iso


def queued_row(charger_id: str, action: str, payload: dict, transaction_id: int | None, protocol: str) -> dict:
    """A message to queue, as `head` reads it back (its `id` once `enqueue` stored it); `protocol`:
    the OCPP version the charger sent it in (its subprotocol), the version it goes up in."""
    return {"id": None, "charger_id": charger_id, "action": action, "payload": orjson.dumps(payload).decode(),
            "transaction_id": transaction_id, "created_at": now_iso(), "protocol": protocol}


def enqueue(conn: sqlite3.Connection, row: dict) -> None:
    """Store a `queued_row`, giving it its id."""
    cursor = conn.execute(
        "INSERT INTO forward_queue (charger_id, action, payload, transaction_id, created_at, protocol)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (row["charger_id"], row["action"], row["payload"], row["transaction_id"], row["created_at"], row["protocol"]))
    row["id"] = cursor.lastrowid


def head(conn: sqlite3.Connection, charger_id: str, limit: int = 1, after_id: int = 0) -> list[sqlite3.Row]:
    """The charger's oldest queued messages past `after_id`: the next to send, in order."""
    return conn.execute("SELECT * FROM forward_queue WHERE charger_id = ? AND id > ? ORDER BY id LIMIT ?",
                        (charger_id, after_id, limit)).fetchall()


def answered(conn: sqlite3.Connection, charger_id: str, row_ids: list[int]) -> None:
    """Answered by the central system: gone from the queue."""
    conn.executemany("DELETE FROM forward_queue WHERE id = ? AND charger_id = ?", [(i, charger_id) for i in row_ids])


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Queued messages per charger."""
    return {r[0]: r[1] for r in conn.execute("SELECT charger_id, count(*) FROM forward_queue GROUP BY charger_id")}


def map_transaction(conn: sqlite3.Connection, transaction_id: int, charger_id: str, upstream_id: int) -> None:
    conn.execute("INSERT OR REPLACE INTO forward_transactions (transaction_id, charger_id, upstream_transaction_id)"
                 " VALUES (?, ?, ?)", (transaction_id, charger_id, upstream_id))


def upstream_transaction(conn: sqlite3.Connection, transaction_id: int) -> int | None:
    """The central system's id of our transaction, once its start was answered."""
    row = conn.execute("SELECT upstream_transaction_id FROM forward_transactions WHERE transaction_id = ?",
                       (transaction_id,)).fetchone()
    return row[0] if row else None


def our_transaction(conn: sqlite3.Connection, charger_id: str, upstream_id: int) -> int | None:
    """Our id of the charge the central system knows as `upstream_id` on this charger (its newest)."""
    row = conn.execute("SELECT transaction_id FROM forward_transactions WHERE charger_id = ?"
                       " AND upstream_transaction_id = ? ORDER BY transaction_id DESC LIMIT 1",
                       (charger_id, upstream_id)).fetchone()
    return row[0] if row else None


def boot_info(conn: sqlite3.Connection, charger_id: str) -> dict | None:
    """The charger's last BootNotification, as it sent it."""
    row = conn.execute("SELECT boot_info FROM chargers WHERE id = ?", (charger_id,)).fetchone()
    return orjson.loads(row[0]) if row and row[0] else None
