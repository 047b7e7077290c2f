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
    # public charging: pay-by-phone sessions (controller/public_charging, docs/public-charging.md).
    """
    CREATE TABLE public_sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,              -- random; idempotency keys with the provider derive from it
        token_hash TEXT UNIQUE,                -- sha256 of the session token; NULL once the token expired
        status TEXT NOT NULL,
        failure_reason TEXT,
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,
        id_tag TEXT NOT NULL UNIQUE,           -- generated per session; maps StartTransaction back
        driver_email TEXT,
        currency TEXT NOT NULL,
        price_per_kwh INTEGER NOT NULL,
        start_fee INTEGER NOT NULL,
        tax_rate TEXT NOT NULL,
        amount_authorized INTEGER NOT NULL,
        provider TEXT NOT NULL,
        payment_id TEXT,
        client_secret TEXT,
        hold_released INTEGER NOT NULL DEFAULT 0,
        capture_attempts INTEGER NOT NULL DEFAULT 0,
        transaction_id INTEGER,
        meter_start INTEGER,
        meter_stop INTEGER,
        energy_wh INTEGER,
        cost_amount INTEGER,
        amount_captured INTEGER,
        tax_amount INTEGER,
        created_at TEXT NOT NULL,
        authorized_at TEXT,
        charging_started_at TEXT,
        completed_at TEXT,
        captured_at TEXT,
        ended_at TEXT,                         -- when the session reached a final status
        updated_at TEXT NOT NULL
    );
    CREATE INDEX public_sessions_by_status ON public_sessions (status);
    CREATE INDEX public_sessions_by_charger ON public_sessions (charger_id, created_at);
    CREATE INDEX public_sessions_by_transaction ON public_sessions (transaction_id);
    """,
    # upstream delivery bookkeeping (controller/upstream/delivery.py, docs/upstream.md).
    """
    ALTER TABLE outbox ADD COLUMN client_errors INTEGER NOT NULL DEFAULT 0;  -- other-4xx answers so far
    ALTER TABLE outbox ADD COLUMN last_status INTEGER;                       -- HTTP status of the last try
    ALTER TABLE outbox ADD COLUMN last_attempt_at TEXT;
    CREATE INDEX outbox_delivered ON outbox (status, delivered_at);
    """,
    # a transaction books its energy from one source from start to stop ('meter': the connector
    # meter; NULL: the charger's own register)
    """
    ALTER TABLE transactions ADD COLUMN energy_source TEXT;
    """,
    # the OCPP version a charger speaks (its WebSocket subprotocol: ocpp1.6, ocpp2.0.1)
    """
    ALTER TABLE chargers ADD COLUMN protocol TEXT;
    """,
    # chargers that assign transaction ids themselves (OCPP 2.0.1): theirs beside ours
    """
    ALTER TABLE transactions ADD COLUMN ocpp_transaction_id TEXT;
    CREATE UNIQUE INDEX transactions_by_ocpp_id ON transactions (charger_id, ocpp_transaction_id)
        WHERE ocpp_transaction_id IS NOT NULL;
    """,
    # the database's identity: one row, named by the books marker beside it (store/data_dir.py)
    """
    CREATE TABLE books (id TEXT NOT NULL, created_at TEXT NOT NULL);
    INSERT INTO books (id, created_at) VALUES (lower(hex(randomblob(16))), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
    """,
    # load management: an operator's (or a DSO's) lower limit on a circuit, until it expires
    """
    CREATE TABLE circuit_overrides (
        circuit_id TEXT PRIMARY KEY,
        max_current_a REAL NOT NULL,           -- per phase, in force instead of the configured fuse
        expires_at TEXT,                       -- ISO 8601 UTC; NULL: until lifted
        created_at TEXT NOT NULL
    );
    """,
    # reservations (controller/reservations.py): our id is the reservationId the charger gets;
    # a transaction the controller closed itself (its charger started another on the connector)
    """
    CREATE TABLE reservations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,
        id_tag TEXT NOT NULL,
        parent_id_tag TEXT,
        expires_at TEXT NOT NULL,              -- ISO 8601 UTC, as sent in ReserveNow
        status TEXT NOT NULL,                  -- requested | accepted | faulted | occupied | rejected |
                                               -- unavailable | failed | cancelled | used | expired
        transaction_id INTEGER,                -- the charge that used it
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX reservations_by_charger ON reservations (charger_id, id);
    CREATE INDEX reservations_by_status ON reservations (status, id);
    ALTER TABLE transactions ADD COLUMN closed_by TEXT;  -- 'controller': closed without the charger's stop
    """,
    # an id tag's token type: how OCPP 2.0.1 names it (ISO14443 for the site's RFID cards)
    """
    ALTER TABLE id_tags ADD COLUMN token_type TEXT NOT NULL DEFAULT 'ISO14443';
    """,
    # the dashboard's sign-in sessions (a browser's cookie is the token; only its digest is kept)
    """
    CREATE TABLE dashboard_sessions (
        token_digest TEXT PRIMARY KEY,         -- SHA-256 of the cookie's random token, hex
        key_digest TEXT NOT NULL,              -- SHA-256 of the API key signed in with: its role is read per request
        csrf TEXT NOT NULL,                    -- the token every state-changing request must carry
        expires_at TEXT NOT NULL               -- ISO 8601 UTC
    );
    """,
    # what the controller keeps for the operator of each charger: its local authorization list's
    # sync, the charging profiles set through the API, firmware/diagnostics reports and boots,
    # and a password set by rotation (controller/local_list.py, charging_profiles.py,
    # maintenance.py, charger_passwords.py)
    """
    CREATE TABLE local_lists (
        charger_id TEXT PRIMARY KEY,
        version INTEGER NOT NULL DEFAULT 0,    -- the list version the charger holds, as far as we know
        state TEXT NOT NULL,                   -- unknown | syncing | synced | stale | failed | unsupported | too_long
        detail TEXT,                           -- why (failed, too_long)
        max_length INTEGER,                    -- SendLocalListMaxLength, when the charger reported it
        synced_at TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE charging_profiles (
        charger_id TEXT NOT NULL,
        profile_id INTEGER NOT NULL,           -- chargingProfileId
        connector_id INTEGER NOT NULL,
        purpose TEXT NOT NULL,
        stack_level INTEGER NOT NULL,
        profile TEXT NOT NULL,                 -- JSON csChargingProfiles as given
        status TEXT NOT NULL,                  -- the charger's last answer: Accepted | Rejected | NotSupported | pending
        sent_at TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (charger_id, profile_id)
    );
    CREATE TABLE charger_reports (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        charger_id TEXT NOT NULL,
        kind TEXT NOT NULL,                    -- firmware | diagnostics | log | boot
        status TEXT NOT NULL,                  -- the reported status; Requested for our request; the firmware version for a boot
        detail TEXT,                           -- JSON: the request, the charger's answer
        at TEXT NOT NULL
    );
    CREATE INDEX charger_reports_by_charger ON charger_reports (charger_id, kind, id);
    CREATE TABLE charger_passwords (
        charger_id TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,           -- the newest key (passwords.hash_password)
        previous_hash TEXT,                    -- still accepted until the charger connects with the newest
        set_at TEXT NOT NULL,
        confirmed_at TEXT                      -- when the charger first connected with the newest
    );
    """,
    # a charge whose start or stop a charger stamped far from our clock (1970, year 1, 2099):
    # which ("start", "stop", "start,stop"), and our own clock when the start was booked
    """
    ALTER TABLE transactions ADD COLUMN clock_suspect TEXT;
    ALTER TABLE transactions ADD COLUMN booked_at TEXT;
    """,
    # meter values stored compactly (store/meter_samples.py): a reading keeps its values and the id of
    # its shape (its sampled values with every value null, stored once) instead of the whole JSON.
    # Existing rows are converted; their sampled values render back to the same JSON.
    """
    ALTER TABLE meter_values RENAME TO meter_values_json;
    DROP INDEX meter_values_by_transaction;
    CREATE TABLE meter_shapes (id INTEGER PRIMARY KEY, shape TEXT NOT NULL UNIQUE);
    CREATE TABLE meter_values (
        id INTEGER PRIMARY KEY,
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,
        transaction_id INTEGER,
        timestamp TEXT NOT NULL,
        shape INTEGER NOT NULL,                -- meter_shapes.id
        vals TEXT NOT NULL                     -- JSON list: each sampled value's value, in order
    );
    -- (a text that is no JSON list is kept as it is, under the shape 'null')
    CREATE TEMP TABLE meter_split AS SELECT m.id,
        CASE WHEN json_valid(m.sampled_value) AND json_type(m.sampled_value) = 'array' THEN
            (SELECT json_group_array(json_replace(json_quote(j.value), '$.value', NULL)) FROM json_each(m.sampled_value) j)
            ELSE 'null' END AS shape,
        CASE WHEN json_valid(m.sampled_value) AND json_type(m.sampled_value) = 'array' THEN
            (SELECT json_group_array(json_quote(j.value) -> '$.value') FROM json_each(m.sampled_value) j)
            ELSE m.sampled_value END AS vals
        FROM meter_values_json m;
    INSERT OR IGNORE INTO meter_shapes (shape) SELECT shape FROM meter_split ORDER BY id;
    INSERT INTO meter_values (id, charger_id, connector_id, transaction_id, timestamp, shape, vals)
        SELECT m.id, m.charger_id, m.connector_id, m.transaction_id, m.timestamp, s.id, x.vals
        FROM meter_values_json m JOIN meter_split x ON x.id = m.id JOIN meter_shapes s ON s.shape = x.shape;
    DROP TABLE temp.meter_split;
    DROP TABLE meter_values_json;
    CREATE INDEX meter_values_by_transaction ON meter_values (transaction_id) WHERE transaction_id IS NOT NULL;
    """,
    # local-controller mode: what each charger said, queued for the central system above the site
    # until it acknowledged it; the central system's transaction ids beside ours; the upstream's
    # answers on cards, with the expiry it gave
    """
    CREATE TABLE forward_queue (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        charger_id TEXT NOT NULL,
        action TEXT NOT NULL,                  -- the OCPP action the charger sent
        payload TEXT NOT NULL,                 -- its payload (JSON), as it came
        transaction_id INTEGER,                -- ours, of the charge it concerns
        created_at TEXT NOT NULL
    );
    CREATE INDEX forward_queue_by_charger ON forward_queue (charger_id, id);
    CREATE TABLE forward_transactions (
        transaction_id INTEGER PRIMARY KEY,    -- ours
        charger_id TEXT NOT NULL,
        upstream_transaction_id INTEGER NOT NULL
    );
    CREATE TABLE card_answers (
        id_tag TEXT PRIMARY KEY COLLATE NOCASE,
        status TEXT NOT NULL,                  -- Accepted | Blocked | Expired | Invalid | ConcurrentTx
        expires_at TEXT,                       -- ISO 8601 UTC; NULL: until a later answer
        parent_id_tag TEXT,
        answered_at TEXT NOT NULL
    );
    """,
    # local-controller mode: the central system's upper bounds on chargers under load management
    """
    CREATE TABLE upstream_caps (
        charger_id TEXT NOT NULL,
        connector_id INTEGER NOT NULL,         -- 0: every connector (EVSE) of the charger
        profile_id INTEGER NOT NULL,           -- the central system's charging profile id
        start TEXT NOT NULL,                   -- ISO 8601 UTC: the periods count from here
        periods TEXT NOT NULL,                 -- JSON [[seconds from start, amps per phase], ...]
        until TEXT,                            -- ISO 8601 UTC; NULL: until cleared
        PRIMARY KEY (charger_id, connector_id, profile_id)
    );
    """,
    # the energy each reading books for its transaction (NULL: none): a running charge's latest
    # energy comes from its readings (store/transactions.py latest_wh), not a write of its row per reading
    """
    ALTER TABLE meter_values ADD COLUMN energy_wh REAL;
    """,
    # local-controller mode: the OCPP version (subprotocol) each queued message was sent in, so it
    # goes up in that version after the charger changed version. Rows queued before: the charger's
    # version as last seen, the version they were queued in unless it changed while they waited
    """
    ALTER TABLE forward_queue ADD COLUMN protocol TEXT NOT NULL DEFAULT 'ocpp1.6';
    UPDATE forward_queue SET protocol = coalesce(
        (SELECT protocol FROM chargers WHERE chargers.id = forward_queue.charger_id), 'ocpp1.6');
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


def identity(conn: sqlite3.Connection) -> tuple[str, str]:
    """(id, created_at) of this database: random, given by the migration that created the row."""
    row = conn.execute("SELECT id, created_at FROM books").fetchone()
    return row[0], row[1]
