"""Local-controller mode for OCPP 2.0.1 stations, against an independent 2.0.1 central system (the
`ocpp` library's asyncio v201 ChargePoint, central_system.py --version 2.0.1) and the 2.0.1 station
simulator: the station's messages go up over a 2.0.1 link under its own transaction ids, the
central system's calls come down, its starts, stops and limits are booked by the site, and the
uplink's outage is bridged on disk."""

from __future__ import annotations

from controller.simulators.charger_process import SimulatedCharger
from tests.local_controller.support import (call_charger, central_system, link_down, link_drained, local_config,
                                            upstream_link)
from tests.local_controller.test_commands import LOAD
from tests.support import CHARGER, api_client, eventually, ocpp_url, running_site, unique


def station(site, **options):
    return SimulatedCharger.open(ocpp_url(site, CHARGER), version="2.0.1", **options)


async def test_a_station_is_forwarded_over_a_2_0_1_link_and_the_central_systems_calls_reach_it(tmp_path):
    tag = unique()
    async with central_system(version="2.0.1") as cs:
        config = local_config(tmp_path, cs.port, chargers='upstream_id = "SITE7-CP-1"\n')
        async with running_site(config) as site, station(site) as sim:
            await sim.boot()
            hello = await cs.next_event(event="connected", charger="SITE7-CP-1")
            assert hello["subprotocol"] == "ocpp2.0.1"
            await sim.status(1, "Occupied", timestamp="2026-01-01T09:59:00.000Z")
            assert (await sim.authorize(tag))["idTokenInfo"]["status"] == "Invalid"  # not listed: the site decides
            await eventually(lambda: site.authorization.verdict(tag).status == "Accepted",
                             what="the central system's answer on the card kept")
            started = await sim.start_transaction(1, tag, meterStart=100, timestamp="2026-01-01T10:00:00.000Z")
            assert started["idTagInfo"]["status"] == "Accepted"  # the central system's word, given locally
            await sim.meter(1, energyWh=600, timestamp="2026-01-01T10:05:00.000Z")
            await sim.stop(1, meterStop=900, timestamp="2026-01-01T10:10:00.000Z")
            await sim.heartbeat()

            ended = await cs.next_call("TransactionEvent", charger="SITE7-CP-1", payload={"eventType": "Ended"})
            assert [e["action"] for e in cs.calls()] == [
                "BootNotification", "StatusNotification", "Authorize", *["TransactionEvent"] * 3]  # no Heartbeat
            events = [e["payload"] for e in cs.calls("TransactionEvent")]
            # the station's own transaction id, unchanged: 2.0.1 needs no id mapping
            assert {e["transactionInfo"]["transactionId"] for e in events} == {started["transactionId"]}
            assert [e["eventType"] for e in events] == ["Started", "Updated", "Ended"]
            assert [e["timestamp"] for e in events] == [
                "2026-01-01T10:00:00.000Z", "2026-01-01T10:05:00.000Z", "2026-01-01T10:10:00.000Z"]
            assert ended["seqNo"] == events[0]["seqNo"] + 2
            assert cs.calls("StatusNotification")[0]["payload"]["timestamp"] == "2026-01-01T09:59:00.000Z"
            assert cs.calls("BootNotification")[0]["payload"]["chargingStation"]["vendorName"]

            # down: the central system's calls reach the station, its answer goes back
            reply = await call_charger(cs, "SITE7-CP-1", "GetVariables", {"getVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
            assert reply["ok"] and reply["result"]["get_variable_result"][0]["attribute_status"] == "Accepted"
            reply = await call_charger(cs, "SITE7-CP-1", "TriggerMessage",
                                       {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}})
            assert reply["result"]["status"] == "Accepted"
            assert (await cs.next_call("StatusNotification"))["evseId"] == 1  # the triggered one, forwarded
            reply = await call_charger(cs, "SITE7-CP-1", "GetBaseReport",
                                       {"requestId": 3, "reportBase": "FullInventory"})
            assert reply["result"]["status"] == "Accepted"
            assert (await cs.next_call("NotifyReport"))["requestId"] == 3  # the station's report, forwarded

            # what leads the station to the site is kept
            refused = await call_charger(cs, "SITE7-CP-1", "SetVariables", {"setVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
                 "attributeValue": "60"},
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
                 "attributeValue": "0123456789abcdef"}]})
            assert not refused["ok"] and "SecurityError" in refused["error"]
            assert "SecurityCtrlr.BasicAuthPassword" in refused["error"] and "protected_variables" in refused["error"]
            refused = await call_charger(cs, "SITE7-CP-1", "SetNetworkProfile", {
                "configurationSlot": 1, "connectionData": {
                    "ocppVersion": "OCPP20", "ocppTransport": "JSON", "ocppCsmsUrl": "wss://elsewhere.example/ocpp",
                    "messageTimeout": 30, "securityProfile": 1, "ocppInterface": "Wired0"}})
            assert not refused["ok"] and "refused_actions" in refused["error"]
            assert not [e for e in sim.events if e.get("event") == "call"
                        and e.get("action") in ("SetVariables", "SetNetworkProfile")]

            async with api_client(site) as api:
                booked = (await api.get("/api/v1/transactions", params={"chargeBoxId": CHARGER})).json()
                charge = booked["transactions"][0]  # the site booked the charge itself
                assert (charge["status"], charge["energyDelivered"]) == ("completed", 0.8)
            await eventually(lambda: link_drained(site), what="the queue emptied")
            assert (await upstream_link(site))["forwarded"] == 8


async def test_the_central_systems_refusal_of_a_card_blocks_it_on_the_site(tmp_path):
    tag = unique()
    async with central_system(version="2.0.1") as cs:
        async with running_site(local_config(tmp_path, cs.port)) as site, station(site) as sim:
            async with api_client(site) as api:
                assert (await api.post("/api/v1/id-tags", json={"idTag": tag, "status": "Accepted"})).status_code == 201
            await sim.boot()
            await cs.cmd("authorize", status="NoCredit")
            assert (await sim.authorize(tag))["idTokenInfo"]["status"] == "Accepted"  # local-first
            await cs.next_call("Authorize")
            await eventually(lambda: _status(sim, tag, "Blocked"), what="the central system's refusal in force")


async def _status(sim, tag: str, status: str) -> bool:
    return (await sim.authorize(tag))["idTokenInfo"]["status"] == status


async def test_a_request_start_and_stop_from_the_central_system_are_booked_as_remote(tmp_path):
    tag = unique()
    async with central_system(version="2.0.1") as cs:
        async with running_site(local_config(tmp_path, cs.port)) as site, station(site) as sim, \
                api_client(site) as api:
            await sim.boot()
            await cs.next_event(event="connected", charger=CHARGER)
            reply = await call_charger(cs, CHARGER, "RequestStartTransaction", {
                "idToken": {"idToken": tag, "type": "ISO14443"}, "remoteStartId": 4711, "evseId": 1})
            assert reply["ok"] and reply["result"]["status"] == "Accepted", reply
            started = await sim.next_event("sent", action="TransactionEvent")  # the station started the charge
            station_id = started["request"]["transactionInfo"]["transactionId"]
            assert started["response"]["idTokenInfo"]["status"] == "Accepted"  # a start we asked for

            listed = (await api.get("/api/v1/transactions", params={"chargeBoxId": CHARGER})).json()["transactions"]
            ours = listed[0]["transactionId"]
            booked = (await api.get(f"/api/v1/transactions/{ours}")).json()  # the seed's transaction API
            assert (booked["status"], booked["remoteStarted"], booked["idTag"]) == ("active", True, tag)
            assert booked["mode"] == "remote" and booked["ocppTransactionId"] == station_id
            up = await cs.next_call("TransactionEvent", payload={"eventType": "Started"})
            info = up["transactionInfo"]
            assert (info["transactionId"], info["remoteStartId"]) == (station_id, 4711)  # as the station sent it

            reply = await call_charger(cs, CHARGER, "RequestStopTransaction", {"transactionId": station_id})
            assert reply["result"]["status"] == "Accepted"
            await sim.next_event("call", action="RequestStopTransaction")
            ended = await cs.next_call("TransactionEvent", payload={"eventType": "Ended"})
            assert ended["transactionInfo"]["stoppedReason"] == "Remote"
            await eventually(lambda: _completed(api, ours), what="the stop booked")
            reply = await call_charger(cs, CHARGER, "RequestStopTransaction", {"transactionId": "not-a-charge"})
            assert reply["result"]["status"] == "Rejected"  # the station's answer, as it came


async def _completed(api, transaction_id: int) -> bool:
    return (await api.get(f"/api/v1/transactions/{transaction_id}")).json()["status"] == "completed"


def _profile(profile_id: int, limit: float, evse_id: int = 0) -> dict:
    return {"evseId": evse_id, "chargingProfile": {
        "id": profile_id, "stackLevel": 0, "chargingProfilePurpose": "ChargingStationMaxProfile",
        "chargingProfileKind": "Relative", "chargingSchedule": [{
            "id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}]}}


def _limits(sim) -> list[float]:
    """The limits load management sent the station for its charge, oldest first."""
    return [e["payload"]["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"]
            for e in sim.events if e.get("event") == "call" and e.get("action") == "SetChargingProfile"
            and e["payload"]["chargingProfile"]["chargingProfilePurpose"] == "TxProfile"]


async def test_a_profile_from_the_central_system_bounds_load_management_of_a_station(tmp_path):
    async with central_system(version="2.0.1") as cs:
        config = local_config(tmp_path, cs.port, chargers='circuit = "main"\nmax_current_a = 32\n', extra=LOAD)
        async with running_site(config) as site, station(site) as sim:
            await sim.boot()
            await sim.status(1, "Occupied")
            await sim.start_transaction(1, unique())
            await eventually(lambda: _limits(sim)[-1:] == [16], what="the circuit's 16 A")
            reply = await call_charger(cs, CHARGER, "SetChargingProfile", _profile(7, 10))
            assert reply["result"]["status"] == "Accepted"
            await eventually(lambda: _limits(sim)[-1:] == [10], what="the central system's 10 A")
            assert not [e for e in sim.events if e.get("event") == "call" and e.get("action") == "SetChargingProfile"
                        and e["payload"]["chargingProfile"]["chargingProfilePurpose"] == "ChargingStationMaxProfile"]
            cleared = await call_charger(cs, CHARGER, "ClearChargingProfile", {"chargingProfileId": 7})
            assert cleared["result"]["status"] == "Accepted"
            await eventually(lambda: _limits(sim)[-1:] == [16], what="the circuit's 16 A again")
            again = await call_charger(cs, CHARGER, "ClearChargingProfile", {"chargingProfileId": 7})
            assert again["result"]["status"] == "Unknown"


async def test_uplink_cut_mid_charge_the_station_is_served_and_the_backlog_replayed_in_order(tmp_path):
    tag = unique()
    async with central_system(version="2.0.1") as cs:
        async with running_site(local_config(tmp_path, cs.port, accept_unknown_id_tags=True)) as site, \
                station(site) as sim, api_client(site) as api:
            await sim.boot()
            await sim.status(1, "Occupied")
            started = await sim.start_transaction(1, tag, meterStart=100, timestamp="2026-01-01T10:00:00.000Z")
            await cs.next_call("TransactionEvent", payload={"eventType": "Started"})
            await eventually(lambda: link_drained(site), what="the start answered")

            await cs.cmd("cut")
            await eventually(lambda: link_down(site), what="the link seen down")
            for minute, wh in ((5, 500), (6, 600)):
                await sim.meter(1, energyWh=wh, timestamp=f"2026-01-01T10:0{minute}:00.000Z")
            await sim.stop(1, meterStop=800, timestamp="2026-01-01T10:10:00.000Z")  # answered by the site
            ours = (await api.get("/api/v1/transactions", params={"chargeBoxId": CHARGER})).json()["transactions"][0]
            assert (ours["status"], ours["energyDelivered"]) == ("completed", 0.7)
            assert (await upstream_link(site))["queued"] == 3

            await cs.cmd("resume")
            await cs.next_call("TransactionEvent", timeout=15, payload={"eventType": "Ended"})
            after_cut = [(e["action"], e["payload"]) for e in cs.calls()][3:]  # boot, status, start before
            assert [action for action, _ in after_cut] == ["BootNotification", *["TransactionEvent"] * 3]
            events = [payload for _, payload in after_cut[1:]]
            assert [e["eventType"] for e in events] == ["Updated", "Updated", "Ended"]
            assert [e["timestamp"] for e in events] == [  # the original times, in order
                "2026-01-01T10:05:00.000Z", "2026-01-01T10:06:00.000Z", "2026-01-01T10:10:00.000Z"]
            assert {e["transactionInfo"]["transactionId"] for e in events} == {started["transactionId"]}
            await eventually(lambda: link_drained(site), what="the queue emptied")
