"""A wall clock that steps (a Pi without a real-time clock getting NTP) moves no timeout.

With the clock stepped three years forward, a pending remote start failed after 29 s instead of
180 s, the charger then got another transaction id than the one the API had returned, and a
30-second-old charge showed 1,576,800 minutes. Timeouts and ages now run on the monotonic clock.
The step is made with libfaketime in a real controller process; the MockClock test shows the other
side: the timeout runs on Trio's clock, which no wall-clock step moves.
"""

from __future__ import annotations

import glob

import pytest
import trio
from trio.testing import MockClock

from tests.faults.process import controller, raw_charger_at, site_config
from tests.support import CHARGER, api_client, eventually, make_config, raw_charger, running_site, transaction_status

LIBFAKETIME = next(iter(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")), None)
TIMEOUT_S = 20  # the remote start timeout; the expiry looks every TIMEOUT_S / 4


async def remote_start(api, cp) -> int:
    """A remote start the charger accepts; the transaction id the API returned."""
    await cp.status(1, "Preparing")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(cp.answer_next_call, {"status": "Accepted"})
        response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "U1"})
    assert response.status_code in (200, 202), response.text
    return response.json()["transactionId"]


@pytest.mark.skipif(LIBFAKETIME is None, reason="needs libfaketime (apt install faketime)")
async def test_a_clock_step_cuts_no_remote_start_and_makes_no_charge_years_long(tmp_path) -> None:
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": str(offset), "FAKETIME_NO_CACHE": "1",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    config = site_config(tmp_path, remote_start_timeout_s=TIMEOUT_S)
    async with controller(config, env=env) as ctl, ctl.client() as api, raw_charger_at(ctl.url(CHARGER)) as cp:
        await cp.boot()
        transaction_id = await remote_start(api, cp)
        offset.write_text("+1095d\n")  # NTP steps the controller's clock three years forward
        await trio.sleep(TIMEOUT_S / 4 + 2)  # the expiry has looked at least once since
        assert await transaction_status(api, transaction_id) == "pending"
        start = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "U1", "meterStart": 0,
                                                   "timestamp": "2026-12-02T00:00:00Z"})
        assert start[2]["transactionId"] == transaction_id  # the id the API returned
        detail = (await api.get(f"/api/v1/transactions/{transaction_id}")).json()
        assert detail["status"] == "active" and detail["durationMinutes"] == 0  # seconds old, not years


@pytest.fixture
def clock() -> MockClock:
    """Time flows normally; the test jumps it past the timeout."""
    return MockClock(rate=1.0)


async def test_a_pending_remote_start_expires_on_the_monotonic_clock(tmp_path, clock: MockClock) -> None:
    """Trio's clock runs the timeout: it passes here while the wall clock barely moves."""
    async with running_site(make_config(tmp_path, remote_start_timeout_s=TIMEOUT_S)) as site, \
            api_client(site) as api, raw_charger(site, CHARGER) as cp:
        await cp.boot()
        transaction_id = await remote_start(api, cp)
        clock.jump(TIMEOUT_S * 0.6)
        await trio.sleep(0.5)  # the expiry's look at the jumped clock
        assert await transaction_status(api, transaction_id) == "pending"
        clock.jump(TIMEOUT_S)

        async def failed() -> bool:
            return await transaction_status(api, transaction_id) == "failed"

        await eventually(failed, what="the start expired")


@pytest.mark.skipif(LIBFAKETIME is None, reason="needs libfaketime (apt install faketime)")
async def test_a_clock_step_does_not_age_the_upstream_backlog(tmp_path) -> None:
    """The oldest undelivered notification's age (/healthz, the notifications queue) is monotonic:
    queued before a step of three years, it is still seconds old after it, not three years (which
    made /healthz call the upstream degraded), also after a restart (an event from before the start
    counts from the start)."""
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME_TIMESTAMP_FILE": str(offset), "FAKETIME_NO_CACHE": "1",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    unreachable = '[upstream]\nconnection_url = "http://127.0.0.1:9/connection"\nretry_initial_s = 600\n'
    config = site_config(tmp_path, extra=unreachable)
    async with controller(config, env=env) as ctl, ctl.client() as api:
        async with raw_charger_at(ctl.url(CHARGER)) as cp:  # queues a connection event, never delivered
            await cp.boot()
        offset.write_text("+1095d\n")  # NTP steps the controller's clock three years forward
        await trio.sleep(2)
        health = (await api.get("/healthz")).json()["checks"]["upstream"]
        queue = (await api.get("/api/v1/notifications/queue")).json()
        assert health["outboxPending"] >= 1 and health["status"] == "ok", health
        assert 1 <= health["oldestPendingAgeS"] < 900, health
        assert 1 <= queue["oldestPendingAgeSeconds"] < 900, queue
    async with controller(config, env=env) as ctl, ctl.client() as api:  # restarted after the step
        health = (await api.get("/healthz")).json()["checks"]["upstream"]
        assert health["status"] == "ok" and health["oldestPendingAgeS"] < 900, health  # since the start
