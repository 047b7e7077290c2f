"""Queries: reservations of a connector for an id tag (controller/reservations.py owns the rows)."""

from __future__ import annotations

import sqlite3

from controller.timefmt import now_iso

HOLDING = ("requested", "accepted")
"""A reservation in force: sent (its answer may still be on its way) or accepted by the charger."""
STATUSES = ("requested", "accepted", "faulted", "occupied", "rejected", "unavailable", "failed", "cancelled",
            "used", "expired")


def get(conn: sqlite3.Connection, reservation_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM reservations WHERE id = ?", (reservation_id,)).fetchone()


def holding(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Every reservation in force, oldest first."""
    return conn.execute("SELECT * FROM reservations WHERE status IN (?, ?) ORDER BY id", HOLDING).fetchall()


def page(conn: sqlite3.Connection, charger_id: str | None, status: str | None,
         limit: int, offset: int) -> tuple[list[sqlite3.Row], int]:
    """Newest first, with the total count of matching rows."""
    where, args = [], []
    if charger_id is not None:
        where.append("charger_id = ?")
        args.append(charger_id)
    if status is not None:
        where.append("status = ?")
        args.append(status)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT count(*) FROM reservations{clause}", args).fetchone()[0]
    rows = conn.execute(f"SELECT * FROM reservations{clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                        [*args, limit, offset]).fetchall()
    return rows, total


def insert(conn: sqlite3.Connection, charger_id: str, connector_id: int, id_tag: str, parent_id_tag: str | None,
           expires_at: str) -> sqlite3.Row:
    """A reservation about to be sent: its id is the reservationId the charger gets."""
    now = now_iso()
    reservation_id = conn.execute(
        "INSERT INTO reservations (charger_id, connector_id, id_tag, parent_id_tag, expires_at, status,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'requested', ?, ?)",
        (charger_id, connector_id, id_tag, parent_id_tag, expires_at, now, now),
    ).lastrowid
    return get(conn, reservation_id)


def settle(conn: sqlite3.Connection, reservation_id: int, status: str, only_from: tuple[str, ...] = HOLDING,
           transaction_id: int | None = None) -> sqlite3.Row | None:
    """Move a reservation to `status` if it is in one of `only_from`; the row after, or None if it
    had moved on already (a start used it while its answer was on its way, ...)."""
    marks = ", ".join("?" * len(only_from))
    changed = conn.execute(
        f"UPDATE reservations SET status = ?, transaction_id = coalesce(?, transaction_id), updated_at = ?"
        f" WHERE id = ? AND status IN ({marks})",
        (status, transaction_id, now_iso(), reservation_id, *only_from),
    ).rowcount
    return get(conn, reservation_id) if changed else None
