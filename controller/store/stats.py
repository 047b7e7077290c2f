"""Queries for /metrics and /healthz: counts, ages, and whether the database takes writes."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from controller.elapsed import QueueTimes


@dataclass(frozen=True)
class Snapshot:
    transactions_open: int
    outbox_pending: int
    outbox_oldest_age_s: float


def snapshot(conn: sqlite3.Connection, queued: QueueTimes) -> Snapshot:
    """`queued`: the Store's `outbox_queued` (the oldest notification's age on the monotonic clock)."""
    open_count = conn.execute(
        "SELECT count(*) FROM transactions WHERE status IN ('pending', 'active', 'stopping')"
    ).fetchone()[0]
    pending, oldest = conn.execute("SELECT count(*), min(id) FROM outbox WHERE status = 'pending'").fetchone()
    return Snapshot(open_count, pending, queued.age(oldest) if oldest else 0.0)


def probe_writable(path: Path, timeout: float) -> str | None:
    """Take (and release) the write lock on its own connection; None if fine, else the problem.

    Its own short busy timeout, so a database locked by another process (a backup, an sqlite3
    shell left open) shows up as a failed health check instead of hanging it.
    """
    try:
        conn = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    except sqlite3.Error as exc:
        return f"cannot open {path}: {exc}"
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"cannot take the write lock on {path}: {exc}"
    finally:
        conn.close()
    return None


def database_bytes(path: Path) -> int:
    """The books' size on disk: the database and its write-ahead log (not yet checkpointed)."""
    total = 0
    for file in (path, path.with_name(path.name + "-wal")):
        try:
            total += file.stat().st_size
        except FileNotFoundError:
            pass
    return total


def newest_stamp(conn: sqlite3.Connection) -> str | None:
    """The newest time this controller stamped on a record (a transaction's last change, an
    upstream event, a charger's boot or heartbeat): the clock was at least there once."""
    row = conn.execute(
        "SELECT max(stamp) FROM ("
        " SELECT max(updated_at) AS stamp FROM (SELECT updated_at FROM transactions ORDER BY id DESC LIMIT 100)"
        " UNION ALL SELECT created_at FROM (SELECT created_at FROM outbox ORDER BY id DESC LIMIT 1)"
        " UNION ALL SELECT max(max(coalesce(last_heartbeat, '')), max(coalesce(last_boot, ''))) FROM chargers)"
    ).fetchone()
    return row[0] or None
