"""Queries: chargers and their connectors."""

from __future__ import annotations

import sqlite3

from controller.store.charger_reports import add_report
from controller.timefmt import now_iso


def all_chargers(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM chargers ORDER BY id").fetchall()


def all_connectors(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute("SELECT * FROM connectors ORDER BY charger_id, connector_id").fetchall()


def upsert_charger(conn: sqlite3.Connection, charger_id: str, registration: str) -> None:
    conn.execute(
        "INSERT INTO chargers (id, registration, first_seen) VALUES (?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET registration = excluded.registration",
        (charger_id, registration, now_iso()),
    )


def record_boot(conn: sqlite3.Connection, charger_id: str, registration: str, vendor: str, model: str,
                serial_number: str | None, firmware_version: str | None, boot_json: str, at: str) -> None:
    upsert_charger(conn, charger_id, registration)
    conn.execute(
        "UPDATE chargers SET vendor = ?, model = ?, serial_number = ?, firmware_version = ?,"
        " boot_info = ?, last_boot = ? WHERE id = ?",
        (vendor, model, serial_number, firmware_version, boot_json, at, charger_id),
    )
    # every boot's firmware, so an operator sees an update take effect (GET .../firmware)
    add_report(conn, charger_id, "boot", firmware_version or "unknown", None, at)


def record_protocol(conn: sqlite3.Connection, charger_id: str, registration: str, protocol: str) -> None:
    upsert_charger(conn, charger_id, registration)
    conn.execute("UPDATE chargers SET protocol = ? WHERE id = ?", (protocol, charger_id))


def record_heartbeat(conn: sqlite3.Connection, charger_id: str, at: str) -> None:
    conn.execute("UPDATE chargers SET last_heartbeat = ? WHERE id = ?", (at, charger_id))


def record_status(
    conn: sqlite3.Connection, charger_id: str, connector_id: int, status: str, error_code: str,
    info: str | None, vendor_error_code: str | None, at: str,
) -> None:
    conn.execute(
        "INSERT INTO connectors (charger_id, connector_id, status, error_code, info, vendor_error_code, status_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (charger_id, connector_id) DO UPDATE SET"
        " status = excluded.status, error_code = excluded.error_code, info = excluded.info,"
        " vendor_error_code = excluded.vendor_error_code, status_at = excluded.status_at",
        (charger_id, connector_id, status, error_code, info, vendor_error_code, at),
    )


def record_meter(conn: sqlite3.Connection, charger_id: str, connector_id: int,
                 energy_wh: float | None, power_w: float | None, at: str) -> None:
    conn.execute(
        "INSERT INTO connectors (charger_id, connector_id, energy_wh, power_w, meter_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (charger_id, connector_id) DO UPDATE SET"
        " energy_wh = coalesce(excluded.energy_wh, energy_wh),"
        " power_w = coalesce(excluded.power_w, power_w), meter_at = excluded.meter_at",
        (charger_id, connector_id, energy_wh, power_w, at),
    )
