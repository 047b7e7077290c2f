"""A clock that went back (a Pi without a real-time clock after a power cut): detected from the
books and the kernel's state, reported in /healthz, and never pushed to chargers as their time."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import trio

from controller.clock import KERNEL_GRACE_S, judge
from controller.site import Site
from controller.store.db import DB_FILE
from controller.timefmt import iso, parse_iso
from tests.support import CHARGER, api_client, make_config, raw_charger, running_site

NOW = parse_iso("2026-02-01T12:00:00Z")


def test_judge_the_clock_from_the_books_and_the_kernel():
    later = NOW + timedelta(days=2)
    behind = judge(NOW, later, kernel_synchronized=None, running_s=0)
    assert not behind.trusted and "behind the newest record" in behind.reason and behind.newest_record == later
    assert not judge(NOW, later, kernel_synchronized=False, running_s=0).trusted
    # a synchronised kernel wins: the records were stamped by a clock that was ahead once
    trusted = judge(NOW, later, kernel_synchronized=True, running_s=0)
    assert trusted.trusted and trusted.reason is None
    assert judge(NOW, NOW + timedelta(seconds=30), None, 0).reason is None  # jitter, not a clock gone back
    assert judge(NOW, NOW - timedelta(days=1), None, 0).reason is None
    # the kernel unsynchronised: reported once NTP has had its time, the clock still used
    assert judge(NOW, None, False, KERNEL_GRACE_S - 1).reason is None
    unsynced = judge(NOW, None, False, KERNEL_GRACE_S)
    assert unsynced.trusted and "not synchronised" in unsynced.reason


async def _unknown_kernel() -> bool | None:
    return None  # as under a unit that forbids adjtimex, on a machine without timedatectl


async def test_books_ahead_of_the_clock_degrade_health_and_chargers_get_the_books_time(tmp_path):
    config = make_config(tmp_path)
    async with running_site(config) as site, raw_charger(site, CHARGER) as cp:
        await cp.boot()
    # the books now hold records two days ahead of the clock: the clock went back by two days
    with sqlite3.connect(config.data_dir / DB_FILE) as db:
        (booted,) = db.execute("SELECT last_boot FROM chargers WHERE id = ?", (CHARGER,)).fetchone()
        future = iso(parse_iso(booted) + timedelta(days=2))
        db.execute("UPDATE chargers SET last_heartbeat = ?", (future,))

    site = Site(config)
    site.clock.kernel = _unknown_kernel
    async with trio.open_nursery() as nursery:
        await nursery.start(site.run)
        try:
            async with api_client(site) as api, raw_charger(site, CHARGER) as cp:
                health = (await api.get("/healthz")).json()
                clock = health["checks"]["clock"]
                assert health["status"] == "degraded" and clock["status"] == "degraded"
                assert "behind the newest record" in clock["error"] and future in clock["error"]
                told = (await cp.boot())["currentTime"]
                assert told >= future  # the newest trustworthy time, not the clock's
                reply = await cp.call("Heartbeat", {})
                assert reply[2]["currentTime"] >= told
                # the books keep the clock's own stamps meanwhile; they do not move the time told back
                await site.clock.check()
                assert (await cp.call("Heartbeat", {}))[2]["currentTime"] >= told

                async def synchronised() -> bool:
                    return True

                site.clock.kernel = synchronised  # NTP reached: the clock is right, the books were ahead
                await site.clock.check()
                assert (await cp.call("Heartbeat", {}))[2]["currentTime"] < future
                health = (await api.get("/healthz")).json()
                assert health["checks"]["clock"] == {"status": "ok", "synchronized": True}
        finally:
            with trio.CancelScope(shield=True):
                await site.shutdown()
