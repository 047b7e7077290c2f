"""The upstream central system process (central_system.py) driven from Trio, and site configs
in local-controller mode.

    async with central_system() as cs:
        config = local_config(tmp_path, cs.port)
        async with running_site(config) as site: ...
        await cs.next_call("StartTransaction")       # what the central system received
        await cs.cmd("call", charger=..., action="RemoteStartTransaction", payload={...})
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from controller.config import Config, load_config
from tests.support import CHARGER, PROJECT_ROOT, api_client, config_text


class CentralSystem:
    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.port = 0
        self.events: list[dict] = []  # every event, in order
        self._taken: set[int] = set()
        self._replies: dict[int, dict] = {}
        self._changed = trio.Event()
        self._ids = itertools.count(1)

    async def _read(self) -> None:
        buffer = b""
        async for chunk in self.process.stdout:
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in filter(None, lines):
                message = json.loads(line)
                if "event" in message:
                    self.events.append(message)
                else:
                    self._replies[message["id"]] = message
                self._changed.set()
                self._changed = trio.Event()

    async def cmd(self, name: str, **fields: Any) -> Any:
        """Run a command; its result (an AssertionError with the error if it failed)."""
        reply = await self.try_cmd(name, **fields)
        assert reply["ok"], reply["error"]
        return reply["result"]

    async def try_cmd(self, name: str, **fields: Any) -> dict:
        """Run a command; the reply: {"ok": true, "result"} or {"ok": false, "error"}."""
        request_id = next(self._ids)
        await self.process.stdin.send_all(json.dumps({"id": request_id, "cmd": name, **fields}).encode() + b"\n")
        with trio.fail_after(40):
            while request_id not in self._replies:
                await self._changed.wait()
        return self._replies.pop(request_id)

    async def next_event(self, timeout: float = 10, where: Callable[[dict], bool] | None = None,
                         **match: Any) -> dict:
        """The oldest event not returned yet whose fields equal `match` (and that `where` takes)."""
        with trio.fail_after(timeout):
            while True:
                for index, event in enumerate(self.events):
                    if index not in self._taken and all(event.get(k) == v for k, v in match.items()) \
                            and (where is None or where(event)):
                        self._taken.add(index)
                        return event
                await self._changed.wait()

    async def next_call(self, action: str, timeout: float = 10, payload: dict | None = None, **match: Any) -> dict:
        """The payload of the next call `action` the central system received (one whose payload
        holds the items of `payload`, if given)."""
        def holds(event: dict) -> bool:
            return payload is None or all(event["payload"].get(k) == v for k, v in payload.items())

        return (await self.next_event(timeout, holds, event="call", action=action, **match))["payload"]

    def calls(self, action: str | None = None) -> list[dict]:
        return [e for e in self.events if e["event"] == "call" and action in (None, e["action"])]


@asynccontextmanager
async def central_system(tls: Path | None = None, version: str = "1.6") -> AsyncIterator[CentralSystem]:
    """The central system process; `tls`: a directory with cert.pem and key.pem to serve wss://;
    `version`: the OCPP version it speaks, "1.6", "2.0.1" or "both" (on one URL)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(PROJECT_ROOT))
    argv = [sys.executable, "-m", "tests.local_controller.central_system", "--version", version]
    if tls is not None:
        argv += ["--cert", str(tls / "cert.pem"), "--key", str(tls / "key.pem")]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(lambda task_status: trio.run_process(
            argv, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, check=False, env=env, cwd=str(PROJECT_ROOT), task_status=task_status))
        cs = CentralSystem(process)
        nursery.start_soon(cs._read)
        cs.port = (await cs.next_event(timeout=30, event="ready"))["port"]
        try:
            yield cs
        finally:
            with trio.move_on_after(5) as scope:
                scope.shield = True
                await process.stdin.send_all(b'{"id": 0, "cmd": "quit"}\n')
                await process.wait()
            if process.returncode is None:
                process.kill()
            nursery.cancel_scope.cancel()


def local_toml(data_dir: Path, cs_port: int, ocpp: str = "", chargers: str = "", extra: str = "",
               scheme: str = "ws", **options: Any) -> str:
    """A test site (support.config_text) behind the central system on `cs_port` (`scheme` "wss": over TLS)."""
    text = config_text(data_dir, **options) + f"""
[upstream.ocpp]
url = "{scheme}://127.0.0.1:{cs_port}/ocpp"
reconnect_max_s = 1
call_timeout_s = 5
{ocpp}
{extra}"""
    return text.replace('id = "CHARGER-001"\n', 'id = "CHARGER-001"\n' + chargers, 1)


def local_config(tmp_path: Path, cs_port: int, **options: Any) -> Config:
    path = tmp_path / "site.toml"
    path.write_text(local_toml(tmp_path / "data", cs_port, **options), encoding="utf-8")
    return load_config(path)


async def call_charger(cs: CentralSystem, charger: str, action: str, payload: dict) -> dict:
    """The central system's call to a charger (through the site), and the reply."""
    return await cs.try_cmd("call", charger=charger, action=action, payload=payload)


async def upstream_link(site, charger_id: str = CHARGER) -> dict:
    """The charger's upstream link as `GET /api/v1/upstream` shows it."""
    async with api_client(site) as api:
        response = await api.get("/api/v1/upstream")
    assert response.status_code == 200, response.text
    return next(link for link in response.json()["chargers"] if link["chargeBoxId"] == charger_id)


async def link_down(site) -> bool:
    return not (await upstream_link(site))["connected"]


async def link_drained(site) -> bool:
    """Connected, with nothing queued."""
    link = await upstream_link(site)
    return link["connected"] and link["queued"] == 0
