"""Queries: public (pay-by-phone) charging sessions. See controller/public_charging/sessions.py."""

from __future__ import annotations

import sqlite3

from controller.timefmt import now_iso

OPEN = ("created", "authorized", "starting", "charging", "stopping", "settling")
FINAL = ("captured", "no_charge", "expired", "failed", "abandoned", "capture_failed", "requires_review",
         "refunded", "written_off")
RELEASE = ("expired", "failed", "abandoned", "no_charge")  # final statuses whose hold is given back

_COLUMNS = frozenset({
    "uid", "token_hash", "status", "failure_reason", "charger_id", "connector_id", "id_tag", "driver_email",
    "currency", "price_per_kwh", "start_fee", "tax_rate", "amount_authorized", "provider", "payment_id",
    "client_secret", "hold_released", "capture_attempts", "transaction_id", "meter_start", "meter_stop",
    "energy_wh", "cost_amount", "amount_captured", "tax_amount", "created_at", "authorized_at",
    "charging_started_at", "completed_at", "captured_at", "ended_at",
})


def insert(conn: sqlite3.Connection, fields: dict) -> sqlite3.Row:
    unknown = set(fields) - _COLUMNS
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}")
    now = now_iso()
    fields = {"created_at": now, **fields, "updated_at": now}
    names = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    cur = conn.execute(f"INSERT INTO public_sessions ({names}) VALUES ({marks})", list(fields.values()))
    return get(conn, cur.lastrowid)


def get(conn: sqlite3.Connection, session_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM public_sessions WHERE id = ?", (session_id,)).fetchone()


def by_token_hash(conn: sqlite3.Connection, token_hash: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM public_sessions WHERE token_hash = ?", (token_hash,)).fetchone()


def by_id_tag(conn: sqlite3.Connection, id_tag: str, statuses: tuple[str, ...]) -> sqlite3.Row | None:
    marks = ", ".join("?" for _ in statuses)
    return conn.execute(
        f"SELECT * FROM public_sessions WHERE id_tag = ? AND status IN ({marks})", (id_tag, *statuses)
    ).fetchone()


def by_transaction(conn: sqlite3.Connection, transaction_id: int) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT * FROM public_sessions WHERE transaction_id = ? ORDER BY id DESC LIMIT 1", (transaction_id,)
    ).fetchone()


def update(conn: sqlite3.Connection, session_id: int, expect: tuple[str, ...] | None = None,
           **fields: object) -> sqlite3.Row | None:
    """Change a session; with `expect`, only while its status is one of those. Returns the new row or None."""
    unknown = set(fields) - _COLUMNS
    if unknown:
        raise ValueError(f"unknown columns {sorted(unknown)}")
    fields["updated_at"] = now_iso()
    if fields.get("status") in FINAL:
        fields.setdefault("ended_at", fields["updated_at"])
    sets = ", ".join(f"{name} = ?" for name in fields)
    sql = f"UPDATE public_sessions SET {sets} WHERE id = ?"
    args: list = [*fields.values(), session_id]
    if expect is not None:
        sql += f" AND status IN ({', '.join('?' for _ in expect)})"
        args += list(expect)
    if conn.execute(sql, args).rowcount == 0:
        return None
    return get(conn, session_id)


def open_on_connector(conn: sqlite3.Connection, charger_id: str, connector_id: int) -> list[sqlite3.Row]:
    marks = ", ".join("?" for _ in OPEN)
    return conn.execute(
        f"SELECT * FROM public_sessions WHERE charger_id = ? AND connector_id = ? AND status IN ({marks})",
        (charger_id, connector_id, *OPEN),
    ).fetchall()


def needing_attention(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Sessions with a timer or work left: open ones, unreleased holds, tokens not yet forgotten."""
    open_marks = ", ".join("?" for _ in OPEN)
    release_marks = ", ".join("?" for _ in RELEASE)
    return conn.execute(
        f"SELECT * FROM public_sessions WHERE status IN ({open_marks}) OR token_hash IS NOT NULL"
        f" OR (status IN ({release_marks}) AND hold_released = 0 AND payment_id IS NOT NULL) ORDER BY id",
        (*OPEN, *RELEASE),
    ).fetchall()


def page(conn: sqlite3.Connection, status: str | None, limit: int, offset: int) -> tuple[list[sqlite3.Row], int]:
    where, args = ("WHERE status = ?", [status]) if status else ("", [])
    total = conn.execute(f"SELECT count(*) FROM public_sessions {where}", args).fetchone()[0]
    rows = conn.execute(f"SELECT * FROM public_sessions {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                        [*args, limit, offset]).fetchall()
    return rows, total


def transaction_meter(conn: sqlite3.Connection, transaction_id: int) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT id, meter_start, meter_last, meter_stop, status, energy_source FROM transactions WHERE id = ?", (transaction_id,)
    ).fetchone()
