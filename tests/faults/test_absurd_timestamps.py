"""A charger's clock gone wrong must not freeze what the API shows (issue: one MeterValues stamped
2099 froze a connector's live energy until 2099, and across restarts)."""

from __future__ import annotations

from controller.timefmt import now_iso
from tests.support import CHARGER, raw_charger


def meter_values(at: str, wh: int) -> dict:
    return {"connectorId": 1, "meterValue": [{"timestamp": at, "sampledValue": [{"value": str(wh)}]}]}


async def test_a_reading_stamped_in_the_future_is_booked_but_never_hides_later_ones(site, api):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        assert (await cp.call("MeterValues", meter_values("2099-01-01T00:00:00Z", 5000)))[0] == 3
        connector = (await api.get(f"/api/v1/chargers/{CHARGER}")).json()["connectors"][1]
        assert connector["energyWh"] != 5000  # booked (below), but not shown as the live reading
        assert (await cp.call("MeterValues", meter_values(now_iso(), 6000)))[0] == 3
        connector = (await api.get(f"/api/v1/chargers/{CHARGER}")).json()["connectors"][1]
        assert connector["energyWh"] == 6000
    stored = await site.store.read(lambda conn: [r[0] for r in conn.execute(
        "SELECT timestamp FROM meter_values WHERE charger_id = ? ORDER BY id", (CHARGER,))])
    assert stored[0].startswith("2099") and len(stored) == 2  # nothing a charger sent is lost
