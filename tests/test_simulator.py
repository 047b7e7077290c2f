"""The simulated charger against a bare trio-websocket server standing in for the CS.

These check the simulator itself (frames on the wire, auto mode, `respond`, raw calls)
so that failures in central-system tests can be trusted to be central-system bugs.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Awaitable, Callable

import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from controller.simulators.charger_process import SimulatedCharger, SimulatorError


class FakeCentralSystem:
    """Accepts websockets and hands each to the test, which plays the central system."""

    def __init__(self) -> None:
        self.reject_status: int | None = None
        self.requests: list[WebSocketRequest] = []
        self._send, self._receive = trio.open_memory_channel[WebSocketConnection](10)
        self.url = ""

    async def handler(self, request: WebSocketRequest) -> None:
        self.requests.append(request)
        if self.reject_status is not None:
            await request.reject(self.reject_status)
            return
        offered = "ocpp1.6" in request.proposed_subprotocols
        ws = await request.accept(subprotocol="ocpp1.6" if offered else None)
        await self._send.send(ws)
        await trio.sleep_forever()  # the connection lives until the test ends

    async def connection(self, timeout: float = 5) -> WebSocketConnection:
        with trio.fail_after(timeout):
            return await self._receive.receive()


async def receive(ws: WebSocketConnection, timeout: float = 5) -> Any:
    with trio.fail_after(timeout):
        return json.loads(await ws.get_message())


async def answer(ws: WebSocketConnection, frame: list[Any], payload: dict[str, Any]) -> None:
    await ws.send_message(json.dumps([3, frame[1], payload]))


class Background:
    """Run a coroutine function in the nursery; collect its result or exception later."""

    def __init__(self, nursery: trio.Nursery, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> None:
        self.done = trio.Event()
        self.value: Any = None
        self.error: BaseException | None = None

        async def run() -> None:
            try:
                self.value = await fn(*args, **kwargs)
            except Exception as exc:  # handed to the test by result()
                self.error = exc
            finally:
                self.done.set()

        nursery.start_soon(run)

    async def result(self, timeout: float = 5) -> Any:
        with trio.fail_after(timeout):
            await self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value


@pytest.fixture
async def cs(nursery: trio.Nursery) -> FakeCentralSystem:
    fake = FakeCentralSystem()
    server = await nursery.start(serve_websocket, fake.handler, "127.0.0.1", 0, None)
    fake.url = f"ws://127.0.0.1:{server.port}/ocpp/CHARGER-001"
    return fake


@pytest.fixture
async def charger(cs: FakeCentralSystem, nursery: trio.Nursery):
    sim = await SimulatedCharger.start(nursery, cs.url, "CHARGER-001", basic_auth="CHARGER-001:s3cret")
    yield sim
    await sim.aclose()


async def test_boot_notification_frame_and_answer(cs, charger, nursery):
    ws = await cs.connection()
    request = cs.requests[0]
    assert request.path == "/ocpp/CHARGER-001"
    assert ws.subprotocol == "ocpp1.6"
    auth = dict(request.headers)[b"authorization"]
    assert auth == b"Basic " + base64.b64encode(b"CHARGER-001:s3cret")

    boot = Background(nursery, charger.boot, vendor="Acme", model="X1", firmwareVersion="1.2")
    frame = await receive(ws)
    assert frame[0] == 2 and frame[2] == "BootNotification"
    assert frame[3] == {"chargePointVendor": "Acme", "chargePointModel": "X1", "firmwareVersion": "1.2"}
    reply = {"status": "Accepted", "currentTime": "2025-01-01T00:00:00Z", "interval": 300}
    await answer(ws, frame, reply)
    assert await boot.result() == reply


async def test_remote_start_accepted_then_start_transaction_in_auto_mode(cs, charger, nursery):
    ws = await cs.connection()
    await ws.send_message(json.dumps([2, "rs-1", "RemoteStartTransaction", {"connectorId": 2, "idTag": "TAG-1"}]))
    assert await receive(ws) == [3, "rs-1", {"status": "Accepted"}]
    call = await charger.next_event("call", action="RemoteStartTransaction")
    assert call["uniqueId"] == "rs-1" and call["payload"] == {"connectorId": 2, "idTag": "TAG-1"}

    status = await receive(ws)
    assert status[2] == "StatusNotification"
    assert status[3]["connectorId"] == 2 and status[3]["status"] == "Charging"
    await answer(ws, status, {})
    start = await receive(ws)
    assert start[2] == "StartTransaction"
    assert start[3]["connectorId"] == 2 and start[3]["idTag"] == "TAG-1" and start[3]["meterStart"] == 0
    await answer(ws, start, {"transactionId": 7, "idTagInfo": {"status": "Accepted"}})
    sent = await charger.next_event("sent", action="StartTransaction")
    assert sent["response"]["transactionId"] == 7 and sent["request"]["idTag"] == "TAG-1"
    assert (await charger.state())["connectors"]["2"]["transactionId"] == 7

    # The register moves with meter values; a remote stop ends the transaction with it.
    metering = Background(nursery, charger.meter, 2, energyWh=1500, powerW=7200)
    meter = await receive(ws)
    values = {v["measurand"]: (v["value"], v["unit"]) for v in meter[3]["meterValue"][0]["sampledValue"]}
    assert meter[3]["transactionId"] == 7
    assert values == {"Energy.Active.Import.Register": ("1500", "Wh"), "Power.Active.Import": ("7200", "W")}
    await answer(ws, meter, {})
    await metering.result()

    await ws.send_message(json.dumps([2, "rs-2", "RemoteStopTransaction", {"transactionId": 7}]))
    assert await receive(ws) == [3, "rs-2", {"status": "Accepted"}]
    stop = await receive(ws)
    assert stop[2] == "StopTransaction"
    assert (stop[3]["transactionId"], stop[3]["meterStop"], stop[3]["reason"]) == (7, 1500, "Remote")
    await answer(ws, stop, {})
    finishing = await receive(ws)
    assert finishing[2] == "StatusNotification" and finishing[3]["status"] == "Finishing"
    await answer(ws, finishing, {})
    await charger.next_event("sent", action="StatusNotification", request=finishing[3])


async def test_respond_no_answer_then_back_to_default(cs, charger):
    ws = await cs.connection()
    await charger.respond("Reset", no_answer=True)
    await ws.send_message(json.dumps([2, "r-1", "Reset", {"type": "Soft"}]))
    assert (await charger.next_event("call", action="Reset"))["uniqueId"] == "r-1"
    with trio.move_on_after(0.3):
        pytest.fail(f"unexpected answer {await ws.get_message()}")

    await charger.respond("Reset", payload={"status": "Rejected", "extra": 1})  # sent as is
    await ws.send_message(json.dumps([2, "r-2", "Reset", {"type": "Hard"}]))
    assert await receive(ws) == [3, "r-2", {"status": "Rejected", "extra": 1}]

    await charger.respond("Reset")
    await ws.send_message(json.dumps([2, "r-3", "Reset", {"type": "Hard"}]))
    assert await receive(ws) == [3, "r-3", {"status": "Accepted"}]


async def test_call_sends_invalid_payload_unchanged_and_reports_callerror(cs, charger, nursery):
    ws = await cs.connection()
    payload = {"connectorId": "one", "bogus": [1, 2]}
    sending = Background(nursery, charger.cmd, "call", action="StartTransaction", payload=payload)
    frame = await receive(ws)
    assert frame[0] == 2 and frame[2] == "StartTransaction" and frame[3] == payload
    await ws.send_message(json.dumps([4, frame[1], "FormationViolation", "bad payload", {"field": "connectorId"}]))
    with pytest.raises(SimulatorError) as info:
        await sending.result()
    assert info.value.code == "FormationViolation" and info.value.details == {"field": "connectorId"}


async def test_raw_frame_returns_next_non_call_frame(cs, charger, nursery):
    ws = await cs.connection()
    text = '[2,"x-1","Heartbeat",{}]'
    raw = Background(nursery, charger.cmd, "raw", frame=text)
    assert await ws.get_message() == text
    await ws.send_message('[2,"cs-1","ClearCache",{}]')  # a CALL in between is answered, not returned
    assert await receive(ws) == [3, "cs-1", {"status": "Accepted"}]
    await ws.send_message('[4,"x-1","ProtocolError","nope",{}]')
    assert await raw.result() == {"frame": '[4,"x-1","ProtocolError","nope",{}]'}


async def test_server_close_is_reported_and_reconnect_works(cs, charger):
    ws = await cs.connection()
    await ws.aclose(code=4000, reason="bye")
    closed = await charger.next_event("closed")
    assert (closed["code"], closed["by"]) == (4000, "server")
    with pytest.raises(SimulatorError, match="not connected"):
        await charger.cmd("heartbeat")

    await charger.cmd("reconnect")
    ws2 = await cs.connection()
    assert (await charger.cmd("disconnect"))["code"] == 1006  # abrupt: no close frame
    with pytest.raises(ConnectionClosed):
        with trio.fail_after(5):
            await ws2.get_message()


async def test_rejected_handshake_reports_status_and_exits(cs, nursery):
    cs.reject_status = 401
    with pytest.raises(SimulatorError) as info:
        await SimulatedCharger.start(nursery, cs.url)
    assert info.value.status == 401
