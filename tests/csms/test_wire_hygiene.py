"""OCPP-J over the wire: binary frames are no messages; a charger whose connections keep replacing
each other is a fault the operator sees (raw WebSocket clients, the real listener)."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

import pytest
import trio

from tests.support import CHARGER, raw_charger


@pytest.mark.parametrize("version, code", [("ocpp1.6", "FormationViolation"), ("ocpp2.0.1", "RpcFrameworkError")])
async def test_a_binary_frame_is_refused_not_processed(site, api, caplog, version, code):
    caplog.set_level(logging.WARNING, "evedge.ocpp")
    async with raw_charger(site, CHARGER, subprotocols=[version]) as cp:
        await cp.ws.send_message(b'[2,"bin1","Heartbeat",{}]')
        reply = await cp.receive()
        assert reply[:3] == [4, "bin1", code], reply
        await cp.ws.send_message(b"\x00\x01garbage")
        assert (await cp.receive())[:3] == [4, "-1", code]
        assert (await cp.call("Heartbeat", {}))[0] == 3  # the connection stays up for text frames
    assert any("binary WebSocket frame" in r.getMessage() and CHARGER in r.getMessage() for r in caplog.records)
    charger = (await api.get(f"/api/v1/chargers/{CHARGER}")).json()
    assert charger["lastHeartbeat"] is not None  # only the text Heartbeat was taken


@pytest.mark.site(call_timeout_s=0.5)
async def test_an_answer_in_a_binary_frame_is_dropped(site, api):
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        answers = []

        async def clear_cache() -> None:
            answers.append(await api.post(f"/api/v1/chargers/{CHARGER}/operations/ClearCache", json={}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(clear_cache)
            call = await cp.receive()
            await cp.ws.send_message(f'[3,"{call[1]}",{{"status":"Accepted"}}]'.encode())
        assert answers[0].status_code == 504, answers[0].text  # as if never answered
        assert (await cp.call("Heartbeat", {}))[0] == 3


async def test_connections_replacing_each_other_are_a_reconnect_loop(site, api, caplog):
    caplog.set_level(logging.WARNING, "evedge.chargers")

    async def loops() -> int:
        return (await api.get(f"/api/v1/chargers/{CHARGER}")).json()["connectionLoops"]

    async with AsyncExitStack() as stack:
        for n in range(3):  # two replacements: a reconnect, not a loop
            cp = await stack.enter_async_context(raw_charger(site, CHARGER))
            assert (await cp.call("Heartbeat", {}))[0] == 3
        assert await loops() == 0
        cp = await stack.enter_async_context(raw_charger(site, CHARGER))  # the third within seconds
        assert (await cp.call("Heartbeat", {}))[0] == 3  # the newest connection is served
        assert await loops() == 1
    [warning] = [r.getMessage() for r in caplog.records if "reconnect loop" in r.getMessage()]
    assert f"charger={CHARGER} fault" in warning
