"""One LAN client must not take the controller down: no API key needed to try.

4,000 requests saying `Connection: close` (or HTTP/1.0) used to leave the server's side of every
socket open, until no descriptor was left: chargers could not connect and the watchdog pings
stopped. Now what the protocol says is closed is closed, HTTP connections are capped, and the HTTP
listener leaves a reserve of descriptors to chargers.
"""

from __future__ import annotations

import os
import resource
import socket

import trio

from controller import descriptors
from controller.api import http_server
from tests.faults.process import controller, raw_charger_at, site_config
from tests.faults.test_rest_load import SLOW_POST, with_api
from tests.support import CHARGER, drain_datagrams, eventually, make_config, raw_charger, running_site

REQUESTS = 60


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def request_and_wait_for_close(port: int, request: bytes) -> bytes:
    """Send `request`, then read until the server closes its side (the test fails on a timeout)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        answer = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                answer += chunk
        return answer


async def heartbeat(site) -> None:
    async with raw_charger(site, CHARGER) as cp:
        await cp.boot()
        assert (await cp.call("Heartbeat", {}))[0] == 3


async def test_connection_close_and_http10_requests_are_closed_by_the_server(tmp_path) -> None:
    async with running_site(make_config(tmp_path)) as site:
        await request_and_wait_for_close(site.api_port, b"GET /healthz HTTP/1.0\r\n\r\n")  # warm up
        before = open_fds()
        for i in range(REQUESTS):
            if i % 2:
                request = b"GET /healthz HTTP/1.1\r\nHost: evedge\r\nConnection: close\r\n\r\n"
            else:
                request = b"GET /healthz HTTP/1.0\r\n\r\n"
            answer = await request_and_wait_for_close(site.api_port, request)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
        await eventually(lambda: site.http_gate.open == 0, what="every HTTP connection closed")
        assert open_fds() <= before + 2  # nothing held: each request's socket is gone on both sides
        await heartbeat(site)


async def test_capped_http_connections_leave_chargers_served(tmp_path, monkeypatch) -> None:
    """Clients in the middle of requests hold every HTTP connection the cap allows: the next API
    client waits for one of them to end, and a charger connects and is answered meanwhile. Idle
    connections give way to a waiting client at once."""
    monkeypatch.setattr(http_server, "KEEP_ALIVE_S", 60.0)  # idle ones give way, not time out
    async with running_site(with_api(make_config(tmp_path), max_connections=4)) as site:
        idle = [await trio.open_tcp_stream("127.0.0.1", site.api_port) for _ in range(4)]
        await eventually(lambda: site.http_gate.open == 4, what="4 connections open")
        answer = await request_and_wait_for_close(site.api_port, b"GET /healthz HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")
        for stream in idle:
            await stream.aclose()
        await eventually(lambda: site.http_gate.open == 0, what="the idle connections gone")

        busy = [await trio.open_tcp_stream("127.0.0.1", site.api_port) for _ in range(4)]
        for stream in busy:
            await stream.send_all(SLOW_POST)  # a body that does not finish arriving
        await eventually(lambda: site.http_gate.busy == 4, what="4 requests in progress")
        answers: list[bytes] = []
        async with trio.open_nursery() as nursery:

            async def fifth() -> None:
                answers.append(await request_and_wait_for_close(site.api_port, b"GET /healthz HTTP/1.0\r\n\r\n"))

            nursery.start_soon(fifth)
            await eventually(lambda: site.http_gate.waiting, what="the listener holding back")
            await heartbeat(site)  # chargers are not behind the HTTP cap
            assert answers == [] and site.http_gate.open == 4
            await busy.pop().aclose()
        assert answers[0].startswith(b"HTTP/1.1 200")
        for stream in busy:
            await stream.aclose()


async def test_http_listener_keeps_a_reserve_of_descriptors_for_chargers(tmp_path) -> None:
    """With only a few descriptors left above the reserve, API connections wait (idle ones give
    theirs back); chargers still connect, since the reserve is theirs."""
    async with running_site(make_config(tmp_path)) as site:
        gate = site.http_gate
        clients = []
        gate.reserve = descriptors.free() - 6  # room for about 3 clients (2 descriptors each in-process)
        for _ in range(8):
            stream = await trio.open_tcp_stream("127.0.0.1", site.api_port)
            clients.append(stream)
            await stream.send_all(SLOW_POST)  # a request in progress: busy, not idle
        await eventually(lambda: gate.waiting, what="the listener at the reserve")
        assert gate.open < 8
        await heartbeat(site)  # the reserve is the chargers'
        gate.reserve = 0
        await eventually(lambda: gate.busy == 8, what="the waiting clients served once descriptors are free")
        for stream in clients:
            await stream.aclose()


async def test_api_still_answers_after_a_concurrent_flood(tmp_path) -> None:
    async with running_site(make_config(tmp_path)) as site:
        async with trio.open_nursery() as nursery:
            for _ in range(REQUESTS):
                nursery.start_soon(request_and_wait_for_close, site.api_port,
                                   b"GET /healthz HTTP/1.1\r\nHost: evedge\r\nConnection: close\r\n\r\n")
        await eventually(lambda: site.http_gate.open == 0, what="every HTTP connection closed")
        answer = await request_and_wait_for_close(site.api_port, b"GET /healthz HTTP/1.0\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200")


async def test_a_real_controller_with_400_descriptors_outlives_the_flood(tmp_path) -> None:
    """`evedge run` limited to 400 descriptors, under systemd's watchdog: 200 idle connections and
    600 `Connection: close` requests later, it holds fewer descriptors than the HTTP share allows,
    a charger connects and is answered, and the watchdog was pinged through it."""
    notify = tmp_path / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(notify))
    receiver.setblocking(False)
    env = {"NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "400000"}  # a ping every 0.2 s
    with receiver:
        async with controller(site_config(tmp_path), env=env) as ctl:
            pid = ctl.process.pid
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (400, 400))
            idle = [await trio.open_tcp_stream("127.0.0.1", ctl.api_port) for _ in range(200)]
            drain_datagrams(receiver)
            answers: list[bytes] = []

            async def lane() -> None:
                for _ in range(30):
                    answers.append(await request_and_wait_for_close(
                        ctl.api_port, b"GET /healthz HTTP/1.1\r\nHost: evedge\r\nConnection: close\r\n\r\n"))

            async with trio.open_nursery() as nursery:
                for _ in range(20):
                    nursery.start_soon(lane)
            assert len(answers) == 600 and all(a.startswith(b"HTTP/1.1 200") for a in answers)
            held = len(os.listdir(f"/proc/{pid}/fd"))
            assert held <= 400 - descriptors.RESERVE + 1, held
            async with raw_charger_at(ctl.url(CHARGER)) as cp:
                await cp.boot()
                assert (await cp.call("Heartbeat", {}))[0] == 3
            assert "WATCHDOG=1" in drain_datagrams(receiver)  # pinged through the flood
            for stream in idle:
                await stream.aclose()

