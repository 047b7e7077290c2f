"""kill -9 of the controller (a real subprocess) with events pending and with one in flight.

After a restart every event arrives, in order per charger; a duplicate is only ever a resend
with the same X-Evedge-Event-Id.
"""

from __future__ import annotations

import trio

from controller.simulators.charger_process import SimulatedCharger
from tests.faults.process import (
    assert_complete_and_in_order, controller, site_config, stored_order,
    wait_outbox_drained,
)
from tests.support import CHARGER, CHARGER_2
from tests.upstream.receiver import HANG, Receiver


async def charge(sim: SimulatedCharger, tag: str, meter: int) -> None:
    """One charge: statuses, StartTransaction, StopTransaction (each answered only once stored)."""
    await sim.status(1, "Preparing")
    await sim.start(connector=1, idTag=tag, meterStart=meter)
    await sim.status(1, "Charging")
    await sim.stop(connector=1, meterStop=meter + 1500)
    await sim.status(1, "Available")


async def test_kill_9_with_events_pending(tmp_path, receiver: Receiver, nursery: trio.Nursery) -> None:
    receiver.down()
    config = site_config(tmp_path, receiver)
    async with controller(config) as ctl:
        async with trio.open_nursery() as chargers:
            for charger_id, tag in ((CHARGER, "TAG-A"), (CHARGER_2, "TAG-B")):
                async def run(charger_id: str = charger_id, tag: str = tag) -> None:
                    sim = await SimulatedCharger.start(nursery, ctl.url(charger_id), connectors=2)
                    await sim.boot()
                    for n in range(2):
                        await charge(sim, tag, n * 10_000)
                chargers.start_soon(run)
        queue = await ctl.api("/api/v1/notifications/queue")
        assert queue["pending"] == 2 * (1 + 2 * 5) and queue["delivered"] == 0
        orders = {c: await stored_order(ctl, c) for c in (CHARGER, CHARGER_2)}
        await ctl.kill9()
    await receiver.up()
    async with controller(config) as ctl:
        await wait_outbox_drained(ctl)
        assert {c: await stored_order(ctl, c) for c in orders} == orders
    assert_complete_and_in_order(receiver, orders)
    types = [r.json["type"] for r in receiver.requests if r.json["chargebox"] == CHARGER]
    assert types == ["connection"] + ["status", "start", "status", "stop_transaction", "status"] * 2


async def test_kill_9_while_an_event_is_being_delivered(tmp_path, receiver: Receiver,
                                                         nursery: trio.Nursery) -> None:
    receiver.plan(HANG)  # the first request is read, never answered: the controller dies waiting
    config = site_config(tmp_path, receiver)
    async with controller(config) as ctl:
        sim = await SimulatedCharger.start(nursery, ctl.url(CHARGER), connectors=2)
        await sim.boot()
        await charge(sim, "TAG-A", 0)
        await receiver.wait_count(1, timeout=20)
        in_flight = receiver.requests[0]
        order = await stored_order(ctl, CHARGER)
        await ctl.kill9()
        await sim.aclose()
    assert len(receiver.requests) == 1 and in_flight.event_id == order[0]
    async with controller(config) as ctl:
        with trio.fail_after(30):
            await receiver.wait_for(lambda r: {x.event_id for x in receiver.delivered()} >= set(order))
        await wait_outbox_drained(ctl)
    assert_complete_and_in_order(receiver, {CHARGER: order})
    resent = [r for r in receiver.requests if r.event_id == in_flight.event_id]
    assert len(resent) == 2 and resent[1].headers["x-evedge-attempt"] == "1"  # never recorded as tried
