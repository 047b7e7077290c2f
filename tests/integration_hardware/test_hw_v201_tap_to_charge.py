"""End to end with an OCPP 2.0.1 station: an emulated RDM6300 reader and Modbus connector meter
wired into a running site, the independent 2.0.1 simulator answering the RequestStart/Stop.
The 1.6 twin (and the fixtures used here) is tests/integration_hardware/test_hw_tap_to_charge.py."""

from __future__ import annotations

import pytest

from controller.authorization import IdTag
from controller.simulators.charger_process import SimulatedCharger
from tests.integration_hardware import test_hw_tap_to_charge as hw16
from tests.integration_hardware.test_hw_tap_to_charge import TAG, _tap_result, tap
from tests.stations import (
    V201,
    booked_id,
    next_start,
    next_stop,
    station_transaction_id,
)
from tests.support import CHARGER, eventually, ocpp_url, transaction_status

hw, meter, rdm = hw16.hw, hw16.meter, hw16.rdm  # the fixtures: a site with the reader and the connector meter


@pytest.fixture
async def sim(hw, nursery):
    site, _ = hw
    station = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2, version=V201)
    assert (await station.boot())["status"] == "Accepted"
    await station.status(1, "Available")  # the driver taps before plugging in
    yield station
    await station.aclose()


async def test_tap_starts_second_tap_stops_energy_from_connector_meter(hw, sim, rdm, meter):
    site, api = hw
    device, _ = meter
    await site.authorization.put(IdTag(TAG, "Accepted"))
    await sim.meter(1, energyWh=1000)  # the station's own (untrusted) register

    await tap(rdm)
    call = await sim.next_event("call", action="RequestStartTransaction")
    assert call["payload"]["idToken"]["idToken"] == TAG and call["payload"]["evseId"] == 1
    started = await next_start(sim, connector=1)
    assert started["response"]["idTokenInfo"]["status"] == "Accepted"
    tx = await booked_id(site, CHARGER, started)
    assert call["payload"]["remoteStartId"] == tx
    result = await eventually(lambda: _tap_result(api, 1), what="first tap's outcome")
    assert (result["result"], result["transactionId"], result["idTag"]) == ("Started", tx, TAG)
    assert await transaction_status(api, tx) == "active"
    detail = (await api.get(f"/api/v1/transactions/{tx}")).json()
    assert (detail["mode"], detail["remoteStarted"]) == ("local", True)
    assert detail["ocppTransactionId"] == station_transaction_id(started)
    assert detail["meterStart"] == 50_000  # the connector meter's, not the station's 1000

    device.set(energy_import_wh=57_500, power_w=7200)
    await eventually(lambda: site.hardware.meters["cp1-meter"].state.energy_import_wh == 57_500, what="meter polled")
    await sim.meter(1, energyWh=9000)  # TransactionEvent Updated: the running energy follows the connector meter
    assert (await api.get(f"/api/v1/transactions/{tx}")).json()["energyDelivered"] == 7.5

    await tap(rdm)  # the same card again: stop
    call = await sim.next_event("call", action="RequestStopTransaction")
    assert call["payload"] == {"transactionId": station_transaction_id(started)}
    stopped = await next_stop(sim)
    assert stopped["request"]["transactionInfo"]["stoppedReason"] == "Remote"
    await eventually(lambda: _tap_result(api, 2), what="second tap's outcome")
    result = (await api.get("/api/v1/readers/bay-1")).json()["lastTapResult"]
    assert (result["result"], result["transactionId"]) == ("Stopped", tx)
    detail = (await api.get(f"/api/v1/transactions/{tx}")).json()
    assert (detail["status"], detail["stopReason"]) == ("completed", "Remote")
    assert (detail["meterStart"], detail["meterStop"], detail["energyDelivered"]) == (50_000, 57_500, 7.5)


@pytest.mark.charger_meter
async def test_without_the_flag_the_stations_meter_is_booked(hw, sim, rdm):
    site, api = hw
    await site.authorization.put(IdTag(TAG, "Accepted"))
    await sim.meter(1, energyWh=1000)
    await tap(rdm)
    tx = await booked_id(site, CHARGER, await next_start(sim, connector=1))
    assert (await api.get(f"/api/v1/transactions/{tx}")).json()["meterStart"] == 1000
    await sim.meter(1, energyWh=4000)
    await tap(rdm)
    await next_stop(sim)
    await eventually(lambda: _tap_result(api, 2), what="second tap's outcome")
    detail = (await api.get(f"/api/v1/transactions/{tx}")).json()
    assert (detail["status"], detail["meterStart"], detail["meterStop"], detail["energyDelivered"]) == (
        "completed", 1000, 4000, 3.0)


async def test_a_refusing_station_and_an_unknown_card(hw, sim, rdm):
    site, api = hw
    await tap(rdm)  # not on the list
    result = await eventually(lambda: _tap_result(api, 1), what="unknown tag outcome")
    assert (result["result"], result["idTagStatus"]) == ("Rejected", "Invalid")
    await site.authorization.put(IdTag(TAG, "Accepted"))
    await sim.respond("RequestStartTransaction", payload={"status": "Rejected"})
    await tap(rdm)
    result = await eventually(lambda: _tap_result(api, 2), what="refused outcome")
    assert result["result"] == "ChargerRejected"
    page = (await api.get("/api/v1/transactions")).json()
    assert [t["status"] for t in page["transactions"]] == ["failed"]
