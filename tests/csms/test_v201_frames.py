"""OCPP 2.0.1 at the frame level: negotiation, compression, 2.0.1's error codes, and the books kept
from TransactionEvents however they arrive (out of order, repeated, an Ended without a Started).

A raw client sends exactly the frames each case needs; the flows through the independent 2.0.1
simulator are in tests/api/test_v201_flows.py.
"""

from __future__ import annotations


from contextlib import asynccontextmanager
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import trio
from trio_websocket import open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from tests.support import CHARGER, RawCharger, approve_answering, ocpp_url, transaction_status

STARTED_AT = "2026-05-01T10:00:00.000Z"


class Station(RawCharger):
    """A raw 2.0.1 client: frames as the test writes them."""

    async def boot(self) -> dict:
        reply = await self.call("BootNotification", {"reason": "PowerUp",
                                                     "chargingStation": {"model": "raw", "vendorName": "raw"}})
        assert reply[0] == 3, reply
        return reply[2]

    async def status(self, evse: int, status: str) -> None:
        reply = await self.call("StatusNotification", {"timestamp": STARTED_AT, "connectorStatus": status,
                                                      "evseId": evse, "connectorId": 1})
        assert reply == [3, reply[1], {}], reply

    async def event(self, event_type: str, txid: str, seq_no: int, *, evse: int | None = 1, id_tag: str | None = None,
                    wh: float | None = None, context: str = "Sample.Periodic", at: str = STARTED_AT,
                    **info: Any) -> list:
        payload: dict[str, Any] = {
            "eventType": event_type, "timestamp": at, "triggerReason": "Authorized" if event_type == "Started" else
            ("StopAuthorized" if event_type == "Ended" else "MeterValuePeriodic"),
            "seqNo": seq_no, "transactionInfo": {"transactionId": txid, **info},
        }
        if evse is not None:
            payload["evse"] = {"id": evse, "connectorId": 1}
        if id_tag is not None:
            payload["idToken"] = {"idToken": id_tag, "type": "ISO14443"}
        if wh is not None:
            payload["meterValue"] = [{"timestamp": at, "sampledValue": [
                {"value": wh, "context": context, "measurand": "Energy.Active.Import.Register",
                 "unitOfMeasure": {"unit": "Wh"}}]}]
        return await self.call("TransactionEvent", payload)


@asynccontextmanager
async def station(site, charger_id: str = CHARGER) -> AsyncIterator[Station]:
    async with open_websocket_url(ocpp_url(site, charger_id), subprotocols=["ocpp2.0.1"]) as ws:
        assert ws.subprotocol == "ocpp2.0.1"
        yield Station(ws)


async def books(api, charger_id: str = CHARGER) -> list[dict]:
    page = (await api.get("/api/v1/transactions", params={"chargeBoxId": charger_id})).json()
    return [(await api.get(f"/api/v1/transactions/{t['transactionId']}")).json() for t in page["transactions"]]


async def test_2_0_1_is_preferred_and_1_6_still_served(site, api):
    async with open_websocket_url(ocpp_url(site, CHARGER), subprotocols=["ocpp1.6", "ocpp2.0.1"]) as ws:
        assert ws.subprotocol == "ocpp2.0.1"
    async with open_websocket_url(ocpp_url(site, CHARGER), subprotocols=["ocpp1.6"]) as ws:
        assert ws.subprotocol == "ocpp1.6"


async def test_an_approved_pending_station_is_asked_to_boot_at_once(site, api):
    async with station(site, "NEW-201") as cp:
        assert (await cp.boot())["status"] == "Pending"
        approved, trigger = await approve_answering(api, cp, "NEW-201", {"status": "Accepted"})
        assert approved.json()["registration"] == "accepted" and approved.json()["protocol"] == "ocpp2.0.1"
        assert trigger[2:] == ["TriggerMessage", {"requestedMessage": "BootNotification"}]
        assert (await cp.boot())["status"] == "Accepted"


async def test_boot_heartbeat_status_and_the_protocol_remembered(site, api):
    async with station(site) as st:
        boot = await st.boot()
        assert boot["status"] == "Accepted" and boot["interval"] == 300 and boot["currentTime"]
        assert (await st.call("Heartbeat", {}))[2]["currentTime"]
        await st.status(1, "Occupied")
        charger = (await api.get(f"/api/v1/chargers/{CHARGER}")).json()
        assert charger["vendor"] == "raw" and charger["online"]
        assert [c["status"] for c in charger["connectors"] if c["connectorId"] == 1] == ["Occupied"]
    assert site.chargers.get(CHARGER).protocol == "ocpp2.0.1"


async def test_errors_carry_2_0_1_codes(site):
    async with station(site) as st:
        await st.boot()
        missing = await st.call("Heartbeat", None)
        assert missing[0] == 4 and missing[2] == "FormatViolation", missing
        required = await st.call("StatusNotification", {"timestamp": STARTED_AT, "evseId": 1, "connectorId": 1})
        assert required[0] == 4 and required[2] == "OccurrenceConstraintViolation", required
        enum = await st.call("StatusNotification", {"timestamp": STARTED_AT, "connectorStatus": "Preparing",
                                                    "evseId": 1, "connectorId": 1})
        assert enum[0] == 4 and enum[2] == "PropertyConstraintViolation", enum
        assert (await st.call("NoSuchThing", {}))[2] == "NotImplemented"
        assert (await st.call("RequestStartTransaction", {}))[2] in ("NotSupported", "OccurrenceConstraintViolation")
        await st.send("not json")
        assert (await st.receive())[2] == "RpcFrameworkError"
        await st.send('[7, "x", "Heartbeat", {}]')
        assert (await st.receive())[2] == "MessageTypeNotSupported"
        assert (await st.call("Heartbeat", {}))[0] == 3  # and the connection is still fine


async def test_a_started_updated_ended_charge_is_booked_once(site, api):
    async with station(site) as st:
        await st.boot()
        started = await st.event("Started", "tx-A", 0, id_tag="CARD-1", wh=1000, context="Transaction.Begin")
        assert started[0] == 3 and started[2]["idTokenInfo"]["status"] in ("Accepted", "Invalid")
        assert (await st.event("Started", "tx-A", 0, id_tag="CARD-1", wh=1000, context="Transaction.Begin"))[0] == 3
        await st.event("Updated", "tx-A", 1, evse=None, wh=4000)
        await st.event("Updated", "tx-A", 1, evse=None, wh=4000)  # repeated: a lost answer
        await st.event("Ended", "tx-A", 2, evse=None, wh=6000, context="Transaction.End", stoppedReason="EVDisconnected")
        await st.event("Ended", "tx-A", 2, evse=None, wh=6000, context="Transaction.End", stoppedReason="EVDisconnected")
    (txn,) = await books(api)
    assert (txn["status"], txn["connectorId"], txn["idTag"]) == ("completed", 1, "CARD-1")
    assert (txn["meterStart"], txn["meterStop"], txn["energyDelivered"]) == (1000, 6000, 5.0)
    assert txn["stopReason"] == "EVDisconnected"
    samples = await site.store.read(lambda conn: conn.execute(
        "SELECT count(*) FROM meter_values WHERE transaction_id = ?", (txn["transactionId"],)).fetchone()[0])
    assert samples == 3  # begin, one update, end: the repeats are not stored twice


async def test_events_out_of_order_and_an_ended_without_started(site, api):
    async with station(site) as st:
        await st.boot()
        # an offline queue replayed with its first event lost: Updated opens the charge
        await st.event("Updated", "tx-B", 1, id_tag="CARD-2", wh=2000)
        await st.event("Ended", "tx-B", 3, evse=None, wh=5000, context="Transaction.End")
        await st.event("Updated", "tx-B", 2, evse=None, wh=4000)  # late: the charge is over
        # a charge we only hear the end of
        await st.event("Ended", "tx-C", 7, id_tag="CARD-3", wh=9000, context="Transaction.End",
                       stoppedReason="PowerLoss")
        # its Started arriving after the Ended does not open a second charge
        await st.event("Started", "tx-C", 0, id_tag="CARD-3", wh=8000, context="Transaction.Begin")
    by_tag = {t["idTag"]: t for t in await books(api)}
    assert set(by_tag) == {"CARD-2", "CARD-3"}
    assert by_tag["CARD-2"]["status"] == "completed" and by_tag["CARD-2"]["meterStop"] == 5000
    assert by_tag["CARD-3"]["status"] == "completed" and by_tag["CARD-3"]["stopReason"] == "PowerLoss"


async def test_remote_start_ties_the_station_transaction_to_our_id(site, api):
    async with station(site) as st, trio.open_nursery() as nursery:
        await st.boot()
        await st.status(1, "Occupied")
        answer: dict = {}

        async def start() -> None:
            answer["reply"] = await api.post(f"/api/v1/chargers/{CHARGER}/remote-start",
                                             json={"connectorId": 1, "idTag": "REMOTE-1"})

        nursery.start_soon(start)
        call = await st.answer_next_call({"status": "Accepted"})
        assert call[2] == "RequestStartTransaction", call
        assert call[3]["idToken"] == {"idToken": "REMOTE-1", "type": "ISO14443"} and call[3]["evseId"] == 1
        await eventually_set(answer)
        ours = answer["reply"].json()["transactionId"]
        assert call[3]["remoteStartId"] == ours
        await st.event("Started", "station-tx-9", 0, id_tag="REMOTE-1", wh=0, context="Transaction.Begin",
                       remoteStartId=ours)
        assert await transaction_status(api, ours) == "active"

        async def stop() -> None:
            answer["stop"] = await api.post(f"/api/v1/transactions/{ours}/stop")

        nursery.start_soon(stop)
        call = await st.answer_next_call({"status": "Accepted"})
        assert call[2:] == ["RequestStopTransaction", {"transactionId": "station-tx-9"}]
        await st.event("Ended", "station-tx-9", 1, evse=None, wh=3000, context="Transaction.End",
                       stoppedReason="Remote")
    assert answer["stop"].status_code == 202
    detail = (await api.get(f"/api/v1/transactions/{ours}")).json()
    assert (detail["status"], detail["meterStop"], detail["stopReason"]) == ("completed", 3000, "Remote")


async def eventually_set(holder: dict, key: str = "reply") -> None:
    with trio.fail_after(10):
        while key not in holder:
            await trio.sleep(0.01)


async def test_operations_are_checked_against_the_chargers_protocol(site, api):
    async with station(site) as st, trio.open_nursery() as nursery:
        await st.boot()
        url = f"/api/v1/chargers/{CHARGER}/operations"
        refused = await api.post(f"{url}/RemoteStartTransaction", json={"connectorId": 1, "idTag": "X"})
        assert refused.status_code == 400 and "ocpp2.0.1" in refused.json()["message"]
        invalid = await api.post(f"{url}/GetVariables", json={"getVariableData": "no"})
        assert invalid.status_code == 422
        answer: dict = {}

        async def send() -> None:
            answer["reply"] = await api.post(f"{url}/GetVariables", json={"getVariableData": [
                {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})

        nursery.start_soon(send)
        result = {"getVariableResult": [{"attributeStatus": "Accepted", "attributeValue": "300",
                                         "component": {"name": "OCPPCommCtrlr"},
                                         "variable": {"name": "HeartbeatInterval"}}]}
        call = await st.answer_next_call(result)
        assert call[2] == "GetVariables"
        await eventually_set(answer)
    assert answer["reply"].status_code == 200 and answer["reply"].json() == result


async def test_a_compressing_station_is_answered_compressed(site):
    """RFC 7692: a client that offers permessage-deflate gets it, and compressed frames work."""
    host, port = "127.0.0.1", site.ocpp_port
    stream = await trio.open_tcp_stream(host, port)
    client = WSConnection(ConnectionType.CLIENT)
    deflate = PerMessageDeflate()
    await stream.send_all(client.send(Request(host=host, target=f"/ocpp/{CHARGER}",
                                              subprotocols=["ocpp2.0.1"], extensions=[deflate])))
    events = await _events(stream, client)
    (accepted,) = [e for e in events if isinstance(e, AcceptConnection)]
    assert accepted.subprotocol == "ocpp2.0.1"
    assert [type(e) for e in accepted.extensions] == [PerMessageDeflate], "compression not agreed"
    transfer = orjson.dumps([2, "1", "DataTransfer", {"vendorId": "deflate", "data": "z" * 2000}]).decode()
    wire = client.send(TextMessage(data=transfer))
    assert len(wire) < len(transfer) / 10, "the frame went out compressed"
    await stream.send_all(wire)
    reply = orjson.loads("".join(e.data for e in await _events(stream, client) if isinstance(e, TextMessage)))
    assert reply == [3, "1", {"status": "UnknownVendorId"}]
    await stream.aclose()


async def _events(stream: trio.SocketStream, client: WSConnection) -> list:
    with trio.fail_after(10):
        while True:
            client.receive_data(await stream.receive_some())
            events = list(client.events())
            if events:
                return events


@pytest.mark.site(accept_unknown_id_tags=True)
async def test_authorize_renders_id_token_info(site, api):
    assert (await api.post("/api/v1/id-tags", json={"idTag": "CHILD", "status": "Accepted",
                                                    "parentIdTag": "FLEET"})).status_code == 201
    async with station(site) as st:
        await st.boot()
        reply = await st.call("Authorize", {"idToken": {"idToken": "CHILD", "type": "ISO14443"}})
        assert reply[2] == {"idTokenInfo": {"status": "Accepted",
                                            "groupIdToken": {"idToken": "FLEET", "type": "Central"}}}





async def test_a_charge_started_at_plug_in_learns_its_tag_later(site, api):
    """Stations that start a transaction when the car is plugged in (TxStartPoint EVConnected)
    name the driver's token in a later event: the charge is booked with it then."""
    assert (await api.post("/api/v1/id-tags", json={"idTag": "LATE-CARD", "status": "Accepted"})).status_code == 201
    async with station(site) as st:
        await st.boot()
        opened = await st.event("Started", "tx-plug", 0, wh=100, context="Transaction.Begin")
        assert opened[0] == 3 and "idTokenInfo" not in opened[2]
        (txn,) = await books(api)
        assert (txn["idTag"], txn["idTagStatus"], txn["status"]) == ("", None, "active")
        named = await st.event("Updated", "tx-plug", 1, evse=None, id_tag="LATE-CARD")
        assert named[2] == {"idTokenInfo": {"status": "Accepted"}}
        (txn,) = await books(api)
        assert (txn["idTag"], txn["idTagStatus"]) == ("LATE-CARD", "Accepted")
        await st.event("Ended", "tx-plug", 2, evse=None, wh=2100, context="Transaction.End")
    (txn,) = await books(api)
    assert (txn["idTag"], txn["status"], txn["energyDelivered"]) == ("LATE-CARD", "completed", 2.0)
