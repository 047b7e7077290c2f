"""Field devices that fail and come back, end to end through a running site and its API.

A Modbus TCP gateway (an emulated SDM630 behind pymodbus) that stops answering or goes away,
and a USB card reader (an RDM6300 on a pty behind a by-id style symlink) that is unplugged and
plugged back. The driver tests (tests/drivers/) cover the reconnect logic of one bus or reader;
these prove what a site operator relies on: the API and /healthz show the fault, charging goes on
meanwhile, and the device is back in service by itself, without a restart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from controller.authorization import IdTag
from controller.config import load_config
from controller.simulators.card_reader import Rdm6300Emulator
from controller.simulators.meter import MeterServer, SimulatedMeter
from controller.site import Site
from controller.timefmt import now_iso
from tests.support import (
    CHARGER, RawCharger, api_client, config_text, eventually, raw_charger, running_site, with_connector_meter,
)

CARD = bytes.fromhex("62E3086CED")
TAG = "62E3086CED"  # the reader's id_tag_format "hex"
METER = "cp1-meter"
READER = "bay-1"
WAIT_S = 20  # generous: other test runs share the machine


def reader_toml(reader_path: str) -> str:
    """The card reader at CHARGER's connector 1 (a pty behind a by-id style symlink)."""
    return f"""
[[readers]]
id = "{READER}"
kind = "rdm6300"
port = "{reader_path}"
charger = "{CHARGER}"
connector = 1
repeat_window_s = 0.05
reconnect_min_s = 0.05
reconnect_max_s = 0.2
"""


@pytest.fixture
def rdm() -> Iterator[Rdm6300Emulator]:
    with Rdm6300Emulator() as reader:  # its path is a symlink, re-pointed to a new pty on plug()
        yield reader


@pytest.fixture
def meter() -> Iterator[tuple[SimulatedMeter, MeterServer]]:
    device = SimulatedMeter("sdm630", device_id=1, energy_import_wh=50_000, power_w=0)
    with MeterServer(device, "tcp") as server:  # stop()/start() keep the port
        yield device, server


@pytest.fixture
async def hw(tmp_path: Path, rdm: Rdm6300Emulator,
             meter: tuple[SimulatedMeter, MeterServer]) -> AsyncIterator[tuple[Site, httpx.AsyncClient]]:
    text = with_connector_meter(config_text(tmp_path / "data", extra=reader_toml(rdm.path)), meter[1].port, METER)
    (tmp_path / "site.toml").write_text(text, encoding="utf-8")
    async with running_site(load_config(tmp_path / "site.toml")) as site, api_client(site) as api:
        await eventually(lambda: site.hardware.readers[READER].state.connected, what="reader open", timeout=WAIT_S)
        await eventually(lambda: site.hardware.meters[METER].state.online, what="meter online", timeout=WAIT_S)
        yield site, api


async def meter_view(api: httpx.AsyncClient) -> dict:
    response = await api.get("/api/v1/meters")
    assert response.status_code == 200, response.text
    return {m["id"]: m for m in response.json()["meters"]}[METER]


async def reader_view(api: httpx.AsyncClient) -> dict:
    response = await api.get("/api/v1/readers")
    assert response.status_code == 200, response.text
    return {r["id"]: r for r in response.json()["readers"]}[READER]


async def health(api: httpx.AsyncClient) -> tuple[int, dict]:
    response = await api.get("/healthz")
    return response.status_code, response.json()


async def charge(cp: RawCharger, api: httpx.AsyncClient, n: int, charger_wh: tuple[int, int]) -> dict:
    """A whole charge on connector 1 as the charger reports it, live (an old timestamp would be a
    backlog, booked from the charger's register anyway); returns the booked transaction."""
    start = await cp.call("StartTransaction", {"connectorId": 1, "idTag": f"CARD{n}", "meterStart": charger_wh[0],
                                               "timestamp": now_iso()})
    assert start[0] == 3 and start[2]["idTagInfo"]["status"] == "Accepted", start
    tx = start[2]["transactionId"]
    stop = await cp.call("StopTransaction", {"transactionId": tx, "meterStop": charger_wh[1],
                                             "timestamp": now_iso(), "reason": "EVDisconnected"})
    assert stop[0] == 3, stop
    response = await api.get(f"/api/v1/transactions/{tx}")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("fault", ["silent", "gone"])
async def test_modbus_gateway_fails_and_comes_back(
    hw: tuple[Site, httpx.AsyncClient], meter: tuple[SimulatedMeter, MeterServer], fault: str,
) -> None:
    """silent: the gateway keeps the TCP connection but answers nothing (wedged on its RS-485
    side); gone: it is off, connections are refused. Either way the meter shows offline, /healthz
    is degraded (200: charging works), charges are booked from the charger's own register, and
    once the gateway answers again the meter is online and booked again, without a restart."""
    site, api = hw
    device, server = meter
    for n in range(1, 4):
        await site.authorization.put(IdTag(f"CARD{n}", "Accepted"))
    async with raw_charger(site, CHARGER) as cp:
        assert (await cp.boot())["status"] == "Accepted"
        before = await charge(cp, api, 1, (1000, 2000))
        assert (before["meterStart"], before["meterStop"]) == (50_000, 50_000)  # the connector meter's

        if fault == "silent":
            server.silent = True
        else:
            server.stop()
        offline = await eventually(lambda: _offline(api), what="meter offline in the API", timeout=WAIT_S)
        assert offline["lastError"] and offline["energyImportWh"] == 50_000  # last good reading kept
        if fault == "silent":
            assert "no response" in offline["lastError"], offline
        else:  # the reconnect attempts are refused
            await eventually(lambda: _bus_error(api, "cannot open 127.0.0.1"), what="refused", timeout=WAIT_S)
        status, body = await health(api)
        assert status == 200 and body["status"] == "degraded", body
        bus = body["checks"]["bus:gw"]
        assert bus["status"] == "degraded" and bus["metersOffline"] == [METER], bus

        during = await charge(cp, api, 2, (3000, 10_000))  # charging goes on, on the charger's register
        assert (during["meterStart"], during["meterStop"], during["energyDelivered"]) == (3000, 10_000, 7.0)
        assert (await cp.call("Heartbeat", {}))[0] == 3

        device.set(energy_import_wh=61_000)
        if fault == "silent":
            server.silent = False
        else:
            server.start()
        back = await eventually(lambda: _online_with(api, 61_000), what="meter back online", timeout=WAIT_S)
        assert back["lastError"] is None
        status, body = await health(api)
        assert status == 200 and body["checks"]["bus:gw"]["status"] == "ok", body
        after = await charge(cp, api, 3, (11_000, 12_000))
        assert (after["meterStart"], after["meterStop"]) == (61_000, 61_000)  # the meter is booked again
    if fault == "gone":
        assert site.hardware.buses["gw"].stats.reconnects >= 1


async def _bus_error(api: httpx.AsyncClient, text: str) -> str | None:
    error = (await health(api))[1]["checks"]["bus:gw"]["lastError"]
    return error if error and text in error else None


async def _offline(api: httpx.AsyncClient) -> dict | None:
    view = await meter_view(api)
    return view if not view["online"] else None


async def _online_with(api: httpx.AsyncClient, energy_wh: int) -> dict | None:
    view = await meter_view(api)
    return view if view["online"] and view["energyImportWh"] == energy_wh else None


async def test_card_reader_unplugged_and_plugged_back(hw: tuple[Site, httpx.AsyncClient], rdm: Rdm6300Emulator) -> None:
    """The USB adapter is pulled (the pty closes, its /dev/serial/by-id style symlink goes away)
    and plugged back (a new pty behind the same path): the reader shows disconnected, /healthz is
    degraded, then it reconnects by itself and a tap starts a charge again."""
    site, api = hw
    await site.authorization.put(IdTag(TAG, "Accepted"))
    async with raw_charger(site, CHARGER) as cp:
        assert (await cp.boot())["status"] == "Accepted"
        await cp.status(1, "Available")

        rdm.unplug()
        gone = await eventually(lambda: _reader_if(api, connected=False), what="reader disconnected", timeout=WAIT_S)
        assert gone["lastError"], gone
        status, body = await health(api)
        assert status == 200 and body["checks"][f"reader:{READER}"]["status"] == "degraded", body

        rdm.plug()
        back = await eventually(lambda: _reader_if(api, connected=True), what="reader reconnected", timeout=WAIT_S)
        assert back["reconnects"] >= 1 and back["lastError"] is None and back["taps"] == 0
        status, body = await health(api)
        assert status == 200 and body["checks"][f"reader:{READER}"]["status"] == "ok", body

        # A tap on the re-plugged reader: the controller asks the charger to start.
        rdm.present(CARD, repeats=1)
        call = await cp.answer_next_call({"status": "Accepted"})
        assert call[2] == "RemoteStartTransaction" and call[3] == {"connectorId": 1, "idTag": TAG}, call
        result = await eventually(lambda: _tap_result(api), what="tap outcome", timeout=WAIT_S)
        assert result["result"] == "Started" and result["idTag"] == TAG, result
        start = await cp.call("StartTransaction", {"connectorId": 1, "idTag": TAG, "meterStart": 0,
                                                   "timestamp": now_iso()})
        assert start[0] == 3 and start[2]["transactionId"] == result["transactionId"], start
        tx = (await api.get(f"/api/v1/transactions/{result['transactionId']}")).json()
        assert tx["status"] == "active" and tx["idTag"] == TAG


async def _reader_if(api: httpx.AsyncClient, *, connected: bool) -> dict | None:
    view = await reader_view(api)
    return view if view["connected"] is connected else None


async def _tap_result(api: httpx.AsyncClient) -> dict | None:
    view = await reader_view(api)
    result = view["lastTapResult"]
    return result if view["taps"] == 1 and result and result["at"] == view["lastTapAt"] else None


async def test_a_charge_keeps_its_energy_source_when_the_meter_drops_or_returns(
    hw: tuple[Site, httpx.AsyncClient], meter: tuple[SimulatedMeter, MeterServer],
) -> None:
    """A charge started on the connector meter is booked from it to the end, even when the meter
    drops out before the stop (its last reading counts: energy missed, never invented); one started
    on the charger's register while the meter was offline stays on that register when the meter
    returns. Mixing the two (a 50 kWh meter start with a 9 kWh charger stop) would book nonsense."""
    site, api = hw
    device, server = meter
    for n in (1, 2):
        await site.authorization.put(IdTag(f"CARD{n}", "Accepted"))

    async def call(cp: RawCharger, action: str, payload: dict) -> dict:
        reply = await cp.call(action, payload if action == "MeterValues" else {**payload, "timestamp": now_iso()})
        assert reply[0] == 3, reply
        return reply[2]

    async def booked(tx: int) -> tuple:
        detail = (await api.get(f"/api/v1/transactions/{tx}")).json()
        return detail["meterStart"], detail["meterStop"], detail["energyDelivered"]

    async with raw_charger(site, CHARGER) as cp:
        assert (await cp.boot())["status"] == "Accepted"
        first = (await call(cp, "StartTransaction", {"connectorId": 1, "idTag": "CARD1", "meterStart": 1000}))["transactionId"]
        device.set(energy_import_wh=57_000)
        await eventually(lambda: _online_with(api, 57_000), what="meter polled", timeout=WAIT_S)
        server.silent = True
        await eventually(lambda: _offline(api), what="meter offline", timeout=WAIT_S)
        await call(cp, "StopTransaction", {"transactionId": first, "meterStop": 9000, "reason": "EVDisconnected"})
        assert await booked(first) == (50_000, 57_000, 7.0)

        second = (await call(cp, "StartTransaction", {"connectorId": 1, "idTag": "CARD2", "meterStart": 9000}))["transactionId"]
        device.set(energy_import_wh=61_000)
        server.silent = False
        await eventually(lambda: _online_with(api, 61_000), what="meter back online", timeout=WAIT_S)
        await call(cp, "MeterValues", {"connectorId": 1, "transactionId": second, "meterValue": [
            {"timestamp": now_iso(), "sampledValue": [{"value": "11000", "measurand": "Energy.Active.Import.Register",
                                                       "unit": "Wh"}]}]})
        assert (await booked(second))[2] == 2.0  # running figure: the charger's register
        await call(cp, "StopTransaction", {"transactionId": second, "meterStop": 12_000, "reason": "EVDisconnected"})
        assert await booked(second) == (9000, 12_000, 3.0)
