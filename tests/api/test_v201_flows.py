"""The REST API's flows against the independent OCPP 2.0.1 simulated station (a subprocess):
the same user-facing contract as for 1.6 (tests/api/test_transactions_flow.py), whatever the
station calls things on the wire.

In 2.0.1 the station names its transactions: the books keep our integer id (the API's
`transactionId`, sent as the RequestStartTransaction's remoteStartId) and the station's beside it
(`ocppTransactionId`). A connector reported Occupied has a car plugged in; with a charge running
on it, or the car of a charge that ended still plugged in (1.6's Finishing), it is busy.
"""

from __future__ import annotations

import pytest
import trio

from controller.simulators.charger_process import SimulatedCharger
from tests.api.test_transactions_flow import SEED_START_NOTE, SEED_STOP_NOTE
from tests.stations import (
    V201,
    booked_id,
    next_start,
    next_stop,
    station_transaction_id,
)
from tests.support import (
    CHARGER,
    CHARGER_2,
    api_client,
    eventually,
    make_config,
    ocpp_url,
    raw_charger,
    running_site,
    transaction_status,
)
from controller.timefmt import iso, utcnow

START_URL = f"/api/v1/chargers/{CHARGER}/remote-start"
OPERATIONS = f"/api/v1/chargers/{CHARGER}/operations"


@pytest.fixture
async def sim(site, nursery):
    """CHARGER-001 as a 2.0.1 station (2 EVSEs), booted, a car plugged in on EVSE 1."""
    station = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2, version=V201)
    assert (await station.boot())["status"] == "Accepted"
    await station.status(1, "Occupied")
    await station.status(2, "Available")
    yield station
    await station.aclose()


async def detail(api, tx: int) -> dict:
    response = await api.get(f"/api/v1/transactions/{tx}")
    assert response.status_code == 200, response.text
    return response.json()


async def connector(api, n: int, charger_id: str = CHARGER) -> dict:
    charger = (await api.get(f"/api/v1/chargers/{charger_id}")).json()
    return next(c for c in charger["connectors"] if c["connectorId"] == n)


async def test_remote_start_meter_values_remote_stop(site, api, sim):
    await sim.meter(1, energyWh=1000)  # before the charge: the station's register reads 1000 Wh
    response = await api.post(START_URL, json={"connectorId": 1, "idTag": "USER123"})
    assert response.status_code == 202, response.text
    body = response.json()
    tx = body["transactionId"]
    assert body == {"message": "Remote start accepted by charger", "transactionId": tx, "chargeBoxId": CHARGER,
                    "connectorId": 1, "status": "pending", "note": SEED_START_NOTE}
    assert list(body) == ["message", "transactionId", "chargeBoxId", "connectorId", "status", "note"]

    call = await sim.next_event("call", action="RequestStartTransaction")
    assert call["payload"]["remoteStartId"] == tx and call["payload"]["evseId"] == 1
    assert call["payload"]["idToken"] == {"idToken": "USER123", "type": "ISO14443"}  # not listed: a card
    started = await next_start(sim, connector=1)
    assert started["request"]["transactionInfo"]["remoteStartId"] == tx
    assert started["response"]["idTokenInfo"]["status"] == "Accepted"
    station_tx = station_transaction_id(started)
    assert await booked_id(site, CHARGER, started) == tx  # booked on the id the API gave
    running = await detail(api, tx)
    assert (running["status"], running["ocppTransactionId"], running["meterStart"]) == ("active", station_tx, 1000)
    assert (running["mode"], running["remoteStarted"], running["idTagStatus"]) == ("api", True, "Accepted")

    await sim.meter(1, energyWh=6000, powerW=7200)  # a TransactionEvent Updated
    c = await connector(api, 1)
    assert (c["energyWh"], c["powerW"], c["status"]) == (6000, 7200, "Occupied")
    running = await detail(api, tx)
    assert running["energyDelivered"] == 5.0 and running["status"] == "active"

    await sim.cmd("auto", enabled=False)  # so the stop below can be seen in `stopping`
    response = await api.post(f"/api/v1/transactions/{tx}/stop")
    assert response.status_code == 202, response.text
    assert response.json() == {"message": "Remote stop accepted by charger", "transactionId": tx,
                               "chargeBoxId": CHARGER, "status": "stopping", "note": SEED_STOP_NOTE}
    assert await transaction_status(api, tx) == "stopping"
    call = await sim.next_event("call", action="RequestStopTransaction")
    assert call["payload"] == {"transactionId": station_tx}  # the station's name for it, not ours
    await sim.stop(1, meterStop=15000)  # Remote: the stop the station accepted
    done = await detail(api, tx)
    assert done["status"] == "completed"
    assert (done["meterStart"], done["meterStop"], done["energyDelivered"]) == (1000, 15000, 14.0)
    assert (done["stopReason"], done["remoteStarted"], done["mode"]) == ("Remote", True, "api")
    assert (done["id"], done["idTag"], done["connectorId"], done["chargeBoxId"]) == (f"txn_{tx}", "USER123", 1,
                                                                                   CHARGER)
    assert done["durationMinutes"] == 0 and done["startTime"] <= done["stopTime"]
    again = await api.post(f"/api/v1/transactions/{tx}/stop")
    assert again.status_code == 409 and again.json()["error"] == "NotInTransaction"
    listing = (await api.get("/api/v1/transactions", params={"chargeBoxId": CHARGER})).json()
    assert [(t["transactionId"], t["status"], t["energyDelivered"]) for t in listing["transactions"]] == [
        (tx, "completed", 14.0)]


async def test_remote_stop_with_auto_station_completes(site, api, sim):
    start = await api.post(START_URL, json={"connectorId": 1, "idTag": "U1"})
    tx = start.json()["transactionId"]
    started = await next_start(sim, connector=1)
    assert await transaction_status(api, tx) == "active"
    assert (await api.post(f"/api/v1/transactions/{tx}/stop")).status_code == 202
    stopped = await next_stop(sim)
    assert station_transaction_id(stopped) == station_transaction_id(started)
    done = await detail(api, tx)
    assert (done["status"], done["stopReason"]) == ("completed", "Remote")
    # the cable stays in after the charge (the station says Occupied again; 1.6 says Finishing): that
    # car has had its charge, so no new start on it until it is unplugged and a car plugged in again
    await sim.next_event("sent", action="StatusNotification")
    await sim.next_event("sent", action="StatusNotification")
    again = await api.post(START_URL, json={"connectorId": 1, "idTag": "U2"})
    assert again.status_code == 409 and again.json()["error"] == "ConnectorNotPreparing"
    await sim.status(1, "Available")
    await sim.status(1, "Occupied")
    again = await api.post(START_URL, json={"connectorId": 1, "idTag": "U2"})
    assert again.status_code == 202, again.text


async def test_a_remote_start_names_the_tag_with_its_listed_token_type(site, api, sim):
    """Tags are matched by value; the type on the list is how the station is told of the tag."""
    assert (await api.put("/api/v1/id-tags/PHONE-1", json={"tokenType": "eMAID"})).status_code == 200
    assert (await api.post(START_URL, json={"connectorId": 1, "idTag": "PHONE-1"})).status_code == 202
    call = await sim.next_event("call", action="RequestStartTransaction")
    assert call["payload"]["idToken"] == {"idToken": "PHONE-1", "type": "eMAID"}
    started = await next_start(sim, connector=1)
    assert started["response"]["idTokenInfo"]["status"] == "Accepted"


async def test_remote_start_rejected_by_station(site, api, sim):
    await sim.respond("RequestStartTransaction", payload={"status": "Rejected"})
    response = await api.post(START_URL, json={"connectorId": 1, "idTag": "U"})
    assert response.status_code == 409 and response.json()["error"] == "ChargerRejected"
    page = (await api.get("/api/v1/transactions", params={"status": "failed"})).json()
    assert page["pagination"]["total"] == 1
    (failed,) = page["transactions"]
    assert (failed["connectorId"], failed["idTag"]) == (1, "U")
    assert (await detail(api, failed["transactionId"]))["ocppTransactionId"] is None


@pytest.mark.site(call_timeout_s=0.5)
async def test_station_does_not_answer_in_time(site, api, sim):
    await sim.respond("RequestStartTransaction", no_answer=True)
    response = await api.post(START_URL, json={"connectorId": 1, "idTag": "U"})
    assert response.status_code == 504 and response.json()["error"] == "ChargerTimeout"
    await sim.respond("Reset", no_answer=True)
    response = await api.post(f"{OPERATIONS}/Reset", json={"type": "Immediate"})
    assert response.status_code == 504 and response.json()["error"] == "ChargerTimeout"


async def test_station_drops_mid_call(site, api, sim):
    await sim.respond("RequestStartTransaction", no_answer=True)
    results = []

    async def remote_start():
        results.append(await api.post(START_URL, json={"connectorId": 1, "idTag": "U"}))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(remote_start)
        await sim.next_event("call", action="RequestStartTransaction")
        await sim.cmd("disconnect", abrupt=True)
    assert results[0].status_code == 409 and results[0].json()["error"] == "ChargerOffline"
    await eventually(lambda: not site.chargers.get(CHARGER).online, what="station offline")
    assert (await api.get(f"/api/v1/chargers/{CHARGER}")).json()["online"] is False
    offline = await api.post(START_URL, json={"connectorId": 1, "idTag": "U"})
    assert offline.status_code == 409 and offline.json()["error"] == "ChargerOffline"
    # it comes back and carries on
    await sim.cmd("reconnect")
    await sim.respond("RequestStartTransaction")
    await sim.boot()
    response = await api.post(START_URL, json={"connectorId": 1, "idTag": "U"})
    assert response.status_code == 202, response.text
    tx = response.json()["transactionId"]
    assert await booked_id(site, CHARGER, await next_start(sim, connector=1)) == tx
    assert await transaction_status(api, tx) == "active"


async def test_remote_start_needs_a_plugged_connector(site, api, sim):
    response = await api.post(START_URL, json={"connectorId": 2, "idTag": "U"})  # Available: nothing plugged
    assert response.status_code == 409 and response.json()["error"] == "ConnectorNotPreparing"
    assert "Available" in response.json()["message"]
    assert not any(e.get("action") == "RequestStartTransaction" for e in sim.events)
    # Occupied with a charge running on it is busy, not plugged-and-waiting
    tx = (await api.post(START_URL, json={"connectorId": 1, "idTag": "U"})).json()["transactionId"]
    await next_start(sim, connector=1)
    await sim.next_event("sent", action="StatusNotification")  # the station's Occupied before its start
    assert await transaction_status(api, tx) == "active"
    busy = await api.post(START_URL, json={"connectorId": 1, "idTag": "V"})
    assert busy.status_code == 409 and busy.json()["error"] == "ConnectorNotPreparing"
    # ... also after the station repeats its Occupied while the charge runs
    assert (await api.post(f"{OPERATIONS}/TriggerMessage", json={
        "requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}})).json()["status"] == "Accepted"
    await sim.next_event("sent", action="StatusNotification")
    busy = await api.post(START_URL, json={"connectorId": 1, "idTag": "V"})
    assert busy.status_code == 409 and busy.json()["error"] == "ConnectorNotPreparing"
    unknown = await api.post(START_URL, json={"connectorId": 3, "idTag": "V"})
    assert unknown.status_code == 422


async def test_operations_of_2_0_1(site, api, sim):
    async def operation(action: str, payload: dict) -> dict:
        response = await api.post(f"{OPERATIONS}/{action}", json=payload)
        assert response.status_code == 200, (action, response.text)
        call = await sim.next_event("call", action=action)
        assert call["payload"] == payload
        return response.json()

    heartbeat = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
    got = await operation("GetVariables", {"getVariableData": [heartbeat]})
    assert [(r["attributeStatus"], r["attributeValue"]) for r in got["getVariableResult"]] == [("Accepted", "300")]
    put = await operation("SetVariables", {"setVariableData": [{**heartbeat, "attributeValue": "60"}]})
    assert [r["attributeStatus"] for r in put["setVariableResult"]] == ["Accepted"]
    got = await operation("GetVariables", {"getVariableData": [heartbeat]})
    assert got["getVariableResult"][0]["attributeValue"] == "60"

    assert (await operation("GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"})) == {
        "status": "Accepted"}
    report = await sim.next_event("sent", action="NotifyReport")
    assert report["response"] == {}
    settings = site.chargers.get(CHARGER).settings  # the station's device model, as reported
    assert settings["OCPPCommCtrlr.HeartbeatInterval"] == "60"
    assert settings["SecurityCtrlr.Identity"] == CHARGER

    assert (await operation("Reset", {"type": "OnIdle"})) == {"status": "Accepted"}
    assert (await operation("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 2}})) == {
        "status": "Accepted"}
    before = (await api.get(f"/api/v1/chargers/{CHARGER}")).json()["lastHeartbeat"]
    assert (await operation("TriggerMessage", {"requestedMessage": "Heartbeat"})) == {"status": "Accepted"}
    await sim.next_event("sent", action="Heartbeat")
    after = (await api.get(f"/api/v1/chargers/{CHARGER}")).json()["lastHeartbeat"]
    assert after and after != before
    assert (await operation("UnlockConnector", {"evseId": 2, "connectorId": 1})) == {"status": "Unlocked"}

    firmware = {"requestId": 7, "firmware": {"location": "http://example.com/fw.bin",
                                             "retrieveDateTime": "2030-01-01T00:00:00Z"}}
    assert (await operation("UpdateFirmware", firmware)) == {"status": "Accepted"}
    await eventually(lambda: _charger_field(api, "firmwareStatus", "Installed"), what="firmware Installed")
    log_request = {"logType": "DiagnosticsLog", "requestId": 8, "log": {"remoteLocation": "ftp://example.com/logs"}}
    assert (await operation("GetLog", log_request)) == {"status": "Accepted", "filename": "evedge-sim.log"}
    await eventually(lambda: _charger_field(api, "logStatus", "Uploaded"), what="log Uploaded")

    # 1.6's operations are not 2.0.1's: refused before anything is sent, naming the protocol
    for action, payload in (("RemoteStartTransaction", {"connectorId": 1, "idTag": "X"}),
                            ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "60"}),
                            ("GetDiagnostics", {"location": "ftp://example.com/diag"})):
        refused = await api.post(f"{OPERATIONS}/{action}", json=payload)
        assert refused.status_code == 400, (action, refused.text)
        assert refused.json()["error"] == "OperationNotSupported" and "ocpp2.0.1" in refused.json()["message"]
    bad = await api.post(f"{OPERATIONS}/Reset", json={"type": "Soft"})  # 1.6's word, not 2.0.1's
    assert bad.status_code == 422 and "type" in bad.json()["message"]
    calls = [e["action"] for e in sim.events if e["event"] == "call"]
    assert not {"RemoteStartTransaction", "ChangeConfiguration", "GetDiagnostics"} & set(calls)
    assert calls.count("Reset") == 1


async def _charger_field(api, field: str, value: str) -> bool:
    return (await api.get(f"/api/v1/chargers/{CHARGER}")).json()[field] == value


async def test_authorize_of_a_remote_start_tag_is_accepted(site, api, sim):
    """A station that authorizes remote-start tags (AuthCtrlr.AuthorizeRemoteStart) may start our charge."""
    assert (await sim.authorize("NOT-LISTED"))["idTokenInfo"]["status"] == "Invalid"
    await sim.cmd("auto", enabled=False)
    response = await api.post(START_URL, json={"connectorId": 1, "idTag": "NOT-LISTED"})
    assert response.status_code == 202, response.text
    assert (await sim.authorize("not-listed"))["idTokenInfo"]["status"] == "Accepted"
    started = await sim.start(connector=1, idTag="NOT-LISTED", meterStart=0)
    assert started["idTokenInfo"]["status"] == "Accepted"
    assert await transaction_status(api, response.json()["transactionId"]) == "active"


async def test_a_charge_started_with_a_card_at_the_station(site, api, sim):
    assert (await api.put("/api/v1/id-tags/CARD-7", json={"status": "Accepted"})).status_code == 200
    started = await sim.start(connector=1, idTag="CARD-7", meterStart=100)
    assert started["idTokenInfo"]["status"] == "Accepted"
    station_tx = started["transactionId"]
    (summary,) = (await api.get("/api/v1/transactions", params={"status": "active"})).json()["transactions"]
    tx = summary["transactionId"]
    running = await detail(api, tx)
    assert (running["mode"], running["remoteStarted"], running["ocppTransactionId"]) == ("local", False, station_tx)
    assert (running["idTag"], running["idTagStatus"], running["meterStart"]) == ("CARD-7", "Accepted", 100)
    # the connector is busy: no remote start on top of a running charge
    busy = await api.post(START_URL, json={"connectorId": 1, "idTag": "V"})
    assert busy.status_code == 409 and busy.json()["error"] == "ConnectorNotPreparing"
    await sim.meter(1, energyWh=1100)
    assert (await detail(api, tx))["energyDelivered"] == 1.0
    await sim.stop(1, meterStop=2100, idTag="CARD-7")
    done = await detail(api, tx)
    assert (done["status"], done["meterStop"], done["energyDelivered"], done["stopReason"]) == (
        "completed", 2100, 2.0, "Local")
    # a remote stop of a station's own charge names it by the station's id
    started = await sim.start(connector=1, idTag="CARD-7", meterStart=2100)
    (summary,) = (await api.get("/api/v1/transactions", params={"status": "active"})).json()["transactions"]
    assert (await api.post(f"/api/v1/transactions/{summary['transactionId']}/stop")).status_code == 202
    call = await sim.next_event("call", action="RequestStopTransaction")
    assert call["payload"] == {"transactionId": started["transactionId"]}
    await next_stop(sim)
    assert await transaction_status(api, summary["transactionId"]) == "completed"


async def test_the_api_shows_the_protocol(site, api, sim):
    charger = (await api.get(f"/api/v1/chargers/{CHARGER}")).json()
    assert (charger["protocol"], charger["online"], charger["vendor"]) == ("ocpp2.0.1", True, "evedge-sim")
    assert [(c["connectorId"], c["status"]) for c in charger["connectors"] if c["connectorId"]] == [
        (1, "Occupied"), (2, "Available")]
    listed = {c["chargeBoxId"]: c["protocol"] for c in (await api.get("/api/v1/chargers")).json()["chargers"]}
    assert listed[CHARGER] == "ocpp2.0.1"


async def test_a_1_6_and_a_2_0_1_charger_charge_side_by_side(site, api, sim, nursery):
    old = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER_2), connectors=1)  # OCPP 1.6
    try:
        assert (await old.boot())["status"] == "Accepted"
        await old.status(1, "Preparing")
        await sim.meter(1, energyWh=10_000)
        await old.meter(1, energyWh=500)
        new_tx = (await api.post(START_URL, json={"connectorId": 1, "idTag": "NEW"})).json()["transactionId"]
        old_tx = (await api.post(f"/api/v1/chargers/{CHARGER_2}/remote-start",
                                 json={"connectorId": 1, "idTag": "OLD"})).json()["transactionId"]
        assert await booked_id(site, CHARGER, await next_start(sim, 1)) == new_tx
        assert await booked_id(site, CHARGER_2, await next_start(old, 1)) == old_tx
        # both charging at once
        active = (await api.get("/api/v1/transactions", params={"status": "active"})).json()["transactions"]
        assert {(t["transactionId"], t["chargeBoxId"]) for t in active} == {(new_tx, CHARGER), (old_tx, CHARGER_2)}
        await sim.meter(1, energyWh=13_000, powerW=11_000)
        await old.meter(1, energyWh=2_500, powerW=3_600)
        assert (await detail(api, new_tx))["energyDelivered"] == 3.0
        assert (await detail(api, old_tx))["energyDelivered"] == 2.0
        assert ((await connector(api, 1))["powerW"], (await connector(api, 1, CHARGER_2))["powerW"]) == (11_000, 3_600)
        chargers = {c["chargeBoxId"]: c for c in (await api.get("/api/v1/chargers")).json()["chargers"]}
        assert (chargers[CHARGER]["protocol"], chargers[CHARGER_2]["protocol"]) == ("ocpp2.0.1", "ocpp1.6")
        assert chargers[CHARGER]["online"] and chargers[CHARGER_2]["online"]

        for tx in (new_tx, old_tx):
            assert (await api.post(f"/api/v1/transactions/{tx}/stop")).status_code == 202
        await next_stop(sim)
        await next_stop(old)
        new, old_detail = await detail(api, new_tx), await detail(api, old_tx)
        assert (new["status"], new["meterStart"], new["meterStop"], new["energyDelivered"]) == (
            "completed", 10_000, 13_000, 3.0)
        assert (old_detail["status"], old_detail["meterStart"], old_detail["meterStop"],
                old_detail["energyDelivered"]) == ("completed", 500, 2_500, 2.0)
        assert new["ocppTransactionId"] and old_detail["ocppTransactionId"] is None
        assert (new["stopReason"], old_detail["stopReason"]) == ("Remote", "Remote")
        page = (await api.get("/api/v1/transactions")).json()
        assert page["pagination"]["total"] == 2
        assert [t["chargeBoxId"] for t in page["transactions"]] == [CHARGER_2, CHARGER]  # newest first
    finally:
        await old.aclose()


@pytest.mark.parametrize("reported", [True, False], ids=["station-reports-its-status", "no-status-since"])
async def test_a_charge_running_across_a_controller_restart_keeps_its_connector_busy(tmp_path, nursery, reported):
    config = make_config(tmp_path)
    station = None
    try:
        async with running_site(config) as site, api_client(site) as api:
            station = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2, version=V201)
            await station.boot()
            await station.status(1, "Occupied")
            tx = (await api.post(START_URL, json={"connectorId": 1, "idTag": "U"})).json()["transactionId"]
            await next_start(station, connector=1)
        async with running_site(config) as site, api_client(site) as api:  # the controller restarted
            await station.cmd("reconnect", url=ocpp_url(site, CHARGER))  # the station did not restart
            await eventually(lambda: site.chargers.get(CHARGER).online, what="station back")
            assert await transaction_status(api, tx) == "active"
            if reported:  # Occupied again: the books say which car is charging
                await station.status(1, "Occupied")
            busy = await api.post(START_URL, json={"connectorId": 1, "idTag": "V"})
            assert busy.status_code == 409 and busy.json()["error"] == "ConnectorNotPreparing"
    finally:
        if station is not None:
            await station.aclose()


def _event(kind: str, seq_no: int, station_tx: str, evse: int, wh: float, **extra) -> dict:
    return {"eventType": kind, "timestamp": iso(utcnow()), "triggerReason": "MeterValuePeriodic", "seqNo": seq_no,
            "transactionInfo": {"transactionId": station_tx, **extra}, "evse": {"id": evse, "connectorId": 1},
            "meterValue": [{"timestamp": iso(utcnow()), "sampledValue": [
                {"value": wh, "measurand": "Energy.Active.Import.Register"}]}]}


async def test_after_a_reconnect_the_station_is_asked_about_each_running_charge(site, api):
    """GetTransactionStatus after a reconnect: a charge the station no longer runs and has nothing
    queued about is completed on its last reading; one it runs stays; one with messages still
    queued waits for them (its Ended among them)."""
    boot = {"reason": "PowerUp", "chargingStation": {"model": "raw", "vendorName": "raw"}}
    async with raw_charger(site, CHARGER, subprotocols=["ocpp2.0.1"]) as cp:
        assert (await cp.call("BootNotification", boot))[2]["status"] == "Accepted"
        for evse, station_tx in ((1, "gone-1"), (2, "runs-2")):
            started = await cp.call("TransactionEvent", {
                **_event("Started", 0, station_tx, evse, 1000), "idToken": {"idToken": "T", "type": "ISO14443"}})
            assert started[0] == 3, started
            assert (await cp.call("TransactionEvent", _event("Updated", 1, station_tx, evse, 1500)))[0] == 3
    listed = (await api.get("/api/v1/transactions", params={"status": "active"})).json()["transactions"]
    ids = {t["connectorId"]: t["transactionId"] for t in listed}

    async with raw_charger(site, CHARGER, subprotocols=["ocpp2.0.1"]) as cp:
        asked = await cp.answer_next_call({"messagesInQueue": False, "ongoingIndicator": False})
        assert asked[2:] == ["GetTransactionStatus", {"transactionId": "gone-1"}]
        asked = await cp.answer_next_call({"messagesInQueue": False, "ongoingIndicator": True})
        assert asked[3] == {"transactionId": "runs-2"}
        async def closed():
            return await transaction_status(api, ids[1]) == "completed"

        await eventually(closed, what="gone-1 completed")
        gone = await detail(api, ids[1])
        assert (gone["status"], gone["stopReason"], gone["meterStop"], gone["closedBy"]) == (
            "completed", "Other", 1500, "controller")
        assert await transaction_status(api, ids[2]) == "active"

    async with raw_charger(site, CHARGER, subprotocols=["ocpp2.0.1"]) as cp:
        asked = await cp.answer_next_call({"messagesInQueue": True, "ongoingIndicator": False})
        assert asked[3] == {"transactionId": "runs-2"}
        ended = await cp.call("TransactionEvent", {**_event("Ended", 2, "runs-2", 2, 1800, stoppedReason="EVDisconnected")})
        assert ended[0] == 3, ended
        runs = await detail(api, ids[2])
        assert (runs["status"], runs["stopReason"], runs["meterStop"], runs["closedBy"]) == (
            "completed", "EVDisconnected", 1800, "charger")
