"""Local-controller mode: the upper bounds a central system above the site set on chargers under
load management, kept so a restart does not lift them."""

from __future__ import annotations

import sqlite3

import orjson


def put_cap(conn: sqlite3.Connection, charger_id: str, connector_id: int, profile_id: int, start: str,
            periods: list[tuple[float, float]], until: str | None) -> None:
    """A bound, replacing the one of the same profile id on the connector."""
    conn.execute("INSERT OR REPLACE INTO upstream_caps (charger_id, connector_id, profile_id, start, periods, until)"
                 " VALUES (?, ?, ?, ?, ?, ?)",
                 (charger_id, connector_id, profile_id, start, orjson.dumps(periods).decode(), until))


def delete_caps(conn: sqlite3.Connection, charger_id: str, connector_id: int | None, profile_id: int | None) -> int:
    """The charger's bounds (of one connector, of one profile id, or all) gone; how many were."""
    return conn.execute("DELETE FROM upstream_caps WHERE charger_id = ? AND (? IS NULL OR connector_id = ?)"
                        " AND (? IS NULL OR profile_id = ?)",
                        (charger_id, connector_id, connector_id, profile_id, profile_id)).rowcount


def in_force(conn: sqlite3.Connection, now: str) -> list[dict]:
    """Every bound not ended by `now` (ISO 8601 UTC); the ended ones are deleted."""
    conn.execute("DELETE FROM upstream_caps WHERE until IS NOT NULL AND until <= ?", (now,))
    return [{**dict(row), "periods": [tuple(p) for p in orjson.loads(row["periods"])]}
            for row in conn.execute("SELECT * FROM upstream_caps ORDER BY charger_id, connector_id, profile_id")]
