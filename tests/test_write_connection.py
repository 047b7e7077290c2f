"""What the write connection remembers and defers (store/connection.py) never outlives the truth:
a reading rolled back is not taken for stored, a charge that ended is not taken for running, and
the readings of one commit land in the order they came (a real SQLite file each)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import trio
from trio.testing import wait_all_tasks_blocked

from controller.store import Store
from controller.store import transactions as txq
from tests.test_meter_storage import CHARGER, begin, finish, four_values

START = "2026-03-01T10:00:00.000Z"


class Refused(Exception):
    pass


def readings(conn: sqlite3.Connection, transaction_id: int) -> list[tuple[str, str]]:
    return [tuple(r) for r in conn.execute(
        "SELECT timestamp, vals FROM meter_values WHERE transaction_id = ? ORDER BY id", (transaction_id,))]


@pytest.mark.parametrize("telemetry", [True, False])
async def test_a_reading_rolled_back_is_stored_when_sent_again(tmp_path: Path, telemetry: bool) -> None:
    """The re-sent check must not take a rolled-back reading for stored: the charger, which got
    an error, sends it again, and it must be stored then (else it is lost)."""
    store = Store(tmp_path)
    try:
        txn = await store.write(begin, "a", START)
        first = [("2026-03-01T10:00:10.000Z", four_values(1100))]
        await store.write(txq.add_meter_values, CHARGER, 1, txn, first, 1100.0, telemetry=telemetry)
        again = [("2026-03-01T10:00:20.000Z", four_values(1200))]

        def refused(conn: sqlite3.Connection) -> None:
            txq.add_meter_values(conn, CHARGER, 1, txn, again, 1200.0)
            raise Refused

        with pytest.raises(Refused):
            await store.write(refused, telemetry=telemetry)
        assert await store.read(readings, txn) == [(first[0][0], '["1100","7360.0","32.0","230.1"]')]
        await store.write(txq.add_meter_values, CHARGER, 1, txn, again, 1200.0, telemetry=telemetry)
        assert [ts for ts, _ in await store.read(readings, txn)] == [first[0][0], again[0][0]]
        await store.write(txq.add_meter_values, CHARGER, 1, txn, again, 1200.0, telemetry=telemetry)  # re-sent
        assert [ts for ts, _ in await store.read(readings, txn)] == [first[0][0], again[0][0]]
    finally:
        store.close()


async def test_a_new_shape_rolled_back_is_not_remembered(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        odd = [("2026-03-01T10:00:10.000Z", [{"value": "1", "measurand": "SoC", "unit": "Percent"}])]

        def refused(conn: sqlite3.Connection) -> None:
            txq.add_meter_values(conn, CHARGER, 1, None, odd, None)
            raise Refused

        with pytest.raises(Refused):
            await store.write(refused, telemetry=True)
        await store.write(txq.add_meter_values, CHARGER, 1, None, odd, None, telemetry=True)
        stored = await store.read(lambda conn: conn.execute(
            "SELECT s.shape FROM meter_values m JOIN meter_shapes s ON s.id = m.shape").fetchall())
        assert [r[0] for r in stored] == ['[{"value":null,"measurand":"SoC","unit":"Percent"}]']
    finally:
        store.close()


async def test_a_charge_that_ended_is_not_remembered_running(tmp_path: Path) -> None:
    store = Store(tmp_path)
    try:
        txn = await store.write(begin, "a", START)
        await store.write(txq.add_meter_values, CHARGER, 1, txn, [(START, four_values(1100))], 1100.0, telemetry=True)
        assert (await store.write(txq.charge, txn)).status == "active"
        await store.write(finish, txn, "2026-03-01T11:00:00.000Z")
        assert await store.write(txq.charge, txn) == txq.Charge(CHARGER, "completed", None)
    finally:
        store.close()


async def test_the_readings_of_one_commit_land_in_order_beside_other_writes(tmp_path: Path) -> None:
    """Readings deferred to one INSERT are written before any other write of the commit runs,
    so a write that reads them (a stop's latest energy) finds them all."""
    store = Store(tmp_path)
    try:
        txn = await store.write(begin, "a", START)
        times = [f"2026-03-01T10:{m:02d}:00.000Z" for m in range(1, 60)]

        def batch(conn: sqlite3.Connection) -> float | None:
            conn.deferring = True  # as the store runs the readings of a commit
            for i, ts in enumerate(times):
                txq.add_meter_values(conn, CHARGER, 1, txn, [(ts, four_values(2000 + i))], 2000.0 + i)
            conn.deferring = False
            conn.flush()
            return txq.latest_wh(conn, txq.get(conn, txn))

        assert await store.write(batch) == 2000.0 + len(times) - 1
        assert [ts for ts, _ in await store.read(readings, txn)] == times
    finally:
        store.close()


async def test_a_write_after_readings_in_their_commit_finds_them(tmp_path: Path) -> None:
    """A reading and a write after it sharing one commit: the reading's deferred row is written
    before that write runs, so a stop's latest energy counts it."""
    store = Store(tmp_path)
    try:
        txn = await store.write(begin, "a", START)
        gate = threading.Event()
        latest: list[float | None] = []

        async def stop() -> None:
            latest.append(await store.write(lambda conn: txq.latest_wh(conn, txq.get(conn, txn))))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.on_writer, lambda conn: gate.wait(10))  # the writer busy meanwhile
            await wait_all_tasks_blocked()
            nursery.start_soon(lambda: store.write(txq.add_meter_values, CHARGER, 1, txn,
                                                   [(START, four_values(1700))], 1700.0, telemetry=True))
            await wait_all_tasks_blocked()
            nursery.start_soon(stop)
            await wait_all_tasks_blocked()
            gate.set()
        assert latest == [1700.0]
    finally:
        store.close()
