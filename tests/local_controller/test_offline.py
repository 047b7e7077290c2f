"""Local-controller mode when the central system is not there or says no: the chargers are served
locally, and what they said waits, on disk, for the central system (kill -9 included)."""

from __future__ import annotations

from trio_websocket import open_websocket_url

from tests.faults.process import controller
from tests.local_controller.support import central_system, local_config, local_toml, upstream_link
from tests.local_controller.test_forwarding import START, meter_values, stop
from tests.support import CHARGER, RawCharger, eventually, raw_charger, running_site, unique


async def test_a_boot_rejected_upstream_is_reported_and_the_charger_is_served_locally(tmp_path):
    async with central_system() as cs:
        await cs.cmd("boot", status="Rejected", interval=1)
        config = local_config(tmp_path, cs.port, accept_unknown_id_tags=True)
        async with running_site(config) as site, raw_charger(site, CHARGER) as cp:
            assert (await cp.boot())["status"] == "Accepted"  # the site's own answer
            await eventually(lambda: _registration(site, "Rejected"), what="the rejection reported")
            await cp.status(1, "Preparing")
            start = (await cp.call("StartTransaction", {**START, "idTag": unique()}))[2]
            assert start["idTagInfo"]["status"] == "Accepted"
            assert not cs.calls("StartTransaction")  # nothing goes up before an accepted boot

            await cs.cmd("boot", status="Accepted")
            assert (await cs.next_call("StartTransaction"))["timestamp"] == START["timestamp"]
            await eventually(lambda: _registration(site, "Accepted"), what="the acceptance reported")


async def _registration(site, status: str) -> bool:
    return (await upstream_link(site))["registration"] == status


async def test_queued_messages_survive_kill_9_and_reach_the_central_system_in_order(tmp_path):
    tag = unique()
    async with central_system() as cs:
        await cs.cmd("cut")  # the uplink is down from the start
        path = tmp_path / "site.toml"
        path.write_text(local_toml(tmp_path / "data", cs.port, accept_unknown_id_tags=True), encoding="utf-8")
        async with controller(path) as ctl:
            async with open_websocket_url(ctl.url(CHARGER), subprotocols=["ocpp1.6"]) as ws:
                cp = RawCharger(ws)
                await cp.boot()
                await cp.status(1, "Preparing")
                ours = (await cp.call("StartTransaction", {**START, "idTag": tag}))[2]["transactionId"]
                for minute in range(1, 6):
                    wh = 100 + 100 * minute
                    reply = await cp.call("MeterValues", meter_values(ours, wh, f"2026-01-01T10:0{minute}:00.000Z"))
                    assert reply[0] == 3
                assert (await cp.call("StopTransaction", stop(ours, 700, "2026-01-01T10:10:00.000Z")))[0] == 3
            links = (await ctl.api("/api/v1/upstream"))["chargers"]
            assert next(link for link in links if link["chargeBoxId"] == CHARGER)["queued"] == 9
            await ctl.kill9()  # every message was answered: each is on disk

        await cs.cmd("resume")
        async with controller(path):
            assert (await cs.next_call("StopTransaction", timeout=30))["transactionId"] == 1001
        actions = [e["action"] for e in cs.calls()]
        assert actions == ["BootNotification", "StatusNotification", "StartTransaction", *["MeterValues"] * 5,
                           "StopTransaction"]
        readings = [e["payload"]["meterValue"][0]["timestamp"] for e in cs.calls("MeterValues")]
        assert readings == sorted(readings) and readings[0] == "2026-01-01T10:01:00.000Z"
