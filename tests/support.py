"""Shared test helpers: a running site on free ports, an API client, raw OCPP clients.

Import from any test directory as `from tests.support import ...` (tests/conftest.py puts the
project root on sys.path). The fixtures in tests/conftest.py are thin wrappers around these.

    config = make_config(tmp_path, unknown_chargers="accept")
    async with running_site(config) as site, api_client(site) as api:
        async with raw_charger(site, "CP1") as cp:
            assert (await cp.call("Heartbeat", {}))[0] == 3
        response = await api.get("/api/v1/chargers")

Every response the `api_client` receives is validated against the OpenAPI document
(controller/api/app.py openapi_document): an undocumented path, method, status or body shape fails the test.
"""

from __future__ import annotations

import itertools
import re
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import trio
from trio_websocket import WebSocketConnection, open_websocket_url

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from controller.api.app import openapi_document  # noqa: E402
from controller.config import Config, load_config  # noqa: E402
from controller.site import Site  # noqa: E402

API_KEY = "test-key"
CHARGER = "CHARGER-001"  # configured, 2 connectors
CHARGER_2 = "CHARGER-002"  # configured, 1 connector

# -- config and site -----------------------------------------------------------------------------


def config_text(data_dir: Path, *, unknown_chargers: str = "pending", heartbeat_interval_s: int = 300,
                call_timeout_s: float = 5.0, remote_start_timeout_s: float = 60.0,
                accept_unknown_id_tags: bool = False, ocpp_listen: str = "127.0.0.1:0",
                api_listen: str = "127.0.0.1:0", level: str = "info", extra: str = "",
                local_list: str = "off") -> str:
    """The TOML of a test site: two configured chargers, loopback listeners on free ports.

    `local_list` is off unless a test asks (the product's default is "push"): a pushed list is
    a call the raw test chargers would have to answer before their next reply."""
    return f"""
[site]
name = "test site"
data_dir = "{data_dir.as_posix()}"

[ocpp]
listen = "{ocpp_listen}"
unknown_chargers = "{unknown_chargers}"
heartbeat_interval_s = {heartbeat_interval_s}
call_timeout_s = {call_timeout_s}
remote_start_timeout_s = {remote_start_timeout_s}
accept_unknown_id_tags = {str(accept_unknown_id_tags).lower()}
local_list = "{local_list}"

[api]
listen = "{api_listen}"
api_keys = ["{API_KEY}"]

[logging]
level = "{level}"

[[chargers]]
id = "{CHARGER}"
connectors = 2

[[chargers]]
id = "{CHARGER_2}"
connectors = 1
{extra}
"""


def with_connector_meter(text: str, port: int, meter_id: str = "cp1-meter", billed: bool = True) -> str:
    """A site's TOML plus a connector meter: an SDM630 on CHARGER's connector 1 behind a Modbus TCP
    gateway on 127.0.0.1:`port` (controller/simulators/meter.py MeterServer), polled fast;
    `billed`: CHARGER books its energy from it (meter = "connector-meter")."""
    if billed:
        text = text.replace("connectors = 2\n", 'connectors = 2\nmeter = "connector-meter"\n', 1)
    return text + f"""
[[buses]]
id = "gw"
kind = "tcp"
host = "127.0.0.1"
port = {port}
timeout_s = 0.2
retries = 0
reconnect_min_s = 0.05
reconnect_max_s = 0.2

[[meters]]
id = "{meter_id}"
bus = "gw"
model = "sdm630"
role = "connector"
charger = "{CHARGER}"
connector = 1
poll_s = 0.05
"""


def make_config(tmp_path: Path, **options: Any) -> Config:
    """Write `site.toml` (see `config_text` for the options) into tmp_path and load it."""
    path = tmp_path / "site.toml"
    path.write_text(config_text(tmp_path / "data", **options), encoding="utf-8")
    return load_config(path)


@asynccontextmanager
async def running_site(config: Config) -> AsyncIterator[Site]:
    """A `Site` running in its own nursery; shut down (chargers get a close) on exit."""
    async with trio.open_nursery() as nursery:
        site = Site(config)
        await nursery.start(site.run)
        try:
            yield site
        finally:
            with trio.CancelScope(shield=True):
                await site.shutdown()


def ocpp_url(site: Site, charger_id: str, prefix: str = "/ocpp") -> str:
    return f"ws://127.0.0.1:{site.ocpp_port}{prefix}/{charger_id}"


def api_base(site: Site) -> str:
    return f"http://127.0.0.1:{site.api_port}"


# -- the REST API --------------------------------------------------------------------------------


class OpenApiChecker:
    """Validates responses against the OpenAPI document's documented responses."""

    def __init__(self, document: dict | None = None) -> None:
        self.document = document or openapi_document()
        self._routes = []
        for template, item in self.document["paths"].items():
            pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
            self._routes.append((re.compile(pattern), template, item))

    def operation(self, method: str, path: str) -> tuple[str, dict] | None:
        matches = [(t, item) for regex, t, item in self._routes if regex.match(path)]
        # a literal segment beats a parameter: /chargers/{id}/approve over /chargers/{id}/{x}
        matches.sort(key=lambda m: m[0].count("{"))
        for template, item in matches:
            if method.lower() in item:
                return template, item[method.lower()]
        return None

    def schema_for(self, method: str, path: str, status: int) -> dict | None:
        """The documented JSON schema for this response; raises AssertionError if undocumented."""
        found = self.operation(method, path)
        if found is None:
            assert status >= 400, f"{method} {path} answered {status} but is not documented"
            return {"$ref": "#/components/schemas/Error"}
        template, op = found
        responses = op["responses"]
        response = responses.get(str(status)) or responses.get("default")
        assert response is not None, f"{method} {template}: status {status} not documented"
        if status >= 300 and str(status) not in responses:
            assert status >= 400, f"{method} {template}: status {status} not documented"
        content = response.get("content")
        if not content:
            return None
        if "application/json" not in content:
            return {}  # documented as something other than JSON (text, HTML): not checked here
        return content["application/json"]["schema"]

    def check(self, method: str, path: str, status: int, body: bytes) -> None:
        schema = self.schema_for(method, path, status)
        if schema is None:
            assert not body, f"{method} {path} {status}: documented without a body, got {body[:200]!r}"
            return
        if schema == {}:
            return
        data = orjson.loads(body)
        validator = jsonschema.Draft202012Validator(
            {**schema, "components": self.document["components"]},
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        assert not errors, f"{method} {path} {status}: body does not match the OpenAPI document: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or 'body'}: {e.message}" for e in errors[:5])


@asynccontextmanager
async def api_client(site: Site, *, key: str | None = API_KEY, validate: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client for the site's API sending `X-API-Key: key` (None: no header).

    With `validate`, every response is checked against the OpenAPI document.
    """
    checker = OpenApiChecker() if validate else None

    async def check(response: httpx.Response) -> None:
        await response.aread()
        if checker is not None:
            checker.check(response.request.method, response.request.url.path, response.status_code, response.content)

    headers = {"X-API-Key": key} if key is not None else {}
    async with httpx.AsyncClient(base_url=api_base(site), headers=headers, timeout=30,
                                 event_hooks={"response": [check]}) as client:
        yield client


# -- raw OCPP clients ----------------------------------------------------------------------------


class RawCharger:
    """A minimal OCPP-J client over trio-websocket, for frames the simulator will not send."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)

    async def send(self, frame: Any) -> None:
        await self.ws.send_message(frame if isinstance(frame, str) else orjson.dumps(frame).decode())

    async def receive_text(self) -> str:
        with trio.fail_after(10):
            return await self.ws.get_message()

    async def receive(self) -> list:
        return orjson.loads(await self.receive_text())

    async def call(self, action: str, payload: Any, unique_id: str | None = None) -> list:
        """Send a CALL and return the reply frame (CALLRESULT or CALLERROR) as a list."""
        unique_id = unique_id or f"t{next(self._ids)}"
        await self.send([2, unique_id, action, payload])
        reply = await self.receive()
        assert reply[1] == unique_id, reply
        return reply

    async def boot(self) -> dict:
        reply = await self.call("BootNotification", {"chargePointVendor": "raw", "chargePointModel": "raw"})
        assert reply[0] == 3, reply
        return reply[2]

    async def status(self, connector: int, status: str, error_code: str = "NoError") -> None:
        reply = await self.call("StatusNotification", {"connectorId": connector, "status": status,
                                                      "errorCode": error_code})
        assert reply == [3, reply[1], {}], reply

    async def answer_next_call(self, payload: dict | Callable[[list], dict]) -> list:
        """Wait for the controller's next CALL and answer it; returns the CALL frame."""
        frame = await self.receive()
        assert frame[0] == 2, frame
        answer = payload(frame) if callable(payload) else payload
        await self.send([3, frame[1], answer])
        return frame


@asynccontextmanager
async def raw_charger(site: Site, charger_id: str, *, prefix: str = "/ocpp",
                      subprotocols: list[str] | None = ("ocpp1.6",)) -> AsyncIterator[RawCharger]:
    """A raw trio-websocket charger connected to the site (the handshake must succeed)."""
    url = ocpp_url(site, charger_id, prefix)
    async with open_websocket_url(url, subprotocols=list(subprotocols or [])) as ws:
        yield RawCharger(ws)


# -- waiting without sleeping --------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[Any] | Any], *, timeout: float = 10, what: str = "condition") -> Any:
    """Poll `check` (sync or async) until it returns something truthy; bounded by `timeout`."""
    with trio.move_on_after(timeout):
        while True:
            result = check()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return result
            await trio.sleep(0.01)
    raise AssertionError(f"{what} not reached within {timeout} s")


def drain_datagrams(sock: socket.socket) -> list[str]:
    """The datagrams waiting on a non-blocking socket (sd_notify messages), decoded."""
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


async def transaction_status(api: httpx.AsyncClient, transaction_id: int) -> str:
    response = await api.get(f"/api/v1/transactions/{transaction_id}")
    assert response.status_code == 200, response.text
    return response.json()["status"]


def unique(prefix: str = "T") -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def approve_answering(api: httpx.AsyncClient, cp: RawCharger, charger_id: str,
                            answer: dict | None) -> tuple[httpx.Response, list]:
    """POST approve while the charger answers the call it gets (a CALLERROR when `answer` is None)."""
    response = None

    async def approve() -> None:
        nonlocal response
        response = await api.post(f"/api/v1/chargers/{charger_id}/approve")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(approve)
        call = await cp.receive()
        assert call[0] == 2, call
        await cp.send([3, call[1], answer] if answer is not None else [4, call[1], "NotSupported", "no", {}])
    assert response is not None
    return response, call
