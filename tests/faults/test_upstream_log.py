"""One log line per upstream POST: ours (event, charger, status, attempt), not httpx's as well."""

from __future__ import annotations

import trio

from controller.simulators.charger_process import SimulatedCharger
from tests.faults.process import controller, site_config, wait_outbox_drained
from tests.support import CHARGER
from tests.upstream.receiver import Receiver


async def test_each_delivery_is_logged_once(tmp_path, receiver: Receiver, nursery: trio.Nursery) -> None:
    async with controller(site_config(tmp_path, receiver)) as ctl:
        sim = await SimulatedCharger.start(nursery, ctl.url(CHARGER), connectors=2)
        await sim.boot()
        await sim.status(1, "Preparing")
        await wait_outbox_drained(ctl)
        await sim.aclose()
    delivered = [line for line in ctl.log().splitlines() if "delivered " in line]
    assert len(delivered) == len(receiver.requests) >= 2, ctl.log()
    assert "HTTP Request: POST" not in ctl.log()
