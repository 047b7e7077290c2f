"""Queries: the dashboard's sign-in sessions, and its reads of the books (filtered transactions,
a transaction's meter values, the database's size)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

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


# -- reads of the books ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TransactionFilter:
    """What the transactions page filters by; None: any. Dates are ISO 8601 prefixes of start_time."""

    charger_id: str | None = None
    id_tag: str | None = None
    status: str | None = None
    since: str | None = None  # start_time at or after
    until: str | None = None  # start_time before


def _where(f: TransactionFilter) -> tuple[str, list[object]]:
    where, args = [], []
    for clause, value in (("charger_id = ?", f.charger_id), ("id_tag = ? COLLATE NOCASE", f.id_tag),
                          ("status = ?", f.status), ("start_time >= ?", f.since), ("start_time < ?", f.until)):
        if value is not None:
            where.append(clause)
            args.append(value)
    return (f" WHERE {' AND '.join(where)}" if where else ""), args


def transactions(conn: sqlite3.Connection, f: TransactionFilter, limit: int | None,
                 offset: int = 0) -> tuple[list[sqlite3.Row], int]:
    """Newest first (all of them when `limit` is None), and how many match in all."""
    clause, args = _where(f)
    total = conn.execute(f"SELECT count(*) FROM transactions{clause}", args).fetchone()[0]
    rows = conn.execute(f"SELECT * FROM transactions{clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                        [*args, -1 if limit is None else limit, offset]).fetchall()
    return rows, total


def size_bytes(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    return pages * conn.execute("PRAGMA page_size").fetchone()[0]
