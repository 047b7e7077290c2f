"""Helpers shared by the fault tests: site configs with extra [ocpp] keys, free ports, frames."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

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
