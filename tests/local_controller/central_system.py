"""A central system above the site, built from the `ocpp` library's asyncio `ChargePoint` on a
`websockets` server: an OCPP 1.6J (or, with --version 2.0.1, 2.0.1; with --version both, either on
one URL, as the connection's subprotocol says) implementation independent of ours, run as its own
process.

    python -m tests.local_controller.central_system --port 0 [--cert cert.pem --key key.pem] [--version 2.0.1]

It prints JSON lines: {"event": "ready", "port": N}, {"event": "connected", "charger", "subprotocol",
"authorization"}, {"event": "call", "charger", "action", "payload"} for every call it receives
(after the library validated it), {"event": "closed", "charger"}. It reads commands, one JSON line
each, answering {"id", "ok", "result" | "error"}:
  {"cmd": "boot", "status": "Rejected"}          the answer to BootNotifications from now on
  {"cmd": "authorize", "status": "Blocked"}      the IdTagInfo (IdTokenInfo) status for Authorize /
                                                 StartTransaction (TransactionEvent with an idToken)
  {"cmd": "call", "charger", "action", "payload"}  a call to that charger (the site): its answer
  {"cmd": "cut"}                                  closes every connection and stops listening
  {"cmd": "resume"}                               listens again on the same port
  {"cmd": "quit"}
Its transaction ids start at 1001, so they never look like the site's (2.0.1: the station's own).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import ssl
import sys
from datetime import datetime, timezone
from decimal import Decimal

from ocpp.charge_point import camel_to_snake_case
from ocpp.routing import on
from ocpp import v16, v201
from ocpp.v16 import ChargePoint, call_result
from websockets.asyncio.server import serve

logging.getLogger("ocpp").setLevel(logging.CRITICAL)
logging.getLogger("websockets").setLevel(logging.CRITICAL)


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message, default=lambda v: float(v) if isinstance(v, Decimal) else str(v)) + "\n")
    sys.stdout.flush()


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Settings:
    boot = "Accepted"
    authorize = "Accepted"
    interval = 300
    subprotocols = ["ocpp1.6"]  # --version's (VERSIONS)


transaction_ids = itertools.count(1001)
connected: dict[str, "SiteCharger"] = {}


class SiteCharger(ChargePoint):
    """The site, as the central system sees one of its chargers."""

    requests = v16.call  # the central system's calls

    async def _handle_call(self, msg):
        emit({"event": "call", "charger": self.id, "action": msg.action, "payload": msg.payload})
        return await super()._handle_call(msg)

    @on("BootNotification")
    async def on_boot(self, **_):
        return call_result.BootNotification(current_time=now(), interval=Settings.interval, status=Settings.boot)

    @on("Heartbeat")
    async def on_heartbeat(self, **_):
        return call_result.Heartbeat(current_time=now())

    @on("StatusNotification")
    async def on_status(self, **_):
        return call_result.StatusNotification()

    @on("MeterValues")
    async def on_meter_values(self, **_):
        return call_result.MeterValues()

    @on("Authorize")
    async def on_authorize(self, **_):
        return call_result.Authorize(id_tag_info={"status": Settings.authorize})

    @on("StartTransaction")
    async def on_start(self, **_):
        return call_result.StartTransaction(transaction_id=next(transaction_ids),
                                            id_tag_info={"status": Settings.authorize})

    @on("StopTransaction")
    async def on_stop(self, **_):
        return call_result.StopTransaction()

    @on("DataTransfer")
    async def on_data_transfer(self, **_):
        return call_result.DataTransfer(status="Accepted")

    @on("FirmwareStatusNotification")
    async def on_firmware(self, **_):
        return call_result.FirmwareStatusNotification()

    @on("DiagnosticsStatusNotification")
    async def on_diagnostics(self, **_):
        return call_result.DiagnosticsStatusNotification()


class SiteStation(v201.ChargePoint):
    """The site, as a 2.0.1 central system sees one of its stations."""

    requests = v201.call

    async def _handle_call(self, msg):
        emit({"event": "call", "charger": self.id, "action": msg.action, "payload": msg.payload})
        return await super()._handle_call(msg)

    @on("BootNotification")
    async def on_boot(self, **_):
        return v201.call_result.BootNotification(current_time=now(), interval=Settings.interval, status=Settings.boot)

    @on("Heartbeat")
    async def on_heartbeat(self, **_):
        return v201.call_result.Heartbeat(current_time=now())

    @on("Authorize")
    async def on_authorize(self, **_):
        return v201.call_result.Authorize(id_token_info={"status": Settings.authorize})

    @on("TransactionEvent")
    async def on_transaction_event(self, id_token=None, **_):
        info = {"id_token_info": {"status": Settings.authorize}} if id_token else {}
        return v201.call_result.TransactionEvent(**info)

    @on("DataTransfer")
    async def on_data_transfer(self, **_):
        return v201.call_result.DataTransfer(status="Accepted")

    @on("StatusNotification")
    async def on_status(self, **_):
        return v201.call_result.StatusNotification()

    @on("MeterValues")
    async def on_meter_values(self, **_):
        return v201.call_result.MeterValues()

    @on("NotifyReport")
    async def on_notify_report(self, **_):
        return v201.call_result.NotifyReport()

    @on("FirmwareStatusNotification")
    async def on_firmware(self, **_):
        return v201.call_result.FirmwareStatusNotification()

    @on("LogStatusNotification")
    async def on_log(self, **_):
        return v201.call_result.LogStatusNotification()


VERSIONS = {"1.6": ["ocpp1.6"], "2.0.1": ["ocpp2.0.1"], "both": ["ocpp1.6", "ocpp2.0.1"]}
SESSIONS = {"ocpp1.6": SiteCharger, "ocpp2.0.1": SiteStation}  # by the connection's subprotocol


async def handler(ws) -> None:
    charger_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
    cp = SESSIONS[ws.subprotocol](charger_id, ws)
    connected[charger_id] = cp
    emit({"event": "connected", "charger": charger_id, "subprotocol": ws.subprotocol,
          "authorization": ws.request.headers.get("Authorization")})
    try:
        await cp.start()
    except Exception:  # noqa: BLE001 - a closed connection ends the session
        pass
    finally:
        if connected.get(charger_id) is cp:
            del connected[charger_id]
        emit({"event": "closed", "charger": charger_id})


async def command(message: dict, server_box: list, port: int) -> object:
    name = message["cmd"]
    if name == "boot":
        Settings.boot = message["status"]
        Settings.interval = message.get("interval", Settings.interval)
    elif name == "authorize":
        Settings.authorize = message["status"]
    elif name == "call":
        cp = connected[message["charger"]]
        request = getattr(cp.requests, message["action"])(**camel_to_snake_case(message["payload"]))
        answer = await asyncio.wait_for(cp.call(request, suppress=False), 30)
        return {key: getattr(answer, key) for key in answer.__dataclass_fields__}
    elif name == "cut":
        server_box[0].close(close_connections=True)
    elif name == "resume":
        server_box[0] = await serve(handler, "127.0.0.1", port, subprotocols=Settings.subprotocols,
                                    ssl=server_box[1])
    return None


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", help="serve wss:// with this PEM certificate (and --key)")
    parser.add_argument("--key")
    parser.add_argument("--version", choices=sorted(VERSIONS), default="1.6")
    args = parser.parse_args()
    Settings.subprotocols = VERSIONS[args.version]
    tls = None
    if args.cert:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(args.cert, args.key)
    server = await serve(handler, "127.0.0.1", args.port, subprotocols=Settings.subprotocols, ssl=tls)
    port = next(iter(server.sockets)).getsockname()[1]
    server_box = [server, tls]
    emit({"event": "ready", "port": port})
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def run(message: dict) -> None:
        try:
            emit({"id": message["id"], "ok": True, "result": await command(message, server_box, port)})
        except Exception as exc:  # noqa: BLE001 - reported to the test
            emit({"id": message["id"], "ok": False, "error": f"{type(exc).__name__}: {exc}"})

    while line := await reader.readline():
        message = json.loads(line)
        if message["cmd"] == "quit":
            break
        asyncio.ensure_future(run(message))


if __name__ == "__main__":
    asyncio.run(main())
