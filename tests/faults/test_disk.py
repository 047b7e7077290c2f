"""SQLite refusing writes (disk full, read-only): the controller stays up, answers chargers as
well as it can, reports 503 on /healthz, and recovers when the disk does, without a restart.

How the faults are made, so that SQLite itself fails, as root (CI) and as an ordinary user:

- Disk full: `PRAGMA max_page_count` on the controller's write connection, set to the file's
  current size. SQLite then answers SQLITE_FULL ("database or disk is full") for every write
  that needs another page, exactly as when the disk has no space left. A small filesystem would
  need mount privileges, which a CI container usually lacks.
- Read-only: `PRAGMA query_only = 1` on the write connection (SQLITE_READONLY, "attempt to write
  a readonly database", as SQLite answers for a read-only file or filesystem). File permissions
  cannot do it: root ignores them, and even for other users the controller's connection keeps
  the file descriptors it opened read-write; only a read-only remount would, which needs
  privileges too.

Both go through `Store.on_writer`, which runs between two group commits on the write connection.
Everything else is real: the site, its SQLite file, the charger's WebSocket and the HTTP API.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import trio
from trio.testing import MockClock

from controller.site import Site
from controller.store import Store
from controller.store import id_tags as id_tag_queries
from controller.store.db import StorageUnavailable
from controller.store.transactions import add_meter_values, create_pending
from tests.public_charging.helpers import charger as public_charger
from tests.public_charging.helpers import make_config as public_config
from tests.public_charging.helpers import public_site
from tests.support import CHARGER, CHARGER_2, RawCharger, api_client, eventually, make_config, raw_charger, running_site


def start(n: int, connector: int = 1) -> dict:
    """A distinct StartTransaction (a charger retrying sends the very same payload again)."""
    return {"connectorId": connector, "idTag": f"TAG{n:04d}", "meterStart": 1000 + n,
            "timestamp": f"2024-05-01T10:{n // 60 % 60:02d}:{n % 60:02d}Z"}


def meter_values(transaction_id: int, energy_wh: int, samples: int = 1) -> dict:
    """MeterValues; with many samples the row is larger than a page, so it needs new pages."""
    sampled = [{"value": str(energy_wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
    sampled += [{"value": f"{230 + i % 10}.{i:04d}", "measurand": "Voltage", "phase": "L1-N", "unit": "V"}
                for i in range(samples - 1)]
    return {"connectorId": 1, "transactionId": transaction_id,
            "meterValue": [{"timestamp": "2024-05-01T11:00:00Z", "sampledValue": sampled}]}


def assert_internal_error(reply: list) -> None:
    """Not stored must not look stored: a CALLERROR, so the charger keeps the message and retries."""
    assert reply[0] == 4 and reply[2] == "InternalError", reply


async def accepted_start(cp: RawCharger, n: int, connector: int = 1) -> int:
    reply = await cp.call("StartTransaction", start(n, connector))
    assert reply[0] == 3, reply
    return reply[2]["transactionId"]


async def database_check(api: httpx.AsyncClient) -> tuple[int, dict]:
    response = await api.get("/healthz")
    return response.status_code, response.json()["checks"]["database"]


async def stored_transactions(api: httpx.AsyncClient) -> list[int]:
    response = await api.get("/api/v1/transactions", params={"chargeBoxId": CHARGER, "limit": 1000})
    assert response.status_code == 200, response.text
    return sorted(t["transactionId"] for t in response.json()["transactions"])


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    # remote_start_timeout_s: the background expiry of an overdue remote start writes every 0.1 s,
    # so a background task that dies on a refused write would take the site down during the test.
    config = make_config(tmp_path, accept_unknown_id_tags=True, remote_start_timeout_s=0.4)
    async with running_site(config) as running:
        yield running


@pytest.fixture
async def api(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(site) as client:
        yield client


async def test_read_only_database(site: Site, api: httpx.AsyncClient) -> None:
    """Every write is refused: chargers get InternalError (and retry later), heartbeats still
    work, the API answers 503 on writes and still reads, /healthz is 503 naming the database;
    once writable again the retries are stored and nothing acknowledged before was lost."""
    async with raw_charger(site, CHARGER) as cp:
        assert (await cp.boot())["status"] == "Accepted"
        before = await accepted_start(cp, 1)
        assert (await cp.call("MeterValues", meter_values(before, 1500)))[0] == 3

        # A remote start to the other charger that never begins: its expiry will write in the background.
        await site.store.write(create_pending, CHARGER_2, 1, "NEVER", "api")
        await site.store.on_writer(lambda conn: conn.execute("PRAGMA query_only = 1"))
        try:
            assert_internal_error(await cp.call("StartTransaction", start(2, connector=2)))
            assert_internal_error(await cp.call("MeterValues", meter_values(before, 2500)))
            assert_internal_error(await cp.call("StatusNotification", {
                "connectorId": 2, "status": "Preparing", "errorCode": "NoError"}))
            heartbeat = await cp.call("Heartbeat", {})
            assert heartbeat[0] == 3 and "currentTime" in heartbeat[2]

            status, check = await database_check(api)
            assert status == 503 and check["status"] == "failing", check
            assert "readonly" in check["error"] and check["error"].startswith("database"), check
            assert check["lastWriteErrorAt"]

            refused = await api.put("/api/v1/id-tags/NEWCARD", json={"status": "Accepted"})
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"] == "DatabaseUnavailable" and refused.headers["Retry-After"]
            assert (await api.get("/api/v1/id-tags/NEWCARD")).status_code == 404  # not half applied
            assert (await api.get(f"/api/v1/transactions/{before}")).status_code == 200  # reads work
            assert (await api.get("/api/v1/chargers")).status_code == 200
            # The background expiry of remote starts runs into the fault too, and the site stays up.
            seen = site.store.write_failure.at
            await eventually(lambda: site.store.write_failure.at > seen, what="a background write refused")
            assert (await database_check(api))[0] == 503
        finally:
            await site.store.on_writer(lambda conn: conn.execute("PRAGMA query_only = 0"))

        # No restart, and no charger write needed: the health probe finds the disk writable.
        status, check = await database_check(api)
        assert status == 200 and check["status"] == "ok" and "error" not in check, check
        retried = await accepted_start(cp, 2, connector=2)  # the charger's retry of the refused start
        assert retried != before
        assert await accepted_start(cp, 2, connector=2) == retried  # and a second retry is the same charge
        assert (await cp.call("MeterValues", meter_values(before, 2500)))[0] == 3
        await cp.status(2, "Preparing")
        assert (await api.put("/api/v1/id-tags/NEWCARD", json={"status": "Accepted"})).status_code == 200

    assert await stored_transactions(api) == [before, retried]
    detail = (await api.get(f"/api/v1/transactions/{before}")).json()
    assert (detail["meterStart"], detail["energyDelivered"]) == (1001, 1.499)  # 2500 - 1001 Wh
    assert (await api.get("/healthz")).status_code == 200


async def test_disk_full(site: Site, api: httpx.AsyncClient) -> None:
    """The disk fills up under a busy charger: the start that no longer fits is refused with
    InternalError, every start acknowledged before is kept, heartbeats still work, /healthz is 503
    until space is back, and then the charger's retries are stored without a restart."""
    async with raw_charger(site, CHARGER) as cp:
        assert (await cp.boot())["status"] == "Accepted"
        # on connector 2: the charges that fill the disk start one after another on connector 1
        acknowledged = [await accepted_start(cp, 0, connector=2)]

        def fill_up(conn: sqlite3.Connection) -> int:
            original = conn.execute("PRAGMA max_page_count").fetchone()[0]
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")  # no room to grow beyond this
            return original

        original_limit = await site.store.on_writer(fill_up)
        try:
            for n in range(1, 1000):  # the pages fill with charges until one does not fit
                reply = await cp.call("StartTransaction", start(n))
                if reply[0] != 3:
                    break
                acknowledged.append(reply[2]["transactionId"])
            else:
                pytest.fail("the database never filled up")
            refused = n
            assert_internal_error(reply)
            assert_internal_error(await cp.call("MeterValues", meter_values(acknowledged[0], 5000, samples=300)))
            assert (await cp.call("Heartbeat", {}))[0] == 3

            status, check = await database_check(api)
            assert status == 503 and "full" in check["error"], check
            assert await stored_transactions(api) == sorted(acknowledged)  # nothing acknowledged lost
        finally:
            await site.store.on_writer(lambda conn: conn.execute(f"PRAGMA max_page_count = {original_limit}"))

        # The charger retries what was refused; both are stored now.
        retried = await accepted_start(cp, refused)
        assert (await cp.call("MeterValues", meter_values(acknowledged[0], 5000, samples=300)))[0] == 3
        assert (await database_check(api))[0] == 200

    assert await stored_transactions(api) == sorted([*acknowledged, retried])
    assert (await api.get(f"/api/v1/transactions/{acknowledged[0]}")).json()["energyDelivered"] == 4.0


async def test_a_write_that_does_not_fit_does_not_take_the_others_with_it(tmp_path: Path) -> None:
    """Writes that share a group commit: when one of them fills the disk, SQLite rolls back the
    whole transaction; the others are retried on their own and stored, the big one fails alone,
    and the writer keeps working after it."""
    store = Store(tmp_path)
    try:
        pages = await store.on_writer(lambda conn: conn.execute("PRAGMA page_count").fetchone()[0])
        original = await store.on_writer(lambda conn: conn.execute("PRAGMA max_page_count").fetchone()[0])
        await store.on_writer(lambda conn: conn.execute(f"PRAGMA max_page_count = {pages}"))
        gate = threading.Event()
        outcomes: dict[str, object] = {}

        async def write(name: str, fn: Callable[..., object], *args: object) -> None:
            try:
                outcomes[name] = await store.write(fn, *args)
            except Exception as exc:
                outcomes[name] = exc

        big = [("2024-05-01T11:00:00Z", [{"value": "x" * 50_000}])]  # needs overflow pages: does not fit
        async with trio.open_nursery() as nursery:
            # The first write holds the writer thread, so the next two queue up and share a commit.
            nursery.start_soon(write, "gate", lambda conn: gate.wait(10))
            await eventually(lambda: store.committing, what="first commit running")
            nursery.start_soon(write, "small", id_tag_queries.put_id_tag, "SMALL", "Accepted", None, None)
            nursery.start_soon(write, "big", add_meter_values, CHARGER, 1, None, big, None)
            await eventually(lambda: store.queued == 2, what="two writes queued behind it")
            gate.set()

        assert outcomes["gate"] is True and outcomes["small"] is None, outcomes
        assert isinstance(outcomes["big"], StorageUnavailable), outcomes
        assert "full" in str(outcomes["big"])
        assert store.write_failure is not None and "full" in store.write_failure.error
        tags = await store.read(lambda conn: [r[0] for r in conn.execute("SELECT id_tag FROM id_tags")])
        assert tags == ["SMALL"]  # the small write survived the failed group commit
        assert await store.read(lambda conn: conn.execute("SELECT count(*) FROM meter_values").fetchone()[0]) == 0

        await store.on_writer(lambda conn: conn.execute(f"PRAGMA max_page_count = {original}"))
        await store.write(add_meter_values, CHARGER, 1, None, big, None)  # fits now
        assert store.write_failure is None  # a commit that stored something clears the failure
    finally:
        store.close()


@pytest.fixture
def clock() -> MockClock:
    """Time flows normally; the public-charging test jumps it past the session timers."""
    return MockClock(rate=1.0)


async def test_a_public_session_timer_waits_for_the_disk(tmp_path: Path, clock: MockClock) -> None:
    """A paid session's start timeout fires while the database is read-only: the site stays up,
    and the session is abandoned (its hold released) once the disk takes writes again."""
    config = public_config(tmp_path, start_timeout_s=10)
    async with public_site(config) as h, public_charger(h.site):
        token, _ = await h.create(1)
        assert (await h.session(token))["status"] == "authorized"
        await h.site.store.on_writer(lambda conn: conn.execute("PRAGMA query_only = 1"))
        try:
            await h.jump(clock, 11)
            await eventually(lambda: h.site.store.write_failure is not None, what="the timer's write refused")
            assert (await h.admin.get("/healthz")).status_code == 503  # up, and saying what is wrong
            assert (await h.session(token))["status"] == "authorized"
        finally:
            await h.site.store.on_writer(lambda conn: conn.execute("PRAGMA query_only = 0"))
        await h.jump(clock, 10)
        assert (await h.wait_status(token, "abandoned"))["failure_reason"] == "charging_not_started"
