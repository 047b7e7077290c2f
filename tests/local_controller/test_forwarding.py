"""Local-controller mode against an independent central system (the `ocpp` library's asyncio
ChargePoint, central_system.py): the chargers' messages go up in order under the central
system's transaction ids, its calls come down, and the site answers its chargers itself."""

from __future__ import annotations

import trio

from tests.local_controller.support import central_system, local_config
from tests.support import CHARGER, api_client, eventually, raw_charger, running_site, unique

START = {"connectorId": 1, "meterStart": 100, "timestamp": "2026-01-01T10:00:00.000Z"}


def meter_values(transaction_id: int, wh: int, at: str) -> dict:
    return {"connectorId": 1, "transactionId": transaction_id,
            "meterValue": [{"timestamp": at, "sampledValue": [{"value": str(wh), "unit": "Wh"}]}]}


def stop(transaction_id: int, wh: int, at: str) -> dict:
    return {"transactionId": transaction_id, "meterStop": wh, "timestamp": at, "reason": "Local"}


async def test_charger_messages_reach_the_central_system_in_order_under_its_ids(tmp_path):
    tag = unique()
    async with central_system() as cs:
        config = local_config(tmp_path, cs.port, chargers='upstream_id = "SITE7-CP-1"\n')
        async with running_site(config) as site, raw_charger(site, CHARGER) as cp:
            await cp.boot()
            hello = await cs.next_event(event="connected", charger="SITE7-CP-1")
            assert hello["subprotocol"] == "ocpp1.6"
            await cp.status(1, "Preparing")
            start = await cp.call("StartTransaction", {**START, "idTag": tag})
            ours = start[2]["transactionId"]  # answered by the site at once, with its own id
            assert start[2]["idTagInfo"]["status"] == "Invalid"  # not on the local list: the site decides
            assert (await cp.call("MeterValues", meter_values(ours, 600, "2026-01-01T10:05:00.000Z")))[0] == 3
            assert (await cp.call("StopTransaction", stop(ours, 900, "2026-01-01T10:10:00.000Z")))[0] == 3
            assert (await cp.call("Heartbeat", {}))[0] == 3

            up_stop = await cs.next_call("StopTransaction", charger="SITE7-CP-1")
            theirs = cs.calls("StartTransaction")[0]
            assert theirs["payload"]["idTag"] == tag and theirs["payload"]["timestamp"] == START["timestamp"]
            assert up_stop["transactionId"] == 1001 != ours  # the central system's id for our charge
            assert up_stop["timestamp"] == "2026-01-01T10:10:00.000Z"
            assert cs.calls("MeterValues")[0]["payload"]["transactionId"] == 1001
            status = cs.calls("StatusNotification")[0]["payload"]
            assert status["status"] == "Preparing" and status["timestamp"]  # the time it happened
            assert [e["action"] for e in cs.calls()] == [
                "BootNotification", "StatusNotification", "StartTransaction", "MeterValues", "StopTransaction"]

            async with api_client(site) as api:
                links = (await api.get("/api/v1/upstream")).json()["chargers"]
                link = next(l for l in links if l["chargeBoxId"] == CHARGER)
                assert link["connected"] and link["upstreamId"] == "SITE7-CP-1" and link["queued"] == 0
                charger = (await api.get(f"/api/v1/chargers/{CHARGER}")).json()
                assert charger["upstreamId"] == "SITE7-CP-1"
