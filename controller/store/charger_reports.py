"""Queries: what chargers reported of their firmware, diagnostics and logs, our requests for them,
and each boot's firmware version (controller/maintenance.py reads them, the registry writes them)."""

from __future__ import annotations

import sqlite3


def add_report(conn: sqlite3.Connection, charger_id: str, kind: str, status: str, detail: str | None,
               at: str) -> int:
    cursor = conn.execute("INSERT INTO charger_reports (charger_id, kind, status, detail, at) VALUES (?, ?, ?, ?, ?)",
                          (charger_id, kind, status, detail, at))
    return int(cursor.lastrowid or 0)


def set_report(conn: sqlite3.Connection, report_id: int, status: str, detail: str | None) -> None:
    conn.execute("UPDATE charger_reports SET status = ?, detail = ? WHERE id = ?", (status, detail, report_id))


def latest_statuses(conn: sqlite3.Connection, kinds: tuple[str, ...]) -> list[sqlite3.Row]:
    """Each charger's latest report of each of `kinds` (charger_id, kind, status)."""
    marks = ", ".join("?" * len(kinds))
    return conn.execute(f"SELECT charger_id, kind, status FROM charger_reports WHERE id IN (SELECT max(id) FROM"
                        f" charger_reports WHERE kind IN ({marks}) GROUP BY charger_id, kind)", kinds).fetchall()


def reports(conn: sqlite3.Connection, charger_id: str, kinds: tuple[str, ...], limit: int,
            offset: int) -> tuple[list[sqlite3.Row], int]:
    """The newest first, and how many there are in all."""
    marks = ", ".join("?" * len(kinds))
    rows = conn.execute(f"SELECT * FROM charger_reports WHERE charger_id = ? AND kind IN ({marks})"
                        " ORDER BY id DESC LIMIT ? OFFSET ?", (charger_id, *kinds, limit, offset)).fetchall()
    total = conn.execute(f"SELECT count(*) FROM charger_reports WHERE charger_id = ? AND kind IN ({marks})",
                         (charger_id, *kinds)).fetchone()[0]
    return rows, total
