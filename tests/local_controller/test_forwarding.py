"""Local-controller mode against an independent central system (the `ocpp` library's asyncio
ChargePoint, central_system.py): the chargers' messages go up in order under the central
system's transaction ids, its calls come down, and the site answers its chargers itself."""

from __future__ import annotations


from tests.local_controller.support import central_system, link_down, link_drained, local_config, upstream_link
from tests.support import CHARGER, api_client, eventually, raw_charger, running_site, unique

START = {"connectorId": 1, "meterStart": 100, "timestamp": "2026-01-01T10:00:00.000Z"}


async def link_queued(link, count: int) -> bool:
    return (await link())["queued"] == count


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
                async def link() -> dict:
                    links = (await api.get("/api/v1/upstream")).json()["chargers"]
                    return next(link for link in links if link["chargeBoxId"] == CHARGER)

                await eventually(lambda: link_queued(link, 0), what="the queue emptied")
                assert (await link())["connected"] and (await link())["upstreamId"] == "SITE7-CP-1"
                assert (await link())["forwarded"] == 5 and (await link())["registration"] == "Accepted"
                metrics = (await api.get("/metrics")).text
                assert f'evedge_upstream_connected{{charger="{CHARGER}"}} 1.0' in metrics
                assert f'evedge_upstream_queued_messages{{charger="{CHARGER}"}} 0.0' in metrics
                assert f'evedge_upstream_forwarded_total{{charger="{CHARGER}"}} 5.0' in metrics
                charger = (await api.get(f"/api/v1/chargers/{CHARGER}")).json()
                assert charger["upstreamId"] == "SITE7-CP-1"


async def test_a_charger_the_site_meets_later_gets_its_link_too(tmp_path):
    async with central_system() as cs:
        config = local_config(tmp_path, cs.port, unknown_chargers="accept")
        async with running_site(config) as site, raw_charger(site, "NEW-1") as cp:
            assert (await cp.boot())["status"] == "Accepted"
            assert (await cs.next_call("BootNotification", charger="NEW-1"))["chargePointVendor"] == "raw"


async def test_uplink_cut_mid_charge_charging_goes_on_and_the_backlog_is_replayed_in_order(tmp_path):
    a, b = unique(), unique()
    async with central_system() as cs:
        async with running_site(local_config(tmp_path, cs.port)) as site, raw_charger(site, CHARGER) as cp:
            await cp.boot()
            await cp.status(1, "Preparing")
            first = (await cp.call("StartTransaction", {**START, "idTag": a}))[2]["transactionId"]
            await cs.next_call("StartTransaction")  # the central system named it 1001
            await eventually(lambda: link_drained(site), what="the start answered")

            await cs.cmd("cut")
            await eventually(lambda: link_down(site), what="the link seen down")
            # the charge goes on: every message answered by the site at once, and booked
            assert (await cp.call("MeterValues", meter_values(first, 500, "2026-01-01T10:05:00.000Z")))[0] == 3
            assert (await cp.call("StopTransaction", stop(first, 800, "2026-01-01T10:10:00.000Z")))[0] == 3
            # a second charge begins and ends while the uplink is down
            second = (await cp.call("StartTransaction", {**START, "idTag": b, "meterStart": 800,
                                                         "timestamp": "2026-01-01T11:00:00.000Z"}))[2]["transactionId"]
            assert (await cp.call("StopTransaction", stop(second, 1500, "2026-01-01T11:30:00.000Z")))[0] == 3
            async with api_client(site) as api:
                booked = (await api.get(f"/api/v1/transactions/{first}")).json()
                assert booked["status"] == "completed" and booked["meterStop"] == 800
            assert (await upstream_link(site))["queued"] == 4

            await cs.cmd("resume")
            await cs.next_call("StopTransaction", timeout=15)
            last = await cs.next_call("StopTransaction")
            after_cut = [(e["action"], e["payload"]) for e in cs.calls()][3:]  # boot, status, start before
            assert [action for action, _ in after_cut] == [
                "BootNotification", "MeterValues", "StopTransaction", "StartTransaction", "StopTransaction"]
            assert after_cut[1][1]["transactionId"] == 1001
            assert after_cut[1][1]["meterValue"][0]["timestamp"] == "2026-01-01T10:05:00.000Z"
            assert after_cut[2][1]["transactionId"] == 1001
            assert after_cut[3][1]["timestamp"] == "2026-01-01T11:00:00.000Z"  # the original time
            assert last["transactionId"] == 1002  # the offline charge got its central-system id on replay
            await eventually(lambda: link_drained(site), what="the queue emptied")


async def test_the_central_systems_word_on_a_card_is_kept_and_its_refusal_blocks_the_card(tmp_path):
    tag = unique()
    async with central_system() as cs:
        async with running_site(local_config(tmp_path, cs.port)) as site, raw_charger(site, CHARGER) as cp:
            async with api_client(site) as api:
                assert (await api.post("/api/v1/id-tags", json={"idTag": tag, "status": "Accepted"})).status_code == 201
            await cp.boot()
            await cs.cmd("authorize", status="Blocked")
            first = await cp.call("Authorize", {"idTag": tag})
            assert first[2]["idTagInfo"]["status"] == "Accepted"  # local-first: the list, at once
            await cs.next_call("Authorize")
            await eventually(lambda: _blocked(cp, tag), what="the central system's refusal in force")


async def _blocked(cp, tag: str) -> bool:
    return (await cp.call("Authorize", {"idTag": tag}))[2]["idTagInfo"]["status"] == "Blocked"
