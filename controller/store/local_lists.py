"""Queries: each charger's local authorization list, as far as we know it (controller/local_list.py)."""

from __future__ import annotations

import sqlite3

from controller.timefmt import now_iso


def all_local_lists(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM local_lists ORDER BY charger_id").fetchall()


def put_local_list(conn: sqlite3.Connection, charger_id: str, version: int, state: str, detail: str | None,
                   max_length: int | None, synced_at: str | None) -> None:
    conn.execute(
        "INSERT INTO local_lists (charger_id, version, state, detail, max_length, synced_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (charger_id) DO UPDATE SET version = excluded.version,"
        " state = excluded.state, detail = excluded.detail, max_length = excluded.max_length,"
        " synced_at = excluded.synced_at, updated_at = excluded.updated_at",
        (charger_id, version, state, detail, max_length, synced_at, now_iso()),
    )
