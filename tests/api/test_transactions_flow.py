"""Remote start to completed books, driven by the independent simulated charger (a subprocess)."""

from __future__ import annotations

import pytest
import trio

from controller.simulators.charger_process import SimulatedCharger
from tests.support import CHARGER, eventually, ocpp_url, transaction_status

SEED_START_NOTE = "Transaction will start when vehicle is connected and ready"
SEED_STOP_NOTE = "Transaction will stop shortly. Final details available after StopTransaction is received."


@pytest.fixture
async def sim(site, nursery):
    """CHARGER-001 (2 connectors), booted, connector 1 Preparing."""
    charger = await SimulatedCharger.start(nursery, ocpp_url(site, CHARGER), connectors=2)
    assert (await charger.boot())["status"] == "Accepted"
    await charger.status(0, "Available")
    await charger.status(1, "Preparing")
    yield charger
    await charger.aclose()


async def test_remote_start_meter_values_remote_stop(site, api, sim):
    await sim.meter(1, energyWh=1000)
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "USER123"})
    assert response.status_code == 202, response.text
    body = response.json()
    tx = body["transactionId"]
    assert body == {
        "message": "Remote start accepted by charger",
        "transactionId": tx,
        "chargeBoxId": CHARGER,
        "connectorId": 1,
        "status": "pending",
        "note": SEED_START_NOTE,
    }
    assert list(body) == ["message", "transactionId", "chargeBoxId", "connectorId", "status", "note"]
    # the charger answers Accepted, then sends StartTransaction: it gets the same id
    sent = await sim.next_event("sent", action="StartTransaction")
    assert sent["response"]["transactionId"] == tx
    assert sent["response"]["idTagInfo"]["status"] == "Accepted"
    assert await transaction_status(api, tx) == "active"

    await sim.meter(1, energyWh=6000, powerW=7200)
    connector = (await api.get(f"/api/v1/chargers/{CHARGER}")).json()["connectors"][1]
    assert (connector["energyWh"], connector["powerW"]) == (6000, 7200)
    running = (await api.get(f"/api/v1/transactions/{tx}")).json()
    assert running["energyDelivered"] == 5.0 and running["status"] == "active"

    await sim.cmd("auto", enabled=False)  # so the stop below can be seen in `stopping`
    response = await api.post(f"/api/v1/transactions/{tx}/stop")
    assert response.status_code == 202, response.text
    assert response.json() == {
        "message": "Remote stop accepted by charger",
        "transactionId": tx,
        "chargeBoxId": CHARGER,
        "status": "stopping",
        "note": SEED_STOP_NOTE,
    }
    assert await transaction_status(api, tx) == "stopping"
    call = await sim.next_event("call", action="RemoteStopTransaction")
    assert call["payload"] == {"transactionId": tx}
    await sim.stop(1, meterStop=15000, reason="Remote")
    detail = (await api.get(f"/api/v1/transactions/{tx}")).json()
    assert detail["status"] == "completed"
    assert (detail["meterStart"], detail["meterStop"], detail["energyDelivered"]) == (1000, 15000, 14.0)
    assert detail["stopReason"] == "Remote" and detail["remoteStarted"] is True
    assert detail["id"] == f"txn_{tx}" and detail["idTag"] == "USER123" and detail["connectorId"] == 1
    assert detail["durationMinutes"] == 0
    assert detail["startTime"] <= detail["stopTime"]
    # a stopped transaction cannot be stopped again
    again = await api.post(f"/api/v1/transactions/{tx}/stop")
    assert again.status_code == 409 and again.json()["error"] == "NotInTransaction"


async def test_remote_stop_with_auto_charger_completes(site, api, sim):
    start = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "U1"})
    tx = start.json()["transactionId"]
    await sim.next_event("sent", action="StartTransaction")
    assert (await api.post(f"/api/v1/transactions/{tx}/stop")).status_code == 202
    stopped = await sim.next_event("sent", action="StopTransaction")
    assert stopped["request"]["transactionId"] == tx and "response" in stopped
    assert await transaction_status(api, tx) == "completed"
    assert (await api.get(f"/api/v1/transactions/{tx}")).json()["stopReason"] == "Remote"


async def test_list_newest_first_with_filters(site, api, sim):
    ids = []
    for connector, tag in ((1, "A"), (2, "B")):
        await sim.status(connector, "Preparing")
        response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": connector, "idTag": tag})
        ids.append(response.json()["transactionId"])
        await sim.next_event("sent", action="StartTransaction")
    await sim.stop(1)
    listing = (await api.get("/api/v1/transactions")).json()
    assert [t["transactionId"] for t in listing["transactions"]] == ids[::-1]
    assert listing["pagination"] == {"total": 2, "limit": 50, "offset": 0, "nextCursor": None}
    first = listing["transactions"][1]
    assert set(first) == {"id", "transactionId", "chargeBoxId", "connectorId", "idTag", "status", "energyDelivered",
                          "durationMinutes", "startTime", "stopTime"}
    assert first["status"] == "completed" and first["idTag"] == "A"

    async def ids_for(**params):
        page = (await api.get("/api/v1/transactions", params=params)).json()
        return [t["transactionId"] for t in page["transactions"]], page["pagination"]

    assert (await ids_for(status="active"))[0] == [ids[1]]
    assert (await ids_for(status="completed"))[0] == [ids[0]]
    assert (await ids_for(status="pending"))[0] == []
    assert (await ids_for(chargeBoxId=CHARGER))[0] == ids[::-1]
    assert (await ids_for(chargeBoxId="CHARGER-002"))[0] == []
    assert await ids_for(limit=1, offset=1) == ([ids[0]], {"total": 2, "limit": 1, "offset": 1, "nextCursor": None})
    for bad in ({"limit": 0}, {"limit": "x"}, {"offset": -1}, {"status": "weird"}, {"colour": "red"}):
        response = await api.get("/api/v1/transactions", params=bad)
        assert response.status_code in (400, 422), bad
        assert next(iter(bad)) in response.json()["message"]


@pytest.mark.site(remote_start_timeout_s=0.3)
async def test_remote_start_that_never_starts_fails(site, api, sim):
    await sim.cmd("auto", enabled=False)
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "U"})
    tx = response.json()["transactionId"]
    await eventually(lambda: _status_is(api, tx, "failed"), what="failed status")
    page = (await api.get("/api/v1/transactions", params={"status": "failed"})).json()
    assert [t["transactionId"] for t in page["transactions"]] == [tx]


async def _status_is(api, tx, status):
    return await transaction_status(api, tx) == status


async def test_remote_start_rejected_by_charger(site, api, sim):
    await sim.respond("RemoteStartTransaction", payload={"status": "Rejected"})
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "U"})
    assert response.status_code == 409 and response.json()["error"] == "ChargerRejected"
    page = (await api.get("/api/v1/transactions", params={"status": "failed"})).json()
    assert page["pagination"]["total"] == 1


@pytest.mark.site(call_timeout_s=0.5)
async def test_charger_does_not_answer_in_time(site, api, sim):
    await sim.respond("RemoteStartTransaction", no_answer=True)
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "U"})
    assert response.status_code == 504 and response.json()["error"] == "ChargerTimeout"
    await sim.respond("Reset", no_answer=True)
    response = await api.post(f"/api/v1/chargers/{CHARGER}/operations/Reset", json={"type": "Soft"})
    assert response.status_code == 504


async def test_charger_drops_mid_call(site, api, sim):
    await sim.respond("RemoteStartTransaction", no_answer=True)
    results = []

    async def remote_start():
        results.append(await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "U"}))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(remote_start)
        await sim.next_event("call", action="RemoteStartTransaction")
        await sim.cmd("disconnect", abrupt=True)
    assert results[0].status_code == 409 and results[0].json()["error"] == "ChargerOffline"
    await eventually(lambda: not site.chargers.get(CHARGER).online, what="charger offline")
    offline = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "U"})
    assert offline.status_code == 409 and offline.json()["error"] == "ChargerOffline"
    # it comes back and carries on
    await sim.cmd("reconnect")
    await sim.respond("RemoteStartTransaction")
    await sim.boot()
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "U"})
    assert response.status_code == 202, response.text


async def test_operations_forwarded_as_given(site, api, sim):
    body = {"key": "HeartbeatInterval", "value": "60"}
    response = await api.post(f"/api/v1/chargers/{CHARGER}/operations/ChangeConfiguration", json=body)
    assert response.status_code == 200 and response.json() == {"status": "Accepted"}
    call = await sim.next_event("call", action="ChangeConfiguration")
    assert list(call["payload"].items()) == list(body.items())
    # key order preserved exactly as sent (raw bytes, not re-sorted)
    raw = b'{"value":"x","key":"MeterValueSampleInterval"}'
    await api.post(f"/api/v1/chargers/{CHARGER}/operations/ChangeConfiguration", content=raw,
                   headers={"Content-Type": "application/json"})
    call = await sim.next_event("call", action="ChangeConfiguration")
    assert list(call["payload"]) == ["value", "key"]

    got = await api.post(f"/api/v1/chargers/{CHARGER}/operations/GetConfiguration", json={"key": ["HeartbeatInterval"]})
    assert got.json()["configurationKey"][0]["key"] == "HeartbeatInterval"
    transfer = await api.post(f"/api/v1/chargers/{CHARGER}/operations/DataTransfer", json={"vendorId": "x"})
    assert transfer.status_code == 200 and "status" in transfer.json()
    await sim.respond("UnlockConnector", payload={"unexpected": True})  # invalid answer: passed on as given
    unlock = await api.post(f"/api/v1/chargers/{CHARGER}/operations/UnlockConnector", json={"connectorId": 1})
    assert unlock.status_code == 200 and unlock.json() == {"unexpected": True}
    # invalid requests are refused before anything is sent
    bad = await api.post(f"/api/v1/chargers/{CHARGER}/operations/Reset", json={"type": "Gentle"})
    assert bad.status_code == 422 and "type" in bad.json()["message"]
    unknown = await api.post(f"/api/v1/chargers/{CHARGER}/operations/Frobnicate", json={})
    assert unknown.status_code == 400 and "ocpp1.6" in unknown.json()["message"]
    not_cs = await api.post(f"/api/v1/chargers/{CHARGER}/operations/BootNotification", json={})
    assert not_cs.status_code == 400 and not_cs.json()["error"] == "OperationNotSupported"


PROFILE = {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
           "chargingProfileKind": "Absolute",
           "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.3}]}}
CS_OPERATIONS = {
    "CancelReservation": {"reservationId": 1},
    "ChangeAvailability": {"connectorId": 0, "type": "Inoperative"},
    "ChangeConfiguration": {"key": "HeartbeatInterval", "value": "60"},
    "ClearCache": {},
    "ClearChargingProfile": {},
    "DataTransfer": {"vendorId": "com.example", "data": "x"},
    "GetCompositeSchedule": {"connectorId": 1, "duration": 60},
    "GetConfiguration": {},
    "GetDiagnostics": {"location": "ftp://example.com/diag"},
    "GetLocalListVersion": {},
    "RemoteStartTransaction": {"idTag": "A", "connectorId": 1},
    "RemoteStopTransaction": {"transactionId": 1},
    "ReserveNow": {"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "A", "reservationId": 1},
    "Reset": {"type": "Soft"},
    "SendLocalList": {"listVersion": 1, "updateType": "Full", "localAuthorizationList": [{"idTag": "A"}]},
    "SetChargingProfile": {"connectorId": 1, "csChargingProfiles": PROFILE},
    "TriggerMessage": {"requestedMessage": "Heartbeat"},
    "UnlockConnector": {"connectorId": 1},
    "UpdateFirmware": {"location": "http://example.com/fw.bin", "retrieveDate": "2030-01-01T00:00:00Z"},
}


async def test_every_cs_operation_is_forwarded(site, api, sim):
    from controller.csms import frames
    from controller.csms.v16 import schemas as schemas16

    assert set(CS_OPERATIONS) == schemas16.CENTRAL_ACTIONS
    await sim.cmd("auto", enabled=False)
    for action, payload in CS_OPERATIONS.items():
        response = await api.post(f"/api/v1/chargers/{CHARGER}/operations/{action}", json=payload)
        assert response.status_code == 200, (action, response.text)
        schemas16.validate(frames.CALLRESULT, action, response.json())
        call = await sim.next_event("call", action=action)
        assert call["payload"] == payload


async def test_authorize_of_a_remote_start_tag_is_accepted(site, api, sim):
    """A charger that authorizes remote-start tags (AuthorizeRemoteTxRequests) may start our charge."""
    assert (await sim.cmd("authorize", idTag="NOT-LISTED"))["idTagInfo"]["status"] == "Invalid"
    await sim.cmd("auto", enabled=False)
    response = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start", json={"connectorId": 1, "idTag": "NOT-LISTED"})
    assert response.status_code == 202, response.text
    assert (await sim.cmd("authorize", idTag="not-listed"))["idTagInfo"]["status"] == "Accepted"
