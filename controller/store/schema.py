"""Versioned schema migrations. Append only: a released migration is never edited."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[str] = [
    # 1: chargers, connectors, id tags, transactions, meter values, the upstream outbox.
    """
    CREATE TABLE chargers (
        id TEXT PRIMARY KEY,
        registration TEXT NOT NULL,            -- accepted | pending | rejected
        vendor TEXT, model TEXT, serial_number TEXT, firmware_version TEXT,
        boot_info TEXT,                        -- JSON of the last BootNotification
        last_boot TEXT, last_heartbeat TEXT,
        first_seen TEXT NOT NULL
    );
    CREATE TABLE connectors (
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,
        status TEXT, error_code TEXT, info TEXT, vendor_error_code TEXT, status_at TEXT,
        energy_wh REAL, power_w REAL, meter_at TEXT,
        PRIMARY KEY (charger_id, connector_id)
    );
    CREATE TABLE id_tags (
        id_tag TEXT PRIMARY KEY COLLATE NOCASE,
        status TEXT NOT NULL,                  -- Accepted | Blocked | Expired | Invalid
        expiry_date TEXT,
        parent_id_tag TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE transactions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,
        id_tag TEXT NOT NULL,
        status TEXT NOT NULL,                  -- pending | active | stopping | completed | failed
        mode TEXT NOT NULL,                    -- local | api | remote
        remote_started INTEGER NOT NULL DEFAULT 0,
        id_tag_status TEXT,
        meter_start INTEGER, meter_stop INTEGER, meter_last REAL,
        start_time TEXT, stop_time TEXT, stop_reason TEXT, stop_id_tag TEXT,
        reservation_id INTEGER,
        transaction_data TEXT,                 -- JSON from StopTransaction
        start_key TEXT UNIQUE,                 -- identifies a retried StartTransaction
        payment_amount TEXT,                   -- from the upstream's reply, when it manages payment
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX transactions_by_charger ON transactions (charger_id, id);
    CREATE INDEX transactions_by_status ON transactions (status, id);
    CREATE INDEX transactions_by_connector ON transactions (charger_id, connector_id, status);
    CREATE TABLE meter_values (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,
        transaction_id INTEGER,
        timestamp TEXT NOT NULL,
        sampled_value TEXT NOT NULL            -- JSON list as the charger sent it
    );
    CREATE INDEX meter_values_by_transaction ON meter_values (transaction_id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        charger_id TEXT NOT NULL,
        transaction_id INTEGER,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending', -- pending | delivered | failed
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        created_at TEXT NOT NULL,
        delivered_at TEXT
    );
    CREATE INDEX outbox_pending ON outbox (status, charger_id, id);
    """,
]


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to the newest version; returns that version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {version} is newer than this evedge ({len(MIGRATIONS)})"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        # executescript commits first; the version bump lives inside the script's transaction.
        conn.executescript(f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return len(MIGRATIONS)
