"""Per-device series at GET /metrics: an operator alerts on "CP2 offline" or a Faulted connector
and graphs each charger's and meter's power, from a live site over real sockets."""

from __future__ import annotations

from pathlib import Path

import httpx
import trio
from prometheus_client.parser import text_string_to_metric_families

from controller.simulators.meter import MeterServer, SimulatedMeter

from .conftest import charger, running_site, write_config


def _series(text: str, name: str) -> dict[tuple, float]:
    """{sorted label items: value} of one metric."""
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples if s.name == name}


def _meter_toml(port: int) -> str:
    return f"""
[[buses]]
id = "gw"
kind = "tcp"
host = "127.0.0.1"
port = {port}
timeout_s = 0.2
retries = 0

[[meters]]
id = "bay1-meter"
bus = "gw"
model = "sdm630"
role = "connector"
charger = "CP1"
connector = 1
poll_s = 0.05
"""


async def test_each_charger_connector_and_meter_has_its_series(tmp_path: Path) -> None:
    meter = SimulatedMeter("sdm630", energy_import_wh=1_234_000, power_w=7200)
    with MeterServer(meter, "tcp") as gateway:
        async with running_site(write_config(tmp_path, extra=_meter_toml(gateway.port))) as site, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{site.api_port}") as client:
            with trio.fail_after(10):
                while not site.hardware.meters["bay1-meter"].state.online:
                    await trio.sleep(0.01)
            async with charger(site.ocpp_port, "CP1") as cp:
                await cp.boot()
                await cp.call("StatusNotification", {"connectorId": 1, "status": "Charging", "errorCode": "NoError"})
                await cp.call("StatusNotification", {"connectorId": 2, "status": "Faulted",
                                                     "errorCode": "GroundFailure"})
                await cp.call("MeterValues", {"connectorId": 1, "meterValue": [{
                    "timestamp": "2026-02-01T10:00:00Z", "sampledValue": [
                        {"value": "5000", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                        {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"}]}]})
                online = (await client.get("/metrics")).text
                await cp.call("StatusNotification", {"connectorId": 2, "status": "Available", "errorCode": "NoError"})
                recovered = (await client.get("/metrics")).text
            with trio.fail_after(10):  # the controller notices the closed connection
                while _series(gone := (await client.get("/metrics")).text, "evedge_charger_online")[
                        (("charger", "CP1"),)] != 0:
                    await trio.sleep(0.01)

    assert _series(online, "evedge_charger_online") == {(("charger", "CP1"),): 1, (("charger", "CP2"),): 0}
    statuses = _series(online, "evedge_connector_status")
    assert statuses[(("charger", "CP1"), ("connector", "1"), ("status", "Charging"))] == 1
    assert statuses[(("charger", "CP1"), ("connector", "2"), ("status", "Faulted"))] == 1
    assert _series(online, "evedge_connector_power_watts")[(("charger", "CP1"), ("connector", "1"))] == 11000
    assert _series(online, "evedge_connector_energy_watthours")[(("charger", "CP1"), ("connector", "1"))] == 5000
    meter_labels = (("charger", "CP1"), ("connector", "1"), ("meter", "bay1-meter"))
    assert _series(online, "evedge_meter_online") == {meter_labels: 1}
    assert _series(online, "evedge_meter_power_watts") == {meter_labels: 7200}
    assert _series(online, "evedge_meter_energy_import_watthours") == {meter_labels: 1_234_000}
    assert _series(online, "evedge_database_size_bytes")[()] > 0

    # one series per connector: the old status is gone, not left at 1 beside the new one
    connector_2 = {k: v for k, v in _series(recovered, "evedge_connector_status").items()
                   if ("connector", "2") in k and ("charger", "CP1") in k}
    assert connector_2 == {(("charger", "CP1"), ("connector", "2"), ("status", "Available")): 1}
    assert _series(gone, "evedge_charger_online") == {(("charger", "CP1"),): 0, (("charger", "CP2"),): 0}
