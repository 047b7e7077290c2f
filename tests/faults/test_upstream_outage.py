"""The upstream platform is unreachable for the whole session, then comes back.

A running controller (a real process) with simulated chargers charging while every connection to
the upstream is refused: chargers are answered as usual, events queue in the outbox and are
retried. Once the upstream listens again every event arrives, each charger's in the order it
happened, and nothing is delivered twice under different ids.
"""

from __future__ import annotations

from functools import partial

import trio

from controller.simulators.charger_process import SimulatedCharger
from tests.faults.process import (
    Controller, assert_complete_and_in_order, controller, site_config, stored_order,
    wait_outbox_drained,
)
from tests.support import CHARGER, CHARGER_2, eventually
from tests.upstream.receiver import Receiver

CHARGERS = {CHARGER: 2, CHARGER_2: 1, "SIM-C": 2}  # id -> connectors
CHARGES = 3
CHARGE_EVENTS = ["status", "start", "status", "stop_transaction", "status"]


async def charge_repeatedly(sim: SimulatedCharger, connectors: int, started: list[int]) -> None:
    """Boot, then CHARGES charges, alternating connectors; each call answered only once stored."""
    await sim.boot()
    for n in range(CHARGES):
        connector = 1 + n % connectors
        await sim.status(connector, "Preparing")
        started.append((await sim.start(connector=connector, idTag=f"TAG-{n}", meterStart=n * 5000))["transactionId"])
        await sim.status(connector, "Charging")
        await sim.meter(connector, energyWh=n * 5000 + 1200)
        await sim.stop(connector, meterStop=n * 5000 + 2400)
        await sim.status(connector, "Available")


async def retried_while_down(ctl: Controller, charger_id: str) -> bool:
    """The charger's oldest event has been tried (and refused) at least twice."""
    listing = await ctl.api("/api/v1/notifications", chargeBoxId=charger_id, limit=1000)
    oldest = min(listing["notifications"], key=lambda n: n["id"])
    return oldest["status"] == "pending" and oldest["attempts"] >= 2


async def test_upstream_down_for_the_whole_session_then_back(tmp_path, receiver: Receiver,
                                                             nursery: trio.Nursery) -> None:
    receiver.down()  # connection refused from the first event on
    config = site_config(tmp_path, receiver, upstream={"retry_initial_s": 0.05, "retry_max_s": 0.3})
    started: dict[str, list[int]] = {c: [] for c in CHARGERS}
    async with controller(config) as ctl:
        async with trio.open_nursery() as chargers:
            for charger_id, connectors in CHARGERS.items():
                async def run(charger_id: str = charger_id, connectors: int = connectors) -> None:
                    sim = await SimulatedCharger.start(nursery, ctl.url(charger_id), connectors=connectors,
                                                       timeout=30)
                    await charge_repeatedly(sim, connectors, started[charger_id])
                chargers.start_soon(run)
        for charger_id in CHARGERS:
            await eventually(partial(retried_while_down, ctl, charger_id), timeout=30,
                             what=f"{charger_id}'s events retried while the upstream is down")
        per_charger = 1 + len(CHARGE_EVENTS) * CHARGES  # + the connection event
        queue = await ctl.api("/api/v1/notifications/queue")
        assert queue["pending"] == len(CHARGERS) * per_charger and queue["delivered"] == 0, queue
        assert receiver.requests == []  # nothing got through
        orders = {c: await stored_order(ctl, c) for c in CHARGERS}

        await receiver.up()
        await wait_outbox_drained(ctl, timeout=60)
        assert {c: await stored_order(ctl, c) for c in CHARGERS} == orders  # nothing new, nothing lost

    assert_complete_and_in_order(receiver, orders)
    for charger_id in CHARGERS:
        first: dict[str, dict] = {}
        for r in receiver.requests:
            if r.json["chargebox"] == charger_id:
                first.setdefault(r.event_id, r.json)
        events = list(first.values())
        assert [e["type"] for e in events] == ["connection"] + CHARGE_EVENTS * CHARGES, charger_id
        assert [e["transaction_id"] for e in events if e["type"] == "start"] == started[charger_id]
        assert [e["transaction_id"] for e in events if e["type"] == "stop_transaction"] == started[charger_id]
