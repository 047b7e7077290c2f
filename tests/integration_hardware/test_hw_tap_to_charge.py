"""End to end: an emulated RDM6300 reader and Modbus connector meter wired into a running site,
with the independent simulated charger (a subprocess) answering the remote start and stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from controller.authorization import IdTag
from controller.config import load_config
from controller.simulators.card_reader import Rdm6300Emulator
from controller.simulators.charger_process import SimulatedCharger
from controller.simulators.meter import MeterServer, SimulatedMeter
from tests.support import (
    CHARGER, api_client, config_text, eventually, ocpp_url, running_site, transaction_status, with_connector_meter,
)

CARD = bytes.fromhex("62E3086CED")
TAG = "62E3086CED"  # id_tag_format "hex"
REPEAT_WINDOW_S = 0.05


def reader_toml(reader_path: str) -> str:
    return f"""
[[readers]]
id = "bay-1"
kind = "rdm6300"
port = "{reader_path}"
charger = "{CHARGER}"
connector = 1
repeat_window_s = {REPEAT_WINDOW_S}
"""


@pytest.fixture
def rdm():
    with Rdm6300Emulator() as reader:
        yield reader


@pytest.fixture
def meter():
    device = SimulatedMeter("sdm630", device_id=1, energy_import_wh=50_000, power_w=0)
    with MeterServer(device, "tcp") as server:
        yield device, server


def _config(tmp_path: Path, server: MeterServer, rdm: Rdm6300Emulator, *, connector_meter: bool):
    text = with_connector_meter(config_text(tmp_path / "data", extra=reader_toml(rdm.path)), server.port,
                                billed=connector_meter)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


@pytest.fixture
async def hw(request, tmp_path, rdm, meter):
    marker = request.node.get_closest_marker("charger_meter")
    config = _config(tmp_path, meter[1], rdm, connector_meter=marker is None)
    async with running_site(config) as site, api_client(site) as api:
        await eventually(lambda: site.hardware.readers["bay-1"].state.connected, what="reader open")
        await eventually(lambda: site.hardware.meters["cp1-meter"].state.online, what="meter online")
        yield site, api


@pytest.fixture
async def sim(hw, nursery):
    site, _ = hw
    charger = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
    assert (await charger.boot())["status"] == "Accepted"
    await charger.status(0, "Available")
    await charger.status(1, "Available")  # the driver taps before plugging in
    yield charger
    await charger.aclose()


async def tap(rdm: Rdm6300Emulator) -> None:
    """Present the card once, after it has been away longer than the reader's repeat window."""
    await trio.sleep(REPEAT_WINDOW_S * 2)
    rdm.present(CARD, repeats=1)


async def _reader(api, reader_id="bay-1"):
    response = await api.get(f"/api/v1/readers/{reader_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def _tap_result(api, taps: int):
    """The outcome of tap number `taps` (the reader counts the tap before its outcome is known)."""
    reader = await _reader(api)
    result = reader["lastTapResult"]
    if reader["taps"] >= taps and result and result["at"] == reader["lastTapAt"]:
        return result
    return None


async def test_tap_starts_second_tap_stops_energy_from_connector_meter(hw, sim, rdm, meter):
    site, api = hw
    device, _ = meter
    await site.authorization.put(IdTag(TAG, "Accepted"))
    await sim.meter(1, energyWh=1000)  # the charger's own (untrusted) register

    await tap(rdm)
    start = await sim.next_event("sent", action="StartTransaction")
    tx = start["response"]["transactionId"]
    assert start["request"]["idTag"] == TAG and start["response"]["idTagInfo"]["status"] == "Accepted"
    assert await transaction_status(api, tx) == "active"
    detail = (await api.get(f"/api/v1/transactions/{tx}")).json()
    assert detail["mode"] == "local" and detail["remoteStarted"] is True
    assert detail["meterStart"] == 50_000  # the connector meter's, not the charger's 1000
    result = await eventually(lambda: _tap_result(api, 1), what="first tap's outcome")
    assert (result["result"], result["transactionId"], result["idTag"]) == ("Started", tx, TAG)

    device.set(energy_import_wh=57_500, power_w=7200)
    await eventually(lambda: site.hardware.meters["cp1-meter"].state.energy_import_wh == 57_500, what="meter polled")
    await sim.meter(1, energyWh=9000)  # MeterValues: the running energy follows the connector meter
    assert (await api.get(f"/api/v1/transactions/{tx}")).json()["energyDelivered"] == 7.5
    meters = (await api.get("/api/v1/meters")).json()["meters"]
    assert [(m["id"], m["role"], m["charger"], m["connector"], m["online"], m["energyImportWh"], m["powerW"])
            for m in meters] == [("cp1-meter", "connector", CHARGER, 1, True, 57_500, 7200)]

    await tap(rdm)  # the same card again: stop
    stop = await sim.next_event("sent", action="StopTransaction")
    assert stop["request"]["transactionId"] == tx and stop["request"]["meterStop"] == 9000
    await eventually(lambda: _tap_result(api, 2), what="second tap's outcome")
    assert (await _reader(api))["lastTapResult"]["result"] == "Stopped"
    detail = (await api.get(f"/api/v1/transactions/{tx}")).json()
    assert detail["status"] == "completed" and detail["stopReason"] == "Remote"
    assert (detail["meterStart"], detail["meterStop"], detail["energyDelivered"]) == (50_000, 57_500, 7.5)


async def test_fleet_card_stops_a_charge_started_by_another_card_of_the_same_parent(hw, sim, rdm):
    site, api = hw
    await site.authorization.put(IdTag("FLEET", "Accepted"))
    await site.authorization.put(IdTag("OTHERCARD", "Accepted", parent_id_tag="FLEET"))
    await site.authorization.put(IdTag(TAG, "Accepted", parent_id_tag="FLEET"))
    started = await site.transactions.remote_start(CHARGER, 1, "OTHERCARD", require_preparing=False)
    await sim.next_event("sent", action="StartTransaction")
    await tap(rdm)
    stop = await sim.next_event("sent", action="StopTransaction")
    assert stop["request"]["transactionId"] == started["transactionId"]
    result = await eventually(lambda: _tap_result(api, 1), what="tap outcome")
    assert result["result"] == "Stopped"


@pytest.mark.charger_meter
async def test_without_the_flag_the_chargers_meter_is_booked(hw, sim, rdm):
    site, api = hw
    await site.authorization.put(IdTag(TAG, "Accepted"))
    await sim.meter(1, energyWh=1000)
    await tap(rdm)
    tx = (await sim.next_event("sent", action="StartTransaction"))["response"]["transactionId"]
    assert (await api.get(f"/api/v1/transactions/{tx}")).json()["meterStart"] == 1000


async def test_refused_tags_offline_charger_and_api_views(hw, rdm):
    site, api = hw
    # no charger connected yet: an accepted tag is recorded as ChargerOffline
    await site.authorization.put(IdTag(TAG, "Accepted"))
    await tap(rdm)
    result = await eventually(lambda: _tap_result(api, 1), what="offline outcome")
    assert result["result"] == "ChargerOffline"

    async with SimulatedCharger.open(ocpp_url(site, CHARGER), connectors=2) as sim:
        await sim.boot()
        await sim.status(1, "Preparing")
        for taps, status in ((2, "Blocked"), (3, "Expired")):
            expiry = "2000-01-01T00:00:00Z" if status == "Expired" else None
            await site.authorization.put(IdTag(TAG, "Blocked" if status == "Blocked" else "Accepted", expiry))
            await tap(rdm)
            result = await eventually(lambda: _tap_result(api, taps), what=f"{status} outcome")
            assert (result["result"], result["idTagStatus"], result["transactionId"]) == ("Rejected", status, None)
        await site.authorization.delete(TAG)
        await tap(rdm)
        result = await eventually(lambda: _tap_result(api, 4), what="unknown tag outcome")
        assert (result["result"], result["idTagStatus"]) == ("Rejected", "Invalid")
        # a charger that refuses
        await site.authorization.put(IdTag(TAG, "Accepted"))
        await sim.respond("RemoteStartTransaction", payload={"status": "Rejected"})
        await tap(rdm)
        result = await eventually(lambda: _tap_result(api, 5), what="refused outcome")
        assert result["result"] == "ChargerRejected"
        assert not any(e.get("action") == "StartTransaction" for e in sim.events)
    page = (await api.get("/api/v1/transactions")).json()
    assert {t["status"] for t in page["transactions"]} == {"failed"}  # only the refused remote start

    readers = (await api.get("/api/v1/readers")).json()["readers"]
    assert [(r["id"], r["kind"], r["charger"], r["connector"], r["connected"], r["taps"]) for r in readers] == [
        ("bay-1", "rdm6300", CHARGER, 1, True, 5)]
    for path, code in (("/api/v1/meters/nope", "MeterNotFound"), ("/api/v1/readers/nope", "ReaderNotFound")):
        response = await api.get(path)
        assert response.status_code == 404 and response.json()["error"] == code
    assert (await api.get("/api/v1/meters/cp1-meter")).json()["online"] is True
    health = (await api.get("/healthz")).json()
    assert health["checks"]["bus:gw"]["status"] == "ok" and health["checks"]["reader:bay-1"]["status"] == "ok"
