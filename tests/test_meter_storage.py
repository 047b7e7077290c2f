"""Meter readings on disk: stored compactly, given back exactly as sent, converted from the old
format without losing one, and pruned after the retention period (a real SQLite file each)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import orjson
import trio

from controller import retention
from controller.config import load_config
from controller.live_config import LiveConfig
from controller.store import Store, space
from controller.store import transactions as txq
from controller.store.db import DB_FILE
from controller.store.schema import MIGRATIONS
from controller.timefmt import iso, utcnow
from tests.support import config_text

CHARGER = "CP-1"


def sv16(value: str, measurand: str, unit: str, phase: str | None = None) -> dict:
    sv = {"value": value, "context": "Sample.Periodic", "format": "Raw", "measurand": measurand,
          "location": "Outlet", "unit": unit}
    return {**sv, "phase": phase} if phase else sv


def four_values(wh: int) -> list[dict]:
    return [sv16(str(wh), "Energy.Active.Import.Register", "Wh"), sv16("7360.0", "Power.Active.Import", "W"),
            sv16("32.0", "Current.Import", "A", "L1"), sv16("230.1", "Voltage", "V", "L1-N")]


SAMPLES = [  # what chargers send: 1.6 strings, 2.0.1 numbers with unitOfMeasure, odd text, no value
    four_values(1000),
    [{"value": 0.30000000000000004, "measurand": "Energy.Active.Import.Register",
      "unitOfMeasure": {"unit": "kWh", "multiplier": -3}}, {"value": 1e300}, {"value": -0.0}, {"value": 12345678901234567}],
    [{"value": "é \"quoted\" \\ \u2028", "measurand": "SoC", "unit": "Percent"}],
    [{"measurand": "Voltage"}],
    [],
]


def begin(conn: sqlite3.Connection, key: str, start: str) -> int:
    row, _ = txq.begin(conn, charger_id=CHARGER, connector_id=1, id_tag="TAG", id_tag_status="Accepted",
                       meter_start=1000, start_time=start, reservation_id=None, start_key=key, default_mode="local")
    return row["id"]


def finish(conn: sqlite3.Connection, transaction_id: int, stop: str) -> None:
    txq.finish(conn, transaction_id=transaction_id, charger_id=CHARGER, meter_stop=9000, stop_time=stop,
               reason="Local", id_tag=None, transaction_data=None)


async def test_readings_come_back_exactly_as_the_charger_sent_them(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        txn = await store.write(begin, "k1", "2026-01-01T10:00:00.000Z")
        samples = [(f"2026-01-01T10:00:0{i}.000Z", sampled) for i, sampled in enumerate(SAMPLES)]
        await store.write(txq.add_meter_values, CHARGER, 1, txn, samples, 1000.0)
        await store.write(txq.add_meter_values, CHARGER, 1, txn, samples, 1000.0)  # re-sent: stored once
        rows = await store.read(txq.meter_values, txn)
    finally:
        store.close()
    assert [(r["timestamp"], r["sampled_value"]) for r in rows] == [
        (ts, orjson.dumps(sampled).decode()) for ts, sampled in samples]
    assert {(r["charger_id"], r["connector_id"], r["transaction_id"]) for r in rows} == {(CHARGER, 1, txn)}


async def test_a_reading_of_four_values_takes_well_under_2_kb_on_disk(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        empty = (tmp_path / DB_FILE).stat().st_size
        txn = await store.write(begin, "k1", "2026-01-01T10:00:00.000Z")
        for batch in range(10):
            samples = [(f"2026-01-01T1{batch}:{i // 60:02d}:{i % 60:02d}.000Z", four_values(1000 + 100 * batch + i))
                       for i in range(200)]
            await store.write(txq.add_meter_values, CHARGER, 1, txn, samples, None)
        await store.on_writer(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        size = (tmp_path / DB_FILE).stat().st_size
    finally:
        store.close()
    assert (size - empty) / 2000 < 200  # the JSON alone was ~560 bytes a reading


def _old_database(path: Path, rows: list[tuple]) -> None:
    """A database of the release before compact readings, holding `rows` of its meter_values."""
    compact = next(i for i, script in enumerate(MIGRATIONS) if "CREATE TABLE meter_shapes" in script)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")  # as that release made it: WAL, 4 KiB pages, no auto-vacuum
    for number, script in enumerate(MIGRATIONS[:compact], start=1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    conn.execute("INSERT INTO transactions (id, charger_id, connector_id, id_tag, status, mode, created_at, updated_at)"
                 " VALUES (7, ?, 1, 'TAG', 'active', 'local', 'now', 'now')", (CHARGER,))
    conn.executemany("INSERT INTO meter_values (charger_id, connector_id, transaction_id, timestamp, sampled_value)"
                     " VALUES (?, ?, ?, ?, ?)", rows)
    conn.close()


async def test_an_existing_database_keeps_every_reading_through_the_conversion(tmp_path: Path) -> None:
    old = [(CHARGER, 1, 7 if i % 3 else None, f"2025-06-01T12:00:{i:02d}.000Z",
            orjson.dumps(SAMPLES[i % len(SAMPLES)]).decode()) for i in range(40)]
    old += [(CHARGER, 2, None, "2025-06-01T12:00:41.000Z", "not JSON"),  # no JSON list: kept as it was
            (CHARGER, 2, None, "2025-06-01T12:00:42.000Z", '{"value":"1"}'),
            (CHARGER, 2, None, "2025-06-01T12:00:43.000Z", '["text",{"value":"1"}]')]
    _old_database(tmp_path / DB_FILE, old)
    store = Store(tmp_path, new_books=True)
    try:
        layout = await store.read(lambda conn: (conn.execute("PRAGMA auto_vacuum").fetchone()[0],
                                                conn.execute("PRAGMA page_size").fetchone()[0],
                                                conn.execute("PRAGMA journal_mode").fetchone()[0]))
        converted = await store.read(
            lambda conn: [(r["charger_id"], r["connector_id"], r["transaction_id"], r["timestamp"], r["sampled_value"])
                          for r in txq.meter_samples.readings(conn, "1", ())])
        # new readings of the same transaction join the converted ones, re-sent ones still stored once
        more = [("2025-06-01T12:01:00.000Z", four_values(5000))]
        await store.write(txq.add_meter_values, CHARGER, 1, 7, more, 5000.0)
        await store.write(txq.add_meter_values, CHARGER, 1, 7, more, 5000.0)
        of_transaction = await store.read(txq.meter_values, 7)
    finally:
        store.close()
    assert converted == old
    assert layout == (2, space.PAGE_SIZE, "wal")  # rewritten once: incremental vacuum, small pages
    assert [r["timestamp"] for r in of_transaction] == [r[3] for r in old if r[2] == 7] + [more[0][0]]


async def test_retention_prunes_old_completed_charges_and_keeps_their_billing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        def charge(key: str, start: str, stop: str | None, readings: int) -> int:
            def write(conn: sqlite3.Connection) -> int:
                txn = begin(conn, key, start)
                samples = [(start[:-5] + f"{i % 60:02d}.000Z", four_values(1000 + i)) for i in range(readings)]
                txq.add_meter_values(conn, CHARGER, 1, txn, samples, None)
                if stop:
                    finish(conn, txn, stop)
                return txn
            return write

        old = await store.write(charge("old", "2025-01-01T10:00:00.000Z", "2025-01-01T12:00:00.000Z", 1500))
        recent = await store.write(charge("recent", "2025-12-20T10:00:00.000Z", "2025-12-20T11:00:00.000Z", 30))
        running = await store.write(charge("running", "2025-01-02T10:00:00.000Z", None, 30))
        await store.write(txq.add_meter_values, CHARGER, 2, None, [("2025-01-01T09:00:00.000Z", four_values(1))], None)
        await store.on_writer(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        pages_before = await store.read(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])

        deleted = await retention.prune(store, "2025-12-01T00:00:00.000Z", pause_s=0)

        counts = {txn: len(await store.read(txq.meter_values, txn)) for txn in (old, recent, running)}
        row = await store.read(txq.get, old)
        pages_after = await store.read(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
        again = await retention.prune(store, "2025-12-01T00:00:00.000Z", pause_s=0)
    finally:
        store.close()
    assert deleted == 1500 and again == 0
    assert counts == {old: 0, recent: 30, running: 30}
    assert (row["meter_start"], row["meter_stop"], row["start_time"], row["stop_time"]) == (
        1000, 9000, "2025-01-01T10:00:00.000Z", "2025-01-01T12:00:00.000Z")
    assert pages_after < pages_before  # the freed pages went back to the file system


async def test_the_site_prunes_by_its_configured_retention_in_the_background(tmp_path: Path, autojump_clock) -> None:
    """With `meter_values_retention_days = 30`, a charge completed 40 days ago loses its raw readings
    once the background task has run; one completed 20 days ago keeps them."""
    path = tmp_path / "evedge.toml"
    path.write_text(config_text(tmp_path / "data").replace('name = "test site"\n',
                                                          'name = "test site"\nmeter_values_retention_days = 30\n'))
    config = load_config(path)
    store = Store(config.data_dir)
    try:
        def charge(key: str, days_ago: float) -> Callable[[sqlite3.Connection], int]:
            def write(conn: sqlite3.Connection) -> int:
                at = iso(utcnow() - timedelta(days=days_ago))
                txn = begin(conn, key, at)
                txq.add_meter_values(conn, CHARGER, 1, txn, [(at, four_values(1000))], None)
                finish(conn, txn, at)
                return txn
            return write

        old = await store.write(charge("old", 40))
        recent = await store.write(charge("recent", 20))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(retention.prune_forever, store, LiveConfig(config))
            await trio.sleep(retention.FIRST_RUN_S)
            for _ in range(600):  # the clock jumps whenever the store's threads work, so no fail_after here
                if not await store.read(txq.meter_values, old):
                    break
                await trio.sleep(1)
            nursery.cancel_scope.cancel()
        counts = [len(await store.read(txq.meter_values, txn)) for txn in (old, recent)]
    finally:
        store.close()
    assert counts == [0, 1]
