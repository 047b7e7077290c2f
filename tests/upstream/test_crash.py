"""kill -9 of the controller (a real subprocess) with events pending and with one in flight.

After a restart every event arrives, in order per charger; a duplicate is only ever a resend
with the same X-Evedge-Event-Id.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import trio

from controller.simulators.charger_process import SimulatedCharger
from tests.support import API_KEY, CHARGER, CHARGER_2, config_text
from tests.upstream.receiver import HANG, Reply
from tests.upstream.test_flows import upstream_toml

ROOT = Path(__file__).resolve().parents[2]
READY = re.compile(rb"ready: ocpp_port=(\d+) api_port=(\d+)")


@dataclass
class Controller:
    process: trio.Process
    ocpp_port: int = 0
    api_port: int = 0
    output: list[bytes] = field(default_factory=list)

    def url(self, charger_id: str) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp/{charger_id}"

    async def api(self, path: str, **params) -> dict:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.api_port}",
                                     headers={"X-API-Key": API_KEY}) as client:
            response = await client.get(path, params=params)
            assert response.status_code == 200, response.text
            return response.json()

    async def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        assert self.process.returncode == -signal.SIGKILL


@asynccontextmanager
async def controller(config: Path) -> AsyncIterator[Controller]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT))
    async with trio.open_nursery() as nursery:
        process = await nursery.start(partial(
            trio.run_process, [sys.executable, "-m", "controller", "run", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False, env=env, cwd=str(ROOT)))
        running = Controller(process)
        ready = trio.Event()

        async def read_output() -> None:
            buffer = b""
            async for chunk in process.stdout:
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    running.output.append(line)
                    found = READY.search(line)
                    if found:
                        running.ocpp_port, running.api_port = int(found[1]), int(found[2])
                        ready.set()

        nursery.start_soon(read_output)
        with trio.fail_after(30):
            await ready.wait()
        try:
            yield running
        finally:
            if process.returncode is None:
                process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()


def write_config(tmp_path: Path, receiver) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(config_text(tmp_path / "data", accept_unknown_id_tags=True,
                                extra=upstream_toml(receiver, retry_initial_s=0.05, retry_max_s=0.2)))
    return path


async def charge(sim: SimulatedCharger, tag: str, meter: int) -> None:
    """One charge: statuses, StartTransaction, StopTransaction (each answered only once stored)."""
    await sim.status(1, "Preparing")
    await sim.start(connector=1, idTag=tag, meterStart=meter)
    await sim.status(1, "Charging")
    await sim.stop(connector=1, meterStop=meter + 1500)
    await sim.status(1, "Available")


def firsts(requests) -> list[str]:
    """Event ids in the order they first arrived."""
    seen: dict[str, None] = {}
    for r in requests:
        seen.setdefault(r.event_id, None)
    return list(seen)


async def stored_order(ctl: Controller, charger_id: str) -> list[str]:
    listing = await ctl.api("/api/v1/notifications", chargeBoxId=charger_id, limit=1000)
    return [n["eventId"] for n in sorted(listing["notifications"], key=lambda n: n["id"])]


def assert_complete_and_in_order(receiver, orders: dict[str, list[str]]) -> None:
    for charger_id, expected in orders.items():
        got = [r for r in receiver.requests if r.json["chargebox"] == charger_id]
        assert firsts(got) == expected, charger_id  # every event, in order
        delivered = {r.event_id for r in got if isinstance(r.answer, Reply) and r.answer.status == 200}
        assert delivered == set(expected)
    bodies: dict[str, bytes] = {}
    for r in receiver.requests:  # a duplicate is the same event: same id, same body
        assert bodies.setdefault(r.event_id, r.body) == r.body


async def test_kill_9_with_events_pending(tmp_path, receiver, nursery):
    receiver.down()
    config = write_config(tmp_path, receiver)
    async with controller(config) as ctl:
        async with trio.open_nursery() as chargers:
            for charger_id, tag in ((CHARGER, "TAG-A"), (CHARGER_2, "TAG-B")):
                async def run(charger_id=charger_id, tag=tag) -> None:
                    sim = await SimulatedCharger.start(nursery, ctl.url(charger_id), connectors=2)
                    await sim.boot()
                    for n in range(2):
                        await charge(sim, tag, n * 10_000)
                chargers.start_soon(run)
        queue = await ctl.api("/api/v1/notifications/queue")
        assert queue["pending"] == 2 * (1 + 2 * 5) and queue["delivered"] == 0
        orders = {c: await stored_order(ctl, c) for c in (CHARGER, CHARGER_2)}
        await ctl.kill9()
    await receiver.up()
    async with controller(config) as ctl:
        with trio.fail_after(20):
            while (await ctl.api("/api/v1/notifications/queue"))["pending"]:
                await trio.sleep(0.05)
        assert {c: await stored_order(ctl, c) for c in orders} == orders
    assert_complete_and_in_order(receiver, orders)
    types = [r.json["type"] for r in receiver.requests if r.json["chargebox"] == CHARGER]
    assert types == ["connection"] + ["status", "start", "status", "stop_transaction", "status"] * 2


async def test_kill_9_while_an_event_is_being_delivered(tmp_path, receiver, nursery):
    receiver.plan(HANG)  # the first request is read, never answered: the controller dies waiting
    config = write_config(tmp_path, receiver)
    async with controller(config) as ctl:
        sim = await SimulatedCharger.start(nursery, ctl.url(CHARGER), connectors=2)
        await sim.boot()
        await charge(sim, "TAG-A", 0)
        await receiver.wait_count(1, timeout=10)
        in_flight = receiver.requests[0]
        order = await stored_order(ctl, CHARGER)
        await ctl.kill9()
        await sim.aclose()
    assert len(receiver.requests) == 1 and in_flight.event_id == order[0]
    async with controller(config) as ctl:
        with trio.fail_after(20):
            await receiver.wait_for(lambda r: {x.event_id for x in receiver.delivered()} >= set(order))
        queue = await ctl.api("/api/v1/notifications/queue")
        assert queue["pending"] == 0 and queue["failed"] == 0
    assert_complete_and_in_order(receiver, {CHARGER: order})
    resent = [r for r in receiver.requests if r.event_id == in_flight.event_id]
    assert len(resent) == 2 and resent[1].headers["x-evedge-attempt"] == "1"  # never recorded as tried
