"""Helpers shared by the fault tests: site configs with extra [ocpp] keys, free ports, frames, a charger
whose cable is cut."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from controller.config import Config, load_config
from tests.support import config_text

BOOT = {"chargePointVendor": "faults", "chargePointModel": "raw"}


def free_port() -> int:
    """A loopback TCP port nobody listens on now, so a restarted site can bind the same one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fault_config(tmp_path: Path, ocpp: dict[str, Any] | None = None, **options: Any) -> Config:
    """Like support.make_config, plus keys for the [ocpp] section (e.g. connection limits)."""
    text = config_text(tmp_path / "data", **options)
    lines = "".join(f"{key} = {_toml(value)}\n" for key, value in (ocpp or {}).items())
    text = text.replace("[ocpp]\n", "[ocpp]\n" + lines, 1)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def status_payload(connector: int, status: str, timestamp: str | None = None) -> dict:
    payload = {"connectorId": connector, "status": status, "errorCode": "NoError"}
    if timestamp:
        payload["timestamp"] = timestamp
    return payload


def upstream_toml(receiver: Any) -> str:
    """An [upstream] section sending every event type to the test receiver, retrying quickly."""
    urls = {"start_url": "/start", "stop_url": "/stop", "status_url": "/status", "connection_url": "/connection"}
    lines = ["[upstream]", *(f'{key} = "{receiver.url(path)}"' for key, path in urls.items()),
             "retry_initial_s = 0.05", "retry_max_s = 0.5", "timeout_s = 5"]
    return "\n".join(lines) + "\n"


class CutCableCharger:
    """A charger whose cable is cut once it has spoken: its TCP connection stays open (no FIN, no
    RST), and nothing is read or answered any more, WebSocket pings included. A WebSocket client
    library would answer pings by itself, so this one speaks the protocol through wsproto."""

    def __init__(self, stream: trio.SocketStream, ws: WSConnection) -> None:
        self.stream, self.ws = stream, ws
        self._ids = itertools.count(1)
        self._messages: list[str] = []

    @classmethod
    async def connect(cls, port: int, charger_id: str) -> CutCableCharger:
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host="127.0.0.1", target=f"/ocpp/{charger_id}",
                                              subprotocols=["ocpp1.6"])))
        charger = cls(stream, ws)
        await charger._until(lambda event: isinstance(event, AcceptConnection))
        return charger

    async def _until(self, done: Callable[[Any], bool]) -> None:
        """Read until an event `done` accepts (text messages are kept; pings go unanswered)."""
        with trio.fail_after(10):
            while True:
                self.ws.receive_data(await self.stream.receive_some(65536) or None)
                for event in self.ws.events():
                    if isinstance(event, TextMessage):
                        self._messages.append(event.data)
                    if done(event):
                        return

    async def call(self, action: str, payload: dict) -> list:
        """Send a CALL and read until its answer."""
        unique_id = f"c{next(self._ids)}"
        await self.stream.send_all(self.ws.send(TextMessage(data=orjson.dumps([2, unique_id, action, payload]).decode())))
        await self._until(lambda event: isinstance(event, TextMessage) and orjson.loads(event.data)[1] == unique_id)
        return orjson.loads(self._messages[-1])

    async def aclose(self) -> None:
        await self.stream.aclose()
