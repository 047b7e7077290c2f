"""The central system's bounds on load management outlive a controller restart (read back from the
books at start) until it clears them, and those ended by then are not brought back."""

from __future__ import annotations

from controller.simulators.charger_process import SimulatedCharger
from controller.store import Store
from controller.store import upstream_caps as q
from tests.local_controller.support import call_charger, central_system, local_config
from tests.local_controller.test_commands import LOAD, _profile
from tests.support import CHARGER, eventually, ocpp_url, running_site, unique


async def test_a_bound_from_the_central_system_survives_a_restart_until_it_clears_it(tmp_path):
    async with central_system() as cs:
        config = local_config(tmp_path, cs.port, chargers='circuit = "main"\nmax_current_a = 32\n', extra=LOAD)
        async with running_site(config) as site, SimulatedCharger.open(ocpp_url(site, CHARGER)) as sim:
            await sim.boot()
            await cs.next_event(event="connected", charger=CHARGER)
            reply = await call_charger(cs, CHARGER, "SetChargingProfile", _profile(1, 10))
            assert reply["result"] == {"status": "Accepted"}

        # the controller restarts; the central system does not send its profile again
        async with running_site(config) as site, SimulatedCharger.open(ocpp_url(site, CHARGER)) as sim:
            await sim.boot()
            await sim.status(1, "Preparing")
            await sim.start_transaction(1, unique())
            await eventually(lambda: sim.limits.get(1) == 10, what="the central system's 10 A, kept")
            await cs.next_event(event="connected", charger=CHARGER)
            cleared = await call_charger(cs, CHARGER, "ClearChargingProfile", {"id": 1})
            assert cleared["result"] == {"status": "Accepted"}
            await eventually(lambda: sim.limits.get(1) == 16, what="the circuit's 16 A")

        async with running_site(config) as site, SimulatedCharger.open(ocpp_url(site, CHARGER)) as sim:
            await sim.boot()
            await sim.status(1, "Preparing")
            await sim.start_transaction(1, unique())
            await eventually(lambda: sim.limits.get(1) == 16, what="the circuit's 16 A: the clear was kept too")


async def test_bounds_that_ended_are_not_brought_back(tmp_path):
    store = Store(tmp_path)
    try:
        start = "2026-01-01T00:00:00.000Z"
        await store.write(q.put_cap, "CP-1", 0, 1, start, [(0.0, 10.0)], None)  # until cleared
        await store.write(q.put_cap, "CP-1", 1, 2, start, [(0.0, 6.0)], "2026-01-01T01:00:00.000Z")  # validTo passed
        await store.write(q.put_cap, "CP-1", 1, 3, start, [(0.0, 8.0), (600.0, 12.0)], "2026-12-31T00:00:00.000Z")
        now = "2026-06-01T00:00:00.000Z"
        in_force = await store.write(q.in_force, now)
        assert [(r["profile_id"], r["periods"]) for r in in_force] == [(1, [(0.0, 10.0)]),
                                                                       (3, [(0.0, 8.0), (600.0, 12.0)])]
        assert len(await store.write(q.in_force, now)) == 2  # the ended one is gone from the books
        assert await store.write(q.delete_caps, "CP-1", 1, None) == 1
        assert [r["profile_id"] for r in await store.write(q.in_force, now)] == [1]
    finally:
        store.close()
