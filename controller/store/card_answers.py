"""Queries: the upstream's answers on cards (the authorize webhook's, a central system's above the
site), kept with the expiry it gave, so the site can decide alone while it cannot be reached."""

from __future__ import annotations

import sqlite3

from controller.timefmt import now_iso


def all_answers(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM card_answers").fetchall()


def put_answer(conn: sqlite3.Connection, id_tag: str, status: str, expires_at: str | None,
               parent_id_tag: str | None) -> None:
    conn.execute(
        "INSERT INTO card_answers (id_tag, status, expires_at, parent_id_tag, answered_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (id_tag) DO UPDATE SET status = excluded.status, expires_at = excluded.expires_at,"
        " parent_id_tag = excluded.parent_id_tag, answered_at = excluded.answered_at",
        (id_tag, status, expires_at, parent_id_tag, now_iso()),
    )
