"""Public sessions (provider `none`) on an OCPP 2.0.1 station: the independent 2.0.1 simulator
answers the RequestStart/Stop. The 1.6 twins are test_pc_flows_free.py and test_pc_connector_meter.py.

A 2.0.1 station reports a plugged car as Occupied: that is when a session's charge can begin.
"""

from __future__ import annotations

from controller.config import load_config
from controller.simulators.meter import MeterServer, SimulatedMeter
from tests.public_charging.helpers import (
    CODE,
    Harness,
    charger,
    config_text,
    make_config,
    problem,
    public_site,
    transaction_started,
    wait_connector,
)
from tests.stations import V201, next_stop
from tests.support import eventually, with_connector_meter


async def _energy_is(h: Harness, token: str, kwh: str) -> bool:
    return (await h.session(token))["energy_kwh"] == kwh


async def test_captured_session_free(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site, version=V201) as sim:
        await sim.meter(1, energyWh=4000)  # the station's register before the charge
        token, body = await h.create(1, email="driver@example.com")  # not plugged in yet: it waits
        assert body["payment"] == {"provider": "none"} and body["data"]["status"] == "authorized"
        assert (await h.session(token))["status"] in ("authorized", "starting")
        assert not any(e.get("action") == "RequestStartTransaction" for e in sim.events)
        await sim.status(1, "Occupied")  # the car is plugged in
        txn = await transaction_started(sim, 1, site=h.site)
        call = next(e for e in sim.events if e.get("action") == "RequestStartTransaction")
        assert call["payload"]["remoteStartId"] == txn and call["payload"]["evseId"] == 1
        data = await h.wait_status(token, "charging")
        assert data["transaction_id"] == txn
        assert data["energy_kwh"] == "0.000" and data["cost_amount"] == 50
        await sim.meter(1, energyWh=5500)  # TransactionEvent Updated
        await eventually(lambda: _energy_is(h, token, "1.500"), what="energy 1.500")
        public = (await h.public.get(f"/api/v1/public-charging/sessions/{token}")).json()
        assert "payment" not in public and public["data"]["connector_status"] == "Occupied"
        response = await h.public.post(f"/api/v1/public-charging/sessions/{token}/stop")
        assert response.status_code == 200, response.text
        assert response.json()["data"]["status"] in ("stopping", "settling", "captured")
        stopped = await next_stop(sim)
        assert stopped["request"]["transactionInfo"]["stoppedReason"] == "Remote"
        data = await h.wait_status(token, "captured")
        # 1500 Wh x 39 = 58.5 -> 59 (half up) + 50 start fee
        assert (data["energy_kwh"], data["cost_amount"], data["amount_captured"], data["tax_amount"]) == (
            "1.500", 109, 0, 0)
        assert data["completed_at"] and data["charging_started_at"] and data["captured_at"]
        txn_row = (await h.admin.get(f"/api/v1/transactions/{txn}")).json()
        assert (txn_row["mode"], txn_row["status"], txn_row["meterStart"], txn_row["meterStop"]) == (
            "remote", "completed", 4000, 5500)
        assert txn_row["ocppTransactionId"] == stopped["request"]["transactionInfo"]["transactionId"]

        # the car that charged is still plugged in (Occupied, 1.6's Finishing): the next driver's
        # session must not start charging it, so it waits for that car to leave
        await sim.next_event(lambda e: e.get("action") == "StatusNotification" and e["request"]["evseId"] == 1
                             and sim.events.index(e) > sim.events.index(stopped))
        problem(await h.public.post("/api/v1/public-charging/sessions", json={"code": CODE, "connector_id": 1}),
                409, "ConnectorUnavailable")
        await sim.status(1, "Available")
        await wait_connector(h.site, 1, "Available")
        token, _ = await h.create(1)
        await sim.status(1, "Occupied")
        await transaction_started(sim, 1, site=h.site)
        await h.wait_status(token, "charging")


async def test_unplug_ends_like_stop_and_no_energy_is_no_charge(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site, version=V201) as sim:
        await sim.status(2, "Occupied")
        await wait_connector(h.site, 2, "Occupied")
        token, _ = await h.create(2)
        await transaction_started(sim, 2, site=h.site)
        await h.wait_status(token, "charging")
        await sim.stop(2, meterStop=2000, reason="EVDisconnected")  # the car is unplugged
        data = await h.wait_status(token, "captured")
        assert data["energy_kwh"] == "2.000" and data["cost_amount"] == 50 + 78

        await sim.status(1, "Occupied")
        await wait_connector(h.site, 1, "Occupied")
        token, _ = await h.create(1)
        await transaction_started(sim, 1, site=h.site)
        await h.wait_status(token, "charging")
        await sim.stop(1, reason="Local")
        data = await h.wait_status(token, "no_charge")
        assert data["amount_captured"] == 0 and data["cost_amount"] == 0 and data["hold_released"]


async def test_charger_rejects_remote_start(tmp_path):
    async with public_site(make_config(tmp_path)) as h, charger(h.site, version=V201) as sim:
        await sim.respond("RequestStartTransaction", payload={"status": "Rejected"})
        await sim.status(1, "Occupied")
        await wait_connector(h.site, 1, "Occupied")
        token, _ = await h.create(1)
        data = await h.wait_status(token, "failed")
        assert data["failure_reason"] == "charger_rejected"


async def test_session_energy_follows_the_connector_meter(tmp_path):
    device = SimulatedMeter("sdm630", device_id=1, energy_import_wh=200_000, power_w=0)
    with MeterServer(device, "tcp") as meter_server:
        path = tmp_path / "site.toml"
        path.write_text(with_connector_meter(config_text(tmp_path / "data"), meter_server.port, "bay-1-meter"),
                        encoding="utf-8")
        async with public_site(load_config(path)) as h, charger(h.site, version=V201) as sim:
            def meter():  # the latest snapshot (each poll replaces it)
                return h.site.hardware.meters["bay-1-meter"].state

            await eventually(lambda: meter().online, what="meter online")
            await sim.status(1, "Occupied")
            await wait_connector(h.site, 1, "Occupied")
            token, _ = await h.create(1)
            txn = await transaction_started(sim, 1, site=h.site)
            data = await h.wait_status(token, "charging")
            assert data["energy_kwh"] == "0.000" and data["cost_amount"] == 50

            # the station sends no meter values: the running figures come from the meter alone
            device.set(energy_import_wh=202_500, power_w=7200)
            await eventually(lambda: meter().energy_import_wh == 202_500, what="meter polled")
            data = await h.session(token)
            # 2.5 kWh x 39 = 97.5 -> 98 (half up) + 50 start fee
            assert data["energy_kwh"] == "2.500" and data["cost_amount"] == 148

            device.set(energy_import_wh=210_000)
            await eventually(lambda: meter().energy_import_wh == 210_000, what="meter polled")
            await sim.meter(1, energyWh=999)  # the station's own register is not what is billed
            response = await h.public.post(f"/api/v1/public-charging/sessions/{token}/stop")
            assert response.status_code == 200, response.text
            data = await h.wait_status(token, "captured")
            # 10 kWh x 39 + 50 = 440; provider none captures nothing
            assert (data["energy_kwh"], data["cost_amount"], data["amount_captured"]) == ("10.000", 440, 0)
            detail = (await h.admin.get(f"/api/v1/transactions/{txn}")).json()
            assert (detail["meterStart"], detail["meterStop"], detail["energyDelivered"]) == (200_000, 210_000, 10.0)
