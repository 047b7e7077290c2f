"""Queries: the local id-tag list."""

from __future__ import annotations

import sqlite3

from controller.timefmt import now_iso


def all_id_tags(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM id_tags ORDER BY id_tag").fetchall()


def put_id_tag(conn: sqlite3.Connection, id_tag: str, status: str, expiry_date: str | None,
               parent_id_tag: str | None, token_type: str = "ISO14443") -> None:
    conn.execute(
        "INSERT INTO id_tags (id_tag, status, expiry_date, parent_id_tag, token_type, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id_tag) DO UPDATE SET status = excluded.status, expiry_date = excluded.expiry_date,"
        " parent_id_tag = excluded.parent_id_tag, token_type = excluded.token_type, updated_at = excluded.updated_at",
        (id_tag, status, expiry_date, parent_id_tag, token_type, now_iso()),
    )


def delete_id_tag(conn: sqlite3.Connection, id_tag: str) -> bool:
    return conn.execute("DELETE FROM id_tags WHERE id_tag = ?", (id_tag,)).rowcount > 0
