"""Queries: charging profiles set through the API, per charger (controller/charging_profiles.py)."""

from __future__ import annotations

import sqlite3


def all_profiles(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM charging_profiles ORDER BY charger_id, profile_id").fetchall()


def put_profile(conn: sqlite3.Connection, charger_id: str, profile_id: int, connector_id: int, purpose: str,
                stack_level: int, profile: str, status: str, sent_at: str | None, created_at: str) -> None:
    conn.execute(
        "INSERT INTO charging_profiles (charger_id, profile_id, connector_id, purpose, stack_level, profile, status,"
        " sent_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (charger_id, profile_id) DO UPDATE SET"
        " connector_id = excluded.connector_id, purpose = excluded.purpose, stack_level = excluded.stack_level,"
        " profile = excluded.profile, status = excluded.status, sent_at = excluded.sent_at,"
        " created_at = excluded.created_at",
        (charger_id, profile_id, connector_id, purpose, stack_level, profile, status, sent_at, created_at),
    )


def delete_profile(conn: sqlite3.Connection, charger_id: str, profile_id: int) -> None:
    conn.execute("DELETE FROM charging_profiles WHERE charger_id = ? AND profile_id = ?", (charger_id, profile_id))
