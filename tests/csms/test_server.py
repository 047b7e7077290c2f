"""The OCPP listener and the charger-side handlers, over real sockets with raw OCPP-J clients."""

from __future__ import annotations

import logging

import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from tests.support import CHARGER, CHARGER_2, approve_answering, eventually, ocpp_url, raw_charger

BOOT = {"chargePointVendor": "raw", "chargePointModel": "raw"}


async def _charger(api, charger_id=CHARGER) -> dict:
    response = await api.get(f"/api/v1/chargers/{charger_id}")
    assert response.status_code == 200, response.text
    return response.json()


# -- connection ----------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/ocpp", "", "/steve/websocket/CentralSystemService", "/a/b"])
async def test_charger_id_is_the_last_path_segment(site, api, prefix):
    async with raw_charger(site, CHARGER, prefix=prefix) as cp:
        assert cp.ws.subprotocol == "ocpp1.6"
        assert (await cp.boot())["status"] == "Accepted"
        assert (await _charger(api))["online"] is True
    await eventually(lambda: not site.chargers.get(CHARGER).online, what="charger offline")


async def test_no_subprotocol_is_accepted_with_a_warning(site, caplog):
    caplog.set_level(logging.WARNING, "evedge.ocpp")
    async with raw_charger(site, CHARGER, subprotocols=[]) as cp:
        assert cp.ws.subprotocol is None
        assert (await cp.boot())["status"] == "Accepted"
    assert any("no subprotocol" in r.getMessage() for r in caplog.records)


async def test_other_subprotocols_only_are_refused(site):
    with pytest.raises(ConnectionRejected):
        async with open_websocket_url(ocpp_url(site, CHARGER), subprotocols=["ocpp2.1", "ocpp1.5"]):
            pass


@pytest.mark.site(unknown_chargers="reject")
async def test_unknown_charger_rejected(site, api):
    with pytest.raises(ConnectionRejected) as info:
        async with open_websocket_url(ocpp_url(site, "STRANGER"), subprotocols=["ocpp1.6"]):
            pass
    assert info.value.status_code == 404
    assert (await api.get("/api/v1/chargers/STRANGER")).status_code == 404
    # configured chargers still connect
    async with raw_charger(site, CHARGER) as cp:
        assert (await cp.boot())["status"] == "Accepted"


@pytest.mark.site(unknown_chargers="accept")
async def test_unknown_charger_accepted(site, api):
    async with raw_charger(site, "NEWBIE") as cp:
        assert (await cp.boot())["status"] == "Accepted"
        await cp.status(1, "Available")
        charger = await _charger(api, "NEWBIE")
        assert charger["registration"] == "accepted" and charger["online"] is True


async def test_unknown_charger_pending_until_approved(site, api):
    async with raw_charger(site, "NEWBIE") as cp:
        boot = await cp.boot()
        assert boot["status"] == "Pending"
        listed = {c["chargeBoxId"]: c for c in (await api.get("/api/v1/chargers")).json()["chargers"]}
        assert listed["NEWBIE"]["registration"] == "pending"
        assert listed["NEWBIE"]["vendor"] == "raw"
        # a pending charger may not do business yet
        reply = await cp.call("StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"})
        assert reply[0] == 4 and reply[2] == "SecurityError"
        assert (await cp.call("Heartbeat", {}))[0] == 3
        # approved: asked to boot again at once, not at the end of the interval it was given
        approved, trigger = await approve_answering(api, cp, "NEWBIE", {"status": "Accepted"})
        assert approved.status_code == 200
        assert approved.json()["registration"] == "accepted"
        assert trigger[2:] == ["TriggerMessage", {"requestedMessage": "BootNotification"}]
        assert (await cp.boot())["status"] == "Accepted"
        await cp.status(1, "Available")
    # approval is durable: the charger reconnects as accepted
    async with raw_charger(site, "NEWBIE") as cp:
        assert (await cp.boot())["status"] == "Accepted"


@pytest.mark.parametrize("answer", [{"status": "Rejected"}, None], ids=["declined", "callerror"])
async def test_approval_stands_when_the_charger_will_not_boot_now(site, api, answer):
    async with raw_charger(site, "NEWBIE") as cp:
        assert (await cp.boot())["status"] == "Pending"
        approved, _ = await approve_answering(api, cp, "NEWBIE", answer)
        assert approved.status_code == 200 and approved.json()["registration"] == "accepted"
        assert (await cp.boot())["status"] == "Accepted"  # at its next retry


async def test_rejected_charger_is_disconnected_and_refused(site, api):
    async with raw_charger(site, "NEWBIE") as cp:
        await cp.boot()
        response = await api.post("/api/v1/chargers/NEWBIE/reject")
        assert response.status_code == 200 and response.json()["registration"] == "rejected"
        with pytest.raises(Exception):
            await cp.receive()
    with pytest.raises(ConnectionRejected):
        async with open_websocket_url(ocpp_url(site, "NEWBIE"), subprotocols=["ocpp1.6"]):
            pass
    assert (await api.post(f"/api/v1/chargers/{CHARGER}/reject")).status_code == 409


# -- core profile handlers -----------------------------------------------------------------------


@pytest.mark.site(heartbeat_interval_s=77)
async def test_boot_and_heartbeat(site, api):
    async with raw_charger(site, CHARGER) as cp:
        reply = await cp.call("BootNotification", {**BOOT, "firmwareVersion": "1.2.3", "chargePointSerialNumber": "S1"})
        assert reply[0] == 3
        assert reply[2]["status"] == "Accepted" and reply[2]["interval"] == 77
        assert reply[2]["currentTime"].endswith("Z")
        beat = await cp.call("Heartbeat", {})
        assert beat[0] == 3 and beat[2]["currentTime"].endswith("Z")
        charger = await _charger(api)
        assert (charger["vendor"], charger["model"], charger["firmwareVersion"], charger["serialNumber"]) == (
            "raw", "raw", "1.2.3", "S1")
        assert charger["lastHeartbeat"] is not None


async def test_frames_go_out_compact(site):
    async with raw_charger(site, CHARGER) as cp:
        await cp.send([2, "c1", "BootNotification", BOOT])
        text = await cp.receive_text()
        assert ", " not in text and '": ' not in text and text.startswith('[3,"c1",{')
        await cp.send("[2, ")
        text = await cp.receive_text()
        assert text.startswith('[4,"-1","FormationViolation",') and ", " not in text


async def test_status_per_connector_and_connector_zero(site, api):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        await cp.status(0, "Available")
        await cp.status(1, "Preparing")
        await cp.status(2, "Faulted", "GroundFailure")
        await cp.status(2, "Unavailable", "NoError")
        connectors = {c["connectorId"]: c for c in (await _charger(api))["connectors"]}
        assert (connectors[0]["status"], connectors[0]["errorCode"]) == ("Available", "NoError")
        assert (connectors[1]["status"], connectors[1]["errorCode"]) == ("Preparing", "NoError")
        assert (connectors[2]["status"], connectors[2]["errorCode"]) == ("Unavailable", "NoError")
        reply = await cp.call("StatusNotification", {"connectorId": 1, "status": "Faulted", "errorCode": "OverVoltage",
                                                     "info": "phase 2", "vendorErrorCode": "E42"})
        assert reply[0] == 3
        c1 = (await _charger(api))["connectors"][1]
        assert (c1["status"], c1["errorCode"], c1["info"], c1["vendorErrorCode"]) == ("Faulted", "OverVoltage", "phase 2", "E42")


async def test_authorize_against_local_list(site, api):
    for body in ({"idTag": "GOOD", "expiryDate": "2099-01-01T00:00:00Z", "parentIdTag": "FLEET"},
                 {"idTag": "BLOCKED", "status": "Blocked"},
                 {"idTag": "OLD", "expiryDate": "2001-01-01T00:00:00Z"},
                 {"idTag": "GONE", "status": "Expired"},
                 {"idTag": "BAD", "status": "Invalid"}):
        assert (await api.post("/api/v1/id-tags", json=body)).status_code == 201
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()

        async def authorize(tag):
            reply = await cp.call("Authorize", {"idTag": tag})
            assert reply[0] == 3, reply
            return reply[2]["idTagInfo"]

        assert await authorize("GOOD") == {"status": "Accepted", "expiryDate": "2099-01-01T00:00:00.000Z",
                                           "parentIdTag": "FLEET"}
        assert await authorize("good") == (await authorize("GOOD"))  # IdToken is case-insensitive
        assert (await authorize("BLOCKED"))["status"] == "Blocked"
        assert (await authorize("OLD"))["status"] == "Expired"
        assert (await authorize("GONE"))["status"] == "Expired"
        assert (await authorize("BAD"))["status"] == "Invalid"
        assert await authorize("NOBODY") == {"status": "Invalid"}


@pytest.mark.site(accept_unknown_id_tags=True)
async def test_authorize_free_vend(site):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        assert (await cp.call("Authorize", {"idTag": "NOBODY"}))[2]["idTagInfo"]["status"] == "Accepted"


async def test_start_transaction_retry_gets_the_same_id(site, api):
    await api.post("/api/v1/id-tags", json={"idTag": "TAG1"})
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        start = {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000, "timestamp": "2026-02-06T12:00:00Z"}
        first = await cp.call("StartTransaction", start)
        again = await cp.call("StartTransaction", start)
        assert first[0] == 3 and first[2]["idTagInfo"]["status"] == "Accepted"
        assert again[2]["transactionId"] == first[2]["transactionId"]
        other = await cp.call("StartTransaction", {**start, "connectorId": 2})
        assert other[2]["transactionId"] != first[2]["transactionId"]
        # an unknown tag still gets a transaction, with Invalid
        unknown = await cp.call("StartTransaction", {**start, "idTag": "NOBODY", "meterStart": 5})
        assert unknown[2]["idTagInfo"]["status"] == "Invalid" and unknown[2]["transactionId"] > 0
    listing = (await api.get("/api/v1/transactions", params={"status": "active"})).json()
    assert listing["pagination"]["total"] == 2  # one charge per connector: the first on connector 1 was closed
    closed = (await api.get(f"/api/v1/transactions/{first[2]['transactionId']}")).json()
    assert (closed["status"], closed["closedBy"], closed["stopReason"]) == ("completed", "controller", "Other")


async def test_stop_unknown_transaction_is_answered_and_recorded(site, api):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        data = [{"timestamp": "2026-02-06T12:30:00Z", "sampledValue": [{"value": "1500", "context": "Transaction.End"}]}]
        reply = await cp.call("StopTransaction", {"transactionId": 4242, "meterStop": 1500, "idTag": "X",
                                                  "timestamp": "2026-02-06T12:45:00Z", "reason": "EVDisconnected",
                                                  "transactionData": data})
        assert reply[0] == 3 and reply[2]["idTagInfo"]["status"] == "Invalid"
        retry = await cp.call("StopTransaction", {"transactionId": 4242, "meterStop": 1500,
                                                  "timestamp": "2026-02-06T12:45:00Z", "reason": "EVDisconnected"})
        assert retry == [3, retry[1], {}]
    detail = (await api.get("/api/v1/transactions/4242")).json()
    assert detail["status"] == "completed" and detail["stopReason"] == "EVDisconnected"
    assert detail["meterStop"] == 1500 and detail["stopTime"] == "2026-02-06T12:45:00.000Z"
    from controller.store import transactions as q

    row = await site.store.read(q.get, 4242)
    assert '"Transaction.End"' in row["transaction_data"]


async def test_start_meter_stop_books(site, api):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        started = await cp.call("StartTransaction", {"connectorId": 2, "idTag": "T", "meterStart": 1000,
                                                     "timestamp": "2026-02-06T12:00:00Z"})
        tx = started[2]["transactionId"]
        meter = {"connectorId": 2, "transactionId": tx, "meterValue": [
            {"timestamp": "2026-02-06T12:10:00Z", "sampledValue": [
                {"value": "5.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                {"value": "7000", "measurand": "Power.Active.Import", "unit": "W"},
                {"value": "2300", "measurand": "Power.Active.Import", "unit": "W", "phase": "L1"}]}]}
        assert (await cp.call("MeterValues", meter))[::2] == [3, {}]
        c2 = (await _charger(api))["connectors"][2]
        assert (c2["energyWh"], c2["powerW"]) == (5500.0, 7000.0)
        running = (await api.get(f"/api/v1/transactions/{tx}")).json()
        assert running["status"] == "active" and running["energyDelivered"] == 4.5
        await cp.call("StopTransaction", {"transactionId": tx, "meterStop": 15000, "timestamp": "2026-02-06T12:45:00Z",
                                          "reason": "Local"})
    detail = (await api.get(f"/api/v1/transactions/{tx}")).json()
    assert {k: detail[k] for k in ("status", "meterStart", "meterStop", "energyDelivered", "durationMinutes",
                                   "startTime", "stopTime", "stopReason", "remoteStarted")} == {
        "status": "completed", "meterStart": 1000, "meterStop": 15000, "energyDelivered": 14.0,
        "durationMinutes": 45, "startTime": "2026-02-06T12:00:00.000Z", "stopTime": "2026-02-06T12:45:00.000Z",
        "stopReason": "Local", "remoteStarted": False}


async def test_data_transfer_firmware_and_diagnostics(site, api):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        reply = await cp.call("DataTransfer", {"vendorId": "com.example", "messageId": "x", "data": "y"})
        assert reply[2] == {"status": "UnknownVendorId"}
        assert (await cp.call("FirmwareStatusNotification", {"status": "Downloading"}))[0] == 3
        assert (await cp.call("DiagnosticsStatusNotification", {"status": "Uploaded"}))[0] == 3
        charger = await _charger(api)
        assert (charger["firmwareStatus"], charger["diagnosticsStatus"]) == ("Downloading", "Uploaded")


# -- frame validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{]", "FormationViolation"),
        ('{"not": "an array"}', "FormationViolation"),
        ('[2, "v1", "Heartbeat"]', "FormationViolation"),
        ('[7, "v1", "Heartbeat", {}]', "ProtocolError"),
        ('[2, "v1", "BootNotification", {"chargePointVendor": "x"}]', "ProtocolError"),
        ('[2, "v1", "BootNotification", {"chargePointVendor": 1, "chargePointModel": "m"}]', "TypeConstraintViolation"),
        ('[2, "v1", "StatusNotification", {"connectorId": 1, "status": "Nope", "errorCode": "NoError"}]',
         "PropertyConstraintViolation"),
        ('[2, "v1", "Heartbeat", {"extra": true}]', "FormationViolation"),
        ('[2, "v1", "StartTransaction", {"connectorId": 1, "idTag": "A", "meterStart": 0, "timestamp": "yesterday"}]',
         "TypeConstraintViolation"),
        ('[2, "v1", "Frobnicate", {}]', "NotImplemented"),
        ('[2, "v1", "Reset", {"type": "Soft"}]', "NotSupported"),
    ],
)
async def test_bad_frames_get_the_right_call_error(site, frame, code):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        await cp.send(frame)
        reply = await cp.receive()
        assert reply[0] == 4 and reply[2] == code, reply
        assert isinstance(reply[3], str) and isinstance(reply[4], dict)
        # the connection survives
        assert (await cp.call("Heartbeat", {}))[0] == 3


# -- isolation -----------------------------------------------------------------------------------


async def test_one_misbehaving_charger_does_not_affect_another(site, api):
    async with raw_charger(site, CHARGER_2) as good:
        await good.boot()
        for junk in ("\x00\x01", "[2,", '[3, "nobody", {}]', '[4, "nobody", "X", "y", {}]'):
            async with raw_charger(site, CHARGER) as bad:
                await bad.send(junk)
                await bad.ws.send_message(b"\xff\xfe binary")
        # a frame over the size limit closes only that connection
        async with raw_charger(site, CHARGER) as bad:
            await bad.send('[2,"big","DataTransfer",{"vendorId":"x","data":"' + "x" * 300_000 + '"}]')
            with pytest.raises(Exception):
                await bad.receive()
            assert bad.ws.closed is not None
        # a charger that vanishes while we call it
        async with raw_charger(site, CHARGER) as bad:
            await bad.boot()
            answers = []

            async def clear_cache():
                answers.append(await api.post(f"/api/v1/chargers/{CHARGER}/operations/ClearCache", json={}))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(clear_cache)
                assert (await bad.receive())[2] == "ClearCache"  # never answered
                await bad.ws.aclose()
            assert answers[0].status_code == 409 and answers[0].json()["error"] == "ChargerOffline"
        assert (await good.call("Heartbeat", {}))[0] == 3
        await good.status(1, "Available")
        assert (await _charger(api, CHARGER_2))["online"] is True


async def test_reconnect_replaces_the_old_connection(site, api):
    async with raw_charger(site, CHARGER) as old:
        await old.boot()
        async with raw_charger(site, CHARGER) as new:
            await new.boot()
            with pytest.raises(Exception):
                await old.receive()
            assert (await new.call("Heartbeat", {}))[0] == 3
            assert (await _charger(api))["online"] is True
