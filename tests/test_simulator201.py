"""The OCPP 2.0.1 simulated station (controller.simulators.charger201) against an independent CSMS.

The CSMS is the `ocpp` library's v201 ChargePoint on the server side of `websockets.serve`,
on an asyncio loop in a thread of its own (the tests themselves run under pytest-trio). The
library checks every frame the station sends against the 2.0.1 JSON schemas and answers a
bad one with a CALLERROR, so a malformed frame fails the simulator command that sent it.
The station is driven through SimulatedCharger with the 1.6 command vocabulary.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import queue
import threading
import uuid
from typing import Any, Coroutine

import pytest
import trio
import websockets
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action

from controller.simulators.charger201 import connector_status, stopped_reason
from controller.simulators.charger_process import SimulatedCharger, SimulatorError

NOW = "2025-01-01T00:00:00Z"
BLOCKED = "BLOCKED-TAG"


class CsmsChargePoint(ChargePoint):
    """The CSMS end of one connection: records each CALL it gets, then answers it."""

    def __init__(self, charger_id: str, connection: Any, calls: queue.Queue[tuple[str, dict[str, Any]]]) -> None:
        super().__init__(charger_id, connection, response_timeout=5)
        self.calls = calls

    async def route_message(self, raw: str) -> None:
        frame = json.loads(raw)
        if frame[0] == 2:
            self.calls.put((frame[2], frame[3]))  # camelCase, as on the wire
        await super().route_message(raw)

    @on(Action.boot_notification)
    def on_boot_notification(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(current_time=NOW, interval=300, status="Accepted")

    @on(Action.status_notification)
    def on_status_notification(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=NOW)

    @on(Action.authorize)
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> call_result.Authorize:
        status = "Blocked" if id_token["id_token"] == BLOCKED else "Accepted"
        return call_result.Authorize(id_token_info={"status": status})

    @on(Action.transaction_event)
    def on_transaction_event(self, id_token: dict[str, Any] | None = None, **_: Any) -> call_result.TransactionEvent:
        return call_result.TransactionEvent(id_token_info={"status": "Accepted"} if id_token else None)

    @on(Action.meter_values)
    def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        return call_result.MeterValues()

    @on(Action.notify_report)
    def on_notify_report(self, **_: Any) -> call_result.NotifyReport:
        return call_result.NotifyReport()

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(self, **_: Any) -> call_result.FirmwareStatusNotification:
        return call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status_notification(self, **_: Any) -> call_result.LogStatusNotification:
        return call_result.LogStatusNotification()


class CentralSystem:
    """websockets.serve + CsmsChargePoint on an asyncio loop in a thread; trio-side helpers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="csms", daemon=True)
        self.calls: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.connections: queue.Queue[tuple[CsmsChargePoint, Any]] = queue.Queue()
        self.url = ""

    def start(self) -> None:
        async def listen() -> Any:
            return await websockets.serve(self._handler, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"])

        self.thread.start()
        self.server = self._run(listen()).result(5)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/ocpp/CHARGER-001"

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        self._run(close()).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def _handler(self, ws: Any) -> None:
        cp = CsmsChargePoint(ws.request.path.rsplit("/", 1)[-1], ws, self.calls)
        self.connections.put((cp, ws))
        try:
            await cp.start()
        except websockets.ConnectionClosed:
            pass

    # --- called from the trio tests ----------------------------------------------------------

    async def connection(self, timeout: float = 5) -> tuple[CsmsChargePoint, Any]:
        """The next station connection: its ChargePoint and its websockets ServerConnection."""
        return await trio.to_thread.run_sync(functools.partial(self.connections.get, timeout=timeout))

    async def expect(self, action: str, timeout: float = 5) -> dict[str, Any]:
        """The payload of the next CALL from the station, which must be `action`."""
        got, payload = await trio.to_thread.run_sync(functools.partial(self.calls.get, timeout=timeout))
        assert got == action, (got, payload)
        return payload

    async def call(self, cp: CsmsChargePoint, payload: Any, timeout: float = 5) -> Any:
        """Send a CSMS->station call through the library; its (snake_case) result dataclass."""
        future = self._run(asyncio.wait_for(cp.call(payload, suppress=False), timeout))
        return await trio.to_thread.run_sync(future.result)


@pytest.fixture
def csms():
    central = CentralSystem()
    central.start()
    yield central
    central.stop()


@pytest.fixture
async def station(csms: CentralSystem, nursery: trio.Nursery):
    sim = await SimulatedCharger.start(nursery, csms.url, "CHARGER-001", version="2.0.1",
                                      basic_auth="CHARGER-001:s3cret")
    yield sim
    await sim.aclose()


def sampled(event: dict[str, Any]) -> dict[str, tuple[Any, str, str]]:
    """measurand -> (value, unit, context) of a payload's single meter value."""
    [meter] = event["meterValue"]
    return {v["measurand"]: (v["value"], v["unitOfMeasure"]["unit"], v["context"]) for v in meter["sampledValue"]}


def test_status_and_reason_words_from_1_6() -> None:
    assert [connector_status(s) for s in ("Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE",
                                          "Finishing", "Reserved", "Unavailable", "Faulted", "Occupied")] == [
        "Available", "Occupied", "Occupied", "Occupied", "Occupied",
        "Occupied", "Reserved", "Unavailable", "Faulted", "Occupied"]
    assert [stopped_reason(r) for r in ("Local", "Remote", "EVDisconnected", "PowerLoss", "HardReset")] == [
        "Local", "Remote", "EVDisconnected", "PowerLoss", "Other"]


async def test_handshake_boot_and_status_notifications(csms, station):
    cp, ws = await csms.connection()
    assert ws.request.path == "/ocpp/CHARGER-001" and ws.subprotocol == "ocpp2.0.1"
    assert ws.request.headers["Authorization"] == "Basic " + base64.b64encode(b"CHARGER-001:s3cret").decode()
    assert "permessage-deflate" in ws.response.headers.get("Sec-WebSocket-Extensions", "")

    result = await station.boot(vendor="Acme", model="X1", firmwareVersion="1.2", chargePointSerialNumber="SN-7")
    assert await csms.expect("BootNotification") == {
        "chargingStation": {"vendorName": "Acme", "model": "X1", "serialNumber": "SN-7", "firmwareVersion": "1.2"},
        "reason": "PowerUp"}
    assert result == {"currentTime": NOW, "interval": 300, "status": "Accepted"}

    for given, sent in [("Available", "Available"), ("Preparing", "Occupied"), ("SuspendedEVSE", "Occupied"),
                        ("Faulted", "Faulted"), ("Reserved", "Reserved"), ("Charging", "Occupied")]:
        assert await station.status(2, given, errorCode="NoError") == {}
        frame = await csms.expect("StatusNotification")
        assert (frame["connectorStatus"], frame["evseId"], frame["connectorId"]) == (sent, 2, 1)
        assert frame["timestamp"].endswith("Z")
    evse = (await station.state())["connectors"]["2"]
    assert (evse["status"], evse["connectorStatus"]) == ("Charging", "Occupied")


async def test_heartbeat_and_authorize_answer_like_1_6(csms, station):
    await csms.connection()
    assert await station.heartbeat() == {"currentTime": NOW}
    assert await csms.expect("Heartbeat") == {}

    accepted = await station.authorize("TAG-1")
    assert await csms.expect("Authorize") == {"idToken": {"idToken": "TAG-1", "type": "ISO14443"}}
    assert accepted == {"idTokenInfo": {"status": "Accepted"}, "idTagInfo": {"status": "Accepted"}}
    assert (await station.authorize(BLOCKED))["idTagInfo"] == {"status": "Blocked"}


async def test_start_meter_stop_send_transaction_events_with_increasing_seq_no(csms, station):
    await csms.connection()
    started = await station.start(connector=1, idTag="TAG-1", meterStart=1000)
    event = await csms.expect("TransactionEvent")
    tx = started["transactionId"]
    assert str(uuid.UUID(tx)) == tx
    assert (event["eventType"], event["triggerReason"], event["seqNo"]) == ("Started", "Authorized", 0)
    assert event["transactionInfo"] == {"transactionId": tx, "chargingState": "Charging"}
    assert event["idToken"] == {"idToken": "TAG-1", "type": "ISO14443"}
    assert event["evse"] == {"id": 1, "connectorId": 1}
    assert sampled(event) == {"Energy.Active.Import.Register": (1000, "Wh", "Transaction.Begin")}
    assert started["idTagInfo"] == {"status": "Accepted"} and started["idTokenInfo"] == {"status": "Accepted"}

    await station.meter(1, energyWh=2500, powerW=7200)
    event = await csms.expect("TransactionEvent")
    assert (event["eventType"], event["triggerReason"], event["seqNo"]) == ("Updated", "MeterValuePeriodic", 1)
    assert event["transactionInfo"] == {"transactionId": tx}
    assert sampled(event) == {"Energy.Active.Import.Register": (2500, "Wh", "Sample.Periodic"),
                              "Power.Active.Import": (7200, "W", "Sample.Periodic")}

    await station.meter(2, energyWh=10.5)  # no transaction on EVSE 2: plain MeterValues
    values = await csms.expect("MeterValues")
    assert values["evseId"] == 2
    assert sampled(values) == {"Energy.Active.Import.Register": (10.5, "Wh", "Sample.Periodic")}

    await station.stop(1, meterStop=4000, idTag="TAG-1")
    event = await csms.expect("TransactionEvent")
    assert (event["eventType"], event["triggerReason"], event["seqNo"]) == ("Ended", "StopAuthorized", 2)
    assert event["transactionInfo"] == {"transactionId": tx, "stoppedReason": "Local"}
    assert sampled(event) == {"Energy.Active.Import.Register": (4000, "Wh", "Transaction.End")}
    assert (await station.state())["connectors"]["1"]["transactionId"] is None
    with pytest.raises(SimulatorError, match="no transaction on connector 1"):
        await station.stop(1)

    # A second transaction, stopped by the station's string id with a 1.6 reason.
    second = (await station.start(connector=2, idTag="TAG-2"))["transactionId"]
    assert (await csms.expect("TransactionEvent"))["seqNo"] == 3
    await station.stop(transactionId=second, reason="EVDisconnected")
    event = await csms.expect("TransactionEvent")
    assert (event["eventType"], event["seqNo"], event["evse"]["id"]) == ("Ended", 4, 2)
    assert event["transactionInfo"] == {"transactionId": second, "stoppedReason": "EVDisconnected"}
    assert sampled(event) == {"Energy.Active.Import.Register": (10.5, "Wh", "Transaction.End")}
    assert (await station.state())["seqNo"] == 5


async def test_request_start_and_stop_in_auto_mode(csms, station):
    cp, _ = await csms.connection()
    token = {"id_token": "TAG-R", "type": "Central"}
    accepted = await csms.call(cp, call.RequestStartTransaction(id_token=token, remote_start_id=42, evse_id=2))
    assert accepted.status == "Accepted"
    assert (await station.next_event("call", action="RequestStartTransaction"))["payload"]["remoteStartId"] == 42

    status = await csms.expect("StatusNotification")
    assert (status["connectorStatus"], status["evseId"]) == ("Occupied", 2)
    event = await csms.expect("TransactionEvent")
    tx = event["transactionInfo"]["transactionId"]
    assert (event["eventType"], event["triggerReason"], event["seqNo"]) == ("Started", "RemoteStart", 0)
    assert event["transactionInfo"] == {"transactionId": tx, "chargingState": "Charging", "remoteStartId": 42}
    assert event["idToken"] == {"idToken": "TAG-R", "type": "Central"} and event["evse"] == {"id": 2, "connectorId": 1}
    sent = await station.next_event("sent", action="TransactionEvent")
    assert sent["request"] == event and sent["response"] == {"idTokenInfo": {"status": "Accepted"}}
    assert (await station.state())["connectors"]["2"]["transactionId"] == tx

    assert (await csms.call(cp, call.RequestStopTransaction(transaction_id="no-such-tx"))).status == "Rejected"
    assert (await csms.call(cp, call.RequestStopTransaction(transaction_id=tx))).status == "Accepted"
    event = await csms.expect("TransactionEvent")
    assert (event["eventType"], event["triggerReason"], event["seqNo"]) == ("Ended", "RemoteStop", 1)
    assert event["transactionInfo"] == {"transactionId": tx, "stoppedReason": "Remote"}
    finishing = await csms.expect("StatusNotification")
    assert (finishing["connectorStatus"], finishing["evseId"]) == ("Occupied", 2)  # 1.6's Finishing: still plugged
    await station.next_event("sent", action="StatusNotification", request=finishing)
    assert (await station.state())["connectors"]["2"]["transactionId"] is None


async def test_without_auto_a_later_start_and_stop_carry_the_remote_request(csms, station):
    cp, _ = await csms.connection()
    await station.cmd("auto", enabled=False)
    token = {"id_token": "TAG-R", "type": "ISO14443"}
    assert (await csms.call(cp, call.RequestStartTransaction(id_token=token, remote_start_id=7))).status == "Accepted"
    await trio.sleep(0.3)
    assert csms.calls.empty()  # nothing sent on its own

    tx = (await station.start(1, "TAG-R"))["transactionId"]  # no evseId in the request: EVSE 1
    event = await csms.expect("TransactionEvent")
    assert event["triggerReason"] == "RemoteStart" and event["transactionInfo"]["remoteStartId"] == 7

    assert (await csms.call(cp, call.RequestStopTransaction(transaction_id=tx))).status == "Accepted"
    await station.stop(1)
    event = await csms.expect("TransactionEvent")
    assert event["triggerReason"] == "RemoteStop" and event["transactionInfo"]["stoppedReason"] == "Remote"


async def test_raw_call_and_raw_frame(csms, station):
    await csms.connection()
    assert await station.cmd("call", action="Heartbeat", payload={}) == {"currentTime": NOW}
    with pytest.raises(SimulatorError) as info:  # sent unvalidated; the CSMS library refuses it
        await station.cmd("call", action="Heartbeat", payload={"bogus": 1})
    assert info.value.code == "FormatViolation"
    assert [await csms.expect("Heartbeat"), await csms.expect("Heartbeat")] == [{}, {"bogus": 1}]

    result = await station.cmd("raw", frame='[2,"x-1","Heartbeat",{}]')
    assert json.loads(result["frame"]) == [3, "x-1", {"currentTime": NOW}]


async def test_respond_no_answer_then_payload_then_back_to_default(csms, station):
    cp, _ = await csms.connection()
    await station.respond("Reset", no_answer=True)
    with pytest.raises(TimeoutError):
        await csms.call(cp, call.Reset(type="Immediate"), timeout=0.5)
    assert (await station.next_event("call", action="Reset"))["payload"] == {"type": "Immediate"}

    await station.respond("Reset", payload={"status": "Scheduled"})
    assert (await csms.call(cp, call.Reset(type="OnIdle"))).status == "Scheduled"
    await station.respond("Reset")
    assert (await csms.call(cp, call.Reset(type="OnIdle"))).status == "Accepted"

    # An Accepted RequestStartTransaction set with `respond` still gets its follow-ups.
    await station.respond("RequestStartTransaction", payload={"status": "Accepted"})
    token = {"id_token": "TAG-9", "type": "ISO14443"}
    assert (await csms.call(cp, call.RequestStartTransaction(id_token=token, remote_start_id=9))).status == "Accepted"
    assert (await csms.expect("StatusNotification"))["connectorStatus"] == "Occupied"
    assert (await csms.expect("TransactionEvent"))["transactionInfo"]["remoteStartId"] == 9


async def test_device_model_report_and_trigger(csms, station):
    cp, _ = await csms.connection()

    def variable(component: str, name: str) -> dict[str, Any]:
        return {"component": {"name": component}, "variable": {"name": name}}

    got = await csms.call(cp, call.GetVariables(get_variable_data=[
        variable("OCPPCommCtrlr", "HeartbeatInterval"), variable("OCPPCommCtrlr", "Nope"), variable("Nope", "Nope")]))
    assert [(r["attribute_status"], r.get("attribute_value")) for r in got.get_variable_result] == [
        ("Accepted", "300"), ("UnknownVariable", None), ("UnknownComponent", None)]
    set_result = await csms.call(cp, call.SetVariables(set_variable_data=[
        {**variable("OCPPCommCtrlr", "HeartbeatInterval"), "attribute_value": "60"},
        {**variable("SecurityCtrlr", "Identity"), "attribute_value": "someone-else"}]))
    assert [r["attribute_status"] for r in set_result.set_variable_result] == ["Accepted", "Rejected"]
    got = await csms.call(cp, call.GetVariables(get_variable_data=[variable("OCPPCommCtrlr", "HeartbeatInterval")]))
    assert got.get_variable_result[0]["attribute_value"] == "60"

    assert (await csms.call(cp, call.GetBaseReport(request_id=5, report_base="FullInventory"))).status == "Accepted"
    report = await csms.expect("NotifyReport")
    assert (report["requestId"], report["seqNo"], report["tbc"]) == (5, 0, False)
    entries = {(d["component"]["name"], d["variable"]["name"]): d["variableAttribute"][0] for d in report["reportData"]}
    heartbeat = entries[("OCPPCommCtrlr", "HeartbeatInterval")]
    assert heartbeat == {"type": "Actual", "value": "60", "mutability": "ReadWrite"}
    assert entries[("SecurityCtrlr", "Identity")]["value"] == "CHARGER-001"

    trigger = call.TriggerMessage(requested_message="StatusNotification", evse={"id": 2})
    assert (await csms.call(cp, trigger)).status == "Accepted"
    status = await csms.expect("StatusNotification")
    assert (status["evseId"], status["connectorStatus"]) == (2, "Available")
    trigger = call.TriggerMessage(requested_message="SignV2GCertificate")
    assert (await csms.call(cp, trigger)).status == "NotImplemented"


async def test_charging_profiles_firmware_log_and_the_rest(csms, station):
    cp, _ = await csms.connection()
    profile = {"id": 11, "stack_level": 0, "charging_profile_purpose": "TxDefaultProfile",
               "charging_profile_kind": "Relative",
               "charging_schedule": [{"id": 1, "charging_rate_unit": "W",
                                      "charging_schedule_period": [{"start_period": 0, "limit": 7400.0}]}]}
    assert (await csms.call(cp, call.SetChargingProfile(evse_id=1, charging_profile=profile))).status == "Accepted"
    assert (await station.state())["chargingProfiles"]["1"]["chargingSchedule"][0]["chargingRateUnit"] == "W"
    composite = await csms.call(cp, call.GetCompositeSchedule(duration=3600, evse_id=1))
    assert composite.status == "Accepted"
    assert composite.schedule["charging_schedule_period"] == [{"start_period": 0, "limit": 7400}]
    assert (await csms.call(cp, call.GetCompositeSchedule(duration=60, evse_id=2))).status == "Rejected"
    assert (await csms.call(cp, call.ClearChargingProfile(charging_profile_id=11))).status == "Accepted"
    assert (await csms.call(cp, call.ClearChargingProfile(charging_profile_id=11))).status == "Unknown"

    firmware = {"location": "https://example.invalid/fw.bin", "retrieve_date_time": NOW}
    assert (await csms.call(cp, call.UpdateFirmware(request_id=3, firmware=firmware))).status == "Accepted"
    assert [await csms.expect("FirmwareStatusNotification") for _ in range(2)] == [
        {"status": "Downloading", "requestId": 3}, {"status": "Installed", "requestId": 3}]
    log = await csms.call(cp, call.GetLog(log_type="DiagnosticsLog", request_id=4,
                                          log={"remote_location": "https://example.invalid/logs"}))
    assert log.status == "Accepted"
    assert [await csms.expect("LogStatusNotification") for _ in range(2)] == [
        {"status": "Uploading", "requestId": 4}, {"status": "Uploaded", "requestId": 4}]

    status = await csms.call(cp, call.GetTransactionStatus(transaction_id="no-such-tx"))
    assert (status.messages_in_queue, status.ongoing_indicator) == (False, False)
    assert (await csms.call(cp, call.SendLocalList(version_number=8, update_type="Full"))).status == "Accepted"
    assert (await csms.call(cp, call.GetLocalListVersion())).version_number == 8
    assert (await csms.call(cp, call.DataTransfer(vendor_id="acme"))).status == "UnknownVendorId"
    assert (await csms.call(cp, call.UnlockConnector(evse_id=1, connector_id=1))).status == "Unlocked"


async def test_state_survives_a_reconnect(csms, station):
    await csms.connection()
    tx = (await station.start(1, "TAG-1", meterStart=100))["transactionId"]
    assert (await csms.expect("TransactionEvent"))["seqNo"] == 0
    assert (await station.cmd("disconnect"))["code"] == 1006  # abrupt: no close frame
    assert (await station.next_event("closed"))["by"] == "client"

    assert (await station.cmd("reconnect"))["subprotocol"] == "ocpp2.0.1"
    await csms.connection()
    await station.meter(1, energyWh=900)
    event = await csms.expect("TransactionEvent")
    assert (event["eventType"], event["seqNo"], event["transactionInfo"]["transactionId"]) == ("Updated", 1, tx)


async def test_compression_can_be_turned_off(csms, nursery):
    sim = await SimulatedCharger.start(nursery, csms.url, version="2.0.1", compression=False)
    try:
        _, ws = await csms.connection()
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert await sim.heartbeat() == {"currentTime": NOW}
    finally:
        await sim.aclose()
