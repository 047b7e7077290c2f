"""The two servers evedge is measured against, each run as its own process.

  statusquo  the Python status quo: a central system built from the `ocpp` library's asyncio
             `ChargePoint` over the `websockets` server, with the library's default schema
             validation of every incoming call and outgoing result, answering the same actions
             as evedge (it keeps nothing: no database, so it is the optimistic status quo);
  echo       the transport ceiling: a bare trio-websocket server that sends each frame back.

Usage: python -m bench.baselines {statusquo|echo} [--port 0]. Prints "ready port=N" once it accepts.
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


def run_echo(host: str, port: int) -> None:
    from functools import partial

    import trio
    from trio_websocket import ConnectionClosed, serve_websocket

    async def handler(request):
        ws = await request.accept(subprotocol="ocpp1.6")
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("server", choices=("statusquo", "echo"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    (run_statusquo if args.server == "statusquo" else run_echo)(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
