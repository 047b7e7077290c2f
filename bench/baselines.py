"""The servers evedge is measured against, each run as its own process.

  statusquo     the Python status quo: a central system built from the `ocpp` library's asyncio
                `ChargePoint` over the `websockets` server, with the library's default schema
                validation of every incoming call and outgoing result, answering the same actions
                as evedge (it keeps nothing: no database, so it is the optimistic status quo);
  statusquo201  the same for OCPP 2.0.1: the library's asyncio `ocpp.v201.ChargePoint` as a CSMS
                (subprotocol "ocpp2.0.1"), answering BootNotification, Heartbeat,
                StatusNotification, Authorize, TransactionEvent and MeterValues, keeping nothing;
  echo          the transport ceiling: a bare trio-websocket server that sends each frame back
                (it accepts the first subprotocol offered, so it serves 1.6 and 2.0.1 clients).

Usage: python -m bench.baselines {statusquo|statusquo201|echo} [--port 0]. Prints "ready port=N"
once it accepts.
"""

from __future__ import annotations

import argparse
import itertools
import sys


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def run_statusquo(host: str, port: int) -> None:
    import asyncio
    import logging

    from ocpp.routing import on
    from ocpp.v16 import ChargePoint, call_result
    from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
    from websockets.asyncio.server import serve

    logging.getLogger("ocpp").setLevel(logging.WARNING)
    ids = itertools.count(1)

    class CentralSystemCP(ChargePoint):
        @on(Action.boot_notification)
        async def on_boot(self, **kwargs):
            return call_result.BootNotification(current_time=_now(), interval=300,
                                                status=RegistrationStatus.accepted)

        @on(Action.heartbeat)
        async def on_heartbeat(self, **kwargs):
            return call_result.Heartbeat(current_time=_now())

        @on(Action.status_notification)
        async def on_status(self, **kwargs):
            return call_result.StatusNotification()

        @on(Action.meter_values)
        async def on_meter_values(self, **kwargs):
            return call_result.MeterValues()

        @on(Action.authorize)
        async def on_authorize(self, **kwargs):
            return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

        @on(Action.start_transaction)
        async def on_start(self, **kwargs):
            return call_result.StartTransaction(transaction_id=next(ids),
                                                id_tag_info={"status": AuthorizationStatus.accepted})

        @on(Action.stop_transaction)
        async def on_stop(self, **kwargs):
            return call_result.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})

    async def handler(ws):
        charger_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        cp = CentralSystemCP(charger_id, ws)
        try:
            await cp.start()
        except Exception:  # noqa: BLE001 - a closed connection ends the session
            pass

    async def main():
        async with serve(handler, host, port, subprotocols=["ocpp1.6"], compression=None,
                         ping_interval=None, max_size=2**20) as server:
            real_port = server.sockets[0].getsockname()[1]
            print(f"ready port={real_port}", flush=True)
            await server.serve_forever()

    asyncio.run(main())


def run_statusquo201(host: str, port: int) -> None:
    import asyncio
    import logging

    from ocpp.routing import on
    from ocpp.v201 import ChargePoint, call_result
    from websockets.asyncio.server import serve

    logging.getLogger("ocpp").setLevel(logging.WARNING)
    accepted = {"status": "Accepted"}

    class CSMS(ChargePoint):
        @on("BootNotification")
        async def on_boot(self, **kwargs):
            return call_result.BootNotification(current_time=_now(), interval=300, status="Accepted")

        @on("Heartbeat")
        async def on_heartbeat(self, **kwargs):
            return call_result.Heartbeat(current_time=_now())

        @on("StatusNotification")
        async def on_status(self, **kwargs):
            return call_result.StatusNotification()

        @on("MeterValues")
        async def on_meter_values(self, **kwargs):
            return call_result.MeterValues()

        @on("Authorize")
        async def on_authorize(self, **kwargs):
            return call_result.Authorize(id_token_info=dict(accepted))

        @on("TransactionEvent")
        async def on_transaction_event(self, id_token=None, **kwargs):
            # as evedge: the token's verdict when the event carries one
            return call_result.TransactionEvent(id_token_info=dict(accepted) if id_token else None)

    async def handler(ws):
        charger_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
        cp = CSMS(charger_id, ws)
        try:
            await cp.start()
        except Exception:  # noqa: BLE001 - a closed connection ends the session
            pass

    async def main():
        async with serve(handler, host, port, subprotocols=["ocpp2.0.1"], compression=None,
                         ping_interval=None, max_size=2**20) as server:
            real_port = server.sockets[0].getsockname()[1]
            print(f"ready port={real_port}", flush=True)
            await server.serve_forever()

    asyncio.run(main())


def run_echo(host: str, port: int) -> None:
    from functools import partial

    import trio
    from trio_websocket import ConnectionClosed, serve_websocket

    async def handler(request):
        offered = request.proposed_subprotocols
        ws = await request.accept(subprotocol=offered[0] if offered else "ocpp1.6")
        try:
            while True:
                await ws.send_message(await ws.get_message())
        except ConnectionClosed:
            pass

    async def main():
        async with trio.open_nursery() as nursery:
            server = await nursery.start(partial(serve_websocket, handler, host, port, None,
                                                 max_message_size=2**20))
            print(f"ready port={server.port}", flush=True)

    trio.run(main)


SERVERS = {"statusquo": run_statusquo, "statusquo201": run_statusquo201, "echo": run_echo}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("server", choices=tuple(SERVERS))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    SERVERS[args.server](args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
