"""Helpers for the appliance tests: a site config on free ports, a controller process that
reports to a real NOTIFY_SOCKET, an in-process Site, and a minimal charger over a real WebSocket."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from trio_websocket import open_websocket_url

from controller.config import load_config

PROJECT = Path(__file__).resolve().parents[2]
EVEDGE = [sys.executable, "-m", "controller"]


def write_config(tmp_path: Path, *, api_keys=("test-key",), logging: str = "", extra: str = "",
                 chargers=("CP1", "CP2")) -> Path:
    path = tmp_path / "evedge.toml"
    keys = ", ".join(json.dumps(k) for k in api_keys)
    text = (
        f'[site]\nname = "test"\ndata_dir = "data"\n'
        f'[ocpp]\nlisten = "127.0.0.1:0"\nheartbeat_interval_s = 300\nlocal_list = "off"\n'
        f'[api]\nlisten = "127.0.0.1:0"\napi_keys = [{keys}]\n'
        f"[logging]\n{logging}\n{extra}\n"
    )
    for charger in chargers:
        text += f'[[chargers]]\nid = "{charger}"\nconnectors = 2\n'
    path.write_text(text)
    return path


async def evedge(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, str, str]:
    """Run the `evedge` command (no EVEDGE_* variables from outside); (exit code, stdout, stderr)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("EVEDGE_")}
    with trio.fail_after(timeout):
        result = await trio.run_process([*EVEDGE, *args], env={**environ, **(env or {})}, cwd=PROJECT,
                                        capture_stdout=True, capture_stderr=True, check=False)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


class NotifySocket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    async def bind(self) -> "NotifySocket":
        await self.sock.bind(self.path)
        return self

    async def receive(self, timeout: float = 20) -> str:
        with trio.fail_after(timeout):
            return (await self.sock.recv(4096)).decode()

    async def wait_for(self, prefix: str, timeout: float = 20) -> tuple[str, list[str]]:
        """The first message holding a line starting with `prefix`, and every message before it."""
        seen = []
        with trio.fail_after(timeout):
            while True:
                message = await self.receive()
                seen.append(message)
                if any(line.startswith(prefix) for line in message.splitlines()):
                    return message, seen

    def close(self) -> None:
        self.sock.close()


def status_ports(ready_message: str) -> tuple[int, int]:
    """OCPP and API ports from the READY message's STATUS line."""
    status = next(line for line in ready_message.splitlines() if line.startswith("STATUS="))
    words = status.replace(",", " ").split()
    return int(words[words.index("OCPP") + 2]), int(words[words.index("API") + 2])


class Controller:
    def __init__(self, process: trio.Process, notify: NotifySocket, config: Path, ocpp_port: int,
                 api_port: int, messages: list[str]) -> None:
        self.process, self.notify, self.config = process, notify, config
        self.ocpp_port, self.api_port, self.messages = ocpp_port, api_port, messages

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def wait(self, timeout: float) -> int:
        with trio.fail_after(timeout):
            return await self.process.wait()


@asynccontextmanager
async def run_controller(tmp_path: Path, config: Path, env: dict[str, str] | None = None, stdout=None):
    """Start `evedge run` as a real process; yields once it has sent READY=1."""
    notify = await NotifySocket(tmp_path / "notify.sock").bind()
    environ = {**os.environ, "NOTIFY_SOCKET": notify.path, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = await trio.lowlevel.open_process(
        [*EVEDGE, "run", "--config", str(config)], env=environ, cwd=PROJECT,
        stdout=stdout)  # None: inherit, so pytest shows the log of a failed test
    try:
        async def died() -> None:
            await process.wait()
            raise RuntimeError(f"the controller exited with {process.returncode} before READY=1")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(died)
            ready, messages = await notify.wait_for("READY=1", timeout=30)
            nursery.cancel_scope.cancel()
        ocpp_port, api_port = status_ports(ready)
        yield Controller(process, notify, config, ocpp_port, api_port, messages)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
            await process.wait()
        notify.close()


@asynccontextmanager
async def running_site(config_path: Path):
    """An in-process Site from a config file, on free ports."""
    from controller.site import Site

    site = Site(load_config(config_path))
    async with trio.open_nursery() as nursery:
        await nursery.start(site.run)
        try:
            yield site
        finally:
            with trio.CancelScope(shield=True):
                await site.shutdown()


class Charger:
    """A minimal OCPP-J charger over a real WebSocket: enough to boot and answer calls."""

    def __init__(self, ws, charger_id: str) -> None:
        self.ws, self.id, self._n = ws, charger_id, 0
        self.answered: list[list] = []  # the CALLs from the central system it answered

    async def call(self, action: str, payload: dict) -> list:
        self._n += 1
        await self.ws.send_message(json.dumps([2, f"{self.id}-{self._n}", action, payload]))
        while True:
            frame = json.loads(await self.ws.get_message())
            if frame[0] in (3, 4) and frame[1] == f"{self.id}-{self._n}":
                return frame

    async def boot(self) -> list:
        return await self.call("BootNotification", {"chargePointVendor": "Acme", "chargePointModel": "X1"})

    async def answer_one(self, payload: dict) -> list:
        """Answer the next CALL from the central system with `payload`; returns that CALL."""
        while True:
            frame = json.loads(await self.ws.get_message())
            if frame[0] == 2:
                await self.ws.send_message(json.dumps([3, frame[1], payload]))
                self.answered.append(frame)
                return frame


@asynccontextmanager
async def charger(port: int, charger_id: str, protocol: str = "ocpp1.6"):
    async with open_websocket_url(f"ws://127.0.0.1:{port}/ocpp/{charger_id}", subprotocols=[protocol]) as ws:
        assert ws.subprotocol == protocol
        yield Charger(ws, charger_id)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return write_config(tmp_path)
