"""Queries: the dashboard's sign-in sessions (its reads of the books go through the domain, as the
REST API's do)."""

from __future__ import annotations

import sqlite3

from controller.timefmt import now_iso


# -- sessions (owned by controller/dashboard/sessions.py) ------------------------------------------


def add_session(conn: sqlite3.Connection, token_digest: str, key_digest: str, csrf: str, expires_at: str) -> None:
    conn.execute("DELETE FROM dashboard_sessions WHERE expires_at < ?", (now_iso(),))
    conn.execute("INSERT INTO dashboard_sessions (token_digest, key_digest, csrf, expires_at) VALUES (?, ?, ?, ?)",
                 (token_digest, key_digest, csrf, expires_at))


def get_session(conn: sqlite3.Connection, token_digest: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM dashboard_sessions WHERE token_digest = ?", (token_digest,)).fetchone()


def delete_session(conn: sqlite3.Connection, token_digest: str) -> None:
    conn.execute("DELETE FROM dashboard_sessions WHERE token_digest = ?", (token_digest,))
