"""Meter samples stored compactly: each reading's sampled values split into their shape and values.

A charger repeats the same sampled values every few seconds with only the numbers changed
(`{"value": "1234", "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register",
"unit": "Wh"}` and three or eleven more). Storing that JSON per reading cost ~130 bytes per
sampled value; here a reading stores its values alone (`["1234","7360.0","32.0","230.1"]`) and
the id of its shape (the same list with every value null), kept once in `meter_shapes`.
`render` gives back exactly the JSON the charger's sampled values made.
"""

from __future__ import annotations

import sqlite3

import orjson

from controller.store.connection import forget, remembered

def split(sampled: list[dict]) -> tuple[str, str]:
    """(shape, values) of one reading's sampled values, both JSON text."""
    shape = [{**sv, "value": None} if isinstance(sv, dict) and "value" in sv else sv for sv in sampled]
    values = [sv.get("value") if isinstance(sv, dict) else None for sv in sampled]
    return orjson.dumps(shape).decode(), orjson.dumps(values).decode()


def render(shape: str, values: str) -> str:
    """The sampled values as JSON text, as the charger sent them. The shape `null` marks a reading
    converted from an earlier release whose text was no JSON list: `values` holds that text."""
    sampled = orjson.loads(shape)
    if sampled is None:
        return values
    for sv, value in zip(sampled, orjson.loads(values)):
        if isinstance(sv, dict) and "value" in sv:
            sv["value"] = value
    return orjson.dumps(sampled).decode()


def shape_id(conn: sqlite3.Connection, shape: str) -> int:
    """The id of a shape, stored on first use (inside the caller's transaction, so a rolled back
    write takes its new shape with it); the write connection remembers the ids it has seen."""
    def load() -> int:
        row = conn.execute("SELECT id FROM meter_shapes WHERE shape = ?", (shape,)).fetchone()
        return row[0] if row is not None else conn.execute(
            "INSERT INTO meter_shapes (shape) VALUES (?)", (shape,)).lastrowid

    return remembered(conn, ("shape", shape), load)  # type: ignore[return-value]


def readings(conn: sqlite3.Connection, where: str, args: tuple, limit: int = -1, offset: int = 0) -> list[dict]:
    """Stored readings as dicts with the columns the table had before (`sampled_value`: the JSON);
    `limit` -1: all of them."""
    rows = conn.execute(
        "SELECT m.id, m.charger_id, m.connector_id, m.transaction_id, m.timestamp, s.shape, m.vals"
        f" FROM meter_values m JOIN meter_shapes s ON s.id = m.shape WHERE {where} ORDER BY m.id LIMIT ? OFFSET ?",
        (*args, limit, offset),
    ).fetchall()
    return [{"id": r[0], "charger_id": r[1], "connector_id": r[2], "transaction_id": r[3], "timestamp": r[4],
             "sampled_value": render(r[5], r[6])} for r in rows]


def transactions_to_prune(conn: sqlite3.Connection, stopped_before: str, after_id: int, limit: int) -> list[int]:
    """Completed transactions (id > after_id) stopped before `stopped_before` that still hold raw
    readings, oldest first: what retention prunes."""
    return [row[0] for row in conn.execute(
        "SELECT t.id FROM transactions t WHERE t.id > ? AND t.status = 'completed' AND t.stop_time < ?"
        " AND EXISTS (SELECT 1 FROM meter_values m WHERE m.transaction_id = t.id) ORDER BY t.id LIMIT ?",
        (after_id, stopped_before, limit))]


def delete_readings(conn: sqlite3.Connection, transaction_ids: list[int], limit: int) -> int:
    """Delete up to `limit` raw readings of these transactions; returns how many went. The
    transactions keep their start and stop readings and energy (columns of their own rows)."""
    marks = ",".join("?" * len(transaction_ids))
    for transaction_id in transaction_ids:
        forget(conn, ("readings", transaction_id))  # its latest readings may be gone
    return conn.execute(
        f"DELETE FROM meter_values WHERE id IN (SELECT id FROM meter_values WHERE transaction_id IN ({marks})"
        " LIMIT ?)", (*transaction_ids, limit)).rowcount
