"""Queries: load management (circuit limit overrides; the charges that need a share)."""

from __future__ import annotations

import sqlite3

from controller.timefmt import now_iso


def running_charges(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Transactions that draw or may draw power: active, or stopping (StopTransaction not in yet)."""
    return conn.execute(
        "SELECT id, charger_id, connector_id, start_time, ocpp_transaction_id FROM transactions WHERE status IN ('active', 'stopping')"
        " ORDER BY id").fetchall()


def all_overrides(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM circuit_overrides ORDER BY circuit_id").fetchall()


def put_override(conn: sqlite3.Connection, circuit_id: str, max_current_a: float, expires_at: str | None) -> str:
    now = now_iso()
    conn.execute(
        "INSERT INTO circuit_overrides (circuit_id, max_current_a, expires_at, created_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (circuit_id) DO UPDATE SET max_current_a = excluded.max_current_a,"
        " expires_at = excluded.expires_at, created_at = excluded.created_at",
        (circuit_id, max_current_a, expires_at, now))
    return now


def delete_override(conn: sqlite3.Connection, circuit_id: str) -> bool:
    return conn.execute("DELETE FROM circuit_overrides WHERE circuit_id = ?", (circuit_id,)).rowcount > 0
