"""Readings wait a little to share a commit on a quiet site (store/db.py READINGS_WINDOW_S), and
nothing else waits for them: a start is committed and answered at once, and a reading is on disk
before its answer, whichever commit took it."""

from __future__ import annotations

import sqlite3

import trio

from controller.store import Store
from controller.store import db
from controller.store.db import DB_FILE
from controller.store.transactions import add_meter_values, create_pending
from tests.support import CHARGER, CHARGER_2, make_config, raw_charger, running_site

LONG_S = 60.0  # a window far longer than any of these tests may take
AT = "2026-02-06T12:00:00Z"
READING = [(AT, [{"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}])]


def stored(path, sql: str) -> int:
    """A count read by a connection of its own (what a new process would find on disk)."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


async def test_a_start_is_not_held_back_by_a_reading_waiting_for_company(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(db, "READINGS_WINDOW_S", LONG_S)
    store = Store(tmp_path)
    try:
        reading_done = trio.Event()

        async def reading() -> None:
            await store.write(add_meter_values, CHARGER, 1, None, READING, None, telemetry=True)
            reading_done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reading)
            await trio.sleep(0.3)
            assert not reading_done.is_set() and store.queued == 1  # held: alone, in the window
            with trio.fail_after(10):  # not the window's 60 s
                pending = await store.write(create_pending, CHARGER, 1, "TAG", "api")
                await reading_done.wait()  # ... and the reading went with it
        assert stored(store.path, f"SELECT count(*) FROM transactions WHERE id = {pending}") == 1
        assert stored(store.path, "SELECT count(*) FROM meter_values") == 1
    finally:
        store.close()


async def test_a_reading_alone_is_on_disk_when_its_write_returns(tmp_path) -> None:
    store = Store(tmp_path)
    try:
        with trio.fail_after(10):
            await store.write(add_meter_values, CHARGER, 1, None, READING, None, telemetry=True)
        assert stored(store.path, "SELECT count(*) FROM meter_values") == 1
    finally:
        store.close()


async def test_over_ocpp_a_start_is_answered_while_a_reading_waits_and_the_reading_is_stored_when_answered(
        tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(db, "READINGS_WINDOW_S", LONG_S)
    config = make_config(tmp_path)
    async with running_site(config) as site, raw_charger(site, CHARGER) as metering, \
            raw_charger(site, CHARGER_2) as starting:
        path = site.store.path.parent / DB_FILE
        await metering.boot()
        await starting.boot()
        await trio.sleep(0.5)  # the boots' writes are over: a quiet site
        await metering.send([2, "m1", "MeterValues", {"connectorId": 1, "meterValue": [
            {"timestamp": AT, "sampledValue": [{"value": "1500", "measurand": "Energy.Active.Import.Register",
                                                "unit": "Wh"}]}]}])
        await trio.sleep(0.3)
        assert stored(path, "SELECT count(*) FROM meter_values") == 0  # waiting for company
        with trio.fail_after(10):
            started = await starting.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                               "timestamp": AT})
            assert started[0] == 3 and started[2]["transactionId"] > 0
            assert await metering.receive() == [3, "m1", {}]
        assert stored(path, "SELECT count(*) FROM meter_values") == 1


def test_a_charger_sending_readings_alone_is_held_back_a_few_times_not_at_each_reading() -> None:
    """One charger replaying its backlog (each reading answered before it sends the next) finds no
    company in any hold: after each lone hold the next 1, 2, 4, ... readings commit at once."""
    holds = db.HoldPolicy()
    held = []
    for n in range(40):
        if holds.hold_next():
            held.append(n)
            holds.held(company=False)
    assert held == [0, 2, 5, 10, 19, 36]

    # readings of other chargers joining a hold: every reading is held again
    holds.held(company=True)
    assert all(holds.hold_next() for _ in range(5))


def test_the_back_off_is_bounded() -> None:
    holds = db.HoldPolicy()
    for _ in range(20):
        holds.held(company=False)
    assert holds.skip == db.HOLD_BACKOFF_MAX


async def test_after_commit_hooks_run_once_the_row_can_be_read_and_never_for_a_rolled_back_write(tmp_path) -> None:
    """What tells the loop's side to look at rows just written (public charging's worker) runs
    after the commit: told before, it could look, find nothing yet, and never look again."""
    store = Store(tmp_path)
    seen: list[int] = []
    try:
        def write(conn: sqlite3.Connection, fail: bool) -> None:
            create_pending(conn, CHARGER, 1, "TAG", "api")
            store.after_commit(lambda: seen.append(stored(store.path, "SELECT count(*) FROM transactions")))
            if fail:
                raise ValueError("refused")

        await store.write(write, False)
        assert seen == [1]  # a new connection already finds the row
        try:
            await store.write(write, True)
        except ValueError:
            pass
        assert seen == [1]  # rolled back: not told
    finally:
        store.close()
