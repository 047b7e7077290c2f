"""Queries: transactions and their meter values.

Each write function is one atomic step of the lifecycle, run inside `Store.write`'s transaction.
"""

from __future__ import annotations

import sqlite3

from controller.timefmt import now_iso

OPEN_STATUSES = ("pending", "active", "stopping")


def get(conn: sqlite3.Connection, transaction_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM transactions WHERE id = ?", (transaction_id,)).fetchone()


def page(conn: sqlite3.Connection, charger_id: str | None, status: str | None,
         limit: int, offset: int) -> tuple[list[sqlite3.Row], int]:
    """Newest first, with the total count of matching rows."""
    where, args = [], []
    if charger_id is not None:
        where.append("charger_id = ?")
        args.append(charger_id)
    if status is not None:
        where.append("status = ?")
        args.append(status)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT count(*) FROM transactions{clause}", args).fetchone()[0]
    rows = conn.execute(
        f"SELECT * FROM transactions{clause} ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit, offset]
    ).fetchall()
    return rows, total


def open_for_connector(conn: sqlite3.Connection, charger_id: str, connector_id: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM transactions WHERE charger_id = ? AND connector_id = ? AND status IN (?, ?, ?)"
        " ORDER BY id", (charger_id, connector_id, *OPEN_STATUSES),
    ).fetchall()


def open_transactions(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM transactions WHERE status IN (?, ?, ?) ORDER BY id", OPEN_STATUSES
    ).fetchall()


def create_pending(conn: sqlite3.Connection, charger_id: str, connector_id: int, id_tag: str, mode: str) -> int:
    """A remote start about to be sent: the id we will give the charger when it starts."""
    now = now_iso()
    cur = conn.execute(
        "INSERT INTO transactions (charger_id, connector_id, id_tag, status, mode, remote_started,"
        " created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, 1, ?, ?)",
        (charger_id, connector_id, id_tag, mode, now, now),
    )
    return cur.lastrowid


def pending_for_connector(conn: sqlite3.Connection, charger_id: str, connector_id: int,
                          id_tag: str) -> sqlite3.Row | None:
    """The remote start waiting on this connector, preferring one for the same id tag."""
    return conn.execute(
        "SELECT * FROM transactions WHERE charger_id = ? AND connector_id = ? AND status = 'pending'"
        " ORDER BY (id_tag = ? COLLATE NOCASE) DESC, id DESC LIMIT 1", (charger_id, connector_id, id_tag),
    ).fetchone()


def has_pending_tag(conn: sqlite3.Connection, charger_id: str, id_tag: str) -> bool:
    """Whether a remote start we sent this charger waits for this id tag."""
    return conn.execute(
        "SELECT 1 FROM transactions WHERE charger_id = ? AND status = 'pending' AND id_tag = ? COLLATE NOCASE",
        (charger_id, id_tag),
    ).fetchone() is not None


def set_status(conn: sqlite3.Connection, transaction_id: int, status: str, stop_reason: str | None = None) -> None:
    conn.execute(
        "UPDATE transactions SET status = ?, stop_reason = coalesce(?, stop_reason), updated_at = ? WHERE id = ?",
        (status, stop_reason, now_iso(), transaction_id),
    )


def begin(conn: sqlite3.Connection, *, charger_id: str, connector_id: int, id_tag: str, id_tag_status: str,
          meter_start: int, start_time: str, reservation_id: int | None, start_key: str,
          default_mode: str) -> tuple[sqlite3.Row, bool]:
    """Record a StartTransaction; returns (row, created).

    A retried identical request finds its row by `start_key` and gets the same id. A pending
    remote start on the same connector becomes this transaction, so the id the API returned is
    the id the charger gets.
    """
    existing = conn.execute("SELECT * FROM transactions WHERE start_key = ?", (start_key,)).fetchone()
    if existing is not None:
        return existing, False
    now = now_iso()
    pending = pending_for_connector(conn, charger_id, connector_id, id_tag)
    # A refused tag still starts a transaction: the charger decides whether to stop it
    # (StopTransactionOnInvalidId) and reports that with StopTransaction.
    status = "active"
    if pending is not None:
        transaction_id = pending["id"]
        conn.execute(
            "UPDATE transactions SET status = ?, id_tag = ?, id_tag_status = ?, meter_start = ?,"
            " meter_last = ?, start_time = ?, reservation_id = ?, start_key = ?, updated_at = ? WHERE id = ?",
            (status, id_tag, id_tag_status, meter_start, meter_start, start_time, reservation_id,
             start_key, now, transaction_id),
        )
    else:
        transaction_id = conn.execute(
            "INSERT INTO transactions (charger_id, connector_id, id_tag, status, mode, id_tag_status,"
            " meter_start, meter_last, start_time, reservation_id, start_key, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (charger_id, connector_id, id_tag, status, default_mode, id_tag_status, meter_start,
             meter_start, start_time, reservation_id, start_key, now, now),
        ).lastrowid
    return get(conn, transaction_id), True


def finish(conn: sqlite3.Connection, *, transaction_id: int, charger_id: str, meter_stop: int, stop_time: str,
           reason: str, id_tag: str | None, transaction_data: str | None) -> tuple[sqlite3.Row, bool]:
    """Record a StopTransaction; returns (row, known). An unknown id is still recorded."""
    row = get(conn, transaction_id)
    now = now_iso()
    if row is None:
        conn.execute(
            "INSERT INTO transactions (id, charger_id, connector_id, id_tag, status, mode, meter_stop,"
            " stop_time, stop_reason, stop_id_tag, transaction_data, created_at, updated_at)"
            " VALUES (?, ?, 0, ?, 'completed', 'local', ?, ?, ?, ?, ?, ?, ?)",
            (transaction_id, charger_id, id_tag or "", meter_stop, stop_time, reason, id_tag,
             transaction_data, now, now),
        )
        return get(conn, transaction_id), False
    if row["status"] == "completed":
        return row, True  # a retried StopTransaction: already on the books
    conn.execute(
        "UPDATE transactions SET status = 'completed', meter_stop = ?, meter_last = ?, stop_time = ?,"
        " stop_reason = ?, stop_id_tag = ?, transaction_data = ?, updated_at = ? WHERE id = ?",
        (meter_stop, meter_stop, stop_time, reason, id_tag or "", transaction_data, now, transaction_id),
    )
    return get(conn, transaction_id), True


def add_meter_values(conn: sqlite3.Connection, charger_id: str, connector_id: int,
                     transaction_id: int | None, samples: list[tuple[str, str]],
                     energy_wh: float | None) -> None:
    """Store the samples (timestamp, JSON) and advance the transaction's latest energy."""
    conn.executemany(
        "INSERT INTO meter_values (charger_id, connector_id, transaction_id, timestamp, sampled_value)"
        " VALUES (?, ?, ?, ?, ?)",
        [(charger_id, connector_id, transaction_id, ts, sv) for ts, sv in samples],
    )
    if transaction_id is not None and energy_wh is not None:
        conn.execute(
            "UPDATE transactions SET meter_last = ? WHERE id = ? AND status IN ('active', 'stopping')",
            (energy_wh, transaction_id),
        )


def meter_values(conn: sqlite3.Connection, transaction_id: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM meter_values WHERE transaction_id = ? ORDER BY id", (transaction_id,)
    ).fetchall()


def expire_pending(conn: sqlite3.Connection, created_before: str) -> list[sqlite3.Row]:
    """Pending remote starts that never became a charge: mark them failed, return them."""
    rows = conn.execute(
        "SELECT * FROM transactions WHERE status = 'pending' AND created_at < ?", (created_before,)
    ).fetchall()
    for row in rows:
        set_status(conn, row["id"], "failed", "NeverStarted")
    return rows
