"""Queries: charger passwords set by rotation (controller/charger_passwords.py)."""

from __future__ import annotations

import sqlite3


def all_passwords(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM charger_passwords ORDER BY charger_id").fetchall()


def put_password(conn: sqlite3.Connection, charger_id: str, password_hash: str, previous_hash: str | None,
                 set_at: str, confirmed_at: str | None) -> None:
    conn.execute(
        "INSERT INTO charger_passwords (charger_id, password_hash, previous_hash, set_at, confirmed_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (charger_id) DO UPDATE SET password_hash = excluded.password_hash,"
        " previous_hash = excluded.previous_hash, set_at = excluded.set_at, confirmed_at = excluded.confirmed_at",
        (charger_id, password_hash, previous_hash, set_at, confirmed_at),
    )


def delete_password(conn: sqlite3.Connection, charger_id: str) -> None:
    conn.execute("DELETE FROM charger_passwords WHERE charger_id = ?", (charger_id,))
