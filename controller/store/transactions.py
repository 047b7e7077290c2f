"""Queries: transactions and their meter values.

Each write function is one atomic step of the lifecycle, run inside `Store.write`'s transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from controller.store import meter_samples
from controller.store.connection import WriteConnection, forget, remembered
from controller.timefmt import now_iso

OPEN_STATUSES = ("pending", "active", "stopping")


def get(conn: sqlite3.Connection, transaction_id: int) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM transactions WHERE id = ?", (transaction_id,)).fetchone()


@dataclass(frozen=True)
class Charge:
    """What a reading needs to know of its charge."""

    charger_id: str
    status: str
    energy_source: str | None


def charge(conn: sqlite3.Connection, transaction_id: int) -> Charge | None:
    """A charge's charger, status and energy source; the write connection remembers them (every
    reading of a running charge asks), and every function here that updates a charge's row
    forgets them (`_updated`)."""
    def load() -> Charge | None:
        row = conn.execute("SELECT charger_id, status, energy_source FROM transactions WHERE id = ?",
                           (transaction_id,)).fetchone()
        return Charge(*row) if row is not None else None

    return remembered(conn, ("charge", transaction_id), load)


def _updated(conn: sqlite3.Connection, transaction_id: int) -> None:
    forget(conn, ("charge", transaction_id))


def latest_wh(conn: sqlite3.Connection, row: sqlite3.Row) -> float | None:
    """A transaction's latest energy: the greater of its row's `meter_last` and what its stored
    readings booked. A reading does not rewrite its transaction's row (that would be one more page
    per MeterValues on the card); the row is brought up to date at the stop and when the books are
    opened (`settle_running`), so a charge a crash interrupted still ends on its last stored reading."""
    booked = conn.execute("SELECT max(energy_wh) FROM meter_values WHERE transaction_id = ? AND charger_id = ?",
                          (row["id"], row["charger_id"])).fetchone()[0]
    known = [wh for wh in (row["meter_last"], booked) if wh is not None]
    return max(known) if known else None


def by_ocpp_id(conn: sqlite3.Connection, charger_id: str, ocpp_transaction_id: str) -> sqlite3.Row | None:
    """The transaction a charger that assigns its own ids knows as `ocpp_transaction_id`."""
    return conn.execute("SELECT * FROM transactions WHERE charger_id = ? AND ocpp_transaction_id = ?",
                        (charger_id, ocpp_transaction_id)).fetchone()


@dataclass(frozen=True)
class TransactionFilter:
    """Which transactions a list or an export holds; None: no condition. `start_from` and
    `start_to` are canonical UTC texts (timefmt.iso) bounding the start time, `start_to`
    exclusive, so consecutive ranges never count a charge twice."""

    charger_id: str | None = None
    status: str | None = None
    id_tag: str | None = None
    start_from: str | None = None
    start_to: str | None = None

    def where(self, before_id: int | None = None) -> tuple[str, list]:
        """The SQL condition (with " WHERE " in front, or empty) and its arguments."""
        conditions = [("charger_id = ?", self.charger_id), ("status = ?", self.status),
                      ("id_tag = ? COLLATE NOCASE", self.id_tag), ("start_time >= ?", self.start_from),
                      ("start_time < ?", self.start_to), ("id < ?", before_id)]
        used = [(sql, arg) for sql, arg in conditions if arg is not None]
        clause = f" WHERE {' AND '.join(sql for sql, _ in used)}" if used else ""
        return clause, [arg for _, arg in used]


def page(conn: sqlite3.Connection, match: TransactionFilter, limit: int, offset: int = 0,
         before_id: int | None = None) -> tuple[list[sqlite3.Row], int]:
    """Newest first, with the total count of the rows `match` holds (whatever `before_id`).

    `before_id` (a cursor: the last id of the previous page) pages stably however many charges
    start meanwhile; an offset shifts by one with every new transaction.
    """
    clause, args = match.where()
    total = conn.execute(f"SELECT count(*) FROM transactions{clause}", args).fetchone()[0]
    clause, args = match.where(before_id)
    rows = conn.execute(
        f"SELECT * FROM transactions{clause} ORDER BY id DESC LIMIT ? OFFSET ?", [*args, limit, offset]
    ).fetchall()
    return rows, total


def batch(conn: sqlite3.Connection, match: TransactionFilter, before_id: int | None,
          limit: int) -> list[sqlite3.Row]:
    """The next `limit` rows `match` holds below `before_id`, newest first (an export's step)."""
    clause, args = match.where(before_id)
    return conn.execute(f"SELECT * FROM transactions{clause} ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()


def open_for_connector(conn: sqlite3.Connection, charger_id: str, connector_id: int) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT * FROM transactions WHERE charger_id = ? AND connector_id = ? AND status IN (?, ?, ?)"
        " ORDER BY id", (charger_id, connector_id, *OPEN_STATUSES),
    ).fetchall()


def charging(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """The charges running or ending (active, stopping), oldest first."""
    return conn.execute("SELECT * FROM transactions WHERE status IN ('active', 'stopping') ORDER BY id").fetchall()


def named_by_charger(conn: sqlite3.Connection, charger_id: str) -> list[sqlite3.Row]:
    """The charger's running or ending charges that it named itself (2.0.1), oldest first."""
    return conn.execute("SELECT * FROM transactions WHERE charger_id = ? AND status IN ('active', 'stopping')"
                        " AND ocpp_transaction_id IS NOT NULL ORDER BY id", (charger_id,)).fetchall()


def identify(conn: sqlite3.Connection, transaction_id: int, id_tag: str, id_tag_status: str) -> None:
    """Give a charge booked without an id tag (a station that starts at plug-in) its tag."""
    conn.execute("UPDATE transactions SET id_tag = ?, id_tag_status = ?, updated_at = ? WHERE id = ? AND id_tag = ''",
                 (id_tag, id_tag_status, now_iso(), transaction_id))


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
    """The remote start waiting on this connector, preferring one for the same id tag; else one
    for this id tag on connector 0 (the charger picks the connector)."""
    return conn.execute(
        "SELECT * FROM transactions WHERE charger_id = ? AND status = 'pending'"
        " AND (connector_id = ? OR (connector_id = 0 AND id_tag = ? COLLATE NOCASE))"
        " ORDER BY (connector_id = ?) DESC, (id_tag = ? COLLATE NOCASE) DESC, id DESC LIMIT 1",
        (charger_id, connector_id, id_tag, connector_id, id_tag),
    ).fetchone()


def has_pending_tag(conn: sqlite3.Connection, charger_id: str, id_tag: str) -> bool:
    """Whether a remote start we sent this charger waits for this id tag."""
    return conn.execute(
        "SELECT 1 FROM transactions WHERE charger_id = ? AND status = 'pending' AND id_tag = ? COLLATE NOCASE",
        (charger_id, id_tag),
    ).fetchone() is not None


def set_status(conn: sqlite3.Connection, transaction_id: int, status: str, stop_reason: str | None = None) -> None:
    _updated(conn, transaction_id)
    conn.execute(
        "UPDATE transactions SET status = ?, stop_reason = coalesce(?, stop_reason), updated_at = ? WHERE id = ?",
        (status, stop_reason, now_iso(), transaction_id),
    )


def begin(conn: sqlite3.Connection, *, charger_id: str, connector_id: int, id_tag: str, id_tag_status: str,
          meter_start: float | None, start_time: str, reservation_id: int | None, start_key: str,
          default_mode: str, energy_source: str | None = None, ocpp_transaction_id: str | None = None,
          pending_id: int | None = None, clock_suspect: str | None = None) -> tuple[sqlite3.Row, bool]:
    """Record the start of a charge; returns (row, created).

    A retried identical report finds its row by `start_key` and gets the same id. A pending
    remote start on the same connector (or the one `pending_id` names) becomes this transaction,
    so the id the API returned is the id the charger gets.
    """
    existing = conn.execute("SELECT * FROM transactions WHERE start_key = ?", (start_key,)).fetchone()
    if existing is not None:
        return existing, False
    now = now_iso()
    pending = get(conn, pending_id) if pending_id is not None else None
    if pending is None or (pending["charger_id"], pending["status"]) != (charger_id, "pending"):
        pending = pending_for_connector(conn, charger_id, connector_id, id_tag)
    # A refused tag still starts a transaction: the charger decides whether to stop it
    # (StopTransactionOnInvalidId) and reports that with StopTransaction.
    status = "active"
    if pending is not None:
        transaction_id = pending["id"]
        _updated(conn, transaction_id)
        conn.execute(
            "UPDATE transactions SET status = ?, connector_id = ?, id_tag = ?, id_tag_status = ?, meter_start = ?,"
            " meter_last = ?, start_time = ?, reservation_id = ?, start_key = ?, energy_source = ?,"
            " ocpp_transaction_id = ?, clock_suspect = ?, booked_at = ?, updated_at = ? WHERE id = ?",
            (status, connector_id, id_tag, id_tag_status, meter_start, meter_start, start_time, reservation_id,
             start_key, energy_source, ocpp_transaction_id, clock_suspect, now, now, transaction_id),
        )
    else:
        transaction_id = conn.execute(
            "INSERT INTO transactions (charger_id, connector_id, id_tag, status, mode, id_tag_status,"
            " meter_start, meter_last, start_time, reservation_id, start_key, energy_source, ocpp_transaction_id,"
            " clock_suspect, booked_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (charger_id, connector_id, id_tag, status, default_mode, id_tag_status, meter_start,
             meter_start, start_time, reservation_id, start_key, energy_source, ocpp_transaction_id, clock_suspect,
             now, now, now),
        ).lastrowid
    return get(conn, transaction_id), True


def close_superseded(conn: sqlite3.Connection, started: sqlite3.Row) -> list[sqlite3.Row]:
    """Close the charges still open on the connector of `started` that began before it (their
    stop got lost: one connector runs one charge): completed with their last reading, stop reason
    Other, `closed_by` controller. Returns them as closed."""
    rows = conn.execute(
        "SELECT id FROM transactions WHERE charger_id = ? AND connector_id = ? AND id != ?"
        " AND status IN ('active', 'stopping') AND (start_time IS NULL OR start_time <= ?) ORDER BY id",
        (started["charger_id"], started["connector_id"], started["id"], started["start_time"]),
    ).fetchall()
    return [close_by_controller(conn, row["id"], started["start_time"]) for row in rows]


def close_by_controller(conn: sqlite3.Connection, transaction_id: int, stop_time: str) -> sqlite3.Row:
    """Complete a charge whose stop we will not hear: its last reading, stop reason Other,
    `closed_by` controller (a late stop from the charger still replaces this guess: `finish`)."""
    latest = latest_wh(conn, get(conn, transaction_id))
    _updated(conn, transaction_id)
    conn.execute(
        "UPDATE transactions SET status = 'completed', meter_stop = ?, meter_last = ?, stop_time = ?,"
        " stop_reason = 'Other', closed_by = 'controller', updated_at = ? WHERE id = ?",
        (latest, latest, stop_time, now_iso(), transaction_id),
    )
    return get(conn, transaction_id)


def finish(conn: sqlite3.Connection, *, transaction_id: int, charger_id: str, meter_stop: float | None, stop_time: str,
           reason: str, id_tag: str | None, transaction_data: str | None,
           start_time: str | None = None, meter_start: int | None = None,
           stop_suspect: bool = False) -> tuple[sqlite3.Row, bool, bool]:
    """Record the end of a charge; returns (row, known, new): `new` is False for a re-sent stop.

    A stop is never lost, and never touches what is not the sender's:
    - the sender's open transaction is completed; the same stop sent again changes nothing;
    - the late stop of one the controller closed (`close_superseded`) replaces its guess with the
      charger's figures, once, as a re-sent stop (not announced again);
    - an id we have no row for (a charger's offline backlog may stop a charge whose start we never
      got) is booked under that id, with `start_time` / `meter_start` when transactionData told them;
    - anything else (another charger's transaction, a second different stop for a finished one,
      a placeholder id <= 0, an id beyond OCPP's 32-bit integers that would exhaust our id
      sequence) is booked on a new row under the sender, found again by its key when re-sent.
    """
    row = get(conn, transaction_id)
    now = now_iso()
    _updated(conn, transaction_id)
    if row is not None and row["charger_id"] == charger_id:
        if row["status"] != "completed":
            suspect = ",".join(filter(None, [row["clock_suspect"], "stop" if stop_suspect else None])) or None
            # meter_stop None: no reading to book now (connector meter gone): its last one counts
            last = meter_stop if meter_stop is not None else latest_wh(conn, row)
            conn.execute(
                "UPDATE transactions SET status = 'completed', meter_stop = ?, meter_last = ?, stop_time = ?,"
                " stop_reason = ?, stop_id_tag = ?, transaction_data = ?, clock_suspect = ?, updated_at = ?"
                " WHERE id = ?",
                (last, last, stop_time, reason, id_tag or "", transaction_data, suspect, now, transaction_id),
            )
            return get(conn, transaction_id), True, True
        if row["stop_time"] == stop_time:
            return row, True, False  # a re-sent stop: already on the books
        if row["closed_by"] == "controller":
            conn.execute(
                "UPDATE transactions SET meter_stop = coalesce(?, meter_stop), meter_last = coalesce(?, meter_last),"
                " stop_time = ?, stop_reason = ?, stop_id_tag = ?, transaction_data = ?, closed_by = 'charger',"
                " updated_at = ? WHERE id = ?",
                (meter_stop, meter_stop, stop_time, reason, id_tag or "", transaction_data, now, transaction_id),
            )
            return get(conn, transaction_id), True, False
    elif row is None and 0 < transaction_id < 2**31:
        conn.execute(
            "INSERT INTO transactions (id, charger_id, connector_id, id_tag, status, mode, meter_start, meter_last,"
            " meter_stop, start_time, stop_time, stop_reason, stop_id_tag, transaction_data, created_at, updated_at)"
            " VALUES (?, ?, 0, ?, 'completed', 'local', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (transaction_id, charger_id, id_tag or "", meter_start, meter_stop, meter_stop, start_time, stop_time,
             reason, id_tag, transaction_data, now, now),
        )
        return get(conn, transaction_id), False, True
    key = f"stop|{charger_id}|{transaction_id}|{stop_time}"
    existing = conn.execute("SELECT * FROM transactions WHERE start_key = ?", (key,)).fetchone()
    if existing is not None:
        return existing, False, False
    new_id = conn.execute(
        "INSERT INTO transactions (charger_id, connector_id, id_tag, status, mode, meter_start, meter_last,"
        " meter_stop, start_time, stop_time, stop_reason, stop_id_tag, transaction_data, start_key,"
        " created_at, updated_at) VALUES (?, 0, ?, 'completed', 'local', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (charger_id, id_tag or "", meter_start, meter_stop, meter_stop, start_time, stop_time, reason, id_tag,
         transaction_data, key, now, now),
    ).lastrowid
    return get(conn, new_id), False, True


def add_meter_values(conn: sqlite3.Connection, charger_id: str, connector_id: int,
                     transaction_id: int | None, samples: list[tuple[str, list[dict]]],
                     energy_wh: float | None) -> None:
    """Store the samples (timestamp, sampled values), each with the energy it books for its
    transaction (`energy_wh`; see `latest_wh`).

    A MeterValues the charger re-sends because our answer was lost is not stored twice: its
    samples are the transaction's latest rows (a charger retries a transaction message before it
    sends the next one), so only those are compared, whatever the length of the charge. The
    latest energy is the greatest booked, so a replayed older sample does not shrink a running charge.
    """
    rows = []
    for ts, sampled in samples:
        shape, values = meter_samples.split(sampled)
        rows.append((ts, meter_samples.shape_id(conn, shape), values))
    memo = conn if isinstance(conn, WriteConnection) else None
    if transaction_id is not None:
        # the transaction's latest rows: remembered from its last reading, else read
        latest = memo.recall(("readings", transaction_id)) if memo is not None else None
        if latest is None or len(latest) < len(rows):
            if memo is not None:
                memo.flush()
            latest = [tuple(row) for row in conn.execute(
                "SELECT timestamp, shape, vals FROM meter_values WHERE transaction_id = ? ORDER BY id DESC LIMIT ?",
                (transaction_id, len(rows)))][::-1]
        latest = set(latest[len(latest) - len(rows):])
        fresh = [row for row in rows if row not in latest]
        if memo is not None and len(fresh) == len(rows):
            memo.remember(("readings", transaction_id), tuple(rows))
        elif memo is not None:
            memo.forget(("readings", transaction_id))  # read again next time
        rows = fresh
    booked = energy_wh if transaction_id is not None else None
    for row in rows:
        stored = (charger_id, connector_id, transaction_id, *row, booked)
        if memo is None or not memo.defer(READING_INSERT, stored):
            conn.execute(f"{READING_INSERT} VALUES (?, ?, ?, ?, ?, ?, ?)", stored)


READING_INSERT = "INSERT INTO meter_values (charger_id, connector_id, transaction_id, timestamp, shape, vals, energy_wh)"


def settle_running(conn: sqlite3.Connection) -> int:
    """Bring each running charge's `meter_last` up to its stored readings (`latest_wh`), when the
    books are opened: after a crash the row may not hold the last reading. Returns how many moved."""
    moved = 0
    for row in charging(conn):
        if (latest := latest_wh(conn, row)) != row["meter_last"]:
            conn.execute("UPDATE transactions SET meter_last = ? WHERE id = ?", (latest, row["id"]))
            moved += 1
    return moved


def meter_values(conn: sqlite3.Connection, transaction_id: int, limit: int = -1, offset: int = 0) -> list[dict]:
    """A transaction's readings in the order stored (a charger's offline backlog may arrive after
    later ones; each has its own timestamp), all of them by default: id, charger_id, connector_id,
    transaction_id, timestamp and sampled_value (the JSON the charger sent)."""
    return meter_samples.readings(conn, "m.transaction_id = ?", (transaction_id,), limit, offset)


def meter_values_count(conn: sqlite3.Connection, transaction_id: int) -> int:
    return conn.execute("SELECT count(*) FROM meter_values WHERE transaction_id = ?", (transaction_id,)).fetchone()[0]


def pending_ids(conn: sqlite3.Connection) -> list[int]:
    """The remote starts waiting for their charge."""
    return [row[0] for row in conn.execute("SELECT id FROM transactions WHERE status = 'pending'")]


def expire_pending(conn: sqlite3.Connection, transaction_ids: list[int]) -> list[sqlite3.Row]:
    """These remote starts never became a charge: mark those still pending failed, return them."""
    rows = [row for row in map(lambda i: get(conn, i), transaction_ids) if row is not None and row["status"] == "pending"]
    for row in rows:
        set_status(conn, row["id"], "failed", "NeverStarted")
    return rows
