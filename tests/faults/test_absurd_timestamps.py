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


async def test_starts_stamped_1970_year_1_or_2099_are_booked_flagged_and_last_minutes_not_years(site, api):
    """A charger whose clock is gone wrong still charges and is billed; its charge is flagged, and
    its duration comes from our own clock, not from 1970."""
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        for stamp in ("1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "2099-01-01T00:00:00Z"):
            start = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 1000,
                                                       "timestamp": stamp})
            transaction_id = start[2]["transactionId"]
            detail = (await api.get(f"/api/v1/transactions/{transaction_id}")).json()
            assert detail["startTime"].startswith(stamp[:4])  # booked as the charger sent it
            assert detail["clockSuspect"] is True
            assert detail["durationMinutes"] == 0
            stop = await cp.call("StopTransaction", {"transactionId": transaction_id, "meterStop": 3000,
                                                     "timestamp": stamp.replace("00:00:00", "00:30:00")})
            assert stop[0] == 3
            detail = (await api.get(f"/api/v1/transactions/{transaction_id}")).json()
            assert detail["status"] == "completed" and detail["clockSuspect"] is True
            assert detail["durationMinutes"] == 0 and detail["energyDelivered"] == 2.0


async def test_a_start_stamped_now_is_not_flagged(site, api):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        start = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "T1", "meterStart": 0,
                                                   "timestamp": now_iso()})
        detail = (await api.get(f"/api/v1/transactions/{start[2]['transactionId']}")).json()
        assert detail["clockSuspect"] is False
