"""The Trio RPC session, over a real trio-websocket pair on in-memory streams, with a mock clock."""

from __future__ import annotations

from contextlib import asynccontextmanager

import orjson
import pytest
import trio
import trio.testing
from trio_websocket import wrap_client_stream, wrap_server_stream

from controller.csms.frames import OcppError
from controller.csms.rpc import CallTimeout, ConnectionLost, RpcSession
from controller.csms.v16.schemas import DIALECT


class Peer:
    """The charger's end: raw frames in and out."""

    def __init__(self, ws):
        self.ws = ws

    async def send(self, frame):
        await self.ws.send_message(orjson.dumps(frame).decode())

    async def receive(self):
        return orjson.loads(await self.ws.get_message())


@asynccontextmanager
async def session_pair(dispatch=None, call_timeout=30.0):
    """(session, peer): an RpcSession serving the server end, and the client end."""
    async def default_dispatch(action, payload):
        return {}

    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        accepted = trio.Event()
        holder = {}

        async def server():
            request = await wrap_server_stream(nursery, server_stream)
            holder["ws"] = await request.accept(subprotocol="ocpp1.6")
            accepted.set()

        nursery.start_soon(server)
        client = await wrap_client_stream(nursery, client_stream, "localhost", "/ocpp/CP1", subprotocols=["ocpp1.6"])
        await accepted.wait()
        assert client.subprotocol == "ocpp1.6"
        session = RpcSession(holder["ws"], "CP1", dispatch or default_dispatch, call_timeout, DIALECT)
        nursery.start_soon(session.run)
        try:
            yield session, Peer(client)
        finally:
            nursery.cancel_scope.cancel()


async def test_call_returns_result_payload(autojump_clock):
    async with session_pair() as (session, peer):
        async with trio.open_nursery() as nursery:
            result = {}

            async def caller():
                result["answer"] = await session.call("Reset", {"type": "Soft"})

            nursery.start_soon(caller)
            frame = await peer.receive()
            assert frame[0] == 2 and frame[2:] == ["Reset", {"type": "Soft"}]
            await peer.send([3, frame[1], {"status": "Accepted"}])
        assert result["answer"] == {"status": "Accepted"}


async def test_call_timeout(autojump_clock):
    async with session_pair(call_timeout=30) as (session, peer):
        start = trio.current_time()
        with pytest.raises(CallTimeout):
            await session.call("Reset", {"type": "Hard"})
        assert trio.current_time() - start == pytest.approx(30)
        assert (await peer.receive())[2] == "Reset"
        with pytest.raises(CallTimeout):
            await session.call("Reset", {"type": "Hard"}, timeout=5)
        assert trio.current_time() - start == pytest.approx(35)


async def test_one_outstanding_call(autojump_clock):
    async with session_pair() as (session, peer):
        answers = []
        async with trio.open_nursery() as nursery:
            for n in range(3):
                nursery.start_soon(lambda n=n: _call_and_record(session, n, answers))
            for _ in range(3):
                frame = await peer.receive()
                # no second CALL arrives while this one is unanswered
                with trio.move_on_after(5):
                    await peer.receive()
                    pytest.fail("a second CALL was sent before the first was answered")
                await peer.send([3, frame[1], {"status": "Accepted", "n": frame[3]["connectorId"]}])
        assert sorted(a["n"] for a in answers) == [0, 1, 2]


async def _call_and_record(session, n, answers):
    answers.append(await session.call("UnlockConnector", {"connectorId": n}))


async def test_connection_lost_wakes_pending_call(autojump_clock):
    async with session_pair() as (session, peer):
        async with trio.open_nursery() as nursery:
            outcome = {}

            async def caller():
                with pytest.raises(ConnectionLost):
                    await session.call("Reset", {"type": "Soft"})
                outcome["lost_at"] = trio.current_time()

            start = trio.current_time()
            nursery.start_soon(caller)
            await peer.receive()
            await peer.ws.aclose()
        assert outcome["lost_at"] - start < 30  # woken by the close, not by the timeout
        await session.closed.wait()
        with pytest.raises(ConnectionLost):
            await session.call("Reset", {"type": "Soft"})


async def test_call_error_is_raised_as_ocpp_error(autojump_clock):
    async with session_pair() as (session, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_answer_with_error, peer)
            with pytest.raises(OcppError) as info:
                await session.call("Reset", {"type": "Soft"})
        assert (info.value.code, info.value.description, info.value.details) == ("NotSupported", "no", {"why": 1})


async def _answer_with_error(peer):
    frame = await peer.receive()
    await peer.send([4, frame[1], "NotSupported", "no", {"why": 1}])


async def test_answer_with_unknown_id_is_ignored(autojump_clock):
    async with session_pair() as (session, peer):
        async with trio.open_nursery() as nursery:
            result = {}

            async def caller():
                result["answer"] = await session.call("ClearCache", {})

            nursery.start_soon(caller)
            frame = await peer.receive()
            await peer.send([3, "not-a-pending-id", {"status": "Rejected"}])
            await peer.send([4, "another-unknown", "GenericError", "", {}])
            await peer.send([3, frame[1], {"status": "Accepted"}])
        assert result["answer"] == {"status": "Accepted"}
        # the session still serves calls: nothing was sent back for the stray answers
        await peer.send([2, "hb", "Heartbeat", {}])
        assert await peer.receive() == [3, "hb", {}]


async def test_incoming_calls_are_validated_and_dispatched_in_order(autojump_clock):
    seen = []

    async def dispatch(action, payload):
        seen.append(action)
        if action == "Authorize":
            raise OcppError("SecurityError", "go away", {"a": 1})
        if action == "MeterValues":
            raise RuntimeError("bug")
        if action not in ("Heartbeat", "StatusNotification"):
            raise OcppError("NotImplemented", action)
        return {"currentTime": "2026-01-01T00:00:00.000Z"} if action == "Heartbeat" else {}

    async with session_pair(dispatch) as (session, peer):
        await peer.send([2, "1", "Heartbeat", {}])
        await peer.send([2, "2", "StatusNotification", {"connectorId": 1}])  # invalid: never dispatched
        await peer.send([2, "3", "Authorize", {"idTag": "A"}])
        await peer.send([2, "4", "MeterValues", {"connectorId": 1, "meterValue": [
            {"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [{"value": "1"}]}]}])
        await peer.send([2, "5", "Frobnicate", {}])
        assert await peer.receive() == [3, "1", {"currentTime": "2026-01-01T00:00:00.000Z"}]
        reply = await peer.receive()
        assert reply[:3] == [4, "2", "ProtocolError"]
        assert await peer.receive() == [4, "3", "SecurityError", "go away", {"a": 1}]
        assert (await peer.receive())[:3] == [4, "4", "InternalError"]
        assert (await peer.receive())[:3] == [4, "5", "NotImplemented"]
        await peer.send("garbage")
        assert (await peer.receive())[:3] == [4, "-1", "FormationViolation"]
        assert seen == ["Heartbeat", "Authorize", "MeterValues", "Frobnicate"]


async def test_a_call_from_the_peer_is_answered_while_our_call_waits(autojump_clock):
    async with session_pair() as (session, peer):
        async with trio.open_nursery() as nursery:
            result = {}

            async def caller():
                result["answer"] = await session.call("ClearCache", {})

            nursery.start_soon(caller)
            frame = await peer.receive()
            await peer.send([2, "hb", "Heartbeat", {}])
            assert await peer.receive() == [3, "hb", {}]
            await peer.send([3, frame[1], {"status": "Accepted"}])
        assert result["answer"] == {"status": "Accepted"}


async def test_a_handler_waiting_for_the_disk_does_not_hold_up_the_answer_to_our_call(autojump_clock):
    disk = trio.Event()

    async def dispatch(action, payload):
        if action == "StatusNotification":
            await disk.wait()  # a commit that takes its time
        return {}

    async with session_pair(dispatch) as (session, peer):
        result = {}
        async with trio.open_nursery() as nursery:
            async def caller():
                result["answer"] = await session.call("ClearCache", {})

            nursery.start_soon(caller)
            frame = await peer.receive()
            await peer.send([2, "s1", "StatusNotification",
                             {"connectorId": 1, "errorCode": "NoError", "status": "Available"}])
            await peer.send([3, frame[1], {"status": "Accepted"}])
        assert result["answer"] == {"status": "Accepted"}  # read while the handler still waits
        disk.set()
        assert await peer.receive() == [3, "s1", {}]
