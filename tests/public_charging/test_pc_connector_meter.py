"""A public session on a charger whose energy is billed from a Modbus connector meter (an emulated
SDM630 on Modbus TCP), not from the charger's own register."""

from __future__ import annotations

from controller.config import load_config
from controller.simulators.meter import MeterServer, SimulatedMeter
from tests.public_charging.helpers import (
    charger, config_text, public_site, transaction_started, wait_connector,
)
from tests.public_charging.test_pc_flows_stripe import stripe
from tests.support import eventually, with_connector_meter


def meter_config(tmp_path, port: int, stripe_base: str):
    text = config_text(tmp_path / "data", provider="stripe", stripe_base=stripe_base)
    path = tmp_path / "site.toml"
    path.write_text(with_connector_meter(text, port, "bay-1-meter"), encoding="utf-8")
    return load_config(path)


async def test_session_energy_and_capture_follow_the_connector_meter(tmp_path):
    device = SimulatedMeter("sdm630", device_id=1, energy_import_wh=200_000, power_w=0)
    with MeterServer(device, "tcp") as meter_server:
        async with stripe() as (server, proxy):
            async with public_site(meter_config(tmp_path, meter_server.port, proxy.base)) as h, \
                    charger(h.site) as sim:
                def meter():  # the latest snapshot (each poll replaces it)
                    return h.site.hardware.meters["bay-1-meter"].state

                await eventually(lambda: meter().online, what="meter online")
                await sim.status(1, "Preparing")
                await wait_connector(h.site, 1, "Preparing")
                token, _ = await h.create(1)
                intent = server.last_intent()
                server.confirm(intent["id"])
                assert (await h.public.post(f"/api/v1/public-charging/sessions/{token}/confirm")).status_code == 200
                txn = await transaction_started(sim)
                data = await h.wait_status(token, "charging")
                assert data["energy_kwh"] == "0.000" and data["cost_amount"] == 50

                # The charger never sends MeterValues: the running figures come from the meter alone.
                device.set(energy_import_wh=202_500, power_w=7200)
                await eventually(lambda: meter().energy_import_wh == 202_500, what="meter polled")
                data = await h.session(token)
                # 2.5 kWh x 39 = 97.5 -> 98 (half up) + 50 start fee
                assert data["energy_kwh"] == "2.500" and data["cost_amount"] == 148

                device.set(energy_import_wh=210_000)
                await eventually(lambda: meter().energy_import_wh == 210_000, what="meter polled")
                await sim.meter(1, energyWh=999)  # the charger's own register is not what is billed
                response = await h.public.post(f"/api/v1/public-charging/sessions/{token}/stop")
                assert response.status_code == 200, response.text
                data = await h.wait_status(token, "captured")
                # 10 kWh x 39 + 50 = 440, captured from the connector meter's register
                assert (data["energy_kwh"], data["cost_amount"], data["amount_captured"]) == ("10.000", 440, 440)
                assert server.captures == [(intent["id"], 440)]
                detail = (await h.admin.get(f"/api/v1/transactions/{txn}")).json()
                assert (detail["meterStart"], detail["meterStop"]) == (200_000, 210_000)
