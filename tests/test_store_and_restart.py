"""Storage: SQLite WAL, versioned migrations, durable answers, and a controller restart mid-charge."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import trio
import trio.testing

from controller.simulators.charger_process import SimulatedCharger
from controller.store import Store
from controller.store import id_tags
from controller.store.db import DB_FILE
from controller.store.schema import MIGRATIONS
from tests.support import CHARGER, api_client, eventually, make_config, ocpp_url, raw_charger, running_site


def test_fresh_database_is_wal_and_migrated(tmp_path):
    store = Store(tmp_path)
    try:
        assert store.version == len(MIGRATIONS)
    finally:
        store.close()
    conn = sqlite3.connect(tmp_path / DB_FILE)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"chargers", "connectors", "id_tags", "transactions", "meter_values", "outbox"} <= tables
    finally:
        conn.close()
    # reopening does not run the migrations again
    Store(tmp_path).close()


def test_newer_database_is_refused(tmp_path):
    Store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / DB_FILE)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        Store(tmp_path)


async def test_a_writer_cancelled_while_its_write_is_on_disk_sees_it_stored_then_the_cancellation(tmp_path):
    """A write the writer thread has started is never undone by its caller's cancellation: the
    caller stays until the write is durable, then the cancellation goes on (a shutdown never
    leaves half of what a charger sent, and never says "not stored" of a stored write)."""
    store = Store(tmp_path)
    started, release = threading.Event(), threading.Event()
    scope = trio.CancelScope()
    returned_while_held: list[bool] = []

    def held(conn: sqlite3.Connection) -> None:
        id_tags.put_id_tag(conn, "A", "Accepted", None, None)
        started.set()
        release.wait()

    async def cancelled_writer() -> None:
        with scope:
            try:
                await store.write(held)
            finally:
                returned_while_held.append(not release.is_set())

    try:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancelled_writer)
                await trio.to_thread.run_sync(started.wait)
                scope.cancel()  # the write is in the writer thread now
                await trio.testing.wait_all_tasks_blocked()
                assert returned_while_held == []  # still waiting for its write
                release.set()
        assert scope.cancelled_caught and returned_while_held == [False]
        assert [r["id_tag"] for r in await store.read(id_tags.all_id_tags)] == ["A"]
    finally:
        release.set()
        store.close()


@pytest.mark.parametrize("attempt", range(8))  # whether the writer thread took A before the cancel is chance
async def test_a_writer_cancelled_as_the_next_batch_starts_leaves_no_write_behind(tmp_path, attempt):
    """Two writers wait behind a commit; one is cancelled just as that commit ends, when the writer
    thread takes the next batch. Its write is either withdrawn (it sees the cancellation, nothing
    stored) or stored, never half; the other writer's write is stored and it returns: no write is
    left out of the queue and out of every batch."""
    scope = trio.CancelScope()
    store = Store(tmp_path, after_write=scope.cancel)  # runs as the first commit ends: both are waiting
    release = threading.Event()

    def held(conn: sqlite3.Connection) -> None:
        release.wait()

    async def cancelled_writer() -> None:
        with scope:
            await store.write(id_tags.put_id_tag, "A", "Accepted", None, None)

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store.write, held)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(cancelled_writer)
            await trio.testing.wait_all_tasks_blocked()
            with trio.fail_after(10):
                async with trio.open_nursery() as second:
                    second.start_soon(store.write, id_tags.put_id_tag, "B", "Accepted", None, None)
                    await trio.testing.wait_all_tasks_blocked()
                    release.set()
        stored = sorted(r["id_tag"] for r in await store.read(id_tags.all_id_tags))
        assert stored == ["A", "B"] or (stored == ["B"] and scope.cancelled_caught)
    finally:
        release.set()
        store.close()


async def test_start_and_stop_are_on_disk_before_they_are_answered(site):
    path = site.store.path

    def row(transaction_id):
        conn = sqlite3.connect(path)
        try:
            return conn.execute("SELECT status, meter_stop FROM transactions WHERE id = ?", (transaction_id,)).fetchone()
        finally:
            conn.close()

    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0,
                                                     "timestamp": "2026-02-06T12:00:00Z"})
        tx = started[2]["transactionId"]
        assert row(tx) == ("active", None)
        await cp.call("StopTransaction", {"transactionId": tx, "meterStop": 900, "timestamp": "2026-02-06T12:01:00Z"})
        assert row(tx) == ("completed", 900)


async def test_restart_with_a_transaction_in_progress(tmp_path, nursery):
    config = make_config(tmp_path)
    async with running_site(config) as site:
        sim = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER))
        await sim.boot()
        await sim.status(1, "Preparing")
        await sim.meter(1, energyWh=2000)
        async with api_client(site) as api:
            response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "U1"})
            assert response.status_code == 202, response.text
            tx = response.json()["transactionId"]
            await sim.next_event("sent", action="StartTransaction")
            await sim.meter(1, energyWh=3500, powerW=11000)
    # the controller went away: the charger was told so (1001, going away)
    closed = await sim.next_event("closed")
    assert closed["code"] == 1001 and closed["by"] == "server"

    async with running_site(config) as site, api_client(site) as api:
        detail = (await api.get(f"/api/v1/transactions/{tx}")).json()
        assert detail["status"] == "active" and detail["meterStart"] == 2000
        assert detail["energyDelivered"] == 1.5  # the last meter value before the restart
        charger = (await api.get(f"/api/v1/chargers/{CHARGER}")).json()
        assert charger["online"] is False and charger["connectors"][1]["energyWh"] == 3500
        await sim.cmd("reconnect", url=ocpp_url(site, CHARGER))
        await eventually(lambda: site.chargers.get(CHARGER).online, what="charger back online")
        await sim.boot()
        await sim.stop(1, meterStop=9000, reason="Local")
        detail = (await api.get(f"/api/v1/transactions/{tx}")).json()
        assert detail["status"] == "completed"
        assert (detail["meterStart"], detail["meterStop"], detail["energyDelivered"]) == (2000, 9000, 7.0)
        assert detail["remoteStarted"] is True and detail["stopReason"] == "Local"
        listing = (await api.get("/api/v1/transactions")).json()
        assert listing["pagination"]["total"] == 1
    await sim.aclose()


async def test_shutdown_closes_chargers_and_stops_quickly(tmp_path):
    config = make_config(tmp_path)
    async with running_site(config) as site:
        async with raw_charger(site, CHARGER) as cp:
            await cp.boot()
            with trio.fail_after(10):
                await site.shutdown()
            with pytest.raises(Exception):
                await cp.receive()
            assert cp.ws.closed.code == 1001
