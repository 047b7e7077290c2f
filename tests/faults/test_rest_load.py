"""REST load must not starve the chargers.

1,000 busy REST clients pushed a charger's Heartbeat from 1.5 ms to 605 ms, and request bodies sent
slowly held the loop longer still. Now the API handles `[api] max_requests_in_flight` requests at
a time (the next ones wait a little, then answer 503 with Retry-After), a slow body times out, and
chargers are answered whatever the API is doing.
"""

from __future__ import annotations

import httpx
import trio

from controller.api import app as api_app
from controller.api import limits
from controller.config import Config
from tests.support import API_KEY, CHARGER, api_base, eventually, make_config, raw_charger, running_site


def with_api(config: Config, **keys: object) -> Config:
    """`config` with these [api] keys."""
    return config.model_copy(update={"api": config.api.model_copy(update=keys)})


SLOW_POST = (b"POST /api/v1/id-tags HTTP/1.1\r\nHost: evedge\r\nX-API-Key: " + API_KEY.encode()
             + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"idTag\":")


async def test_busy_api_turns_leave_chargers_answered_and_excess_requests_get_503(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(limits, "QUEUE_WAIT_S", 0.2)
    monkeypatch.setattr(api_app, "BODY_TIMEOUT_S", 2)
    config = with_api(make_config(tmp_path), max_requests_in_flight=2)
    async with running_site(config) as site, httpx.AsyncClient(base_url=api_base(site),
                                                               headers={"X-API-Key": API_KEY}) as api:
        # Two clients take both turns with bodies that never finish arriving.
        slow = [await trio.open_tcp_stream("127.0.0.1", site.api_port) for _ in range(2)]
        for stream in slow:
            await stream.send_all(SLOW_POST)

        async def busy() -> bool:
            response = await api.get("/api/v1/chargers")
            return response.status_code == 503 and response.headers["Retry-After"] == "1" and response.json()["error"] == "Busy"

        await eventually(busy, what="the API's turns all taken")
        async with raw_charger(site, CHARGER) as cp:  # the chargers are not behind the API's turns
            await cp.boot()
            for _ in range(3):
                assert (await cp.call("Heartbeat", {}))[0] == 3
        # The slow bodies time out (408, connection closed) and give their turns back.
        for stream in slow:
            answer = b""
            with trio.fail_after(30):
                while chunk := await stream.receive_some(65536):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            await stream.aclose()
        assert (await api.get("/api/v1/chargers")).status_code == 200


async def test_a_charger_is_answered_while_a_hundred_api_requests_wait(tmp_path, monkeypatch) -> None:
    """Both API turns held by slow bodies and 100 requests queued behind them: the charger's
    heartbeats are answered while every API request still waits; once the turns come back, every
    one of them is answered."""
    monkeypatch.setattr(limits, "QUEUE_WAIT_S", 60.0)
    config = with_api(make_config(tmp_path), max_requests_in_flight=2, max_connections=200)
    answered: list[int] = []
    async with running_site(config) as site, httpx.AsyncClient(
            base_url=api_base(site), headers={"X-API-Key": API_KEY},
            limits=httpx.Limits(max_connections=100), timeout=60) as api:
        holders = [await trio.open_tcp_stream("127.0.0.1", site.api_port) for _ in range(2)]
        for stream in holders:
            await stream.send_all(SLOW_POST)
        await eventually(lambda: site.http_gate.busy == 2, what="both turns taken")

        async def client() -> None:
            answered.append((await api.get("/api/v1/transactions")).status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(client)
            await eventually(lambda: site.http_gate.busy == 102, what="100 requests waiting for a turn")
            async with raw_charger(site, CHARGER) as cp:
                await cp.boot()
                for _ in range(5):
                    assert (await cp.call("Heartbeat", {}))[0] == 3
            assert answered == []  # the charger went first
            for stream in holders:
                await stream.aclose()
    assert answered == [200] * 100
