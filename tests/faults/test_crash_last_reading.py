"""kill -9 in the middle of a charge: the books keep its last reading.

A MeterValues stores its reading and nothing else (the transaction's row is brought up to date at
the stop and when the books are opened), so after a crash the restarted controller must still show
the energy of the last answered reading, and a charge it has to close itself (the charger started
another on the connector, its stop never came) must end on that reading.
"""

from __future__ import annotations

import trio

from tests.faults.process import controller, open_books, raw_charger_at, site_config

CHARGER = "CP-CRASH"
START_WH = 1_000
READINGS_WH = (1_500, 2_300, 3_100)


def meter_values(transaction_id: int, second: int, wh: int) -> dict:
    return {"connectorId": 1, "transactionId": transaction_id, "meterValue": [{
        "timestamp": f"2026-03-01T10:00:{second:02d}Z",
        "sampledValue": [{"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]}


async def test_after_kill_9_mid_charge_the_books_recover_its_last_reading(tmp_path) -> None:
    config = site_config(tmp_path)
    async with controller(config) as ctl:
        async with raw_charger_at(ctl.url(CHARGER)) as cp:
            await cp.boot()
            started = await cp.call("StartTransaction", {"connectorId": 1, "idTag": "TAG1", "meterStart": START_WH,
                                                         "timestamp": "2026-03-01T10:00:00Z"})
            tx = started[2]["transactionId"]
            for second, wh in enumerate(READINGS_WH, start=1):
                assert await cp.call("MeterValues", meter_values(tx, second, wh)) == [3, f"t{second + 2}", {}]
            running = await ctl.api(f"/api/v1/transactions/{tx}")
            assert running["energyDelivered"] == 2.1  # live, before any crash
            await ctl.kill9()
    with open_books(config) as db:  # every answered reading is on disk
        assert db.execute("SELECT count(*) FROM meter_values WHERE transaction_id = ?", (tx,)).fetchone()[0] == 3

    async with controller(config) as ctl:
        recovered = await ctl.api(f"/api/v1/transactions/{tx}")
        assert recovered["status"] == "active" and recovered["energyDelivered"] == 2.1
        async with raw_charger_at(ctl.url(CHARGER)) as cp:
            await cp.boot()
            with trio.fail_after(10):  # its stop was lost: a new charge on the connector closes the old one
                await cp.call("StartTransaction", {"connectorId": 1, "idTag": "TAG2", "meterStart": 3_200,
                                                   "timestamp": "2026-03-01T10:05:00Z"})
        closed = await ctl.api(f"/api/v1/transactions/{tx}")
        assert closed["status"] == "completed" and closed["meterStop"] == READINGS_WH[-1]
        assert closed["energyDelivered"] == 2.1
